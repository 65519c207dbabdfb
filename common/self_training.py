"""Semi-supervised self-training (report section 6): label unlabelled faces with a trained model and
keep the confident ones as extra training data."""

import numpy as np

from common import data, prediction


def confident_rows(probabilities, threshold):
    """Rows whose highest class probability is >= threshold, and the labels predicted for them."""
    confident = np.flatnonzero(probabilities.max(axis=1) >= threshold)
    return confident, probabilities[confident].argmax(axis=1)


def build_training_set(train_set, test_set, predictor, labeled_ratio, threshold, seed):
    """Labelled rows plus confidently self-labelled rows (hidden-label training rows and test rows).

    Prints how many rows were self-labelled per class, and how many self-labels on the training rows
    whose labels were hidden are correct.
    """
    labelled, hidden = data.split_labelled(train_set, labeled_ratio, seed)
    unlabelled_images = np.concatenate([hidden.images, test_set.images])
    probabilities = prediction.predict_probabilities(predictor, unlabelled_images)
    rows, labels = confident_rows(probabilities, threshold)
    self_labelled = data.Dataset(unlabelled_images[rows], labels, rows.astype(np.int64), "self-labelled")
    counts = np.bincount(labels, minlength=data.NUM_CLASSES)
    print(f"{len(labelled)} labelled training rows ({labeled_ratio:g} of {len(train_set)}); "
          f"{len(unlabelled_images)} unlabelled ({len(hidden)} training rows with hidden labels "
          f"+ {len(test_set)} test rows)")
    print(f"self-labelled {len(rows)} rows with max probability >= {threshold:g}: "
          + ", ".join(f"{name} {count}" for name, count in zip(data.CLASS_NAMES, counts)))
    on_hidden = rows < len(hidden)
    if on_hidden.any():
        correct = int((labels[on_hidden] == hidden.labels[rows[on_hidden]]).sum())
        print(f"self-labels on hidden-label training rows: {correct} of {int(on_hidden.sum())} "
              f"correct ({correct / on_hidden.sum():.1%})")
    return data.concatenate(labelled, self_labelled, f"{train_set.source} + self-labelled")
