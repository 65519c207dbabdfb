"""The one prediction path: load a model safely, shape the input for it, predict class probabilities.

Faces arrive as (rows, 48, 48) pixel values 0..255. Every model this toolkit writes takes raw pixel
values shaped as its input layer declares ((48, 48, 1) for a CNN, (2304,) for a DNN). A 7-class
Keras classifier from elsewhere works too: its input may be another size (faces are resized to it,
bilinear) or have 3 channels (the grey face repeated), and `pixel_scale` says which pixel values it
expects: "raw" 0..255, "unit" 0..1 or "symmetric" -1..1.
"""

import dataclasses
import os

from common import backend  # noqa: F401  (TensorFlow loads quietly, before Keras)
import keras
import numpy as np
import tensorflow as tf

from common import classes, ensemble, files, models  # noqa: F401  (models registers its layers for loading)
from common.cli import UsageError
from common.data import IMAGE_SIZE, NUM_PIXELS

PIXEL_SCALES = {"raw": (1.0, 0.0), "unit": (1.0 / 255, 0.0), "symmetric": (2.0 / 255, -1.0)}


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
    copy always computes in float32."""
    if precision == "saved":
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer" and layer["config"]["name"] != model.layers[-1].name:
            layer["config"]["dtype"] = "float32" if precision == "fp32" else "mixed_bfloat16"
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy


TTA_SHIFTS = ((0, 0), (0, 2), (0, -2), (2, 0), (-2, 0))  # (down, right) pixels of each view


def predict_probabilities(model, images, batch_size=512, tta=False, pixel_scale="raw"):
    """Class probabilities (rows, classes) for images (rows, 48, 48) of pixel values 0..255.

    `tta=True` averages the probabilities of 10 views of each image: the image and its horizontal
    mirror, each as it is and shifted by 2 pixels right, left, down and up (edges repeated).
    """
    return ModelPredictor(model, pixel_scale).probabilities(images, batch_size, tta)


class ModelPredictor:
    """One model's forward pass, traced once, fed faces of any count; `class_names` are the model's
    (`classes.model_class_names`; None: by its output count, `classes.default_class_names`)."""

    def __init__(self, model, pixel_scale="raw", class_names=None):
        self.model = model
        self.class_names = class_names or classes.default_class_names(model.output_shape[-1])
        self.forward = _compiled_forward_pass(model, pixel_scale)

    def probabilities(self, images, batch_size=512, tta=False):
        """Class probabilities (rows, classes) for images (rows, 48, 48) of pixel values 0..255."""
        probabilities = np.empty((len(images), len(self.class_names)), dtype=np.float32)
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].astype(np.float32)  # (batch, 48, 48)
            views = tta_views(batch) if tta else [batch]
            probabilities[start:start + len(batch)] = np.mean([self.forward(view) for view in views],
                                                              axis=0)
        return probabilities


@dataclasses.dataclass
class Classifier:
    """One model or a weighted list of models behind one call: the weighted average of their
    probabilities (a single model's own probabilities)."""

    predictors: list
    weights: list
    name: str

    @property
    def class_names(self):
        return self.predictors[0].class_names

    def probabilities(self, images, batch_size=512, tta=False):
        total = sum(self.weights)
        return sum(weight / total * predictor.probabilities(images, batch_size, tta)
                   for predictor, weight in zip(self.predictors, self.weights))


def load_classifier(path, precision="saved", pixel_scale="raw"):
    """A Classifier from a model file, or from a model list (`WEIGHT PATH [pixel-scale=...]` lines,
    see `common.ensemble`); every model is loaded and checked before any predicts."""
    listed = ensemble.check_model_source(path)
    predictors = []
    for item in listed:
        try:
            model = with_precision(load_model(item.path), precision)
            class_names = classes.model_class_names(item.path, model.output_shape[-1])
        except UsageError as error:
            if item.line_number:
                raise UsageError(f"{path}: line {item.line_number}: {error}") from None
            raise
        predictors.append(ModelPredictor(model, item.pixel_scale or pixel_scale, class_names))
        if not classes.same(predictors[0].class_names, predictors[-1].class_names):
            raise UsageError(f"{path}: line {item.line_number}: {item.path} has the classes "
                             f"{', '.join(predictors[-1].class_names)}, the list's first model "
                             f"{', '.join(predictors[0].class_names)}; a list's models must agree")
    return Classifier(predictors, [item.weight for item in listed], path)


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
    """Writes `id,label` rows in id order (gzipped for a `.gz` path) to the path the user named,
    replacing an existing file atomically and saying so on stderr; returns the path."""
    order = np.argsort(ids, kind="stable")
    files.write_csv(result_path, ("id", "label"), zip(ids[order].tolist(), labels[order].tolist()),
                    named=True)
    return result_path


def _compiled_forward_pass(model, pixel_scale="raw"):
    """A graph-compiled `model(faces shaped for it, training=False)` taking (batch, 48, 48) float32
    pixels 0..255 and returning NumPy float32 probabilities."""
    input_shape = tuple(model.input_shape[1:])
    multiplier, offset = PIXEL_SCALES[pixel_scale]

    def shape_for_model(faces):  # (batch, 48, 48) -> (batch, *input_shape)
        if len(input_shape) == 1:
            return tf.reshape(faces, (-1, NUM_PIXELS)) * multiplier + offset
        height, width, channels = input_shape
        height, width = height or IMAGE_SIZE, width or IMAGE_SIZE  # None: any size, fed 48x48
        faces = faces[..., tf.newaxis]  # (batch, 48, 48, 1)
        if (height, width) != (IMAGE_SIZE, IMAGE_SIZE):
            faces = tf.image.resize(faces, (height, width), method="bilinear")
        if channels == 3:
            faces = tf.tile(faces, (1, 1, 1, 3))
        return faces * multiplier + offset

    # traced once, here, for any batch size: calls then run the graph without retracing checks
    forward = tf.function(lambda faces: model(shape_for_model(faces), training=False)).get_concrete_function(
        tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE), tf.float32))
    return lambda faces: forward(tf.constant(faces)).numpy().astype(np.float32)
