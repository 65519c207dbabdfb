"""Model lists, and the check that a path names a model or a model list.

A model list has one model a line, `WEIGHT PATH`: the weight a positive number, the path relative
to the list file's folder or absolute, or the name of a shipped model (`pretrained`,
`pretrained-vgg`). A line may end with `pixel-scale=raw|unit|symmetric` for a
model from elsewhere that expects pixel values 0..255, 0..1 or -1..1 (this toolkit's models take
raw values). Blank lines and `#` comments are ignored. A model file is named `.h5` or `.keras`
(`config.MODEL_SUFFIXES`); any other file is read as a list.
"""

import dataclasses
import os

import numpy as np

from common import config, files
from common.errors import UsageError

PIXEL_SCALE_PREFIX = "pixel-scale="
MODEL_FILE_SIGNATURES = (b"\x89HDF\r\n\x1a\n", b"PK\x03\x04")  # HDF5 (.h5) and zip (.keras)


@dataclasses.dataclass
class ListedModel:
    weight: float
    path: str
    line_number: int  # 0: a model file given by itself
    pixel_scale: str | None = None  # None: the command line's --pixel-scale


def error_at_line(list_path, listed, error):
    """The UsageError for `error` of a listed model, naming its line of the list (a model file given
    by itself has no line: the error names the file already)."""
    if listed.line_number:
        return UsageError(f"{list_path}: line {listed.line_number}: {error}")
    return UsageError(str(error))


def has_model_file_name(path):
    """Whether the path is named as a model file (`.h5` or `.keras`); anything else is a list."""
    return path.lower().endswith(config.MODEL_SUFFIXES)


def check_model_file(path, expected="a .h5 or .keras file", flag=""):
    """Refuses (UsageError) a path that is not an existing model file (a list included); `expected`
    says what was, `flag` names the option it came from."""
    if not has_model_file_name(path) or not os.path.isfile(path):
        raise UsageError(f"{flag + ' ' if flag else ''}{path}: no such model file (expected {expected})")


def check_model_source(path, what="model"):
    """The models behind a model file or a model list, each checked to exist (list lines parsed),
    before anything loads: a UsageError names the file or line. `what` names the argument."""
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a folder, expected a .h5 or .keras {what} file or a model list")
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such {what} file or model list")
    if has_model_file_name(path):
        check_model_file_signature(path, path)
        return [ListedModel(1.0, path, 0)]
    return read_model_list(path)


def check_model_file_signature(path, where):
    """Refuses (UsageError naming `where`) a model file whose first bytes are not those of an HDF5
    (.h5) or zip (.keras) file: a cheap check of every model before any loads."""
    with open(path, "rb") as handle:
        if not handle.read(8).startswith(MODEL_FILE_SIGNATURES):
            raise UsageError(f"{where}: not a usable Keras model file (neither HDF5 nor zip); expected a "
                             f".h5 or .keras file saved by Keras 3")


def read_model_list(list_path):
    """The weighted models of a list file, each checked to exist; a UsageError names the bad line,
    or says that the file is a model file named as something else."""
    if not os.path.isfile(list_path):
        raise UsageError(f"{list_path}: no such model list")
    with open(list_path, "rb") as handle:
        if handle.read(8).startswith(MODEL_FILE_SIGNATURES):
            raise UsageError(f"{list_path}: is a model file, not a list of 'WEIGHT PATH' lines; rename it "
                             "*.h5 or *.keras to use it as one model")
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
        if pixel_scale not in config.PIXEL_SCALES:
            raise UsageError(f"{where}: {option!r}: expected {PIXEL_SCALE_PREFIX}"
                             + "|".join(config.PIXEL_SCALES))
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
    try:
        path = files.model_path_or_shipped(path)
    except UsageError as error:  # a shipped model's name, but none is shipped there
        raise UsageError(f"{where}: {error}") from None
    path = path if os.path.isabs(path) else os.path.join(folder, path)
    if os.path.isdir(path):
        raise UsageError(f"{where}: {path} is a folder, expected a model file")
    if not os.path.isfile(path):
        raise UsageError(f"{where}: model {path} does not exist")
    check_model_file_signature(path, f"{where}: {path}")
    return ListedModel(weight, path, line_number, pixel_scale)
