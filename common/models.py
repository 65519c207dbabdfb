"""Model builders, one per architecture, all with the Functional API and an explicit `Input`.

Every model takes raw pixel values 0..255 (a `Rescaling` layer inside divides by 255), so the
prediction path feeds the stored uint8 pixels as they are, whatever the architecture. The softmax
output is always float32, also under a mixed-precision policy.
"""

from common import backend  # noqa: F401  (TensorFlow loads quietly, before Keras)
import keras
from keras import layers

from common.data import IMAGE_SIZE, NUM_CLASSES, NUM_PIXELS


def build_seed_cnn(dropout_rate=0.0, dense_dropout_rate=0.0):
    """The report's CNN: 3 blocks of 3x(Conv3x3+BN+ReLU) with 32/64/128 filters, each block closed by
    MaxPool; then Dense 256-128-64-7. 1,703,047 trainable parameters."""
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="face")
    x = layers.Rescaling(1.0 / 255, name="scale_pixels")(inputs)
    for block, filters in enumerate((32, 64, 128), start=1):
        for conv in range(1, 4):
            x = layers.Conv2D(filters, 3, padding="same", name=f"block{block}_conv{conv}")(x)
            x = layers.BatchNormalization(name=f"block{block}_bn{conv}")(x)
            x = layers.Activation("relu", name=f"block{block}_relu{conv}")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)  # 48 -> 24 -> 12 -> 6
        x = layers.Dropout(dropout_rate, name=f"block{block}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)  # (6, 6, 128) -> (4608,)
    for units in (256, 128, 64):
        x = layers.Dense(units, activation="relu", name=f"dense{units}")(x)
        x = layers.Dropout(dense_dropout_rate, name=f"dense{units}_dropout")(x)
    x = layers.Dense(NUM_CLASSES, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")


def build_dnn(dropout_rate=0.2):
    """The report's DNN: Dense 512-512-512-256-7 on the 2,304 raw pixels. 1,838,599 parameters."""
    inputs = keras.Input(shape=(NUM_PIXELS,), name="pixels")
    x = layers.Rescaling(1.0 / 255, name="scale_pixels")(inputs)
    for index, units in enumerate((512, 512, 512, 256), start=1):
        x = layers.Dense(units, activation="relu", name=f"dense{index}_{units}")(x)
        x = layers.Dropout(dropout_rate, name=f"dense{index}_dropout")(x)
    x = layers.Dense(NUM_CLASSES, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="dnn")


ARCHITECTURES = {
    "seed": build_seed_cnn,
    "dnn": build_dnn,
}


def trainable_parameter_count(model):
    """The number of trainable weights, as in the report's tables."""
    return sum(int(keras.ops.size(weight)) for weight in model.trainable_weights)
