"""Semi-supervised self-training (report section 6): label unlabelled faces with a trained model and
keep the confident ones as extra training data."""

import numpy as np

from common import classes, data


def confident_rows(probabilities, threshold):
    """Rows whose highest class probability is >= threshold, and the labels predicted for them."""
    confident = np.flatnonzero(probabilities.max(axis=1) >= threshold)
    return confident, probabilities[confident].argmax(axis=1)


def load_training_sets(train_csv, test_csv, predictor_path, val_size, labeled_ratio, threshold, seed,
                       strategy="default", folds=None, fold=None, class_names=None):
    """The training set (labelled plus confidently self-labelled rows) and the validation set (the
    first `val_size` rows of `train_csv`, or block `fold` of `folds`), for semi_train.py and
    semi_retrain.py.

    The rows of a `labeled_ratio` share of the training set (chosen with `seed`) keep their labels;
    the model at `predictor_path` labels the other training rows and every test row, and those
    labelled with a highest probability >= `threshold` join the training set. Prints how many rows
    were self-labelled per class, and how many self-labels on the rows whose labels were hidden are
    correct. `strategy` names the run's distribution strategy, started before the predictor runs.
    `class_names` orders the classes of image folders (`--classes`); the predictor's must be the same.
    """
    dataset = data.load_dataset(train_csv, require_labels=True, class_names=class_names)
    train_set, val_set = data.split_validation(dataset, val_size, folds=folds, fold=fold)
    test_set = data.load_dataset(test_csv, part="test", class_names=dataset.class_names)
    labelled, hidden = data.split_labelled(train_set, labeled_ratio, seed)
    unlabelled_images = np.concatenate([hidden.images, test_set.images])

    from common import distribution, prediction  # TensorFlow loads only after the data checked out

    distribution.get_strategy(strategy)  # a multi-worker strategy precedes TensorFlow's work
    predictor = prediction.load_model(predictor_path)
    classes.check_same(classes.model_class_names(predictor_path, predictor.output_shape[-1]), dataset.class_names,
                       train_csv, predictor_path)
    probabilities = prediction.predict_probabilities(predictor, unlabelled_images)
    rows, labels = confident_rows(probabilities, threshold)
    self_labelled = data.Dataset(unlabelled_images[rows], labels, rows.astype(np.int64), "self-labelled",
                                 class_names=train_set.class_names)
    counts = np.bincount(labels, minlength=len(train_set.class_names))
    print(f"{len(labelled)} labelled training rows ({labeled_ratio:g} of {len(train_set)}); "
          f"{len(unlabelled_images)} unlabelled ({len(hidden)} training rows with hidden labels "
          f"+ {len(test_set)} test rows)")
    print(f"self-labelled {len(rows)} rows with max probability >= {threshold:g}: "
          + ", ".join(f"{name} {count}" for name, count in zip(train_set.class_names, counts)))
    on_hidden = rows < len(hidden)
    if on_hidden.any():
        correct = int((labels[on_hidden] == hidden.labels[rows[on_hidden]]).sum())
        print(f"self-labels on hidden-label training rows: {correct} of {int(on_hidden.sum())} "
              f"correct ({correct / on_hidden.sum():.1%})")
    combined = data.concatenate(labelled, self_labelled, f"{train_set.source} + self-labelled")
    return combined, val_set
