"""The one prediction path: load a model safely, shape the input for it, predict class probabilities.

Every model this toolkit writes takes raw pixel values; the input is reshaped to whatever the
model's input layer declares ((48, 48, 1) for a CNN, (2304,) for a DNN), so any model works with
`test.py`, `dnn_test.py` and the ensemble script.
"""

import os

from common import backend  # noqa: F401  (TensorFlow loads quietly, before Keras)
import keras
import numpy as np
import tensorflow as tf

from common import files, models  # noqa: F401  (models registers its layers for loading)
from common.cli import UsageError
from common.data import IMAGE_SIZE, NUM_CLASSES, NUM_PIXELS

PREDICTION_BATCH_SIZE = 512


def load_model(path, compile=False):
    """Loads a Keras `.h5` model, or raises a UsageError that says why it cannot be used here."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such model file")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a folder, expected a .h5 model file")
    try:
        model = keras.models.load_model(path, compile=compile)
    except Exception as error:  # h5py, Keras and TensorFlow raise many kinds for a bad file
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise UsageError(f"{path}: not a readable Keras .h5 model ({reason})") from None
    input_shape = tuple(model.input_shape[1:])
    if int(np.prod(input_shape)) != NUM_PIXELS:
        raise UsageError(f"{path}: the model takes input of shape {input_shape}, expected "
                         f"{IMAGE_SIZE}x{IMAGE_SIZE} = {NUM_PIXELS} pixels")
    if tuple(model.output_shape[1:]) != (NUM_CLASSES,):
        raise UsageError(f"{path}: the model outputs shape {tuple(model.output_shape[1:])}, "
                         f"expected {NUM_CLASSES} class probabilities")
    return model


def with_precision(model, precision):
    """`model` computing in `precision`: "saved" (as it was saved: the model itself), "fp32" (a
    float32 copy, for gradients and tiny input changes, where bfloat16's 8-bit mantissa would round
    the effect away) or "bf16" (a mixed-bfloat16 copy: about twice as fast on CPUs with AVX-512 BF16;
    a float32 model's labels may change where two classes are nearly tied). The output layer of a
    copy always computes in float32."""
    if precision == "saved":
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer" and layer["name"] != model.layers[-1].name:
            layer["config"]["dtype"] = "float32" if precision == "fp32" else "mixed_bfloat16"
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


TTA_SHIFTS = ((0, 0), (0, 2), (0, -2), (2, 0), (-2, 0))  # (down, right) pixels of each view


def predict_probabilities(model, images, batch_size=PREDICTION_BATCH_SIZE, tta=False):
    """Class probabilities (rows, 7) for images (rows, 48, 48) of pixel values 0..255.

    `tta=True` averages the probabilities of 10 views of each image: the image and its horizontal
    mirror, each as it is and shifted by 2 pixels right, left, down and up (edges repeated).
    """
    input_shape = tuple(model.input_shape[1:])
    predict_batch = _compiled_forward_pass(model, input_shape)
    probabilities = np.empty((len(images), NUM_CLASSES), dtype=np.float32)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].astype(np.float32)  # (batch, 48, 48)
        views = tta_views(batch) if tta else [batch]
        view_probabilities = [predict_batch(view.reshape(-1, *input_shape)) for view in views]
        probabilities[start:start + len(batch)] = np.mean(view_probabilities, axis=0)
    return probabilities


def tta_views(images):
    """The test-time views of images (batch, height, width): each of TTA_SHIFTS applied to the images
    and to their mirrors."""
    padding = max(max(abs(down), abs(right)) for down, right in TTA_SHIFTS)
    height, width = images.shape[1:]
    views = []
    for oriented in (images, images[:, :, ::-1]):
        padded = np.pad(oriented, ((0, 0), (padding, padding), (padding, padding)), mode="edge")
        for down, right in TTA_SHIFTS:  # content moves down/right: the window moves up/left
            top, left = padding - down, padding - right
            views.append(padded[:, top:top + height, left:left + width])
    return views


def write_predictions(result_path, ids, labels):
    """Writes `id,label` rows in id order, atomically; returns the path (suffixed if it existed)."""
    order = np.argsort(ids, kind="stable")
    result_path = files.free_path(result_path)
    files.write_csv(result_path, ("id", "label"), zip(ids[order].tolist(), labels[order].tolist()))
    return result_path


def _compiled_forward_pass(model, input_shape):
    """A graph-compiled `model(x, training=False)` returning NumPy float32 probabilities."""
    # traced once, here, for any batch size: calls then run the graph without retracing checks
    forward = tf.function(lambda batch: model(batch, training=False)).get_concrete_function(
        tf.TensorSpec((None, *input_shape), tf.float32))
    return lambda batch: forward(tf.constant(batch)).numpy().astype(np.float32)
