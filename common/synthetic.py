"""Synthetic 48x48 cartoon faces with 7 drawable expressions, for trying the toolkit without FER2013.

Each class changes what a person would look at: brow tilt and height, eye opening, mouth curve,
tilt and opening. Position, size, brightness and noise vary per face, so a model has to learn the
expression, not a fixed template. `make_faces.py` writes them as a CSV.
"""

import numpy as np

from common.classes import FER2013_CLASSES
from common.config import IMAGE_SIZE

# Per class: brow tilt (+ lowers the inner ends), brow shift (+ is lower), eye opening, mouth curve
# (+ smiles), mouth tilt, mouth opening width and height (0 = closed).
EXPRESSIONS = {
    0: dict(brow_tilt=0.55, brow_shift=1.5, eye_open=1.9, mouth_curve=0.0, mouth_tilt=0.0, open_width=0.0, open_height=0.0),   # Angry
    1: dict(brow_tilt=0.25, brow_shift=0.5, eye_open=1.1, mouth_curve=-1.0, mouth_tilt=0.4, open_width=0.0, open_height=0.0),  # Disgust
    2: dict(brow_tilt=-0.35, brow_shift=-2.0, eye_open=3.0, mouth_curve=0.0, mouth_tilt=0.0, open_width=4.5, open_height=1.8), # Fear
    3: dict(brow_tilt=0.0, brow_shift=0.0, eye_open=2.0, mouth_curve=3.0, mouth_tilt=0.0, open_width=0.0, open_height=0.0),    # Happy
    4: dict(brow_tilt=-0.5, brow_shift=0.0, eye_open=1.6, mouth_curve=-2.5, mouth_tilt=0.0, open_width=0.0, open_height=0.0),  # Sad
    5: dict(brow_tilt=0.0, brow_shift=-3.0, eye_open=3.2, mouth_curve=0.0, mouth_tilt=0.0, open_width=3.0, open_height=4.0),   # Surprise
    6: dict(brow_tilt=0.0, brow_shift=0.0, eye_open=2.0, mouth_curve=0.0, mouth_tilt=0.0, open_width=0.0, open_height=0.0),    # Neutral
}


def generate_faces(rows, seed=0):
    """Returns (images (rows, 48, 48) uint8, labels (rows,) int64), classes drawn uniformly."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(FER2013_CLASSES), size=rows)

    def per_face(values, spread=0.0):
        """A (rows, 1, 1) array, broadcastable over the pixel grid, with relative jitter."""
        values = np.asarray(values, dtype=np.float64) * (1 + spread * rng.uniform(-1, 1, size=rows))
        return values[:, None, None]

    def expression(name, spread=0.15):
        return per_face([EXPRESSIONS[label][name] for label in labels], spread)

    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float64)  # (48, 48) each
    center_x = per_face(24 + rng.uniform(-2.5, 2.5, rows))
    center_y = per_face(24 + rng.uniform(-2.5, 2.5, rows))
    scale = per_face(rng.uniform(0.85, 1.1, rows))
    background = per_face(rng.uniform(10, 90, rows))
    skin = per_face(rng.uniform(130, 200, rows))
    dark = per_face(rng.uniform(10, 50, rows))

    images = np.broadcast_to(background, (rows, IMAGE_SIZE, IMAGE_SIZE)).copy()
    face = ((x - center_x) / (16 * scale)) ** 2 + ((y - center_y) / (20 * scale)) ** 2 <= 1
    images = np.where(face, skin, images)

    eye_open = expression("eye_open")
    brow_tilt = expression("brow_tilt")
    brow_y = center_y - 10 * scale + expression("brow_shift")
    for side in (-1, 1):  # -1: the face's right side, left in the image
        eye_x = center_x + side * 6.5 * scale
        eye_y = center_y - 5 * scale
        eye = ((x - eye_x) / (2.6 * scale)) ** 2 + ((y - eye_y) / eye_open) ** 2 <= 1
        images = np.where(eye, dark, images)
        brow_line = brow_y - side * brow_tilt * (x - eye_x)  # inner end (towards the centre) moves
        brow = (np.abs(y - brow_line) <= 0.9) & (np.abs(x - eye_x) <= 3.8 * scale)
        images = np.where(brow, dark, images)

    tilt_sign = per_face(rng.choice([-1.0, 1.0], rows))
    mouth = _mouth(x, y, center_x, center_y + 10 * scale, scale, tilt_sign, expression)
    images = np.where(mouth, dark, images)

    images = images + rng.normal(0, 12, size=images.shape)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels.astype(np.int64)


def _mouth(x, y, mouth_x, mouth_y, scale, tilt_sign, expression):
    """Where the mouth is dark (rows, 48, 48): the lips, curved and tilted, and any opening."""
    half_width = 6.5 * scale
    across = np.clip((x - mouth_x) / half_width, -1, 1)
    mouth_line = (mouth_y - expression("mouth_curve") * across ** 2
                  + tilt_sign * expression("mouth_tilt") * (x - mouth_x))
    lips = (np.abs(y - mouth_line) <= 0.9) & (np.abs(x - mouth_x) <= half_width)
    open_width = expression("open_width") * scale
    open_height = expression("open_height") * scale
    opening = (((x - mouth_x) / np.maximum(open_width, 1e-6)) ** 2
               + ((y - mouth_y) / np.maximum(open_height, 1e-6)) ** 2 <= 1) & (open_width > 0)
    return lips | opening


def photo_with_face(face, rng, height=480, width=640):
    """A grey `height` x `width` photo of a noisy horizontal gradient with `face` (already at its
    size) pasted at a random place: a stand-in for a photo with one face in it."""
    return photo_and_corner(face, rng, height, width)[0]


def photo_and_corner(face, rng, height=480, width=640):
    """`photo_with_face`'s photo and the (top, left) corner where the face was pasted."""
    gradient = np.linspace(rng.uniform(40, 120), rng.uniform(120, 220), width)[None, :]
    photo = np.clip(gradient + rng.normal(0, 12, (height, width)), 0, 255).astype(np.uint8)
    side = face.shape[0]
    top, left = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
    photo[top:top + side, left:left + side] = face
    return photo, (top, left)
