"""Weighted ensembles: reading a model list and combining the models' class probabilities.

A model list has one model a line, `WEIGHT PATH`: the weight a positive number, the path relative
to the list file's folder or absolute. A line may end with `pixel-scale=raw|unit|symmetric` for a
model from elsewhere that expects pixel values 0..255, 0..1 or -1..1 (this toolkit's models take
raw values). Blank lines and `#` comments are ignored.
"""

import dataclasses
import os

import numpy as np

from common import data, files
from common.cli import UsageError


MODEL_SUFFIXES = (".h5", ".keras")
PIXEL_SCALE_PREFIX = "pixel-scale="
PIXEL_SCALE_NAMES = ("raw", "unit", "symmetric")


@dataclasses.dataclass
class ListedModel:
    weight: float
    path: str
    line_number: int
    pixel_scale: str | None = None  # None: the command line's --pixel-scale


def is_model_list(path):
    """True for a model list, False for a model file (named `.h5` or `.keras`)."""
    return not path.lower().endswith(MODEL_SUFFIXES)


def check_model_file(path, expected="a .h5 or .keras file", flag=""):
    """Refuses (UsageError) a path that is not an existing model file (a list included); `expected`
    says what was, `flag` names the option it came from."""
    if is_model_list(path) or not os.path.isfile(path):
        raise UsageError(f"{flag + ' ' if flag else ''}{path}: no such model file (expected {expected})")


def check_model_source(path, what="model"):
    """The models behind a model file or a model list, each checked to exist (list lines parsed),
    before anything loads: a UsageError names the file or line. `what` names the argument."""
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a folder, expected a .h5 or .keras {what} file or a model list")
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such {what} file or model list")
    if is_model_list(path):
        return read_model_list(path)
    return [ListedModel(1.0, path, 0)]


def read_model_list(list_path):
    """The weighted models of a list file, each checked to exist; a UsageError names the bad line."""
    if not os.path.isfile(list_path):
        raise UsageError(f"{list_path}: no such model list")
    folder = os.path.dirname(os.path.abspath(list_path))
    listed = []
    with open(list_path, encoding="utf-8-sig", errors="replace") as handle:
        for line_number, line in enumerate(handle, start=1):
            text = line.split("#", 1)[0].strip()
            if text:
                listed.append(_parse_line(list_path, folder, line_number, text))
    if not listed:
        raise UsageError(f"{list_path}: lists no models; expected lines of 'WEIGHT PATH'")
    return listed


def _parse_line(list_path, folder, line_number, text):
    """One `WEIGHT PATH [pixel-scale=NAME]` line as a ListedModel; a UsageError names the line."""
    where = f"{list_path}: line {line_number}"
    pixel_scale = None
    fields = text.split(None, 1)
    last_two = fields[-1].rsplit(None, 1)
    if len(fields) == 2 and len(last_two) == 2 and last_two[1].startswith(PIXEL_SCALE_PREFIX):
        path_text, option = last_two
        pixel_scale = option[len(PIXEL_SCALE_PREFIX):]
        if pixel_scale not in PIXEL_SCALE_NAMES:
            raise UsageError(f"{where}: {option!r}: expected {PIXEL_SCALE_PREFIX}"
                             + "|".join(PIXEL_SCALE_NAMES))
        fields = [fields[0], path_text.strip()]
    if len(fields) != 2 or not fields[1]:
        raise UsageError(f"{where}: expected 'WEIGHT PATH', got {text!r}")
    weight_text, path = fields
    try:
        weight = float(weight_text)
    except ValueError:
        raise UsageError(f"{where}: weight {weight_text!r} is not a number") from None
    if not weight > 0 or not np.isfinite(weight):
        raise UsageError(f"{where}: weight {weight_text} must be a positive number")
    path = path if os.path.isabs(path) else os.path.join(folder, path)
    if os.path.isdir(path):
        raise UsageError(f"{where}: {path} is a folder, expected a model file")
    if not os.path.isfile(path):
        raise UsageError(f"{where}: model {path} does not exist")
    return ListedModel(weight, path, line_number, pixel_scale)


class Vote:
    """Accumulates weighted votes and weighted probabilities, one model at a time."""

    def __init__(self, rows, num_classes):
        self.votes = np.zeros((rows, num_classes))
        self.probability_sum = np.zeros((rows, num_classes))
        self.total_weight = np.zeros(rows)

    def add(self, probabilities, weight, rows=None):
        """Adds one model's (rows, classes) probabilities with its weight, to the `rows` (indices)
        they are of, or to every row."""
        rows = np.arange(len(self.votes)) if rows is None else np.asarray(rows)
        self.votes[rows, probabilities.argmax(axis=1)] += weight
        self.probability_sum[rows] += weight * probabilities
        self.total_weight[rows] += weight

    def hard_labels(self):
        """Each row's class with the largest summed weight of votes; a tie goes to the tied class
        with the larger weighted probability sum."""
        tied = self.votes >= self.votes.max(axis=1, keepdims=True) - 1e-12
        return np.where(tied, self.probability_sum, -np.inf).argmax(axis=1)

    def soft_probabilities(self):
        """The weighted average of the models' probabilities."""
        return self.probability_sum / self.total_weight[:, None]

    def labels(self, soft):
        return self.soft_probabilities().argmax(axis=1) if soft else self.hard_labels()


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
    leaves out rows repeated elsewhere in the file; else the first `val_size` rows, "unseen" leaving
    out those with a copy among the other rows."""
    labelled = data.load_dataset(eval_path, require_labels=True)
    folds = {listed.line_number: _fold_of(listed.path) for listed in listed_models}
    if not any(folds.values()):
        train_part, val_set = data.split_validation(labelled, val_size, for_training=False)
        copied, relabelled = data.exact_copies(val_set, train_part)
        print(f"{copied.sum()} of the {len(val_set)} validation rows have an exact pixel copy among the "
              f"training rows ({relabelled.sum()} of them with another label); 'unseen' leaves them out")
        return val_set, ~copied, None
    if not all(folds.values()) or len({count for count, _ in folds.values()}) != 1:
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


def _fold_of(model_path):
    """(folds, fold) of a model trained with --folds, from its settings; else None."""
    settings = files.read_json(files.settings_path(model_path)) or {}
    return (settings["folds"], settings["fold"]) if settings.get("folds") else None


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


def check_models(list_path, listed_models):
    """Loads every listed model once to check it, before any predicts; returns their classes, which
    must be the same for all (`common.classes`)."""
    from common import classes, prediction  # TensorFlow loads only when models are used

    class_names = None
    for listed in listed_models:
        try:
            model = prediction.load_model(listed.path)
            model_classes = classes.model_class_names(listed.path, model.output_shape[-1])
            classes.check_same(class_names or model_classes, model_classes, listed.path, "the list's first model")
        except UsageError as error:
            raise UsageError(f"{list_path}: line {listed.line_number}: {error}") from None
        class_names = class_names or model_classes
    return class_names


def vote(listed_models, faces, class_names, report, batch_size=512, tta=False, precision="saved",
         pixel_scale="raw", held_out=None):
    """Every listed model's weighted votes on each named set of faces ({"test": images, ...}), one
    model loaded at a time after all were checked; `report(index, listed, probabilities by name,
    validation rows)` is called after each model. Returns a Vote per name.

    `held_out` ({line number: row indices}, out-of-fold scoring): each model votes on those rows of
    the "validation" faces only, the rows its training held out. The models were checked
    (`check_models`, which gave `class_names`)."""
    from common import prediction  # TensorFlow loads only when models are used

    votes = {name: Vote(len(images), len(class_names)) for name, images in faces.items()}
    for index, listed in enumerate(listed_models, start=1):
        model = prediction.with_precision(prediction.load_model(listed.path), precision)
        predictor = prediction.ModelPredictor(model, listed.pixel_scale or pixel_scale)
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
