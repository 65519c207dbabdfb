"""How well models' probabilities are calibrated on the validation rows, and whether a temperature
fitted on one half of them calibrates the other half better.

Usage:
    python benchmarks/calibration.py data/fer2013.npz pretrained pretrained-vgg model_list.txt

For each model (a .h5/.keras file, a shipped model's name or a model list, soft voting), single
view and with --tta: accuracy, mean top probability, expected calibration error (10 equal bins of
the top probability, `common.explain.calibration`) and log-loss; then a temperature T (the
probabilities' logarithms divided by T, the lowest log-loss on the fitting half) fitted on rows
0..1199 and scored on 1200..2399, and the reverse.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from common import cli, data, files, model_lists  # noqa: E402  (needs the repo on sys.path)


def log_loss(probabilities, labels):
    """Mean negative log-probability of the true labels (scikit-learn's), each row's probabilities
    summing to one in float64 (a float32 softmax's sums miss one by rounding)."""
    from sklearn import metrics

    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    return float(metrics.log_loss(labels, probabilities, labels=np.arange(probabilities.shape[1])))


def with_temperature(probabilities, temperature):
    """The probabilities' logarithms divided by `temperature`, as probabilities again."""
    from scipy.special import softmax

    return softmax(np.log(np.clip(probabilities, 1e-12, 1)) / temperature, axis=1)


def fitted_temperature(probabilities, labels):
    """The temperature with the lowest log-loss on these rows (0.25..4)."""
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(lambda log_t: log_loss(with_temperature(probabilities, np.exp(log_t)), labels),
                            bounds=(np.log(0.25), np.log(4.0)), method="bounded")
    return float(np.exp(found.x))


def temperature_rows(probabilities, labels):
    """One line per direction: T fitted on one half, the other half's calibration error before and after."""
    from common import explain

    half = len(labels) // 2
    halves = (np.arange(half), np.arange(half, len(labels)))
    lines = []
    for fit_rows, score_rows in (halves, halves[::-1]):
        temperature = fitted_temperature(probabilities[fit_rows], labels[fit_rows])
        scored, scored_labels = probabilities[score_rows], labels[score_rows]
        scaled = with_temperature(scored, temperature)
        before, after = (explain.calibration(each, scored_labels).expected_error for each in (scored, scaled))
        lines.append(f"    T fitted on rows {fit_rows[0]}..{fit_rows[-1]}: {temperature:.2f}; rows "
                     f"{score_rows[0]}..{score_rows[-1]}: calibration error {100 * before:.1f} -> "
                     f"{100 * after:.1f} points, log-loss {log_loss(scored, scored_labels):.4f} -> "
                     f"{log_loss(scaled, scored_labels):.4f}")
    return lines


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("data", help="labelled data (.csv, .csv.gz, .npz)")
    parser.add_argument("models", nargs="+", type=cli.model_or_shipped,
                        help="model files, shipped models' names or model lists")
    parser.add_argument("--val-size", type=cli.positive_int, default=None,
                        help="validation rows (default: those the models validated on)")
    parser.add_argument("--batch-size", type=cli.positive_int, default=512, help="faces per forward pass")
    options = parser.parse_args()

    model_paths = [listed.path for source in options.models for listed in model_lists.check_model_source(source)]
    labelled = data.load_dataset(options.data, require_labels=True)
    with cli.naming("--val-size", options.val_size):
        _, val_set = data.models_validation_split(labelled, options.val_size, model_paths)

    from common import explain, prediction  # TensorFlow loads only after the input checked out

    print(f"{len(val_set)} validation rows of {options.data}")
    for source in options.models:
        classifier = prediction.load_classifier(source)
        for tta in (False, True):
            probabilities = classifier.probabilities(val_set.images, options.batch_size, tta).astype(np.float64)
            found = explain.calibration(probabilities, val_set.labels)
            print(f"{files.repository_relative_path(source)}, {'--tta' if tta else 'single view'}: "
                  f"{explain.calibration_sentence(found)}, log-loss {log_loss(probabilities, val_set.labels):.4f}",
                  flush=True)
            print("\n".join(temperature_rows(probabilities, val_set.labels)), flush=True)


if __name__ == "__main__":
    cli.run(main)
