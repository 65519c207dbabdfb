"""Training: precision policy, the tf.data input pipeline with on-the-fly augmentation, fit, and saving.

One training path serves `train.py`, `retrain.py`, `dnn_train.py` and the semi-supervised scripts:
`fit` runs Keras's `model.fit` on a shuffled, augmented, prefetched `tf.data` pipeline and
returns the per-epoch history; `save_trained_model` writes the model named by its last validation
accuracy, its history and its settings, atomically and without replacing anything.
"""

import logging
import os
import sys
import time

from common import backend  # noqa: F401  (TensorFlow loads quietly, before Keras)
import h5py
import keras
import numpy as np
import tensorflow as tf

from common import files, models
from common.data import NUM_CLASSES

PRECISION_POLICIES = {"bf16": "mixed_bfloat16", "fp32": "float32"}
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def set_precision(precision):
    """Sets Keras's global dtype policy; call before building a model. `bf16` computes in bfloat16
    with float32 weights (the output softmax stays float32); `fp32` computes in float32."""
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[precision])


def compile_model(model, learning_rate):
    """Adam and categorical cross-entropy, as in the report."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])


def make_dataset(images, labels, model_input_shape, batch_size, augment="none", shuffle=False,
                 seed=0):
    """A tf.data pipeline of (pixels shaped for the model, one-hot labels) batches.

    `augment="report"`: random shift within 10% of the size in both directions (nearest-pixel fill)
    and a random horizontal flip, drawn anew for every batch.
    """
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))  # (48, 48) uint8, int64
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    augmenter = _make_augmenter(seed) if augment == "report" else None

    def prepare(batch_images, batch_labels):
        batch_images = tf.cast(batch_images, tf.float32)[..., tf.newaxis]  # (batch, 48, 48, 1)
        if augmenter is not None:
            batch_images = augmenter(batch_images, training=True)
        batch_images = tf.reshape(batch_images, (-1, *model_input_shape))  # flat for a DNN
        return batch_images, tf.one_hot(batch_labels, NUM_CLASSES)

    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def fit(model, train_set, val_set, epochs, batch_size, augment, seed, initial_epoch=0):
    """Trains `model` from `initial_epoch` up to `epochs` and returns the history rows of those epochs.

    Prints Keras's per-epoch lines and a closing summary (best and last validation accuracy, wall
    time, training images per second).
    """
    input_shape = tuple(model.input_shape[1:])
    train_data = make_dataset(train_set.images, train_set.labels, input_shape, batch_size, augment,
                              shuffle=True, seed=seed)
    val_data = make_dataset(val_set.images, val_set.labels, input_shape, batch_size)
    started = time.perf_counter()
    keras_history = model.fit(train_data, validation_data=val_data, epochs=epochs,
                              initial_epoch=initial_epoch, shuffle=False,
                              verbose=1 if sys.stdout.isatty() else 2)
    wall_seconds = time.perf_counter() - started
    metrics = keras_history.history
    rows = [[epoch, *(float(metrics[name][index]) for name in HISTORY_COLUMNS[1:])]
            for index, epoch in enumerate(range(initial_epoch + 1, epochs + 1))]
    val_accuracies = [row[-1] for row in rows]
    best_index = int(np.argmax(val_accuracies))
    images_per_second = len(train_set) * len(rows) / wall_seconds
    print(f"best val accuracy {val_accuracies[best_index]:.4f} (epoch {rows[best_index][0]}), "
          f"last {val_accuracies[-1]:.4f}; {wall_seconds:.0f} s for {len(rows)} epochs, "
          f"{images_per_second:.0f} training images/s")
    summary = {"wall_seconds": round(wall_seconds, 1),
               "training_images_per_second": round(images_per_second, 1),
               "best_val_accuracy": val_accuracies[best_index],
               "best_epoch": rows[best_index][0]}
    return rows, summary


def save_trained_model(model, out_dir, history_rows, settings, prefix=""):
    """Writes `<out_dir>/<prefix><last val acc>.h5` with `_history.csv` and `_settings.json` beside it.

    Returns the model's path. Never replaces an existing file: a `-1`, `-2`, ... suffix is added.
    """
    last_val_accuracy = history_rows[-1][-1]
    model_path = files.free_model_path(out_dir, files.model_stem(last_val_accuracy, prefix))
    return _save(model, model_path, history_rows, settings)


def _save(model, model_path, history_rows, settings):
    files.write_csv(files.history_path(model_path), HISTORY_COLUMNS, history_rows)
    files.write_json(files.settings_path(model_path), settings)
    with files.atomic_output(model_path) as temporary_path:
        absl_logger = logging.getLogger("absl")  # silences the "HDF5 is legacy" notice; .h5 is chosen
        level = absl_logger.level
        absl_logger.setLevel(logging.ERROR)
        try:
            model.save(temporary_path)  # `.h5`: Keras's legacy HDF5 format, optimizer state included
        finally:
            absl_logger.setLevel(level)
    return model_path


def train_new_model(build_model, train_set, val_set, options, prefix=""):
    """Seeds, sets the precision, builds, compiles, trains and saves a model; returns its path.

    `options` is the script's parsed arguments (see `cli.add_training_options`); all of them are
    saved in the settings file beside the model.
    """
    keras.utils.set_random_seed(options.seed)
    set_precision(options.precision)
    if options.strategy == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    with strategy.scope():
        model = build_model()
        compile_model(model, options.learning_rate)
    print(f"{model.name}: {model.count_params():,} parameters; {len(train_set)} training rows, "
          f"{len(val_set)} validation rows from {train_set.source}")
    rows, summary = fit(model, train_set, val_set, options.epochs, options.batch_size,
                        options.augment, options.seed)
    settings = run_settings(options, model, train_set, val_set, summary)
    return save_trained_model(model, options.out_dir, rows, settings, prefix)


def continue_training(model, model_path, train_set, val_set, options, first_epoch, last_epoch):
    """Trains a loaded model from `first_epoch` to `last_epoch` and saves it as
    `<val acc>_<old model name>` with the old history followed by the new epochs."""
    keras.utils.set_random_seed(options.seed)
    compile_model(model, options.learning_rate)
    restored = restore_optimizer_state(model, model_path)
    print(f"continuing {model_path} at epoch {first_epoch + 1}; "
          + ("Adam state restored" if restored else "no saved Adam state, starting a fresh one"))
    rows, summary = fit(model, train_set, val_set, last_epoch, options.batch_size, options.augment,
                        options.seed, initial_epoch=first_epoch)
    history = files.read_history(model_path) + rows
    settings = run_settings(options, model, train_set, val_set, summary)
    settings.update(epochs=last_epoch, continued_from=os.path.basename(model_path))
    old_stem = os.path.splitext(os.path.basename(model_path))[0]
    new_stem = files.model_stem(rows[-1][-1]) + "_" + old_stem
    model_path = files.free_model_path(options.out_dir, new_stem)
    return _save(model, model_path, history, settings)


def restore_optimizer_state(model, model_path):
    """Loads the Adam moments and step count saved in a `.h5` into the model's (fresh) optimizer.

    Returns False, leaving the fresh optimizer as it is, when the file holds no matching state.
    """
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    with h5py.File(model_path, "r") as handle:
        groups = list(handle.get("optimizer_weights", {}).values())
        if len(groups) != 1 or not isinstance(groups[0], h5py.Group):
            return False
        saved = groups[0]  # named after the saving optimizer ("adam"), which may differ from ours
        names = [variable.path.split("/", 1)[-1] for variable in optimizer.variables]
        if not all(name in saved for name in names):
            return False
        for variable, name in zip(optimizer.variables, names):
            variable.assign(saved[name][()])
    return True


def run_settings(options, model, train_set, val_set, summary):
    """Everything needed to say how a model was made: the options, data sizes, versions, timings."""
    settings = {name: value for name, value in vars(options).items() if not callable(value)}
    settings.update(summary)
    settings.update({
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "architecture": model.name,
        "trainable_parameters": models.trainable_parameter_count(model),
        "training_rows": len(train_set), "validation_rows": len(val_set),
        "dtype_policy": next(layer for layer in model.layers if layer.weights).dtype_policy.name,
        "devices": [device.name for device in tf.config.list_logical_devices()],
        "keras_version": keras.__version__, "tensorflow_version": tf.__version__,
    })
    return settings


def _make_augmenter(seed):
    return keras.Sequential([
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed),
        keras.layers.RandomFlip("horizontal", seed=seed),
    ], name="report_augmentation")
