"""Looking inside a model: confusion statistics, saliency maps, Grad-CAM, filter visualisation.

Gradients come from `tf.GradientTape`, batched over images. Models take raw pixel values 0..255, so
"one grey level" is a step of 1 in the input.
"""

import dataclasses

from common import backend  # noqa: F401  (TensorFlow loads quietly, before Keras)
import keras
import numpy as np
import tensorflow as tf
from sklearn import metrics

from common import prediction
from common.errors import BadValue, UsageError
from common.data import IMAGE_SIZE



def confusion_matrix(labels, predictions, num_classes):
    """Counts (true class, predicted class): rows are true classes, columns predictions."""
    return metrics.confusion_matrix(labels, predictions, labels=np.arange(num_classes))


def labelled_report(labels, predictions, class_names):
    """Accuracy, then scikit-learn's per-class precision, recall and F1, as text."""
    report = metrics.classification_report(labels, predictions, labels=np.arange(len(class_names)),
                                           target_names=class_names, digits=4, zero_division=0)
    return f"accuracy {np.mean(labels == predictions):.4f} on {len(labels)} labelled faces\n{report}"


def most_confused_pairs(counts, limit=5):
    """The largest off-diagonal cells as (true, predicted, count), largest first."""
    off_diagonal = counts * (1 - np.eye(len(counts), dtype=np.int64))
    order = np.argsort(off_diagonal, axis=None, kind="stable")[::-1][:limit]
    pairs = [(int(true), int(predicted), int(off_diagonal[true, predicted]))
             for true, predicted in zip(*np.unravel_index(order, counts.shape))]
    return [pair for pair in pairs if pair[2] > 0]


def recall_and_precision(counts):
    """Per class recall (of the true row) and precision (of the predicted column) of a confusion
    matrix; a class without rows or predictions gets 0."""
    correct = np.diag(counts)
    return correct / np.maximum(counts.sum(axis=1), 1), correct / np.maximum(counts.sum(axis=0), 1)


def confusion_report(counts, class_names):
    """The report's table as text: per class recall ("recognition", of the true row) and precision
    ("prediction", of the predicted column), overall accuracy and the most confused pairs."""
    recall, precision = recall_and_precision(counts)
    width = max(10, max(map(len, class_names)) + 1)
    lines = [f"{'class':<{width}}{'rows':>6}{'recognition':>13}{'prediction':>12}"]
    for index, name in enumerate(class_names):
        lines.append(f"{name:<{width}}{counts[index].sum():>6}{recall[index]:>13.1%}{precision[index]:>12.1%}")
    lines.append(f"overall accuracy {np.trace(counts) / max(counts.sum(), 1):.4f} on {counts.sum()} rows")
    pairs = most_confused_pairs(counts)
    lines.append("most confused (true -> predicted, count): " + "; ".join(
        f"{class_names[true]} -> {class_names[predicted]} {count}" for true, predicted, count in pairs))
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """How far a classifier's top probability is from how often it is right, over confidence bins."""
    bin_edges: np.ndarray  # (bins + 1,) from 0 to 1
    counts: np.ndarray  # (bins,) faces whose top probability falls in each bin
    confidence: np.ndarray  # (bins,) their mean top probability (nan for an empty bin)
    accuracy: np.ndarray  # (bins,) how many of them are labelled right (nan for an empty bin)
    mean_confidence: float
    overall_accuracy: float
    expected_error: float  # the count-weighted mean of |accuracy - confidence| over the bins


def calibration(probabilities, labels, bins=10):
    """The Calibration of `probabilities` (faces, classes) against the true `labels`, in `bins` equal
    bins of the top probability."""
    top = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(top, edges[1:-1], right=True), 0, bins - 1)  # (faces,) bin of each
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        confidence = np.bincount(which, weights=top, minlength=bins) / counts
        accuracy = np.bincount(which, weights=correct, minlength=bins) / counts
    filled = counts > 0
    gap = np.abs(accuracy[filled] - confidence[filled])
    return Calibration(edges, counts, confidence, accuracy, float(top.mean()), float(correct.mean()),
                       float(np.sum(gap * counts[filled]) / len(top)))


def calibration_sentence(found):
    """`mean top probability 72.7% against 69.2% accuracy (expected calibration error 4.7 points, 10
    bins)`."""
    return (f"mean top probability {found.mean_confidence:.1%} against {found.overall_accuracy:.1%} accuracy "
            f"(expected calibration error {100 * found.expected_error:.1f} points, "
            f"{len(found.counts)} bins)")


def saliency(model, images, labels, method="gradient", batch_size=64):
    """Per-pixel importance maps (rows, 48, 48) for uint8 faces and their true labels.

    `gradient`: |d loss / d pixel|. `perturb` (the report's): the squared change of the loss when
    one pixel is raised by one grey level, each pixel in turn, evaluated in batches. `gradcam`:
    Grad-CAM of the predicted class on the last convolution layer, resized to 48x48.
    """
    if method == "gradient":
        return _loss_gradient_saliency(model, images, labels)
    if method == "perturb":
        return np.stack([_perturbation_saliency(model, image, label, batch_size * 8)
                         for image, label in zip(images, labels)])
    return grad_cam(model, images)


def grad_cam(model, images, layer_name=None):
    """Grad-CAM maps (rows, 48, 48) in 0..1 for the predicted class of each face.

    The feature maps are those of the convolution layer after its batch normalisation and
    activation, when they follow it. The score is the class logit (the input of a final softmax layer) rather than the probability,
    whose gradient vanishes when the model is sure.
    """
    layer = conv_layer(model, layer_name or last_conv_layer_name(model))
    following = model.layers[model.layers.index(layer) + 1:]
    for next_layer in following:  # take the feature map after its batch norm and activation
        if not isinstance(next_layer, (keras.layers.BatchNormalization, keras.layers.Activation)):
            break
        layer = next_layer
    last = model.layers[-1]
    scores = last.input if isinstance(last, keras.layers.Activation) else model.output
    inner = keras.Model(model.input, [layer.output, scores])
    pixels = tf.constant(_model_input(model, images))
    with tf.GradientTape() as tape:
        activations, class_scores = inner(pixels, training=False)
        activations = tf.cast(activations, tf.float32)  # (rows, h, w, filters)
        class_scores = tf.cast(class_scores, tf.float32)  # (rows, 7)
        predicted = tf.argmax(class_scores, axis=1)
        score = tf.reduce_sum(tf.gather(class_scores, predicted, axis=1, batch_dims=1))
    gradients = tape.gradient(score, activations)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)  # (rows, 1, 1, filters)
    cam = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1))[..., tf.newaxis]
    cam = tf.image.resize(cam, images.shape[1:3])[..., 0].numpy()  # (rows, 48, 48)
    return cam / np.maximum(cam.max(axis=(1, 2), keepdims=True), 1e-12)


def conv_layer_names(model):
    """Names of the model's convolution layers, first to last; a UsageError when it has none."""
    names = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if not names:
        raise UsageError(f"model '{model.name}' has no convolution layer (a DNN?); Grad-CAM and "
                         f"filter visualisation need a CNN")
    return names


def last_conv_layer_name(model):
    return conv_layer_names(model)[-1]


def conv_layer(model, name):
    """The convolution layer called `name`; a BadValue lists the model's convolution layers."""
    names = conv_layer_names(model)
    if name not in names:
        raise BadValue("no such convolution layer; this model has " + ", ".join(names))
    return model.get_layer(name)


def filter_ascent(model, layer_name, filters, steps=100, step_size=2.0, seed=0):
    """Images that maximise the mean activation of each of the first `filters` filters of a layer.

    Starts from mid-grey with small noise and follows the gradient normalised to unit RMS, all
    filters at once as a batch. Returns (images (filters, 48, 48) in 0..255, final activations,
    starting activations).
    """
    layer = conv_layer(model, layer_name)
    filters = min(filters, layer.filters)
    inner = keras.Model(model.input, layer.output)
    rng = np.random.default_rng(seed)
    pixels = tf.Variable(128 + rng.normal(0, 8, size=(filters, *model.input_shape[1:]))
                         .astype(np.float32))
    chosen = tf.one_hot(tf.range(filters), layer.filters)  # (filters, layer filters)

    def mean_activations():
        activations = tf.cast(inner(pixels, training=False), tf.float32)  # (filters, h, w, all)
        return tf.reduce_sum(tf.reduce_mean(activations, axis=(1, 2)) * chosen, axis=1)

    start = mean_activations().numpy()
    for _ in range(steps):
        with tf.GradientTape() as tape:
            objective = tf.reduce_sum(mean_activations())
        gradients = tape.gradient(objective, pixels)
        rms = tf.sqrt(tf.reduce_mean(tf.square(gradients), axis=(1, 2, 3), keepdims=True)) + 1e-8
        pixels.assign(tf.clip_by_value(pixels + step_size * gradients / rms, 0.0, 255.0))
    final = mean_activations().numpy()
    return pixels.numpy().reshape(filters, IMAGE_SIZE, IMAGE_SIZE), final, start


def activation_maps(model, layer_name, images):
    """The layer's activations (rows, h, w, filters) for uint8 faces."""
    inner = keras.Model(model.input, conv_layer(model, layer_name).output)
    return np.asarray(inner(_model_input(model, images), training=False), dtype=np.float32)


def _model_input(model, images):
    return images.astype(np.float32).reshape(-1, *model.input_shape[1:])


def _loss_gradient_saliency(model, images, labels):
    pixels = tf.constant(_model_input(model, images))
    targets = tf.one_hot(labels, model.output_shape[-1])
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        loss = keras.losses.categorical_crossentropy(targets, model(pixels, training=False))
    gradients = tape.gradient(loss, pixels).numpy()  # one image's loss depends on its own pixels only
    return np.abs(gradients).reshape(len(images), *images.shape[1:])


def _perturbation_saliency(model, image, label, batch_size):
    """(loss(image + one grey level at pixel p) - loss(image))^2 for every pixel p of one image."""
    flat = image.astype(np.float32).ravel()  # (2304,)

    def losses(batch):  # (n, 2304) -> (n,)
        probabilities = prediction.predict_probabilities(model, batch.reshape(-1, *image.shape),
                                                         batch_size=batch_size)
        return -np.log(np.clip(probabilities[:, label], 1e-7, 1.0))

    base = losses(flat[np.newaxis])[0]
    changes = np.empty(flat.size, dtype=np.float64)
    for start in range(0, flat.size, batch_size):
        pixels = np.arange(start, min(start + batch_size, flat.size))
        batch = np.repeat(flat[np.newaxis], len(pixels), axis=0)  # (n, 2304)
        batch[np.arange(len(pixels)), pixels] += 1.0
        changes[pixels] = losses(batch)
    return ((changes - base) ** 2).reshape(image.shape)
