"""Semi-supervised self-training (report section 6): label unlabelled faces with a trained model and
keep the confident ones as extra training data."""

import numpy as np

from common import data


def confident_rows(probabilities, threshold):
    """Rows whose highest class probability is >= threshold, and the labels predicted for them."""
    confident = np.flatnonzero(probabilities.max(axis=1) >= threshold)
    return confident, probabilities[confident].argmax(axis=1)


def load_training_sets(options):
    """The training set (labelled plus confidently self-labelled rows) and the validation set, from
    the options of semi_train.py and semi_retrain.py: `train_csv`, `test_csv`, `val_size`,
    `predictor`, `labeled_ratio`, `threshold` and `seed`.

    The rows of a --labeled-ratio share of the training set keep their labels; the predictor labels
    the other training rows and every test row, and those labelled with a highest probability
    >= threshold join the training set. Prints how many rows were self-labelled per class, and how
    many self-labels on the training rows whose labels were hidden are correct.
    """
    dataset = data.load_dataset(options.train_csv, require_labels=True)
    train_set, val_set = data.split_validation(dataset, options.val_size)
    options.val_size = options.val_size or len(val_set)  # saved as the row count it became
    test_set = data.load_dataset(options.test_csv, part="test")
    labelled, hidden = data.split_labelled(train_set, options.labeled_ratio, options.seed)
    unlabelled_images = np.concatenate([hidden.images, test_set.images])

    from common import prediction  # TensorFlow loads only after the data checked out

    predictor = prediction.load_model(options.predictor)
    probabilities = prediction.predict_probabilities(predictor, unlabelled_images)
    rows, labels = confident_rows(probabilities, options.threshold)
    self_labelled = data.Dataset(unlabelled_images[rows], labels, rows.astype(np.int64), "self-labelled")
    counts = np.bincount(labels, minlength=data.NUM_CLASSES)
    print(f"{len(labelled)} labelled training rows ({options.labeled_ratio:g} of {len(train_set)}); "
          f"{len(unlabelled_images)} unlabelled ({len(hidden)} training rows with hidden labels "
          f"+ {len(test_set)} test rows)")
    print(f"self-labelled {len(rows)} rows with max probability >= {options.threshold:g}: "
          + ", ".join(f"{name} {count}" for name, count in zip(data.CLASS_NAMES, counts)))
    on_hidden = rows < len(hidden)
    if on_hidden.any():
        correct = int((labels[on_hidden] == hidden.labels[rows[on_hidden]]).sum())
        print(f"self-labels on hidden-label training rows: {correct} of {int(on_hidden.sum())} "
              f"correct ({correct / on_hidden.sum():.1%})")
    combined = data.concatenate(labelled, self_labelled, f"{train_set.source} + self-labelled")
    return combined, val_set
