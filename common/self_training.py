"""Semi-supervised self-training (report section 6): label unlabelled faces with a trained model and
keep the confident ones as extra training data."""

import numpy as np

from common import classes, data


def confident_rows(probabilities, threshold):
    """Rows whose highest class probability is >= threshold, and the labels predicted for them."""
    confident = np.flatnonzero(probabilities.max(axis=1) >= threshold)
    return confident, probabilities[confident].argmax(axis=1)


def self_labelled_training_set(train_set, unlabelled, predictor_path, labeled_ratio, threshold, seed,
                               start_strategy=None):
    """The training set of semi_train.py and semi_retrain.py: labelled plus confidently self-labelled
    rows.

    The rows of a `labeled_ratio` share of `train_set` (chosen with `seed`) keep their labels; the
    model at `predictor_path` (whose classes must be the data's) labels the other training rows and
    every face of `unlabelled` (a Dataset), and those labelled with a highest probability >= `threshold` join the
    training set. Prints how many rows were self-labelled per class, and how many self-labels on
    the rows whose labels were hidden are correct. `start_strategy()` starts the run's distribution
    strategy (TensorFlow loads then), after the data checked out and before the predictor runs.
    """
    labelled, hidden = data.split_labelled(train_set, labeled_ratio, seed)
    unlabelled_images = np.concatenate([hidden.images, unlabelled.images])

    if start_strategy is not None:
        start_strategy()  # a multi-worker strategy precedes TensorFlow's work
    from common import model_files, prediction  # TensorFlow loads only after the data checked out

    predictor = model_files.load_model(predictor_path)
    classes.check_same(classes.model_class_names(predictor_path, predictor.output_shape[-1]), train_set.class_names,
                       train_set.source, predictor_path)
    probabilities = prediction.predict_probabilities(predictor, unlabelled_images)
    rows, labels = confident_rows(probabilities, threshold)
    self_labelled = data.Dataset(unlabelled_images[rows], labels, rows.astype(np.int64), "self-labelled",
                                 class_names=train_set.class_names)
    counts = np.bincount(labels, minlength=len(train_set.class_names))
    print(f"{len(labelled)} labelled training rows ({labeled_ratio:g} of {len(train_set)}); "
          f"{len(unlabelled_images)} unlabelled ({len(hidden)} training rows with hidden labels "
          f"+ {len(unlabelled)} of {unlabelled.source})")
    print(f"self-labelled {len(rows)} rows with max probability >= {threshold:g}: "
          + ", ".join(f"{name} {count}" for name, count in zip(train_set.class_names, counts)))
    on_hidden = rows < len(hidden)
    if on_hidden.any():
        correct = int((labels[on_hidden] == hidden.labels[rows[on_hidden]]).sum())
        print(f"self-labels on hidden-label training rows: {correct} of {int(on_hidden.sum())} "
              f"correct ({correct / on_hidden.sum():.1%})")
    return data.with_model_labelled_rows(labelled, self_labelled, f"{train_set.source} + self-labelled")
