"""The one prediction path: shape faces for a model (loaded by `common.model_files`), predict class
probabilities, and combine several models' (`Vote`, `Classifier`).

Faces arrive as (rows, 48, 48) pixel values 0..255. Every model this toolkit writes takes raw pixel
values shaped as its input layer declares ((48, 48, 1) for a CNN, (2304,) for a DNN) and gives one
probability per class of its own (`common.classes`). A Keras classifier from elsewhere works too: its
input may be another size (faces are resized to it, bilinear) or have 3 channels (the grey face
repeated), and `pixel_scale` says which pixel values it expects: "raw" 0..255, "unit" 0..1 or
"symmetric" -1..1 (`config.PIXEL_SCALES`).
"""

import dataclasses

from common import backend  # noqa: F401  (TensorFlow loads quietly, before Keras)
import numpy as np
import tensorflow as tf

from common import augmentation, classes, files, model_files, model_lists
from common.config import IMAGE_SIZE, NUM_PIXELS, PIXEL_SCALES
from common.errors import UsageError

TTA_ZOOMS = (0.9, 0.95, 1.0, 1.05, 1.1)  # zoom factors of the test-time views (>1: closer)


def predict_probabilities(model, images, batch_size=512, tta=False, pixel_scale="raw"):
    """Class probabilities (rows, classes) for images (rows, 48, 48) of pixel values 0..255.

    `tta=True` averages the probabilities of 10 views of each image: the image and its horizontal
    mirror, each at the zooms `TTA_ZOOMS` about its centre (`tta_views`).
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


class Vote:
    """Accumulates weighted votes and weighted probabilities, one model at a time: the one way the
    toolkit combines models (`Classifier`, `test_by_vote.py`)."""

    def __init__(self, rows, num_classes):
        self.votes = np.zeros((rows, num_classes))
        self.probability_sum = np.zeros((rows, num_classes))
        self.total_weight = np.zeros(rows)

    def add(self, probabilities, weight, rows=None):
        """Adds one model's (rows, classes) probabilities with its weight, to the `rows` (indices)
        they are of, or to every row."""
        rows = np.arange(len(self.votes)) if rows is None else np.asarray(rows)
        self.votes[rows, probabilities.argmax(axis=1)] += weight
        self.probability_sum[rows] += weight * probabilities
        self.total_weight[rows] += weight

    def hard_labels(self):
        """Each row's class with the largest summed weight of votes; a tie goes to the tied class
        with the larger weighted probability sum."""
        tied = self.votes >= self.votes.max(axis=1, keepdims=True) - 1e-12
        return np.where(tied, self.probability_sum, -np.inf).argmax(axis=1)

    def soft_probabilities(self):
        """The weighted average of the models' probabilities."""
        return self.probability_sum / self.total_weight[:, None]

    def labels(self, soft):
        return self.soft_probabilities().argmax(axis=1) if soft else self.hard_labels()


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
        combined = Vote(len(images), len(self.class_names))
        for predictor, weight in zip(self.predictors, self.weights):
            combined.add(predictor.probabilities(images, batch_size, tta), weight)
        return combined.soft_probabilities().astype(np.float32)


def load_classifier(source, precision="saved", pixel_scale="raw"):
    """A Classifier from a model file or a model list (`WEIGHT PATH [pixel-scale=...]` lines, see
    `common.model_lists`), or from the list's models as `check_model_source` gave them; every model
    is loaded and checked before any predicts."""
    listed = model_lists.check_model_source(source) if isinstance(source, str) else source
    path = source if isinstance(source, str) else "the model list"
    predictors = []
    for item in listed:
        try:
            model = model_files.with_precision(model_files.load_model(item.path), precision)
            class_names = classes.model_class_names(item.path, model.output_shape[-1])
        except UsageError as error:
            raise model_lists.error_at_line(path, item, error) from None
        predictors.append(ModelPredictor(model, item.pixel_scale or pixel_scale, class_names))
        if not classes.same(predictors[0].class_names, predictors[-1].class_names):
            raise UsageError(f"{path}: line {item.line_number}: {item.path} has the classes "
                             f"{', '.join(predictors[-1].class_names)}, the list's first model "
                             f"{', '.join(predictors[0].class_names)}; a list's models must agree")
    return Classifier(predictors, [item.weight for item in listed], path)


def tta_views(images, zooms=TTA_ZOOMS):
    """The test-time views of images (batch, height, width): each of `zooms` (>1: closer) applied
    about the centre to the images and to their mirrors, as the training warps zoom
    (`augmentation.zoomed`: bilinear, edges repeated)."""
    views = []
    for oriented in (images, images[:, :, ::-1]):
        channelled = tf.convert_to_tensor(oriented[..., np.newaxis], dtype=tf.float32)  # (batch, h, w, 1)
        for zoom in zooms:
            views.append(oriented if zoom == 1 else augmentation.zoomed(channelled, zoom).numpy()[..., 0])
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
