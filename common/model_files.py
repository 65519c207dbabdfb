"""Model files: loading one safely, saving one that plain Keras opens, and the state kept in it.

Every model this toolkit writes is a Keras HDF5 file (`.h5`) with Keras's own layers only: batch
normalisation trains as `models.FusedBatchNormalization` (a speed-up) and is written as Keras's
`BatchNormalization` holding the same weights (`with_batch_norm`). Beside the weights a file may hold
the optimizer state, the last epoch's weights when another epoch's are kept (`retrain.py` continues
from those), and its class names (`common.classes`). Loading is Keras's safe mode: no Lambda layers,
no code.
"""

import logging
import os

from common import backend  # noqa: F401  (TensorFlow loads quietly, before Keras)
import h5py
import keras

from common import classes, files, models  # noqa: F401  (models registers its layers for loading)
from common.config import IMAGE_SIZE, NUM_PIXELS, PRECISION_POLICIES
from common.errors import UsageError


def load_model(path, compile=False):
    """Loads a Keras model file (`.h5` or `.keras`) in Keras's safe mode, or raises a UsageError that
    says why it cannot be used here."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such model file")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a folder, expected a .h5 or .keras model file")
    try:
        model = keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # h5py, Keras and TensorFlow raise many kinds for a bad file
        raise UsageError(f"{path}: {_load_failure(error)}") from None
    check_model_shapes(model, path)
    return model


def _load_failure(error, longest=150):
    """Why Keras could not load a model file, in one short line, with what the user can do."""
    text = " ".join(str(error).split())
    if "Lambda" in text or "safe_mode" in text:
        return ("holds a Lambda layer (Python code), which this toolkit does not run; save the model "
                "without Lambda layers")
    first = text.split(". ")[0] or type(error).__name__
    if len(first) > longest:
        first = first[:longest - 3] + "..."
    return f"not a usable Keras model file ({first}); expected a .h5 or .keras file saved by Keras 3"


def check_model_shapes(model, path):
    """Refuses a model whose input cannot be fed a grey face or whose output is not one probability
    per class."""
    input_shape = tuple(model.input_shape[1:])
    flat = input_shape == (NUM_PIXELS,)
    image = len(input_shape) == 3 and input_shape[2] in (1, 3)
    if not (flat or image):
        raise UsageError(f"{path}: the model takes input of shape {input_shape}, expected an image "
                         f"(height, width, 1 or 3 channels) or {NUM_PIXELS} = {IMAGE_SIZE}x{IMAGE_SIZE} "
                         f"flat pixels")
    output_shape = tuple(model.output_shape[1:])
    if len(output_shape) != 1 or not output_shape[0] or output_shape[0] < 2:
        raise UsageError(f"{path}: the model outputs shape {output_shape}, expected one probability per "
                         f"class (two or more)")


def with_precision(model, precision):
    """`model` computing in `precision`: "saved" (as it was saved: the model itself), "fp32" (a
    float32 copy, for gradients and tiny input changes, where bfloat16's 8-bit mantissa would round
    the effect away) or "bf16" (a mixed-bfloat16 copy: about twice as fast on CPUs with AVX-512 BF16;
    a float32 model's labels may change where two classes are nearly tied). The output layer of a
    copy always computes in float32; the model itself is returned when it already computes as asked."""
    inner_layers = [layer for layer in model.layers[:-1] if not isinstance(layer, keras.layers.InputLayer)]
    if precision == "saved" or all(layer.dtype_policy.name == PRECISION_POLICIES[precision] for layer in inner_layers):
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer" and layer["config"]["name"] != model.layers[-1].name:
            layer["config"]["dtype"] = PRECISION_POLICIES[precision]
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy


BATCH_NORM_CLASSES = {True: "FusedBatchNormalization", False: "BatchNormalization"}


def with_batch_norm(model, fused):
    """`model` with its batch normalisation computed by `FusedBatchNormalization` (`fused=True`, the
    training speed-up) or by Keras's own `BatchNormalization` (`fused=False`, what files on disk
    hold so that plain Keras opens them). The weights are shared values, copied; the model itself is
    returned when it already is as asked."""
    config = model.get_config()
    wanted = BATCH_NORM_CLASSES[fused]
    changed = False
    for layer in config["layers"]:
        if layer["class_name"] in BATCH_NORM_CLASSES.values() and layer["class_name"] != wanted:
            layer["class_name"] = wanted
            layer["module"] = "common.models" if fused else "keras.layers"
            layer["registered_name"] = "fer>FusedBatchNormalization" if fused else None
            changed = True
    if not changed:
        return model
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


LAST_EPOCH_WEIGHTS = "last_epoch_weights"  # an HDF5 group plain Keras ignores


def save_portable_model(model, model_path, include_optimizer=True, last_weights=None, class_names=None):
    """Writes `model` to a new `.h5` file (Keras's HDF5 format) that plain Keras opens: its batch
    normalisation as Keras's own layer, the optimizer state included unless asked not to, and its
    `class_names` (`classes.store_class_names`) when given. When the
    model holds a kept epoch's weights, `last_weights` (the last epoch's, which the optimizer state
    belongs to) go beside them, so that `retrain.py` continues from a consistent state."""
    portable = with_batch_norm(model, fused=False)
    if include_optimizer and portable is not model and getattr(model, "optimizer", None):
        portable.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])
    with files.atomic_output(model_path) as temporary_path:
        absl_logger = logging.getLogger("absl")  # silences the "HDF5 is legacy" notice; .h5 is chosen
        level = absl_logger.level
        absl_logger.setLevel(logging.ERROR)
        try:
            portable.save(temporary_path, include_optimizer=include_optimizer)
        finally:
            absl_logger.setLevel(level)
        if class_names is not None:
            classes.store_class_names(temporary_path, class_names)
        if last_weights is not None and include_optimizer:
            with h5py.File(temporary_path, "a") as handle:
                group = handle.create_group(LAST_EPOCH_WEIGHTS)
                for index, weight in enumerate(last_weights):
                    group.create_dataset(str(index), data=weight)


def read_last_epoch_weights(model_path):
    """The last epoch's weights saved beside a model's kept ones, or None."""
    with h5py.File(model_path, "r") as handle:
        group = handle.get(LAST_EPOCH_WEIGHTS)
        return None if group is None else [group[str(index)][()] for index in range(len(group))]


def restore_optimizer_state(model, model_path):
    """Loads the optimizer moments and step count saved in a `.h5` into the model's (fresh) optimizer.

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
