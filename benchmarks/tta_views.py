"""Which test-time views earn `--tta` its gain: the mirror alone, and the ten views (five shifts, each
also mirrored) at several shift sizes, for each model given, on its validation rows.

Usage:
    python benchmarks/tta_views.py data/fer2013.npz pretrained models/long_s0/0.683750.h5
    python benchmarks/tta_views.py data/fer2013.npz pretrained --shifts 1,2,3,4,6 --val-size 2400

The validation rows are the first --val-size rows of the data's training part (the standard split).
A view set chosen on rows flatters them, so the rows are scored in two halves: a set picked on the
first half is read on the second. Prints, per model and view set, the accuracy on each half and on
all the rows; `--tta` itself is the ten views at 2 pixels.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import cli, data  # noqa: E402  (needs the repo on sys.path)


def shift_sizes(text):
    """`1,2,4` -> [1, 2, 4]: positive whole pixels, comma-separated."""
    return [cli.positive_int(part) for part in text.split(",")]


def view_sets(shift_sizes):
    """name -> the (down, right) shifts whose views (each also mirrored) are averaged; `single` is
    the face alone (no mirror), handled apart."""
    sets = {"mirror": ((0, 0),)}
    for size in shift_sizes:
        sets[f"ten views, {size} px"] = ((0, 0), (0, size), (0, -size), (size, 0), (-size, 0))
    return sets


def view_probabilities(model, images, shifts):
    """(shift, mirrored) -> probabilities of that view of every image: each view predicted once."""
    from common import prediction

    probabilities = {}
    for shift in shifts:
        plain, mirrored = prediction.tta_views(images, shifts=(shift,))
        probabilities[shift, False] = prediction.predict_probabilities(model, plain)
        probabilities[shift, True] = prediction.predict_probabilities(model, mirrored)
    return probabilities


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("data", help="labelled data (.csv, .csv.gz, .npz)")
    parser.add_argument("models", nargs="+", type=cli.model_or_shipped, help="model files or shipped names")
    parser.add_argument("--shifts", type=shift_sizes, default="1,2,3,4,6",
                        help="shift sizes in pixels of the ten-view sets, comma-separated")
    parser.add_argument("--val-size", type=cli.positive_int, default=2400, help="validation rows")
    options = parser.parse_args()

    labelled = data.load_dataset(options.data, require_labels=True)
    _, val_set = data.split_validation(labelled, options.val_size, for_training=False)
    half = len(val_set) // 2

    from common import model_files

    sets = view_sets(options.shifts)
    all_shifts = sorted({shift for shifts in sets.values() for shift in shifts})
    print(f"{len(val_set)} validation rows; halves: rows 0..{half - 1} and {half}..{len(val_set) - 1}")
    for model_path in options.models:
        views = view_probabilities(model_files.load_model(model_path), val_set.images, all_shifts)
        rows = {"single": views[(0, 0), False]}
        for name, shifts in sets.items():
            rows[name] = sum(views[shift, mirrored] for shift in shifts for mirrored in (False, True))
        for name, probabilities in rows.items():
            right = probabilities.argmax(axis=1) == val_set.labels
            print(f"{model_path}  {name:<18} first half {right[:half].mean():.2%}  "
                  f"second half {right[half:].mean():.2%}  all {right.mean():.2%}", flush=True)


if __name__ == "__main__":
    cli.run(main)
