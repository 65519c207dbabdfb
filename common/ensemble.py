"""Weighted ensembles: reading a model list and combining the models' class probabilities.

A model list has one model a line, `WEIGHT PATH`: the weight a positive number, the path relative
to the list file's folder or absolute. A line may end with `pixel-scale=raw|unit|symmetric` for a
model from elsewhere that expects pixel values 0..255, 0..1 or -1..1 (this toolkit's models take
raw values). Blank lines and `#` comments are ignored.
"""

import dataclasses
import os

import numpy as np

from common.cli import UsageError
from common.data import NUM_CLASSES


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
        self.total_weight = 0.0

    def add(self, probabilities, weight):
        """Adds one model's (rows, classes) probabilities with its weight."""
        self.votes[np.arange(len(probabilities)), probabilities.argmax(axis=1)] += weight
        self.probability_sum += weight * probabilities
        self.total_weight += weight

    def hard_labels(self):
        """Each row's class with the largest summed weight of votes; a tie goes to the tied class
        with the larger weighted probability sum."""
        tied = self.votes >= self.votes.max(axis=1, keepdims=True) - 1e-12
        return np.where(tied, self.probability_sum, -np.inf).argmax(axis=1)

    def soft_probabilities(self):
        """The weighted average of the models' probabilities."""
        return self.probability_sum / self.total_weight

    def labels(self, soft):
        return self.soft_probabilities().argmax(axis=1) if soft else self.hard_labels()


def describe_accuracy(predicted, labels, unseen):
    """`validation accuracy 0.6942 on 2400 rows, unseen 0.6880 on 2203`: all rows, and the rows
    marked `unseen` (those without an exact copy among the training rows)."""
    correct = predicted == labels
    unseen_part = f"{correct[unseen].mean():.4f} on {int(unseen.sum())}" if unseen.any() else "no rows"
    return f"validation accuracy {correct.mean():.4f} on {len(labels)} rows, unseen {unseen_part}"


def vote(list_path, listed_models, faces, report, batch_size=512, tta=False, precision="saved",
         pixel_scale="raw"):
    """Every listed model's weighted votes on each named set of faces ({"test": images, ...}), one
    model loaded at a time after all were checked; `report(index, listed, probabilities by name)`
    is called after each model. Returns a Vote per name."""
    from common import prediction  # TensorFlow loads only when models are used

    for listed in listed_models:  # every model is checked before any predicts
        try:
            prediction.load_model(listed.path)
        except UsageError as error:
            raise UsageError(f"{list_path}: line {listed.line_number}: {error}") from None
    votes = {name: Vote(len(images), NUM_CLASSES) for name, images in faces.items()}
    for index, listed in enumerate(listed_models, start=1):
        model = prediction.with_precision(prediction.load_model(listed.path), precision)
        predictor = prediction.ModelPredictor(model, listed.pixel_scale or pixel_scale)
        probabilities = {name: predictor.probabilities(images, batch_size, tta)
                         for name, images in faces.items()}
        for name, vote_of_set in votes.items():
            vote_of_set.add(probabilities[name], listed.weight)
        report(index, listed, probabilities)
        del model, predictor
    return votes
