"""Training: precision policy, optimiser and learning-rate schedule, the tf.data input pipeline with
on-the-fly augmentation, fit, and saving.

One training path serves `train.py`, `retrain.py`, `dnn_train.py` and the semi-supervised scripts:
`fit` runs Keras's `model.fit` on a shuffled, augmented, prefetched `tf.data` pipeline and
returns the per-epoch history; `save_trained_model` writes the model named by the validation
accuracy of the epoch it keeps (`--keep`), its history and its settings, atomically and without
replacing anything.
"""

import contextlib
import os
import sys
import time

from common import backend  # noqa: F401  (TensorFlow loads quietly, before Keras)
import keras
import numpy as np
import tensorflow as tf

from common import (augmentation, classes, data, distillation, distribution, files, model_files, models,
                    prediction, resume)
from common.errors import RunFailed
from common.config import PRECISION_POLICIES
from common.files import EPOCH_SECONDS, HISTORY_COLUMNS, VAL_ACCURACY


def set_precision(precision):
    """Sets Keras's global dtype policy; call before building a model. `bf16` computes in bfloat16
    with float32 weights (the output softmax stays float32); `fp32` computes in float32."""
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[precision])


def compile_model(model, config, steps_per_epoch=None):
    """Compiles `model` with the optimiser, learning-rate schedule, loss and weight decay of `config`
    (a `config.TrainingConfig`); the report's recipe is Adam at a constant 1e-3 with plain
    categorical cross-entropy. A schedule needs `steps_per_epoch`."""
    learning_rate = learning_rate_schedule(config.schedule, config.learning_rate, config.warmup_epochs,
                                           config.epochs, steps_per_epoch)
    weight_decay = config.weight_decay or None
    average = {"use_ema": True, "ema_momentum": config.ema} if config.ema else {}
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True,
                                         weight_decay=weight_decay, **average)
    elif config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=config.weight_decay, **average)
    else:
        optimizer = keras.optimizers.Adam(learning_rate, weight_decay=weight_decay, **average)
    if weight_decay:  # decay the convolution and dense kernels, not BN scales/offsets or biases
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    if config.teacher:  # targets carry the teachers' probabilities too
        loss = distillation.DistillationLoss(config.distill_weight, config.temperature,
                                             config.label_smoothing)
        model.compile(optimizer=optimizer, loss=loss, metrics=[distillation.accuracy])
        return
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])


def learning_rate_schedule(schedule, learning_rate, warmup_epochs, epochs, steps_per_epoch):
    """`constant`: `learning_rate` throughout. `cosine`: a linear warm-up from 1% of `learning_rate`
    over `warmup_epochs`, then a cosine decay to zero at the end of `epochs`."""
    if schedule == "constant":
        return learning_rate
    warmup_steps = warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate * 0.01, warmup_target=learning_rate,
        warmup_steps=warmup_steps, decay_steps=max(epochs * steps_per_epoch - warmup_steps, 1),
        alpha=0.0)


def balanced_class_weights(labels, class_count):
    """Class weights `rows / (classes * rows of the class)`, so every class weighs the same in the
    loss (Disgust, 1.5% of FER2013, gets about 9.5); a class with no rows gets weight 1."""
    counts = np.bincount(labels, minlength=class_count)
    return {label: (len(labels) / (class_count * count) if count else 1.0)
            for label, count in enumerate(counts.tolist())}


def make_dataset(images, labels, model_input_shape, class_count, batch_size, augment="none",
                 shuffle=False, seed=0, soft_targets=None, mixup=0.0):
    """A tf.data pipeline of (pixels shaped for the model, one-hot labels of `class_count` classes)
    batches; with `soft_targets` (rows, classes) the targets are the one-hot labels followed by those (distillation).

    `augment` names the training-time augmentation (a name in `config.AUGMENTATIONS`; see
    `common.augmentation`), drawn anew for every batch, seeded by `seed`; `mixup` > 0 then blends
    the batch's faces in pairs, targets alike (`augmentation.make_mixer`).
    """
    extra = () if soft_targets is None else (soft_targets.astype(np.float32),)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels, *extra))  # (48, 48) uint8, int64
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    augment_batch = augmentation.make_augmenter(augment, seed)
    mix_batch = augmentation.make_mixer(mixup, seed)

    def prepare(batch_images, batch_labels, *batch_soft_targets):
        batch_images = augment_batch(tf.cast(batch_images, tf.float32)[..., tf.newaxis])  # (b, 48, 48, 1)
        batch_images = tf.reshape(batch_images, (-1, *model_input_shape))  # flat for a DNN
        targets = tf.one_hot(batch_labels, class_count)  # (batch, classes)
        if batch_soft_targets:
            targets = tf.concat([targets, batch_soft_targets[0]], axis=1)  # (batch, 2 x classes)
        return mix_batch(batch_images, targets)

    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    sharding = tf.data.Options()  # several workers given this pipeline each keep every n-th batch
    sharding.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(sharding)


def fit(model, train_set, val_set, config, finished_epochs=0, backup=None, best_so_far=None,
        soft_targets=None, val_soft_targets=None, strategy=None):
    """Trains `model`, which has `finished_epochs`, up to `config.epochs` and returns the history rows of
    those epochs, a summary of the run, and the last epoch's weights when the model is left with
    other (kept) ones, else None.

    `best_so_far` (validation accuracy, epoch, weights) is the record a continued run must beat.
    `soft_targets` (training rows, classes): the teachers' probabilities, for distillation;
    `val_soft_targets` (validation rows, classes) theirs of the validation faces, needed with them.
    `backup` (a `resume.RunBackup`) keeps the training state after every epoch and, when an earlier
    attempt of the same run was interrupted, continues after its last finished epoch.
    `strategy` (see `common.distribution`): with several workers each trains on its share of the rows.
    `config.keep == "best"` leaves the model with the weights of its epoch of highest validation
    accuracy (the summary's `kept_epoch`); "last" with those of the last epoch. With no validation
    rows the last epoch is kept and validation figures are None. The validation rows are predicted
    once per epoch (`Validation`), which gives every validation figure.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if soft_targets is not None and len(val_set) and val_soft_targets is None:
        raise ValueError("distillation needs the teachers' probabilities of the validation faces too")
    teachers_accuracy = None
    if val_soft_targets is not None:  # the validation loss is then measured with their probabilities
        teachers_accuracy = float((val_soft_targets.argmax(axis=1) == val_set.labels).mean())
        print(f"the teachers on the {len(val_set)} validation rows: accuracy {teachers_accuracy:.4f}")
    train_data = _training_pipeline(model, train_set, config, soft_targets, strategy)
    target_width = model.output_shape[-1] * (1 if soft_targets is None else 2)
    distribution.prepare_for_workers(model, strategy, ((1, *model.input_shape[1:]), (1, target_width)))
    copied, relabelled = data.exact_copies(val_set, train_set)  # (validation rows,) masks each
    validation = Validation(val_set, copied, val_soft_targets)
    best_weights, rows = BestWeights(*(best_so_far or ())), []
    callbacks = [validation, best_weights, HistoryRows(rows), StopOnNonFiniteLoss()]
    resumed_epochs = _resume(backup, finished_epochs, config.epochs, best_weights, rows, callbacks)
    started = time.perf_counter()
    class_weight = (balanced_class_weights(train_set.labels, model.output_shape[-1])
                    if config.class_weight == "balanced" else None)
    with _reported_stops(backup, rows, finished_epochs):
        model.fit(train_data, epochs=config.epochs, initial_epoch=finished_epochs, shuffle=False,
                  callbacks=callbacks, class_weight=class_weight, verbose=1 if sys.stdout.isatty() else 2)
    wall_seconds, timed_epochs = _run_time(time.perf_counter() - started, rows[:resumed_epochs],
                                           len(rows) - resumed_epochs)
    kept_epoch, kept_accuracy, last_weights = _keep_weights(model, config, best_weights, rows, train_data,
                                                            validation)
    summary = {"wall_seconds": round(wall_seconds, 1), "timed_epochs": timed_epochs,
               "training_images_per_second": round(len(train_set) * timed_epochs / wall_seconds, 1),
               "resumed_after_epoch": rows[resumed_epochs - 1][0] if resumed_epochs else None,
               "best_val_accuracy": best_weights.best_accuracy if best_weights.best_epoch else None,
               "best_epoch": best_weights.best_epoch,
               "last_val_accuracy": _or_none(rows[-1][VAL_ACCURACY]),
               "kept_epoch": kept_epoch, "kept_val_accuracy": kept_accuracy,
               **validation.unseen_summary(relabelled)}
    if teachers_accuracy is not None:
        summary["teachers_val_accuracy"] = teachers_accuracy
    print(describe_run(summary))
    return rows, summary, last_weights


def _run_time(seconds_now, resumed_rows, epochs_now):
    """The run's wall time across its attempts: this attempt's seconds and the timed epochs of the
    interrupted ones (backups written before epochs were timed have none); returns (seconds, epochs
    those seconds cover)."""
    earlier = [row[EPOCH_SECONDS] for row in resumed_rows if np.isfinite(row[EPOCH_SECONDS])]
    return seconds_now + sum(earlier), epochs_now + len(earlier)


@contextlib.contextmanager
def _reported_stops(backup, rows, finished_epochs):
    """Around `model.fit`: says how to continue after Ctrl-C, drops the backup of a failed run, and
    turns a lost worker into a RunFailed."""
    try:
        yield
    except KeyboardInterrupt:
        if backup is not None and rows:
            print(f"\ninterrupted after epoch {rows[-1][0]}: run the same command again to continue "
                  f"from there (add --restart to start over)", file=sys.stderr)
        raise
    except RunFailed:
        if backup is not None:
            backup.remove()
        raise
    except distribution.LOST_WORKER_ERRORS as error:
        raise RunFailed(distribution.describe_lost_worker(error, rows[-1][0] if rows else finished_epochs)) from None


def _training_pipeline(model, train_set, config, soft_targets, strategy):
    """The training pipeline; with several workers, each worker's pipeline holds its own share of
    the rows."""
    input_shape, class_count = tuple(model.input_shape[1:]), model.output_shape[-1]

    def training_pipeline(shard_count=1, shard_index=0, batch_size=config.batch_size):
        rows = distribution.shard_rows(np.arange(len(train_set)), shard_count, shard_index)
        return make_dataset(train_set.images[rows], train_set.labels[rows], input_shape, class_count,
                            batch_size, config.augment, shuffle=True, seed=config.seed + shard_index,
                            soft_targets=None if soft_targets is None else soft_targets[rows],
                            mixup=config.mixup)

    if distribution.is_multi_worker(strategy):
        return strategy.distribute_datasets_from_function(
            lambda context: training_pipeline(context.num_input_pipelines, context.input_pipeline_id,
                                              context.get_per_replica_batch_size(config.batch_size)))
    return training_pipeline()


def _resume(backup, finished_epochs, epochs, best_weights, rows, callbacks):
    """Adds the backup's callbacks and, after an interrupted attempt, its rows and best weights;
    returns how many epochs that attempt finished."""
    if backup is None:
        return 0
    finished = backup.finished_epochs()
    if finished > finished_epochs:
        rows.extend(files.full_history_row(row) for row in backup.saved_rows(finished))
        backup.restore_best(best_weights, rows)
        print(f"resuming at epoch {finished + 1} of {epochs} (state kept in {backup.folder}; "
              f"--restart starts over)", flush=True)
    callbacks += backup.callbacks(best_weights, rows)
    return len(rows)


def _keep_weights(model, config, best_weights, rows, train_data, validation):
    """Leaves the model with the weights to save; returns (kept epoch, its validation accuracy or
    None, the last epoch's weights when other weights are kept, else None)."""
    keep_best = config.keep == "best" and validation.rows
    kept_epoch = best_weights.best_epoch if keep_best else rows[-1][0]
    kept_accuracy = best_weights.best_accuracy if keep_best else _or_none(rows[-1][VAL_ACCURACY])
    if config.ema:  # Keras left the averaged weights in the model after fit
        recompute_batch_norm_statistics(model, train_data)
        if validation.rows:
            kept_accuracy = validation.measure()["val_accuracy"]
            print(f"averaged weights (decay {config.ema}): val accuracy {kept_accuracy:.4f}")
    if kept_epoch == rows[-1][0]:
        return kept_epoch, kept_accuracy, None
    last_weights = model.get_weights()
    model.set_weights(best_weights.weights)
    return kept_epoch, kept_accuracy, last_weights


def describe_run(summary):
    """The closing line of a run."""
    timing = (f"{summary['wall_seconds']:.0f} s for {summary['timed_epochs']} epochs, "
              f"{summary['training_images_per_second']:.0f} training images/s")
    if summary["kept_val_accuracy"] is None:
        return f"no validation rows: kept the last epoch, {summary['kept_epoch']}; {timing}"
    return (f"best val accuracy {summary['best_val_accuracy']:.4f} (epoch {summary['best_epoch']}), "
            f"last {summary['last_val_accuracy']:.4f}, kept epoch {summary['kept_epoch']}: "
            f"{summary['kept_val_accuracy']:.4f}, unseen {summary['kept_val_unseen_accuracy']:.4f} on "
            f"{summary['val_unseen_rows']} rows; {timing}")


def _or_none(value):
    return None if value is None or np.isnan(value) else value


def recompute_batch_norm_statistics(model, train_data, batches=100):
    """Replaces the batch-normalisation moving statistics with the plain average of the batch
    statistics of `batches` training batches, computed with the model's current (e.g. averaged)
    weights."""
    normalisations = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in normalisations]
    try:
        for index, (images, _) in enumerate(train_data.take(batches)):
            for layer in normalisations:
                layer.momentum = index / (index + 1)  # a running mean over the batches seen
            model(images, training=True)
    finally:
        for layer, momentum in zip(normalisations, momenta):
            layer.momentum = momentum


class Validation(keras.callbacks.Callback):
    """Predicts the validation rows once per epoch and adds every validation figure to the epoch's
    logs: `val_loss` (the training loss on them; when distilling, with `teacher_probabilities`
    (rows, classes), the teachers' of these faces), `val_accuracy`, and `val_unseen_accuracy` on the
    rows without an exact pixel copy among the training rows (`copied` marks the others). Nothing is
    added when there are no validation rows."""

    def __init__(self, val_set, copied, teacher_probabilities=None):
        super().__init__()
        self.val_set, self.copied, self.teacher_probabilities = val_set, copied, teacher_probabilities
        self.rows = len(val_set)
        self.predictor = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.rows:
            logs.update(self.measure())

    def measure(self):
        """The validation figures of the model's current weights."""
        if self.predictor is None:  # traced once, on the weights as they change
            self.predictor = prediction.ModelPredictor(self.model)
        probabilities = self.predictor.probabilities(self.val_set.images)  # (rows, classes)
        targets = np.eye(probabilities.shape[1], dtype=np.float32)[self.val_set.labels]
        if self.teacher_probabilities is not None:  # a distillation target: label, then teachers
            targets = np.concatenate([targets, self.teacher_probabilities], axis=1)  # (rows, 2 x classes)
        correct = probabilities.argmax(axis=1) == self.val_set.labels
        unseen = correct[~self.copied]
        return {"val_loss": float(keras.ops.convert_to_numpy(self.model.loss(targets, probabilities))),
                "val_accuracy": float(correct.mean()),
                "val_unseen_accuracy": float(unseen.mean()) if unseen.size else float("nan")}

    def unseen_summary(self, relabelled):
        """The run summary's figures on the "unseen" rows, for the weights the model holds now."""
        if not self.rows:
            return {"val_unseen_rows": 0, "val_rows_copied_in_training": 0,
                    "val_rows_copied_with_another_label": 0, "kept_val_unseen_accuracy": None}
        return {"val_unseen_rows": int((~self.copied).sum()),
                "val_rows_copied_in_training": int(self.copied.sum()),
                "val_rows_copied_with_another_label": int(relabelled.sum()),
                "kept_val_unseen_accuracy": self.measure()["val_unseen_accuracy"]}


class HistoryRows(keras.callbacks.Callback):
    """Appends each finished epoch's row of HISTORY_COLUMNS to `rows` (NaN where there is no value:
    no validation rows)."""

    def __init__(self, rows):
        super().__init__()
        self.rows = rows

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = {**(logs or {}), "seconds": time.perf_counter() - self.started}
        # no validation rows: no val_loss or val_accuracy (NaN in the row)
        self.rows.append([epoch + 1, *(float(logs.get(name, np.nan)) for name in HISTORY_COLUMNS[1:])])


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops the run (RunFailed: exit 1, nothing saved) as soon as a batch's loss is NaN or infinite."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise RunFailed(f"the loss became {float(loss)} in epoch {self.epoch}; nothing was "
                                   f"saved. Try a lower --learning-rate (or --precision fp32)")


class BestWeights(keras.callbacks.Callback):
    """Holds a copy of the weights of the epoch with the highest validation accuracy so far."""

    def __init__(self, best_accuracy=-1.0, best_epoch=None, weights=None):
        super().__init__()
        self.best_accuracy, self.best_epoch, self.weights = best_accuracy, best_epoch, weights

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("val_accuracy", -1.0)
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch = accuracy, epoch + 1
            self.weights = self.model.get_weights()


def save_trained_model(model, out_dir, history_rows, settings, prefix="", last_weights=None):
    """Writes `<out_dir>/<prefix><val acc>.h5` with `_history.csv` and `_settings.json` beside it,
    named by the validation accuracy of the weights it holds (`settings["kept_val_accuracy"]`, else
    the last epoch's).

    Returns the model's path. Never replaces an existing file: a `-1`, `-2`, ... suffix is added.
    """
    val_accuracy = settings.get("kept_val_accuracy", history_rows[-1][VAL_ACCURACY])
    stem = files.model_stem(val_accuracy, prefix) if val_accuracy is not None else prefix + "all_rows"
    model_path = files.free_model_path(out_dir, stem)
    return _save(model, model_path, history_rows, settings, last_weights)


def _save(model, model_path, history_rows, settings, last_weights=None):
    """Writes the model, its history and its settings together: each to a hidden temporary file
    first, then all three moved into place at once (the model first)."""
    with files.atomic_output(files.settings_path(model_path)) as settings_temporary, \
            files.atomic_output(files.history_path(model_path)) as history_temporary:
        files.write_csv(history_temporary, HISTORY_COLUMNS, history_rows, replace=True)
        files.write_json(settings_temporary, settings, replace=True)
        model_files.save_portable_model(model, model_path, last_weights=last_weights,
                                        class_names=settings.get("class_names"))
    return model_path


def train_new_model(build_model, train_set, val_set, config, run, prefix="", soft_targets=None,
                    val_soft_targets=None):
    """Seeds, sets the precision, builds, compiles, trains and saves a model; returns its path (None
    on a worker other than the chief, which saves nothing).

    `config` is the run's `config.TrainingConfig`, `run` its `config.RunOptions`; every setting and
    the command line are saved in the settings file beside the model. `soft_targets` and
    `val_soft_targets`: the teachers' probabilities, as `fit` takes them.
    """
    strategy = start_strategy(config, run)
    seed_everything(config.seed, config.deterministic)
    set_precision(config.precision)
    with strategy.scope():
        model = build_model(num_classes=len(train_set.class_names))
        compile_model(model, config, steps_per_epoch(len(train_set), config.batch_size, strategy))
    print(f"{model.name}: {models.trainable_parameter_count(model):,} trainable parameters "
          f"({model.count_params():,} in all); {len(train_set)} training rows, "
          f"{len(val_set)} validation rows from {train_set.source}")
    backup = make_backup(config, run, strategy, 0, train_set, val_set)
    rows, summary, last_weights = fit(model, train_set, val_set, config, backup=backup,
                                      soft_targets=soft_targets, val_soft_targets=val_soft_targets,
                                      strategy=strategy)
    model_path = None
    if distribution.is_chief(strategy):
        settings = run_settings(config, run, model, train_set, val_set, summary)
        model_path = save_trained_model(model, run.out_dir, rows, settings, prefix, last_weights)
        backup.remove()
    distribution.wait_for_every_worker(strategy)
    return model_path


def start_strategy(config, run):
    """The run's distribution strategy, checked against the batch size."""
    strategy = distribution.get_strategy(run.strategy)
    distribution.check_batch_size(strategy, config.batch_size)
    return strategy


def make_backup(config, run, strategy, finished_epochs, train_set, val_set):
    """The run's backup (the chief writes it, other workers only read it), after checking that
    every worker is about to train the same thing from the same epoch."""
    backup = resume.RunBackup(run.run_folder(config), run.restart, writer=distribution.is_chief(strategy))
    arrays = [train_set.images, train_set.labels, val_set.images, val_set.labels]
    distribution.check_workers_agree(strategy, config, arrays, max(backup.finished_epochs(), finished_epochs))
    return backup


def continue_training(model_path, train_set, val_set, config, run, finished_epochs, last_epoch):
    """Trains the model of `model_path`, which has `finished_epochs`, on to `last_epoch` and saves it
    as `<val acc>_<old model name>` with the old history followed by the new epochs; returns its
    path (None on a worker other than the chief)."""
    config = config.until_epoch(last_epoch)  # a cosine schedule spans epochs 1..LAST_EPOCH, resumed
    strategy = start_strategy(config, run)
    seed_everything(config.seed, config.deterministic)
    with strategy.scope():
        # files hold Keras's batch normalisation; train with the fast one
        model = model_files.with_batch_norm(model_files.load_model(model_path), fused=True)
        classes.check_same(classes.model_class_names(model_path, model.output_shape[-1]), train_set.class_names,
                           train_set.source, "the model")
        compile_model(model, config, steps_per_epoch(len(train_set), config.batch_size, strategy))
        restored = model_files.restore_optimizer_state(model, model_path)
    print(f"continuing {model_path} at epoch {finished_epochs + 1}; "
          + ("optimizer state restored" if restored else "no matching saved optimizer state, "
                                                     "starting a fresh one"))
    best_so_far = _continue_from_last_epoch(model, model_path, config.keep)
    backup = make_backup(config, run, strategy, finished_epochs, train_set, val_set)
    rows, summary, last_weights = fit(model, train_set, val_set, config, finished_epochs=finished_epochs,
                                      backup=backup, best_so_far=best_so_far, strategy=strategy)
    if not distribution.is_chief(strategy):
        distribution.wait_for_every_worker(strategy)
        return None
    history = files.read_history(model_path) + rows
    settings = run_settings(config, run, model, train_set, val_set, summary)
    settings["continued_from"] = os.path.basename(model_path)
    old_stem = os.path.splitext(os.path.basename(model_path))[0]
    kept_accuracy = summary["kept_val_accuracy"]
    new_stem = (files.model_stem(kept_accuracy) if kept_accuracy is not None else "all_rows") + "_" + old_stem
    model_path = _save(model, files.free_model_path(run.out_dir, new_stem), history, settings,
                       last_weights)
    backup.remove()
    distribution.wait_for_every_worker(strategy)
    return model_path


def _continue_from_last_epoch(model, model_path, keep):
    """Gives `model` (holding the file's kept weights) the last epoch's weights when the file has
    them, so weights and optimizer state belong together; with `keep == "best"` the kept weights
    stay the record a new epoch must beat. Returns that record, or None."""
    saved = files.read_json(files.settings_path(model_path)) or {}
    best_so_far = None
    if keep == "best" and saved.get("kept_val_accuracy") is not None:
        best_so_far = (saved["kept_val_accuracy"], saved.get("kept_epoch"), model.get_weights())
    last_weights = model_files.read_last_epoch_weights(model_path)
    if last_weights is not None:
        model.set_weights(last_weights)
        record = (f"; the kept epoch {saved.get('kept_epoch')} ({saved['kept_val_accuracy']:.4f}) stays "
                  f"the record to beat" if best_so_far else "")
        print(f"continuing from the last epoch's weights{record}")
    return best_so_far


def seed_everything(seed, deterministic=False):
    """Seeds Python, NumPy and TensorFlow; `deterministic` also fixes the order of TensorFlow's
    multi-threaded operations."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def steps_per_epoch(rows, batch_size, strategy=None):
    """Batches per epoch of `rows` training rows; with several workers, of each worker's equal share
    of them."""
    workers = distribution.worker_index_and_count(strategy)[1] if strategy else 1
    return -(-(rows // workers) // (batch_size // workers))


def run_settings(config, run, model, train_set, val_set, summary):
    """Everything needed to say how a model was made: the settings, data sizes, versions, timings."""
    settings = {name: value for name, value in config.as_settings().items() if not callable(value)}
    settings.update(summary)
    settings.update({
        "command": run.command, "out_dir": run.out_dir, "strategy": run.strategy,
        "arch": models.architecture_name(model) or config.arch, "architecture": model.name,
        "class_names": list(train_set.class_names),
        "trainable_parameters": models.trainable_parameter_count(model),
        "training_rows": len(train_set), "validation_rows": len(val_set),
        "data_rows": train_set.split_from_rows,  # training rows may be fewer or have rows added
        "model_labelled_rows": train_set.model_labelled_rows,  # of the training rows
        "dtype_policy": next(layer for layer in model.layers if layer.weights).dtype_policy.name,
        "devices": [device.name for device in tf.config.list_logical_devices()],
        "keras_version": keras.__version__, "tensorflow_version": tf.__version__,
    })
    return settings
