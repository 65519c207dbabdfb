"""The one place that names output files and writes them safely.

Every result is written to a temporary file in the destination folder and then moved into place, so
an interrupted run leaves no half-written model or CSV. One rule for files that exist: a path the
user named (a result CSV, `-o`) is written as named, an existing file replaced atomically with a
note on stderr (`named_output`, `move_into_place`); names the toolkit makes up (models named by
accuracy, `predictions.csv` and annotated copies in `--out`, plots, exports beside the model) get a
`-1`, `-2`, ... suffix instead of replacing anything (`free_path`, `free_model_path`).
"""

import atexit
import contextlib
import csv
import datetime
import gzip
import json
import os
import re
import shutil
import socket
import sys
import tempfile

MODEL_SUFFIX = ".h5"
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAINED_FOLDER = os.path.join(REPOSITORY, "pretrained")
DEFAULT_SHIPPED_MODEL = "pretrained"
SHIPPED_MODEL_FOLDERS = {  # the names that stand for the models that come with the toolkit
    DEFAULT_SHIPPED_MODEL: PRETRAINED_FOLDER,  # the most accurate on validation: every script's default
    "pretrained-vgg": os.path.join(PRETRAINED_FOLDER, "vgg"),  # the VGG-style CNN shipped beside it
    "pretrained-small": PRETRAINED_FOLDER,  # the small CNN, which the default model now is
}
HISTORY_SUFFIX = "_history.csv"
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_unseen_accuracy", "seconds")
VAL_ACCURACY = HISTORY_COLUMNS.index("val_accuracy")
EPOCH_SECONDS = HISTORY_COLUMNS.index("seconds")  # the epoch's wall time, its validation included
SETTINGS_SUFFIX = "_settings.json"


def model_stem(val_accuracy, prefix=""):
    """The file stem of a model named by its validation accuracy, e.g. `0.643750` or `dnn_0.383120`."""
    return f"{prefix}{val_accuracy:.6f}"


def pretrained_model_path(name=DEFAULT_SHIPPED_MODEL):
    """A model that comes with the toolkit: the one `.h5` file in the folder of shipped model `name`
    (a key of SHIPPED_MODEL_FOLDERS)."""
    folder = SHIPPED_MODEL_FOLDERS[name]
    names = sorted(entry for entry in os.listdir(folder) if entry.endswith(MODEL_SUFFIX)) \
        if os.path.isdir(folder) else []
    if len(names) != 1:
        from common.errors import UsageError
        raise UsageError(f"{folder}: expected exactly one .h5 model (the shipped model '{name}'), "
                         f"found {len(names)}; give a model file explicitly")
    return os.path.join(folder, names[0])


def model_path_or_shipped(text):
    """`text` itself (a model file or list), or the path of the shipped model it names ('pretrained',
    'pretrained-vgg', 'pretrained-small')."""
    return pretrained_model_path(text) if text in SHIPPED_MODEL_FOLDERS else text


def shipped_model_name(folder):
    """The name of the shipped model kept in `folder`, or None for a folder of no shipped model."""
    return next((name for name, shipped_folder in SHIPPED_MODEL_FOLDERS.items()
                 if os.path.abspath(folder) == os.path.abspath(shipped_folder)), None)


def repository_relative_path(path):
    """`path` relative to the repository when it lies inside it (as the README's commands name files),
    else absolute."""
    absolute = os.path.abspath(path)
    inside = os.path.commonpath([absolute, REPOSITORY]) == REPOSITORY
    return os.path.relpath(absolute, REPOSITORY) if inside else absolute


def printable_path(path):
    """`path` as UTF-8-safe text for a CSV or a message: the bytes of a file name that is not UTF-8
    (which Python keeps as lone surrogates) become \\xNN, e.g. 'caf\\xe9.jpg'."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def check_not_special_file(path):
    """A UsageError for an existing path that is neither a folder nor a regular file (a pipe, a
    device, a socket): reading one may wait for ever, or never end."""
    from common.errors import UsageError
    if os.path.exists(path) and not os.path.isdir(path) and not os.path.isfile(path):
        raise UsageError(f"{path}: is a pipe, device or socket, not a file; expected a file on disk "
                         f"(or a folder)")


def check_writable_folder(folder, needed_bytes=0):
    """Proves that `folder` can be written (a probe file made and removed in it, or in its nearest
    existing parent when it does not exist yet, without creating it) and has `needed_bytes` free;
    a UsageError says what is wrong."""
    from common.errors import UsageError
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"{folder}: cannot be made, {existing} is a file")
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".write-probe-", dir=existing)
        os.close(descriptor)
        os.unlink(probe)
    except OSError as error:
        raise UsageError(f"{folder}: cannot write there ({error.strerror or error})") from None
    free = shutil.disk_usage(existing).free
    if free < needed_bytes:
        raise UsageError(f"{folder}: {free / 1e6:.0f} MB free, about {needed_bytes / 1e6:.0f} MB "
                         f"needed; free some space or choose another folder")


def same_folder(first, second):
    """Whether two paths name one existing folder (links and spellings aside)."""
    return os.path.isdir(first) and os.path.isdir(second) and os.path.samefile(first, second)


def history_path(model_path):
    """`models/0.643750.h5` -> `models/0.643750_history.csv`."""
    return _strip_model_suffix(model_path) + HISTORY_SUFFIX


def settings_path(model_path):
    """`models/0.643750.h5` -> `models/0.643750_settings.json`."""
    return _strip_model_suffix(model_path) + SETTINGS_SUFFIX


def plot_stem(model_path, out_dir=None):
    """Where a model's plots go: `<out_dir or the model's folder>/<model name without .h5>`."""
    folder = out_dir or os.path.dirname(model_path) or "."
    return os.path.join(folder, os.path.basename(_strip_model_suffix(model_path)))


def free_model_path(folder, stem):
    """`folder/stem.h5`, or `folder/stem-1.h5`, `-2`, ... when that model or its side files exist."""
    suffix_number = 0
    while True:
        candidate_stem = stem if suffix_number == 0 else f"{stem}-{suffix_number}"
        model_path = os.path.join(folder, candidate_stem + MODEL_SUFFIX)
        taken = [model_path, history_path(model_path), settings_path(model_path)]
        if not any(os.path.exists(path) for path in taken):
            return model_path
        suffix_number += 1


def free_path(path):
    """`path` itself, or `name-1.ext`, `name-2.ext`, ... when it already exists."""
    root, extension = os.path.splitext(path)
    candidate = path
    suffix_number = 0
    while os.path.exists(candidate):
        suffix_number += 1
        candidate = f"{root}-{suffix_number}{extension}"
    return candidate


@contextlib.contextmanager
def atomic_output(path, replace=False):
    """Yields a temporary path beside `path` (same extension); moves it to `path` when the block succeeds.

    Writes nothing when the block raises. Refuses to replace an existing `path` unless `replace`.
    """
    temporary_path = _new_partial_file(path)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary_path, 0o666 & ~umask)  # the permissions a plain open() would have given
    try:
        yield temporary_path
        if replace:
            os.replace(temporary_path, path)
        else:
            os.link(temporary_path, path)  # fails, rather than replaces, if `path` appeared meanwhile
    finally:
        if os.path.exists(temporary_path):
            os.unlink(temporary_path)


@contextlib.contextmanager
def named_output(path):
    """`atomic_output` for a path the user named: an existing file there is replaced (atomically),
    and stderr says so. (Names the toolkit makes up get a free name instead: `free_path`.)"""
    existed = os.path.exists(path)
    with atomic_output(path, replace=True) as temporary_path:
        yield temporary_path
    if existed:
        print(f"replaced {path}", file=sys.stderr)


def temporary_sibling(path):
    """A hidden, unused path beside `path` with its extension, cleaned up like `.partial` files."""
    temporary_path = _new_partial_file(path)
    os.unlink(temporary_path)
    return temporary_path


def _new_partial_file(path):
    """Creates and returns an empty hidden `.partial` file beside `path` (its folder made if
    missing), after removing those that dead processes left there."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    remove_abandoned_partials(folder)
    extension = os.path.splitext(path)[1]
    descriptor, temporary_path = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.{os.getpid()}-", suffix=".partial" + extension, dir=folder)
    os.close(descriptor)
    return temporary_path


def move_into_place(temporary_path, path):
    """Moves a finished file or folder onto the path the user named, replacing what is there (and
    saying so on stderr)."""
    existed = os.path.exists(path)
    if os.path.isdir(temporary_path) and existed:
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    os.replace(temporary_path, path)
    if existed:
        print(f"replaced {path}", file=sys.stderr)


PARTIAL_NAME = re.compile(r"^\..*\.(\d+)-[^.]+\.partial(\.[^.]*)?$")


def remove_abandoned_partials(folder):
    """Removes the hidden temporary files that killed runs left in `folder` (those whose writing
    process no longer exists)."""
    for name in os.listdir(folder):
        match = PARTIAL_NAME.match(name)
        if match and not process_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))


def process_alive(pid):
    """Whether process `pid` of this host still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


_HELD_LOCKS = []


def release_process_locks():
    """Releases every ProcessLock this process holds (also done when it exits)."""
    while _HELD_LOCKS:
        _HELD_LOCKS.pop().release()


atexit.register(release_process_locks)


class ProcessLock:
    """A lock file naming the process that holds it (its id, host and start time), removed when the
    process ends. `acquire` raises a UsageError naming the holder while that process runs; a lock
    left by a process that no longer runs (on this host) is taken over with a note on stderr."""

    def __init__(self, path, what):
        self.path, self.what = path, what  # `what` names the locked thing in messages

    def acquire(self):
        from common.errors import UsageError
        holder = self.holder()
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            holder = None  # this process's own lock from an earlier run in it
        if holder and (holder.get("host") != socket.gethostname() or process_alive(int(holder["pid"]))):
            raise UsageError(f"{self.what} is already being run by process {holder['pid']} on "
                             f"{holder['host']} since {holder['started']} (lock {self.path}); wait for it "
                             f"or stop it")
        if holder:
            print(f"note: taking over {self.path} from process {holder['pid']}, which no longer runs",
                  file=sys.stderr)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        write_json(self.path, {"pid": os.getpid(), "host": socket.gethostname(),
                               "started": datetime.datetime.now().isoformat(timespec="seconds")},
                   replace=True)
        _HELD_LOCKS.append(self)
        return self

    def release(self):
        if (self.holder() or {}).get("pid") == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def holder(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                holder = json.load(handle)
            int(holder["pid"]), holder["host"], holder["started"]
            return holder
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exception):
        self.release()


def write_csv(path, header, rows, replace=False, named=False):
    """Writes a CSV atomically, gzipped when `path` ends in `.gz`; `named`: a path the user named
    (`named_output`)."""
    with (named_output(path) if named else atomic_output(path, replace)) as temporary_path:
        opener = gzip.open if path.endswith(".gz") else open
        # UTF-8; text that cannot be (a file name that is not UTF-8, kept as lone surrogates) as \uXXXX
        with opener(temporary_path, "wt", newline="", encoding="utf-8", errors="backslashreplace") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)


def write_json(path, content, replace=False):
    """Writes a JSON document atomically."""
    with atomic_output(path, replace) as temporary_path:
        with open(temporary_path, "w") as handle:
            json.dump(content, handle, indent=2, sort_keys=True)
            handle.write("\n")


def read_json(path):
    """The JSON document at `path`, or None when there is none."""
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def read_history(model_path):
    """The per-epoch rows saved beside a model, each as HISTORY_COLUMNS (files written before the
    later columns have NaN there), or [] when there are none."""
    path = history_path(model_path)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return [full_history_row([int(row[0]), *map(float, row[1:])]) for row in rows]


def full_history_row(row):
    """A history row with NaN for the columns it was written without (older files and backups)."""
    return row + [float("nan")] * (len(HISTORY_COLUMNS) - len(row))


def _strip_model_suffix(model_path):
    if model_path.endswith(MODEL_SUFFIX):
        return model_path[: -len(MODEL_SUFFIX)]
    return os.path.splitext(model_path)[0]
