"""How an ensemble's validation accuracy grows with its number of members: for each size k, the
soft and hard vote of the list's first k models, and the mean, lowest and highest over random
k-model subsets (all of them when there are no more than --subsets), so that no member is chosen
for its score.

Usage:
    python benchmarks/ensemble_size.py data/fer2013.npz models/strong_seeds/ensemble.txt --tta
    python benchmarks/ensemble_size.py data/fer2013.npz model_list.txt --subsets 50 --seed 0

Every model predicts the validation rows (those the models validated on, read from their settings,
or the first --val-size rows) once; the votes of subsets are then sums of those predictions.
Weights of the list are ignored: every member counts once. Halves are printed for the first-k vote,
so that a size picked on rows 0..1199 can be read on rows 1200..2399.
"""

import itertools
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from common import cli, data, ensemble, model_lists  # noqa: E402  (needs the repo on sys.path)


def member_probabilities(list_path, listed_models, images, tta, batch_size):
    """Each listed model's (rows, classes) probabilities of the images, models loaded one at a time."""
    class_names = ensemble.list_classes(list_path, listed_models)
    probabilities = []

    def keep(index, listed, by_name, rows):
        probabilities.append(by_name["validation"])
        print(f"model {index} of {len(listed_models)}: {listed.path}", flush=True)

    ensemble.vote(list_path, listed_models, {"validation": images}, class_names, keep,
                  batch_size=batch_size, tta=tta)
    return probabilities


def vote_labels(probabilities, members):
    """(soft, hard) labels of the unweighted vote of the members (indices into probabilities)."""
    from common import prediction

    vote = prediction.Vote(*probabilities[0].shape)
    for member in members:
        vote.add(probabilities[member], 1.0)
    return vote.labels(soft=True), vote.labels(soft=False)


def vote_accuracies(probabilities, members, labels):
    """(soft, hard) accuracy of the unweighted vote of the members."""
    return tuple(float((predicted == labels).mean()) for predicted in vote_labels(probabilities, members))


def subsets_of_size(count, size, wanted, generator):
    """Every `size`-model subset of `count` models when there are no more than `wanted`, else
    `wanted` drawn at random (each without repeated members)."""
    if math.comb(count, size) <= wanted:
        return [list(members) for members in itertools.combinations(range(count), size)]
    return [generator.choice(count, size, replace=False) for _ in range(wanted)]


def add_ensemble_arguments(parser):
    """The data, the model list and how they predict: shared with benchmarks/ensemble_weights.py."""
    parser.add_argument("data", help="labelled data (.csv, .csv.gz, .npz)")
    parser.add_argument("model_list", help="text file of 'WEIGHT PATH' lines (weights ignored)")
    parser.add_argument("--tta", action="store_true", help="every model sees ten views of each face")
    parser.add_argument("--val-size", type=cli.positive_int, default=None,
                        help="validation rows (default: those the models validated on)")
    parser.add_argument("--batch-size", type=cli.positive_int, default=512, help="faces per forward pass")


def validation_probabilities(options):
    """(each listed model's (rows, classes) probabilities, labels) of the validation rows."""
    listed_models = model_lists.read_model_list(options.model_list)
    labelled = data.load_dataset(options.data, require_labels=True)
    with cli.naming("--val-size", options.val_size):
        _, val_set = data.models_validation_split(labelled, options.val_size,
                                                  [listed.path for listed in listed_models])
    probabilities = member_probabilities(options.model_list, listed_models, val_set.images, options.tta,
                                         options.batch_size)
    return probabilities, val_set.labels


def main():
    parser = cli.ArgumentParser(__doc__)
    add_ensemble_arguments(parser)
    parser.add_argument("--subsets", type=cli.positive_int, default=30,
                        help="subsets scored for each size: all of them when there are no more, else this many "
                             "drawn at random")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random subsets")
    options = parser.parse_args()

    probabilities, labels = validation_probabilities(options)
    half = len(labels) // 2
    generator = np.random.default_rng(options.seed)
    count = len(probabilities)
    print(f"{len(labels)} validation rows, {count} models{', --tta views each' if options.tta else ''}; "
          f"subsets: all, or {options.subsets} drawn at random a size (seed {options.seed})")
    print(f"size | first k soft | first k hard | first k soft, rows 0..{half - 1} / {half}..{len(labels) - 1} | "
          "subsets soft: mean (lowest..highest) | hard: mean")
    for size in range(1, count + 1):
        soft_right, hard_right = (predicted == labels for predicted in vote_labels(probabilities, range(size)))
        soft, hard = soft_right.mean(), hard_right.mean()
        first_half, second_half = soft_right[:half].mean(), soft_right[half:].mean()
        drawn = np.array([vote_accuracies(probabilities, members, labels)
                          for members in subsets_of_size(count, size, options.subsets, generator)])  # (subsets, 2)
        print(f"{size:>4} | {soft:.2%} | {hard:.2%} | {first_half:.2%} / {second_half:.2%} | "
              f"{drawn[:, 0].mean():.2%} ({drawn[:, 0].min():.2%}..{drawn[:, 0].max():.2%}) | "
              f"{drawn[:, 1].mean():.2%}", flush=True)


if __name__ == "__main__":
    cli.run(main)
