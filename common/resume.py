"""Runs that survive interruption: after every epoch the whole training state is kept in a hidden
folder of `--out-dir` named for the run, and the same command run again continues from there.

The folder `<out-dir>/.run-<script>-<digest of the options>/` holds Keras's `BackupAndRestore`
checkpoint (weights, optimizer state and step, the finished epoch count) and `state.json` (the
history rows so far) with `best_weights.npz` (the weights of the best epoch so far). It is
removed once the finished model is saved. The data order and augmentation draws after a resume
start from the run's seed again, so a resumed run ends with the same files and epochs as an
uninterrupted one, but not with bit-identical weights.

In a multi-worker run only the chief writes the folder; the other workers read it to resume from
the same epoch (so `--out-dir` must be a folder they share).
"""

import json
import os
import shutil

import keras
import numpy as np

from common import files
from common.files import VAL_ACCURACY

class RunBackup:
    """The kept state of one run: what to restore before training, what to save after each epoch."""

    def __init__(self, folder, restart=False, writer=True):
        self.folder, self.restart, self.writer = folder, restart, writer
        if restart and writer and os.path.isdir(folder):
            shutil.rmtree(folder)
        self.keras_folder = os.path.join(folder, "keras")
        self.state_path = os.path.join(folder, "state.json")
        self.best_weights_path = os.path.join(folder, "best_weights.npz")

    def finished_epochs(self):
        """Epochs finished by an earlier, interrupted attempt (0 when there was none)."""
        path = os.path.join(self.keras_folder, "training_metadata.json")
        if self.restart or not os.path.exists(path):
            return 0
        with open(path) as handle:
            return int(json.load(handle)["epoch"])

    def saved_rows(self, finished_epochs):
        """History rows of the interrupted attempt, up to its last fully saved epoch."""
        state = files.read_json(self.state_path) or {"rows": []}
        return [row for row in state["rows"] if row[0] <= finished_epochs]

    def callbacks(self, best_weights, history_rows):
        """Our state first, then Keras's checkpoint: a kill between the two leaves our state one
        epoch ahead, which `saved_rows` cuts back to Keras's epoch. A reader (not the chief) only
        restores."""
        if not self.writer:
            return [] if self.restart else [_RestoreOnly(self.keras_folder, delete_checkpoint=False)]
        return [_StateSaver(self, best_weights, history_rows),
                keras.callbacks.BackupAndRestore(self.keras_folder, delete_checkpoint=False)]

    def restore_best(self, best_weights, rows):
        """Gives the BestWeights callback the best-so-far of the interrupted attempt."""
        if rows and os.path.exists(self.best_weights_path):
            best_row = max(rows, key=lambda row: row[VAL_ACCURACY])
            with np.load(self.best_weights_path) as archive:
                weights = [archive[f"arr_{index}"] for index in range(len(archive.files))]
            best_weights.best_accuracy, best_weights.best_epoch = best_row[VAL_ACCURACY], best_row[0]
            best_weights.weights = weights

    def remove(self):
        if self.writer:
            shutil.rmtree(self.folder, ignore_errors=True)


class _RestoreOnly(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore that restores the kept state at the start and never writes it."""

    def _save_model(self):
        pass


class _StateSaver(keras.callbacks.Callback):
    """After each epoch: the history row and, when it is the best so far, its weights."""

    def __init__(self, backup, best_weights, history_rows):
        super().__init__()
        self.backup, self.best_weights, self.history_rows = backup, best_weights, history_rows

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.backup.folder, exist_ok=True)
        if self.best_weights.weights is not None and self.best_weights.best_epoch == epoch + 1:
            with files.atomic_output(self.backup.best_weights_path, replace=True) as temporary_path:
                with open(temporary_path, "wb") as handle:
                    np.savez(handle, *self.best_weights.weights)
        files.write_json(self.backup.state_path, {"rows": self.history_rows}, replace=True)
