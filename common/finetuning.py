"""Fine-tuning: a run that starts from a trained model instead of fresh weights (`train.py --init`).

The model file is loaded as it was saved, recast to the run's precision and given the fast batch
normalisation for training; `freeze` first layers with weights (or every layer up to and including
`freeze_until`) keep their weights (their batch normalisation in inference mode). When the data's
classes are not the model's (`common.classes`), the last layer with weights (the classifier) is
replaced by a fresh one with one output per class of the data; `new_head` draws fresh weights for it
also when the classes are the same, for classes that mean something else than the model's.

A fresh last layer starts (`head_init="fit"`) as a multinomial logistic regression of the training
labels on the features that feed it - the model's own features of the training faces - so that
fine-tuning begins from a classifier that already fits them (linear probing, then fine-tuning);
`head_init="random"` leaves Glorot-uniform weights.
"""

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression

from common import classes, model_files
from common.errors import BadValue


def weighted_layers(model):
    """The model's layers that hold weights, in order."""
    return [layer for layer in model.layers if layer.weights]


def freeze_layers(model, freeze=0, freeze_until=None):
    """Makes the first `freeze` weighted layers, or every layer up to and including the one named
    `freeze_until`, untrainable; returns the number of layers frozen."""
    if freeze_until is not None:
        names = [layer.name for layer in model.layers]
        if freeze_until not in names:
            raise BadValue(f"the model has no layer {freeze_until!r}; its weighted layers are "
                           f"{', '.join(layer.name for layer in weighted_layers(model))}")
        frozen = model.layers[:names.index(freeze_until) + 1]
    else:
        candidates = weighted_layers(model)
        if freeze >= len(candidates):
            raise BadValue(f"the model has {len(candidates)} layers with weights; freeze fewer so that "
                           f"some still learn")
        frozen = candidates[:freeze]
    for layer in frozen:
        layer.trainable = False
    return len(frozen)


def new_head(model, seed=0):
    """Fresh weights (Glorot-uniform kernel, zero bias) for the last layer with weights."""
    head = weighted_layers(model)[-1]
    initialiser = keras.initializers.GlorotUniform(seed=seed)
    for weight in head.weights:
        fresh = initialiser(weight.shape) if "kernel" in weight.path else keras.ops.zeros(weight.shape)
        weight.assign(keras.ops.cast(fresh, weight.dtype))


def replace_head(model, class_count, seed=0):
    """The model with its last layer with weights (a Dense layer) replaced by a fresh one of
    `class_count` outputs; the layers after it (the softmax) are applied as before."""
    head = weighted_layers(model)[-1]
    if not isinstance(head, keras.layers.Dense):
        raise BadValue(f"the model's last layer with weights, {head.name!r}, is a {type(head).__name__}; "
                       f"a new head for other classes replaces a Dense layer")
    x = keras.layers.Dense(class_count, name=head.name, dtype=head.dtype_policy,
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(head.input)
    for layer in model.layers[model.layers.index(head) + 1:]:  # (batch, classes) through the softmax
        x = layer(x)
    return keras.Model(model.inputs, x, name=model.name)


def fit_head(model, images, labels, batch_size=256):
    """Sets the last layer's weights to a multinomial logistic regression (scikit-learn, L2, C=1) of
    `labels` on the features that feed it, computed for `images` (rows, 48, 48) uint8 in inference
    mode. A class absent from `labels` keeps its weights."""
    head = weighted_layers(model)[-1]
    feature_model = keras.Model(model.inputs, head.input)
    inputs = images.astype(np.float32).reshape(-1, *model.input_shape[1:])  # raw pixels, as the model takes
    features = np.asarray(feature_model.predict(inputs, batch_size=batch_size, verbose=0), np.float32)
    regression = LogisticRegression(C=1.0, max_iter=2000).fit(features, labels)
    kernel, bias = (np.array(weight) for weight in head.get_weights())
    coefficients, intercepts = regression.coef_, regression.intercept_
    if len(regression.classes_) == 2:  # one logit z for the second class: softmax of (-z/2, z/2)
        coefficients = np.concatenate([-coefficients / 2, coefficients / 2])
        intercepts = np.concatenate([-intercepts / 2, intercepts / 2])
    kernel[:, regression.classes_] = coefficients.T
    bias[regression.classes_] = intercepts
    head.set_weights([kernel, bias])


def builder(init_path, class_names, precision, freeze=0, freeze_until=None, fresh_head=False, seed=0,
            head_init="fit", head_rows=None):
    """A function building the model to fine-tune from `init_path` for `class_names` (see the
    module's text): the last layer is replaced when the model's classes are others; a fresh one is
    fitted to `head_rows` (images, labels) with `head_init="fit"`."""

    def build(num_classes):
        model = model_files.load_model(init_path)
        model_classes = classes.model_class_names(init_path, model.output_shape[-1])
        model = model_files.with_batch_norm(model_files.with_precision(model, precision), fused=True)
        fresh = fresh_head or not classes.same(model_classes, class_names)
        if not classes.same(model_classes, class_names):
            model = replace_head(model, num_classes, seed)
        elif fresh_head:
            new_head(model, seed)
        if fresh and head_init == "fit":
            fit_head(model, *head_rows)
        freeze_layers(model, freeze, freeze_until)
        return model

    return build


def describe(init_path, class_names, freeze=0, freeze_until=None, fresh_head=False, head_init="fit"):
    """Checks the freezing options against the model (a BadValue when they do not fit it) and says
    in one line what the run starts from."""
    model = model_files.load_model(init_path)
    model_classes = classes.model_class_names(init_path, model.output_shape[-1])
    frozen = freeze_layers(model, freeze, freeze_until)
    fitted = " fitted to the training faces' features" if head_init == "fit" else ""
    if not classes.same(model_classes, class_names):
        head = (f", a new last layer{fitted} for {len(class_names)} classes (the model's: "
                f"{', '.join(model_classes)})")
    else:
        head = f", a new last layer{fitted}" if fresh_head else ""
    return f"fine-tuning {init_path}: {frozen} layers frozen{head}"
