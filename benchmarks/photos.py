"""How well predict.py's face finding and cropping keeps a model's accuracy: FER2013 faces put into
photos, found again by the detector, cut out again and classified, against the same faces given
as 48x48 rows.

Usage:
    python benchmarks/photos.py MODEL.h5 --data data.npz                  # validation rows 0..999
    python benchmarks/photos.py MODEL.h5 --data data.npz --rows 2400:3400 --margins 0,0.1,0.2,0.3

Each face is enlarged 3x (bicubic, 144 pixels) and put at a random place in a 640x480 photo of a
noisy gradient, as a JPEG at quality 90. For each --margins value the photos go through predict.py's
path (Haar detector, square crop with that margin, 48x48 by area); the table gives the share of faces
found, the accuracy on the found faces, the accuracy of the same faces as rows, and how often the two
labels agree. Choose the margin on training rows (e.g. --rows 2400:3400), report on validation rows.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from common import cli, data, synthetic  # noqa: E402  (needs the repo on sys.path)


def row_range(text):
    """argparse type: `START:END` rows of the data file."""
    try:
        start, end = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:END row numbers, got {text!r}") from None
    if not 0 <= start < end:
        raise argparse.ArgumentTypeError(f"expected 0 <= START < END, got {text!r}")
    return slice(start, end)


def margins(text):
    """argparse type: comma-separated margins, e.g. `0,0.1,0.2`."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if any(not 0 <= value <= 1 for value in values):
        raise argparse.ArgumentTypeError(f"margins lie in 0..1, got {text!r}")
    return values


def make_photos(images, seed=0):
    """Each face enlarged 3x at a random place in a 640x480 noisy gradient, JPEG-compressed."""
    import cv2

    rng = np.random.default_rng(seed)
    photos = []
    for face in images:
        photo = synthetic.photo_with_face(cv2.resize(face, (144, 144), interpolation=cv2.INTER_CUBIC), rng)
        _, encoded = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 90])
        photos.append(cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE))
    return photos


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("model", help="the model to measure")
    parser.add_argument("--data", required=True, help="labelled faces (.csv, .csv.gz or .npz)")
    parser.add_argument("--rows", type=row_range, default=slice(0, 1000), help="START:END rows used")
    parser.add_argument("--margins", type=margins, default=[0.05], help="crop margins to compare")
    options = parser.parse_args()
    dataset = data.load_dataset(options.data, require_labels=True).subset(options.rows)

    from common import faces, prediction

    classifier = prediction.load_classifier(options.model)
    direct = classifier.probabilities(dataset.images).argmax(axis=1)
    detector = faces.HaarDetector()
    photos = make_photos(dataset.images)
    boxes = [detector.boxes(photo)[:1] for photo in photos]  # the largest face of each photo
    found = np.array([bool(box) for box in boxes])
    print(f"{len(dataset)} faces (rows {options.rows.start}..{options.rows.stop - 1}); found in "
          f"{found.mean():.1%} of the photos; accuracy as 48x48 rows: all {np.mean(direct == dataset.labels):.4f}, "
          f"on the found ones {np.mean((direct == dataset.labels)[found]):.4f}")
    print(f"{'margin':>8}{'photo accuracy':>16}{'label agreement':>17}")
    for margin in options.margins:
        crops = np.stack([faces.crop_face(photo, box[0], margin)
                          for photo, box in zip(photos, boxes) if box])
        from_photos = classifier.probabilities(crops).argmax(axis=1)
        accuracy = np.mean(from_photos == dataset.labels[found])
        agreement = np.mean(from_photos == direct[found])
        print(f"{margin:>8.2f}{accuracy:>16.4f}{agreement:>17.4f}")


if __name__ == "__main__":
    cli.run(main)
