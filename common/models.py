"""Model builders, one per architecture, all with the Functional API and an explicit `Input`; each is
registered by name in `config.ARCHITECTURES` (with its parameter count) and found by `builder`.

Every model takes raw pixel values 0..255 (a `Rescaling` layer inside divides by 255), so the
prediction path feeds the stored uint8 pixels as they are, whatever the architecture. The softmax
output is always float32, also under a mixed-precision policy.

Models train with `FusedBatchNormalization` (a speed-up) and are written to disk with Keras's own
`BatchNormalization` holding the same weights (`model_files.with_batch_norm`), so every saved file opens in
plain Keras.
"""

from common import backend  # noqa: F401  (TensorFlow loads quietly, before Keras)
import keras
import tensorflow as tf
from keras import layers

from common import config
from common.classes import FER2013_CLASSES
from common.config import IMAGE_SIZE, NUM_PIXELS


@keras.saving.register_keras_serializable(package="fer")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's BatchNormalization computed by TensorFlow's fused kernel on (batch, height, width,
    channels) maps: the same weights, the same results up to rounding, in the input's own precision.

    Keras's layer upcasts bfloat16 maps to float32 and normalises with several separate ops, which
    costs about as much as the convolutions on a CPU; the fused kernel reads and writes each map once.
    Any other input (a mask, renormalisation, a different axis or rank) takes Keras's own path.
    The batch variance used for the moving average has Bessel's correction, as in TensorFlow's kernel
    (a factor n/(n-1) with n >= 128 * 3 * 3 pixels per channel here).
    """

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self.renorm or len(inputs.shape) != 4 or self.axis not in (-1, 3):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        scale = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones((channels,), tf.float32)
        offset = tf.cast(self.beta, tf.float32) if self.center else tf.zeros((channels,), tf.float32)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, scale, offset, epsilon=self.epsilon, is_training=True)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum
                                        + variance * (1.0 - self.momentum))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, scale, offset, mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon,
                is_training=False)
        return tf.cast(outputs, self.compute_dtype)


def build_seed_cnn(dropout_rate=0.0, dense_dropout_rate=0.0, fused_batch_norm=True,
                   num_classes=len(FER2013_CLASSES)):
    """The report's CNN: 3 blocks of 3x(Conv3x3+BN+ReLU) with 32/64/128 filters, each block closed by
    MaxPool; then Dense 256-128-64 and one output per class (the report's 7).

    `fused_batch_norm=False` builds it with Keras's own BatchNormalization (the same weights), as a
    plain-Keras baseline."""
    batch_normalization = FusedBatchNormalization if fused_batch_norm else layers.BatchNormalization
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="face")
    x = layers.Rescaling(1.0 / 255, name="scale_pixels")(inputs)
    for block, filters in enumerate((32, 64, 128), start=1):
        for conv in range(1, 4):
            x = layers.Conv2D(filters, 3, padding="same", name=f"block{block}_conv{conv}")(x)
            x = batch_normalization(name=f"block{block}_bn{conv}")(x)
            x = layers.Activation("relu", name=f"block{block}_relu{conv}")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)  # 48 -> 24 -> 12 -> 6
        x = layers.Dropout(dropout_rate, name=f"block{block}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)  # (6, 6, 128) -> (4608,)
    for units in (256, 128, 64):
        x = layers.Dense(units, activation="relu", name=f"dense{units}")(x)
        x = layers.Dropout(dense_dropout_rate, name=f"dense{units}_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")


def build_vgg_cnn(dropout_rate=0.4, num_classes=len(FER2013_CLASSES)):
    """A VGG-style CNN for the stronger recipe: 4 stages of Conv3x3+BN+ReLU (2, 2, 3, 3 convs with
    32/64/128/256 filters), each closed by MaxPool, then global average pooling, Dense 256 with
    dropout, and the softmax. About as fast to train as the seed CNN, since its wider layers work on
    smaller maps."""
    return _vgg_style_cnn("vgg_cnn", (32, 64, 128, 256), dropout_rate, num_classes)


def build_wide_vgg_cnn(dropout_rate=0.4, num_classes=len(FER2013_CLASSES)):
    """The VGG-style layout at twice the width (64/128/256/512 filters, Dense 512), as wide as the
    VGG networks published on FER2013: about 4x the VGG-style CNN's multiply-adds and parameters, a
    teacher and ensemble member rather than a model to ship (its weights alone take 32 MB in float32)."""
    return _vgg_style_cnn("wide_vgg_cnn", (64, 128, 256, 512), dropout_rate, num_classes)


def build_small_cnn(dropout_rate=0.3, num_classes=len(FER2013_CLASSES)):
    """A small, fast CNN for CPUs and phones: the VGG-style layout at half the width (16/32/64/128
    filters, Dense 128): about a quarter of the VGG-style CNN's multiply-adds."""
    return _vgg_style_cnn("small_cnn", (16, 32, 64, 128), dropout_rate, num_classes)


def _vgg_style_cnn(name, stage_filters, dropout_rate, num_classes):
    """Stages of 2, 2, 3, 3 Conv3x3+BN+ReLU with `stage_filters`, each closed by MaxPool; global
    average pooling; a Dense layer as wide as the last stage, with dropout; the softmax, one output per class."""
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="face")
    x = layers.Rescaling(1.0 / 255, name="scale_pixels")(inputs)
    for stage, (filters, convs) in enumerate(zip(stage_filters, (2, 2, 3, 3)), start=1):
        for conv in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                              name=f"stage{stage}_conv{conv}")(x)
            x = FusedBatchNormalization(name=f"stage{stage}_bn{conv}")(x)
            x = layers.Activation("relu", name=f"stage{stage}_relu{conv}")(x)
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)  # 48 -> 24 -> 12 -> 6 -> 3
    x = layers.GlobalAveragePooling2D(name="average_pool")(x)  # (3, 3, last filters) -> (last filters,)
    units = stage_filters[-1]
    x = layers.Dense(units, activation="relu", name=f"dense{units}")(x)
    x = layers.Dropout(dropout_rate, name=f"dense{units}_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def build_resnet_cnn(dropout_rate=0.4, num_classes=len(FER2013_CLASSES)):
    """A ResNet-style CNN, a second family for ensembles: a stem of two Conv3x3 (32 filters) and
    MaxPool, then 3 stages of basic residual blocks (two Conv3x3+BN, the input added back before the
    last ReLU) with 64/128/256 filters and 1/2/2 blocks; the first block of stages 2 and 3 halves the
    map with a stride-2 conv and a 1x1 projection on the shortcut. Global average pooling, dropout,
    the softmax."""

    def conv_bn(x, filters, kernel_size, strides, name):
        x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                          name=f"{name}_conv")(x)
        return FusedBatchNormalization(name=f"{name}_bn")(x)

    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="face")
    x = layers.Rescaling(1.0 / 255, name="scale_pixels")(inputs)
    for index in (1, 2):
        x = layers.Activation("relu", name=f"stem{index}_relu")(conv_bn(x, 32, 3, 1, f"stem{index}"))
    x = layers.MaxPooling2D(2, name="stem_pool")(x)  # 48 -> 24
    for stage, (filters, blocks) in enumerate(((64, 1), (128, 2), (256, 2)), start=1):
        for block in range(1, blocks + 1):
            name = f"stage{stage}_block{block}"
            strides = 2 if stage > 1 and block == 1 else 1  # stages 2 and 3: 24 -> 12 -> 6
            shortcut = x
            if block == 1:
                shortcut = conv_bn(x, filters, 1, strides, f"{name}_projection")
            x = layers.Activation("relu", name=f"{name}_relu1")(conv_bn(x, filters, 3, strides, f"{name}_a"))
            x = conv_bn(x, filters, 3, 1, f"{name}_b")
            x = layers.Add(name=f"{name}_add")([x, shortcut])
            x = layers.Activation("relu", name=f"{name}_relu2")(x)
    x = layers.GlobalAveragePooling2D(name="average_pool")(x)  # (6, 6, 256) -> (256,)
    x = layers.Dropout(dropout_rate, name="average_pool_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="resnet_cnn")


def build_dnn(dropout_rate=0.2, num_classes=len(FER2013_CLASSES), standardize_faces=False):
    """The report's DNN: Dense 512-512-512-256 and one output per class on the 2,304 raw pixels.

    `standardize_faces` shifts and scales each face to mean 0 and standard deviation 1 before the
    first layer (a LayerNormalization without weights, so the parameter count stays the report's);
    otherwise pixels are only divided by 255, as in the report.
    """
    inputs = keras.Input(shape=(NUM_PIXELS,), name="pixels")
    x = layers.Rescaling(1.0 / 255, name="scale_pixels")(inputs)
    if standardize_faces:
        x = layers.LayerNormalization(epsilon=1e-6, center=False, scale=False,
                                     name="standardize_face")(x)  # (2304,) -> (2304,)
    for index, units in enumerate((512, 512, 512, 256), start=1):
        x = layers.Dense(units, activation="relu", name=f"dense{index}_{units}")(x)
        x = layers.Dropout(dropout_rate, name=f"dense{index}_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="dnn")


def builder(arch):
    """The builder of the architecture registered as `arch` in `config.ARCHITECTURES`."""
    return globals()[config.ARCHITECTURES[arch].builder]


def architecture_name(model):
    """The key of `config.ARCHITECTURES` whose builder made `model` (its own, for a model started from
    another with --init), or None for a model from elsewhere."""
    return next((name for name, architecture in config.ARCHITECTURES.items()
                 if architecture.builder == f"build_{model.name}"), None)


def trainable_parameter_count(model):
    """The number of trainable weights, as in the report's tables."""
    return sum(int(keras.ops.size(weight)) for weight in model.trainable_weights)
