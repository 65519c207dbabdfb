"""Which test-time views earn `--tta` its gain, for each model given, on its validation rows: the
mirror alone; the face and its mirror at five shifts (it and 2-pixel shifts right, left, down and
up, or other sizes); the face and its mirror at zooms about the centre in steps of 0.05 up to each
reach (`--tta` is the reach 0.1: zooms 0.9, 0.95, 1, 1.05, 1.1); and zooms and shifts together.

Usage:
    python benchmarks/tta_views.py data/fer2013.npz pretrained models/long_s0/0.683750.h5
    python benchmarks/tta_views.py data/fer2013.npz pretrained --shifts 1,2,4 --zoom-reaches 0.1,0.2,0.3

The validation rows are those the models validated on (read from their settings), or the first
--val-size rows.
A view set chosen on rows flatters them, so the rows are scored in two halves: a set picked on the
first half is read on the second. Prints, per model and view set, the accuracy on each half and on
all the rows, then each set's mean over the models.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from common import cli, data  # noqa: E402  (needs the repo on sys.path)

ZOOM_STEP = 0.05


def shift_sizes(text):
    """`1,2,4` -> [1, 2, 4]: positive whole pixels, comma-separated."""
    return [cli.positive_int(part) for part in text.split(",")]


def zoom_reaches(text):
    """`0.1,0.2` -> [0.1, 0.2]: positive numbers, comma-separated."""
    return [cli.positive_float(part) for part in text.split(",")]


def zooms_within(reach):
    """The zoom factors 1 - reach .. 1 + reach in steps of ZOOM_STEP."""
    steps = int(round(reach / ZOOM_STEP))
    return tuple(round(1 + step * ZOOM_STEP, 4) for step in range(-steps, steps + 1))


def view_sets(shift_sizes, zoom_reaches):
    """name -> the (zoom, (down, right)) views whose probabilities (each also mirrored) are averaged;
    `single` is the face alone (no mirror), handled apart."""
    centre = (0, 0)
    sets = {"mirror": ((1.0, centre),)}
    for size in shift_sizes:
        shifts = (centre, (0, size), (0, -size), (size, 0), (-size, 0))
        sets[f"shifts, {size} px"] = tuple((1.0, shift) for shift in shifts)
    for reach in zoom_reaches:
        zooms = zooms_within(reach)
        sets[f"zooms, {zooms[0]:g}..{zooms[-1]:g}"] = tuple((zoom, centre) for zoom in zooms)
        sets[f"zooms, {zooms[0]:g}..{zooms[-1]:g} + shifts, 2 px"] = tuple(
            {(zoom, centre) for zoom in zooms} | {(1.0, shift) for shift in ((0, 2), (0, -2), (2, 0), (-2, 0))})
    return sets


def shifted(images, down, right):
    """The images (batch, height, width) with their content moved `down` and `right` pixels, edges
    repeated."""
    padding = max(abs(down), abs(right))
    height, width = images.shape[1:]
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding)), mode="edge")
    return padded[:, padding - down:padding - down + height, padding - right:padding - right + width]


def view_probabilities(model, images, views):
    """(zoom, shift, mirrored) -> probabilities of that view of every image: each view predicted once."""
    from common import prediction

    probabilities = {}
    for zoom, shift in views:
        zoomed, zoomed_mirror = prediction.tta_views(images, zooms=(zoom,))
        plain, mirrored = shifted(zoomed, *shift), shifted(zoomed_mirror, *shift)
        probabilities[zoom, shift, False] = prediction.predict_probabilities(model, plain)
        probabilities[zoom, shift, True] = prediction.predict_probabilities(model, mirrored)
    return probabilities


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("data", help="labelled data (.csv, .csv.gz, .npz)")
    parser.add_argument("models", nargs="+", type=cli.model_or_shipped, help="model files or shipped names")
    parser.add_argument("--shifts", type=shift_sizes, default="2",
                        help="shift sizes in pixels of the shifted view sets, comma-separated")
    parser.add_argument("--zoom-reaches", type=zoom_reaches, default="0.1,0.2,0.3",
                        help="reaches of the zoomed view sets (zooms 1-reach..1+reach in steps of 0.05), "
                             "comma-separated")
    parser.add_argument("--val-size", type=cli.positive_int, default=None,
                        help="validation rows (default: those the models validated on)")
    options = parser.parse_args()

    labelled = data.load_dataset(options.data, require_labels=True)
    with cli.naming("--val-size", options.val_size):
        _, val_set = data.models_validation_split(labelled, options.val_size, options.models)
    half = len(val_set) // 2

    from common import model_files

    sets = view_sets(options.shifts, options.zoom_reaches)
    all_views = sorted({view for views in sets.values() for view in views})
    print(f"{len(val_set)} validation rows; halves: rows 0..{half - 1} and {half}..{len(val_set) - 1}")
    scores = {}  # set name -> [(first half, second half, all) per model]
    for model_path in options.models:
        views = view_probabilities(model_files.load_model(model_path), val_set.images, all_views)
        rows = {"single": views[1.0, (0, 0), False]}
        for name, members in sets.items():
            rows[f"{name} ({2 * len(members)} views)"] = sum(
                views[zoom, shift, mirrored] for zoom, shift in members for mirrored in (False, True))
        for name, probabilities in rows.items():
            right = probabilities.argmax(axis=1) == val_set.labels
            scores.setdefault(name, []).append((right[:half].mean(), right[half:].mean(), right.mean()))
            print(f"{model_path}  {name:<40} first half {right[:half].mean():.2%}  "
                  f"second half {right[half:].mean():.2%}  all {right.mean():.2%}", flush=True)
    print(f"mean over the {len(options.models)} models:")
    for name, per_model in scores.items():
        first, second, both = np.mean(per_model, axis=0)
        print(f"  {name:<40} first half {first:.2%}  second half {second:.2%}  all {both:.2%}")


if __name__ == "__main__":
    cli.run(main)
