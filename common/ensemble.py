"""Weighted ensembles of the models of a list (`common.model_lists`): every model's votes on the test
faces and, with labels, the validation rows they are scored on (out of fold for fold members).
"""

import numpy as np

from common import data, model_lists
from common.errors import UsageError


def describe_accuracy(predicted, labels, unseen):
    """`validation accuracy 0.6942 on 2400 rows, unseen 0.6880 on 2203`: all rows, and the rows
    marked `unseen` (those without an exact copy among the training rows)."""
    correct = predicted == labels
    unseen_part = f"{correct[unseen].mean():.4f} on {int(unseen.sum())}" if unseen.any() else "no rows"
    return f"validation accuracy {correct.mean():.4f} on {len(labels)} rows, unseen {unseen_part}"


def evaluation_rows(eval_path, val_size, listed_models):
    """The labelled rows `--eval` scores: (dataset, its "unseen" mask, held-out rows per model line
    or None). When every model was trained on a fold (`--folds`), the rows are those of the folds
    the models held out, each scored by the models that held it out (out-of-fold), and "unseen"
    leaves out rows repeated elsewhere in the file; else the first `val_size` rows (None: the rows
    the models validated on, `data.models_validation_split`), "unseen" leaving out those with a copy
    among the other rows."""
    labelled = data.load_dataset(eval_path, require_labels=True)
    held = {listed.line_number: data.held_out_rows(listed.path) for listed in listed_models}
    folds = {line: (rows.folds, rows.fold) for line, rows in held.items() if rows and rows.folds}
    if not folds:
        model_paths = [listed.path for listed in listed_models]
        train_part, val_set = data.models_validation_split(labelled, val_size, model_paths)
        copied, relabelled = data.exact_copies(val_set, train_part)
        print(f"{copied.sum()} of the {len(val_set)} validation rows have an exact pixel copy among the "
              f"training rows ({relabelled.sum()} of them with another label); 'unseen' leaves them out")
        return val_set, ~copied, None
    if len(folds) != len(held) or len({count for count, _ in folds.values()}) != 1:
        raise UsageError("out-of-fold scoring needs every listed model trained with the same --folds; "
                         "list fold members and other models apart")
    covered = np.zeros(len(labelled), dtype=bool)
    for count, fold in folds.values():
        covered[data.fold_rows(len(labelled), count, fold)] = True
    position = np.cumsum(covered) - 1  # a covered row's index among the scored rows
    held_out = {line: position[data.fold_rows(len(labelled), count, fold)]
                for line, (count, fold) in folds.items()}
    scored = labelled.subset(covered)
    repeated = data.repeated_rows(labelled)[covered]
    print(f"out-of-fold: {len(scored)} of the {len(labelled)} rows, each scored only by the models that "
          f"held it out; {repeated.sum()} of them repeat elsewhere in the file ('unseen' leaves them out)")
    return scored, ~repeated, held_out


def describe_halves(predicted, labels, unseen):
    """The ensemble's accuracy on all validation rows, then on each half: members and weights chosen
    on the first half leave the second half's figure free of that choice."""
    half = len(labels) // 2
    lines = [describe_accuracy(predicted, labels, unseen)]
    for name, rows in (("choosing half", slice(0, half)), ("reporting half", slice(half, None))):
        first, last = range(len(labels))[rows][0], range(len(labels))[rows][-1]
        lines.append(f"  {name}, rows {first}..{last}: "
                     + describe_accuracy(predicted[rows], labels[rows], unseen[rows]))
    return "\n".join(lines)


def list_classes(list_path, listed_models):
    """The classes of a list's first model (stored in its file, else read from its outputs): the
    classes every model of the list must have."""
    from common import classes, model_files  # TensorFlow loads only when models are used

    first = listed_models[0]
    stored = classes.saved_class_names(first.path)
    if stored is not None:
        return stored
    try:
        return classes.model_class_names(first.path, model_files.load_model(first.path).output_shape[-1])
    except UsageError as error:
        raise model_lists.error_at_line(list_path, first, error) from None


def vote(list_path, listed_models, faces, class_names, report, batch_size=512, tta=False, precision="saved",
         pixel_scale="raw", held_out=None):
    """Every listed model's weighted votes on each named set of faces ({"test": images, ...}), each
    model loaded once, one at a time, and refused (a UsageError naming its line) when it cannot be
    used or its classes are not `class_names` (`list_classes`); `report(index, listed,
    probabilities by name, validation rows)` is called after each model. Returns a Vote per name.

    `held_out` ({line number: row indices}, out-of-fold scoring): each model votes on those rows of
    the "validation" faces only, the rows its training held out."""
    from common import classes, model_files, prediction  # TensorFlow loads only when models are used

    votes = {name: prediction.Vote(len(images), len(class_names)) for name, images in faces.items()}
    for index, listed in enumerate(listed_models, start=1):
        try:
            model = model_files.with_precision(model_files.load_model(listed.path), precision)
            model_classes = classes.model_class_names(listed.path, model.output_shape[-1])
            classes.check_same(class_names, model_classes, listed.path, "the list's first model")
        except UsageError as error:
            raise model_lists.error_at_line(list_path, listed, error) from None
        predictor = prediction.ModelPredictor(model, listed.pixel_scale or pixel_scale, model_classes)
        rows = held_out[listed.line_number] if held_out else None
        probabilities = {}
        for name, images in faces.items():
            own_rows = rows if name == "validation" else None
            probabilities[name] = predictor.probabilities(images if own_rows is None else images[own_rows],
                                                          batch_size, tta)
            votes[name].add(probabilities[name], listed.weight, own_rows)
        report(index, listed, probabilities, rows)
        del model, predictor
    return votes
