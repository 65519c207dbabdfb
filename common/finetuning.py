"""Fine-tuning: a run that starts from a trained model instead of fresh weights (`train.py --init`).

The model file is loaded as it was saved, recast to the run's precision and given the fast batch
normalisation for training; `freeze` first layers with weights (or every layer up to and including
`freeze_until`) keep their weights (their batch normalisation in inference mode), and `new_head`
draws fresh weights for the last layer with weights (the classifier), for classes that mean
something else than the model's.
"""

import keras

from common import models, prediction
from common.cli import BadValue


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


def builder(init_path, precision, freeze=0, freeze_until=None, fresh_head=False, seed=0):
    """A function building the model to fine-tune from `init_path` (see the module's text)."""

    def build():
        model = prediction.with_precision(prediction.load_model(init_path), precision)
        model = models.with_batch_norm(model, fused=True)
        freeze_layers(model, freeze, freeze_until)
        if fresh_head:
            new_head(model, seed)
        return model

    return build


def describe(init_path, freeze=0, freeze_until=None, fresh_head=False):
    """Checks the freezing options against the model (a BadValue when they do not fit it) and says
    in one line what the run starts from."""
    frozen = freeze_layers(prediction.load_model(init_path), freeze, freeze_until)
    return (f"fine-tuning {init_path}: {frozen} layers frozen" + (", a new last layer" if fresh_head else ""))
