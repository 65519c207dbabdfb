"""Training-time augmentation of face batches (batch, 48, 48, 1), drawn anew for every batch.

- "report": the report's random shift within 10% of the size in both directions (nearest-pixel
  fill) and a random horizontal flip, through Keras's preprocessing layers;
- "strong": one random affine warp per face (shift within 10%, zoom within 10%, rotation within 10
  degrees, horizontal flip; bilinear, nearest-pixel fill) followed by random erasing (half the faces
  get a grey rectangle of 2-12% of the area);
- "long": the published long recipe's wider draws, the same way: shift within 20%, zoom within 20%
  (random resized crops of 0.8-1.2 of the side), rotation within 10 degrees, flip, random erasing;
- "none": the faces as they are.

`zoomed` is the warp's zoom alone, fixed: the test-time views (`prediction.tta_views`).

`make_mixer` blends the augmented faces in pairs, with their targets (mixup, `--mixup ALPHA`).
"""

from common import backend  # noqa: F401  (TensorFlow loads quietly, before Keras)
import keras
import numpy as np
import tensorflow as tf

from common import config


def make_augmenter(augment, seed):
    """A function from a float32 batch (batch, 48, 48, 1) to its augmented copy, seeded by `seed`:
    the augmentation registered as `augment` in `config.AUGMENTATIONS` (its kind and reach)."""
    kind, reach = config.AUGMENTATIONS[augment]
    if kind == "shift_flip":
        layers = keras.Sequential([
            keras.layers.RandomTranslation(reach, reach, fill_mode="nearest", seed=seed),
            keras.layers.RandomFlip("horizontal", seed=seed),
        ], name=f"{augment}_augmentation")
        return lambda images: layers(images, training=True)
    if kind == "warp_erase":
        generator = tf.random.Generator.from_seed(seed)
        return lambda images: random_erasing(random_affine(images, generator, shift=reach, zoom=reach),
                                             generator)
    return lambda images: images


def make_mixer(alpha, seed):
    """A function from a batch of faces and their targets to the batch blended in pairs (mixup):
    face i becomes w_i x face i + (1 - w_i) x face j, and its target alike, where j is face i's
    mirror position in the (shuffled) batch and w_i ~ Beta(alpha, alpha) is drawn anew for every
    face, seeded by `seed`. Targets are any per-class columns (one-hot labels, then a teacher's
    probabilities when distilling): each stays a distribution. `alpha` 0: the batch as it is."""
    if not alpha:
        return lambda images, targets: (images, targets)
    generator = tf.random.Generator.from_seed(seed + 1)  # apart from the augmentation's draws

    def mix(images, targets):
        batch = tf.shape(images)[0]
        seeds = generator.make_seeds(2)
        first = tf.random.stateless_gamma([batch], seed=seeds[:, 0], alpha=alpha)
        second = tf.random.stateless_gamma([batch], seed=seeds[:, 1], alpha=alpha)
        weights = first / tf.maximum(first + second, 1e-12)  # (batch,) ~ Beta(alpha, alpha)
        image_weights = tf.reshape(weights, [-1] + [1] * (len(images.shape) - 1))  # (batch, 1, ...)
        partner_images, partner_targets = tf.reverse(images, [0]), tf.reverse(targets, [0])
        mixed_images = image_weights * images + (1.0 - image_weights) * partner_images
        mixed_targets = weights[:, tf.newaxis] * targets + (1.0 - weights[:, tf.newaxis]) * partner_targets
        return mixed_images, mixed_targets

    return mix


def random_affine(images, generator, shift=0.1, zoom=0.1, degrees=10.0):
    """Warps each image of (batch, height, width, 1) by its own random shift, zoom, rotation and
    horizontal flip, composed into one projective transform (one resampling per image)."""
    batch = tf.shape(images)[0]
    height, width = float(images.shape[1]), float(images.shape[2])

    def uniform(low, high):
        return generator.uniform((batch,), low, high)

    angle = uniform(-degrees, degrees) * (np.pi / 180)
    scale = 1.0 / uniform(1.0 - zoom, 1.0 + zoom)  # output -> input: zooming in samples less area
    flip = tf.where(generator.uniform((batch,)) < 0.5, -1.0, 1.0)
    shift_x, shift_y = uniform(-shift, shift) * width, uniform(-shift, shift) * height
    # input = centre + rotation(angle) * scale * diag(flip, 1) * (output - centre) + shift
    a0, a1 = tf.cos(angle) * scale * flip, -tf.sin(angle) * scale
    b0, b1 = tf.sin(angle) * scale * flip, tf.cos(angle) * scale
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    a2 = centre_x - a0 * centre_x - a1 * centre_y + shift_x
    b2 = centre_y - b0 * centre_x - b1 * centre_y + shift_y
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)  # (batch, 8)
    warped = keras.ops.image.affine_transform(images, transforms, interpolation="bilinear",
                                              fill_mode="nearest")
    return tf.ensure_shape(warped, images.shape)


def zoomed(images, zoom):
    """Each image of (batch, height, width, 1) zoomed by `zoom` about its centre (>1: closer, <1:
    farther, edges repeated), resampled as `random_affine` resamples."""
    height, width = float(images.shape[1]), float(images.shape[2])
    scale = 1.0 / zoom  # output -> input
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    transform = tf.constant([[scale, 0.0, centre_x * (1 - scale), 0.0, scale, centre_y * (1 - scale), 0.0, 0.0]])
    transforms = tf.repeat(transform, tf.shape(images)[0], axis=0)  # (batch, 8)
    return keras.ops.image.affine_transform(images, transforms, interpolation="bilinear", fill_mode="nearest")


def random_erasing(images, generator, probability=0.5, area=(0.02, 0.12), aspect=(0.3, 3.3)):
    """Paints a random rectangle (area and aspect ratio drawn from the ranges) of one random grey
    level over each image of (batch, height, width, 1) with the given probability."""
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    rectangle_area = generator.uniform((batch,), *area) * (height * width)
    log_aspect = generator.uniform((batch,), float(np.log(aspect[0])), float(np.log(aspect[1])))
    half_height = tf.sqrt(rectangle_area * tf.exp(log_aspect)) / 2
    half_width = tf.sqrt(rectangle_area / tf.exp(log_aspect)) / 2
    centre_y = generator.uniform((batch,), 0.0, float(height))
    centre_x = generator.uniform((batch,), 0.0, float(width))
    rows = tf.range(height, dtype=tf.float32)[tf.newaxis, :, tf.newaxis]  # (1, height, 1)
    columns = tf.range(width, dtype=tf.float32)[tf.newaxis, tf.newaxis, :]  # (1, 1, width)
    inside = ((tf.abs(rows - centre_y[:, None, None]) <= half_height[:, None, None])
              & (tf.abs(columns - centre_x[:, None, None]) <= half_width[:, None, None]))
    erase = inside & (generator.uniform((batch,)) < probability)[:, None, None]  # (batch, h, w)
    grey = generator.uniform((batch,), 0.0, 255.0)[:, None, None, None]
    return tf.where(erase[..., tf.newaxis], grey, images)
