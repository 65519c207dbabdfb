"""Whether an ensemble gains from weights or a combiner fitted on validation rows instead of equal
weights: each fitted on one half of the validation rows and scored on the other, both ways.

Usage:
    python benchmarks/ensemble_weights.py data/fer2013.npz models/strong_seeds/ensemble.txt --tta

Compared with the equal-weight soft vote on the same half: member weights (the weighted average of
probabilities with the lowest log-loss on the fitting half), a bias per class added to the equal
vote's log-probabilities (the same fit), members chosen greedily (ensemble selection: the member
that most lowers the fitting half's log-loss is added, again and again, repeats allowed, each
addition one more vote), and a logistic regression on every member's log-probabilities (stacking)
at three regularisation strengths. Every model predicts the validation rows once (those the models
validated on, read from their settings, or the first --val-size rows).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from common import cli  # noqa: E402  (needs the repo on sys.path)
from ensemble_size import add_ensemble_arguments, validation_probabilities  # noqa: E402

STACKING_STRENGTHS = (0.01, 0.1, 1.0)  # C of scikit-learn's LogisticRegression
SELECTION_ROUNDS = 20  # additions of ensemble selection


def fitted_weights(probabilities, labels):
    """Member weights (summing to 1) whose weighted average of `probabilities` (members, rows,
    classes) gives the labels the lowest log-loss."""
    from scipy.optimize import minimize

    def log_loss(logits):
        weights = np.exp(logits) / np.exp(logits).sum()
        return log_loss_of(np.tensordot(weights, probabilities, axes=1), labels)

    logits = minimize(log_loss, np.zeros(len(probabilities)), method="Nelder-Mead",
                      options={"maxiter": 4000}).x
    return np.exp(logits) / np.exp(logits).sum()


def log_loss_of(averaged, labels):
    """Mean negative log-probability of the labels under averaged (rows, classes) probabilities."""
    return -np.log(averaged[np.arange(len(labels)), labels] + 1e-9).mean()


def selected_weights(probabilities, labels, rounds=SELECTION_ROUNDS):
    """Member weights (summing to 1) by ensemble selection: `rounds` times, the member whose one more
    vote gives the labels the lowest log-loss is added (repeats allowed); a weight is its share of
    the votes."""
    votes = np.zeros(len(probabilities))
    vote_sum = np.zeros(probabilities.shape[1:])  # (rows, classes)
    for _ in range(rounds):
        losses = [log_loss_of((vote_sum + member) / (votes.sum() + 1), labels) for member in probabilities]
        best = int(np.argmin(losses))
        votes[best] += 1
        vote_sum += probabilities[best]
    return votes / votes.sum()


def fitted_class_bias(log_probabilities, labels):
    """A bias per class that, added to `log_probabilities` (rows, classes), gives the lowest log-loss."""
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    def log_loss(bias):
        return -log_softmax(log_probabilities + bias, axis=1)[np.arange(len(labels)), labels].mean()

    return minimize(log_loss, np.zeros(log_probabilities.shape[1]), method="BFGS").x


def combiner_accuracies(probabilities, labels, fit_rows, score_rows):
    """({combiner name: accuracy on score_rows}, ensemble selection's member weights) for combiners
    fitted on fit_rows."""
    from sklearn.linear_model import LogisticRegression

    equal = probabilities.mean(axis=0)  # (rows, classes)
    right = {"equal weights": equal.argmax(axis=1) == labels}
    weights = fitted_weights(probabilities[:, fit_rows], labels[fit_rows])
    right["fitted weights"] = np.tensordot(weights, probabilities, axes=1).argmax(axis=1) == labels
    selected = selected_weights(probabilities[:, fit_rows], labels[fit_rows])
    right["ensemble selection"] = np.tensordot(selected, probabilities, axes=1).argmax(axis=1) == labels
    bias = fitted_class_bias(np.log(equal[fit_rows] + 1e-9), labels[fit_rows])
    right["equal weights + class bias"] = (np.log(equal + 1e-9) + bias).argmax(axis=1) == labels
    features = np.log(probabilities + 1e-7).transpose(1, 0, 2).reshape(len(labels), -1)  # (rows, members * classes)
    for strength in STACKING_STRENGTHS:
        stacker = LogisticRegression(C=strength, max_iter=2000).fit(features[fit_rows], labels[fit_rows])
        right[f"stacking, C={strength:g}"] = stacker.predict(features) == labels
    return {name: float(hits[score_rows].mean()) for name, hits in right.items()}, selected


def main():
    parser = cli.ArgumentParser(__doc__)
    add_ensemble_arguments(parser)
    options = parser.parse_args()

    member_probabilities, labels = validation_probabilities(options)
    probabilities = np.stack(member_probabilities).astype(np.float64)  # (members, rows, classes)
    half = len(labels) // 2
    first, second = np.arange(half), np.arange(half, len(labels))
    print(f"{len(labels)} validation rows, {len(probabilities)} models"
          f"{', --tta views each' if options.tta else ''}; fitted on one half, scored on the other")
    forward, forward_selection = combiner_accuracies(probabilities, labels, first, second)
    backward, backward_selection = combiner_accuracies(probabilities, labels, second, first)
    for rows, selected in ((first, forward_selection), (second, backward_selection)):
        print(f"ensemble selection on rows {rows[0]}..{rows[-1]}: weights "
              f"{' '.join(f'{weight:.2f}' for weight in selected)}")
    print(f"combiner | fitted on rows 0..{half - 1}, scored on {half}..{len(labels) - 1} | the reverse | mean")
    for name in forward:
        print(f"{name} | {forward[name]:.2%} | {backward[name]:.2%} | {(forward[name] + backward[name]) / 2:.2%}")


if __name__ == "__main__":
    cli.run(main)
