"""Loading FER2013-style data: the course CSV, Kaggle's fer2013.csv, plain or gzipped, and `.npz` caches.

Formats accepted everywhere a data file is asked for:
- course train CSV: header `label,feature`, then `LABEL,P1 P2 ... P2304` per row;
- course test CSV:  header `id,feature`, then `ID,P1 P2 ... P2304` per row;
- Kaggle's original `fer2013.csv`: header `emotion,pixels,Usage`;
- any of the above gzipped (`.csv.gz`);
- an `.npz` cache written by `csv_to_npz.py` (arrays `train_images`, `train_labels`, `train_ids`,
  `test_images`, `test_ids`, and `class_names` when the classes are not FER2013's seven).

Pixels are 2,304 integers 0..255, a 48x48 grayscale face in row-major order; labels are indices
into the dataset's class names: FER2013's seven (0 angry ... 6 neutral) for the CSV formats.
The CSV parser is vectorised: the file is cut into chunks at line ends, each chunk is turned into
numbers with NumPy byte arithmetic on two threads, and only when a chunk fails its checks is it read
again line by line to name the offending line.
"""

import dataclasses
import gzip
import os
import re
import sys
import tokenize
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from common import classes, files
from common.classes import FER2013_CLASSES
from common.errors import BadValue, UsageError
IMAGE_SIZE = 48
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE

COURSE_TRAIN_HEADER = "label,feature"
COURSE_TEST_HEADER = "id,feature"
KAGGLE_HEADER = "emotion,pixels,Usage"
KNOWN_HEADERS = (COURSE_TRAIN_HEADER, COURSE_TEST_HEADER, KAGGLE_HEADER)

CHUNK_BYTES = 1 << 20  # small chunks keep NumPy's temporaries in cache and reuse their memory
MAX_LEADING_DIGITS = 9  # an id or label has at most this many digits


@dataclasses.dataclass
class Dataset:
    """Faces with their labels (None for unlabelled data) and ids (row numbers when the file has none)."""

    images: np.ndarray  # (rows, 48, 48) uint8
    labels: np.ndarray | None  # (rows,) int64 indices into class_names
    ids: np.ndarray  # (rows,) int64, or str: the image paths of an image-folder dataset
    source: str  # the file it came from, for messages
    usage: np.ndarray | None = None  # (rows,) index into USAGES, for Kaggle's fer2013.csv
    default_validation_rows: int | None = None  # the file's own validation part: its first rows
    class_names: tuple = FER2013_CLASSES  # the name of each label
    split_from_rows: int | None = None  # a training or validation part: the rows of the data split
    model_labelled_rows: int = 0  # rows added at the end, labelled by a model (self-labels, teachers)

    def __len__(self):
        return len(self.images)

    def subset(self, rows):
        """The rows selected by an index array, slice or boolean mask."""
        labels = None if self.labels is None else self.labels[rows]
        usage = None if self.usage is None else self.usage[rows]
        return Dataset(self.images[rows], labels, self.ids[rows], self.source, usage,
                       class_names=self.class_names, split_from_rows=self.split_from_rows)


USAGES = (b"Training", b"PublicTest", b"PrivateTest")


def standard_part(dataset, part):
    """FER2013's standard protocol for a file with a Usage column: the "train" part is the PublicTest
    rows (the default validation rows) followed by the Training rows; the "test" part is the
    PrivateTest rows, labelled, with ids = their row numbers in the file (from 0)."""
    if dataset.usage is None:
        return dataset
    if part == "test":
        chosen = dataset.subset(np.flatnonzero(dataset.usage == 2))
        chosen.usage = None
        return chosen
    public, training = np.flatnonzero(dataset.usage == 1), np.flatnonzero(dataset.usage == 0)
    chosen = dataset.subset(np.concatenate([public, training]))
    chosen.usage, chosen.ids = None, np.arange(len(chosen), dtype=np.int64)
    chosen.default_validation_rows = len(public) or None
    return chosen


def load_dataset(path, part="train", require_labels=False, detector=None, class_names=None):
    """Loads a CSV, CSV.gz or NPZ file, or a folder of images by class (`common.image_folders`;
    `detector` cuts their faces, None: chosen from the images; `class_names`: the classes and their
    order, None: from the folder names); `part` picks `train_*` or `test_*` arrays from an NPZ,
    `train/` or `test/` from a folder."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file or folder")
    files.check_not_special_file(path)
    if os.path.isdir(path):
        dataset = _load_image_folder(path, part, detector, class_names)
    elif path.endswith(".npz"):
        dataset = _load_npz(path, part)
    else:
        dataset = standard_part(parse_csv(path), part)
    if len(dataset) == 0:
        raise UsageError(f"{path}: holds no {part} faces")
    _refuse_duplicate_ids(dataset)
    if require_labels and dataset.labels is None:
        raise UsageError(f"{path}: has no labels (header '{COURSE_TEST_HEADER}'); expected a labelled "
                         f"file with header '{COURSE_TRAIN_HEADER}' or '{KAGGLE_HEADER}'")
    return dataset


FOLDER_VALIDATION_SHARE = 0.1  # a folder's default validation rows: this share of its images


def load_unlabelled_faces(path):
    """Faces whose labels, if they have any, go unused: a folder of images (one face each, cut as a
    training folder's are), or the test part of any data `load_dataset` reads; labels None."""
    from common import image_folders

    if os.path.isdir(path) and image_folders.holds_images(path):
        found = image_folders.read_unlabelled_folder(path)
        print("\n".join(image_folders.describe_counts(path, "unlabelled", found)))
        return Dataset(found.images, None, found.ids, path)
    faces = load_dataset(path, part="test")
    faces.labels = None
    return faces


def _load_image_folder(path, part, detector, class_names):
    """A Dataset of the images of `part` of an image-folder dataset, with per-class counts printed."""
    from common import image_folders

    found = image_folders.read_image_folder(path, part, detector, class_names)
    print("\n".join(image_folders.describe_counts(path, part, found)))
    validation_rows = max(1, round(len(found.labels) * FOLDER_VALIDATION_SHARE))  # folders come in every size
    return Dataset(found.images, found.labels, found.ids, path, class_names=found.class_names,
                   default_validation_rows=validation_rows)


def _refuse_duplicate_ids(dataset):
    """Test ids must be unique: each names one row of a result file."""
    ids, first_rows, counts = np.unique(dataset.ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        repeated = ids[counts > 1][0]
        rows = np.flatnonzero(dataset.ids == repeated)[:2]
        where = (f"lines {rows[0] + 2} and {rows[1] + 2}" if not dataset.source.endswith(".npz")
                 else f"rows {rows[0]} and {rows[1]}")
        raise UsageError(f"{dataset.source}: id {repeated} appears more than once ({where}); "
                         f"ids must be unique")


def parse_csv(path):
    """Parses a course or Kaggle CSV (plain or gzipped) into a Dataset, checking every row."""
    text = _read_bytes(path)
    if text.startswith(b"\xef\xbb\xbf"):
        text = text[3:]
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n")
    header_end = text.find(b"\n")
    if header_end < 0:
        header_end = len(text)
    header = text[:header_end].decode("utf-8", errors="replace").strip().replace('"', "")
    if header not in KNOWN_HEADERS:
        expected = "', '".join(KNOWN_HEADERS)
        if not header[:80].isprintable() or "\ufffd" in header[:80]:
            raise UsageError(f"{path}: is not a CSV text file (binary bytes in its first line); expected "
                             f"a CSV with the header '{expected}', an .npz cache or a folder of images by class")
        raise UsageError(f"{path}: line 1: expected a header '{expected}', got '{header[:80]}'")
    content_end = len(text)
    while content_end > 0 and text[content_end - 1] in b" \t\n":
        content_end -= 1
    if content_end <= header_end:
        raise UsageError(f"{path}: no data rows after the header '{header}'")
    if text[content_end:] != b"\n":
        text = text[:content_end] + b"\n"  # exactly one line end after the last row
    leading, pixels, usage = _parse_rows(path, text, header_end + 1, kaggle=header == KAGGLE_HEADER)
    images = pixels.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    if header == COURSE_TEST_HEADER:
        return Dataset(images, None, leading, path)
    bad_rows = np.flatnonzero(leading >= len(FER2013_CLASSES))
    if bad_rows.size:
        row = bad_rows[0]
        raise UsageError(f"{path}: line {row + 2}: label {leading[row]} is outside "
                         f"0..{len(FER2013_CLASSES) - 1}")
    return Dataset(images, leading, np.arange(len(images), dtype=np.int64), path, usage)


def save_npz(path, train, test):
    """Writes train and test datasets into one compressed `.npz` cache at the path the user named,
    atomically (an existing file is replaced, with a note on stderr). Their classes must agree."""
    if test.labels is not None and not classes.same(test.class_names, train.class_names):
        raise UsageError(f"{test.source}: its classes ({', '.join(test.class_names)}) are not those of "
                         f"{train.source} ({', '.join(train.class_names)})")
    arrays = {"train_images": train.images, "train_labels": train.labels.astype(np.uint8),
              "train_ids": train.ids, "test_images": test.images, "test_ids": test.ids}
    if tuple(train.class_names) != FER2013_CLASSES:
        arrays["class_names"] = np.array(train.class_names, dtype=str)
    if train.default_validation_rows:
        arrays["train_validation_rows"] = np.int64(train.default_validation_rows)
    if test.labels is not None:
        arrays["test_labels"] = test.labels.astype(np.uint8)
    with files.named_output(path) as temporary_path:
        with open(temporary_path, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def write_csv_dataset(path, images, labels=None):
    """Writes images in the course format (`label,feature`, or `id,feature` when `labels` is None),
    gzipped when `path` ends in `.gz`; never replaces an existing file. Returns the path written."""
    path = files.free_path(path)
    header = COURSE_TEST_HEADER if labels is None else COURSE_TRAIN_HEADER
    leading = np.arange(len(images)) if labels is None else labels
    lines = [header] + [f"{value},{' '.join(map(str, image.ravel()))}"
                        for value, image in zip(leading, images)]
    content = ("\n".join(lines) + "\n").encode()
    with files.atomic_output(path) as temporary_path:
        with (gzip.open if path.endswith(".gz") else open)(temporary_path, "wb") as handle:
            handle.write(content)
    return path


def split_validation(dataset, val_size, for_training=True, fallback=2400, folds=None, fold=None):
    """Splits off the first `val_size` rows (a count, or a fraction of the rows) as validation data;
    None: the file's own validation part (fer2013.csv's PublicTest rows), else `fallback`.
    `for_training=False` (scoring only) lets the validation rows be the whole file.
    With `folds`, the validation rows are instead block `fold` of `folds` equal blocks of rows
    (`val_size` unused): members trained on every fold hold out each row exactly once."""
    if folds:
        held_out = np.zeros(len(dataset), dtype=bool)
        held_out[fold_rows(len(dataset), folds, fold)] = True
        return _parts_of(dataset, ~held_out, held_out)
    if val_size is None:
        val_size = dataset.default_validation_rows or fallback
    rows = validation_row_count(len(dataset), val_size)
    if not for_training and rows == 0:
        raise BadValue("scoring needs validation rows; give a count or a fraction")
    if not for_training and rows > len(dataset):
        raise BadValue(f"{dataset.source} has only {len(dataset)} rows; ask for fewer validation rows")
    if for_training and rows >= len(dataset):
        raise BadValue(f"{rows} validation rows leave no training rows: {dataset.source} has "
                       f"{len(dataset)} rows; ask for fewer")
    return _parts_of(dataset, slice(rows, None), slice(0, rows))


def _parts_of(dataset, training_rows, validation_rows):
    """(training part, validation part) of `dataset`, each knowing how many rows it was split from."""
    parts = dataset.subset(training_rows), dataset.subset(validation_rows)
    for part in parts:
        part.split_from_rows = len(dataset)
    return parts


@dataclasses.dataclass(frozen=True)
class HeldOutRows:
    """The rows a model validated on, from its saved settings: the first `rows` of the `total_rows`
    of the data it trained on, or fold `fold` of `folds` equal blocks of them."""

    rows: int
    total_rows: int
    folds: int | None = None
    fold: int | None = None

    def split(self):
        """What tells two models' validation rows of one file apart."""
        return self.rows, self.folds, self.fold

    def describe(self):
        if self.folds:
            return f"fold {self.fold} of {self.folds} ({self.rows} of {self.total_rows} rows)"
        return f"the first {self.rows} of {self.total_rows} rows"


def held_out_rows(model_path):
    """The `HeldOutRows` of a model trained by this toolkit, read from the settings saved beside it;
    None when it has no settings file or they do not say (a model from elsewhere)."""
    settings = files.read_json(files.settings_path(model_path)) or {}
    rows, training_rows = settings.get("validation_rows"), settings.get("training_rows")
    if rows is None or training_rows is None:
        return None
    # the data's rows; settings written before "data_rows" was kept hold the data's training rows
    total_rows = settings.get("data_rows") or rows + training_rows
    return HeldOutRows(rows, total_rows, settings.get("folds"), settings.get("fold"))


def check_not_trained_on(model_paths, role, run_rows):
    """Refuses a model whose answers a training run learns from (a `role` such as "teacher" or
    "predictor") when its saved settings show other validation rows of the run's data than the
    run's own `run_rows` (`HeldOutRows`): it may have trained on the rows the run is scored on, and
    those would leak through its answers. A model of other data (another number of rows) gets a note
    on stderr: whether it saw the run's validation faces cannot be told from its settings."""
    for path in model_paths:
        held = held_out_rows(path)
        if held is None:
            raise BadValue(f"{path} has no settings file beside it naming its validation rows, so they "
                           f"are unknown; use a {role} trained by this toolkit")
        if held.total_rows != run_rows.total_rows:
            print(f"note: the {role} {path} trained on other data ({held.total_rows} rows, this run's "
                  f"{run_rows.total_rows}); if those held this run's validation faces, its figures are "
                  f"flattered", file=sys.stderr)
        elif held.split() != run_rows.split():
            raise BadValue(f"{path} was validated on {held.describe()}, this run on {run_rows.describe()}; "
                           f"a {role} must not have trained on the rows the run is scored on")


def models_validation_split(dataset, val_size, model_paths, fallback=2400):
    """(the other rows, the validation rows) of `dataset` to score the models `model_paths` on. Given
    `val_size`: the first rows it asks for, and a note on stderr for each model that trained on some
    of them (its saved settings show fewer validation rows of this data). Not given: the rows the
    models validated on, from the settings of those that trained on this data (their training and
    validation rows add up to its rows), which must agree; else the file's own validation part, or
    `fallback` rows, or every row of a smaller file. A BadValue names models of this data that held
    out different rows."""
    own = {path: held for path in model_paths
           if (held := held_out_rows(path)) and held.total_rows == len(dataset)}
    if val_size is not None:
        asked = validation_row_count(len(dataset), val_size)
        for path, held in own.items():
            if held.folds or held.rows < asked:
                print(f"note: {path} held out {held.describe()} of {dataset.source} and trained on the "
                      f"others: its accuracy on these {asked} rows is flattered (leave --val-size out to "
                      f"score it on its own rows)", file=sys.stderr)
        return split_validation(dataset, val_size, for_training=False)
    if len({held.split() for held in own.values()}) > 1:
        described = "; ".join(f"{path}: {held.describe()}" for path, held in own.items())
        raise BadValue(f"the models held out different rows of {dataset.source} ({described}); score "
                       f"them apart, or give the rows to score all of them on")
    if own:
        path, held = next(iter(own.items()))
        if not held.rows and not held.folds:
            raise BadValue(f"{path} trained on every row of {dataset.source}, so no rows are its "
                           f"own to score it on; give the rows to score it on (it is flattered on any)")
        return split_validation(dataset, held.rows, for_training=False, folds=held.folds, fold=held.fold)
    return split_validation(dataset, dataset.default_validation_rows or min(len(dataset), fallback),
                            for_training=False)


def fold_rows(total_rows, folds, fold):
    """The rows (a slice) of block `fold` of `folds` equal blocks of `total_rows` rows."""
    if not 0 <= fold < folds <= total_rows:
        raise BadValue(f"fold {fold} of {folds} does not fit {total_rows} rows; folds are numbered "
                       f"0..{folds - 1}")
    return slice(total_rows * fold // folds, total_rows * (fold + 1) // folds)


def repeated_rows(dataset):
    """Which rows have an exact pixel copy among the other rows of `dataset` (a boolean mask)."""
    _, inverse, counts = np.unique(dataset.images.reshape(len(dataset), -1), axis=0, return_inverse=True,
                                   return_counts=True)
    return counts[inverse.ravel()] > 1


def exact_copies(val_set, train_set):
    """Which validation rows have an exact pixel copy among the training rows (a boolean mask), and
    which of those copies carry another label than the validation row (a second mask)."""
    labels_by_pixels = _labels_by_pixels(train_set)
    copied = np.zeros(len(val_set), dtype=bool)
    relabelled = np.zeros(len(val_set), dtype=bool)
    for row, (image, label) in enumerate(zip(val_set.images, val_set.labels)):
        copy_labels = labels_by_pixels.get(image.tobytes())
        if copy_labels is not None:
            copied[row] = True
            relabelled[row] = bool(copy_labels - {int(label)})
    return copied, relabelled


def select_rows(dataset, rows):
    """The rows numbered (from 0) in `rows`; a BadValue when one is out of range."""
    for row in rows:
        if row >= len(dataset):
            raise BadValue(f"row {row} is out of range; {dataset.source} has {len(dataset)} rows "
                           f"(0..{len(dataset) - 1})")
    return dataset.subset(rows)


def split_labelled(dataset, labeled_ratio, seed=0):
    """Keeps the labels of a `labeled_ratio` share of each class (chosen at random with `seed`);
    returns (labelled rows, the other rows with their labels kept only for measuring)."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(dataset), dtype=bool)
    for label in range(len(dataset.class_names)):
        rows = np.flatnonzero(dataset.labels == label)
        keep[rng.permutation(rows)[: int(round(len(rows) * labeled_ratio))]] = True
    return dataset.subset(keep), dataset.subset(~keep)


def with_model_labelled_rows(dataset, added, source):
    """One labelled Dataset: the rows of `dataset` followed by those of `added`, faces labelled by a
    model (self-labels, teachers' answers) in the same classes; it keeps the count of the rows
    `dataset` was split from and counts the rows a model labelled."""
    return Dataset(np.concatenate([dataset.images, added.images]),
                   np.concatenate([dataset.labels, added.labels]),
                   np.concatenate([dataset.ids, added.ids]), source, class_names=dataset.class_names,
                   split_from_rows=dataset.split_from_rows,
                   model_labelled_rows=dataset.model_labelled_rows + len(added))


def without_copies_of(dataset, other):
    """`dataset` less its rows whose pixels are an exact copy of a face of `other`, and how many
    rows that left out."""
    others = _labels_by_pixels(other)
    copied = np.array([image.tobytes() in others for image in dataset.images], dtype=bool)
    return dataset.subset(~copied), int(copied.sum())


def _labels_by_pixels(dataset):
    """Each face of `dataset` as its pixel bytes, mapped to the labels its copies carry (an empty set
    for unlabelled faces)."""
    labels = dataset.labels if dataset.labels is not None else [None] * len(dataset)
    labels_by_pixels = {}
    for image, label in zip(dataset.images, labels):
        labels_by_pixels.setdefault(image.tobytes(), set()).update(() if label is None else (int(label),))
    return labels_by_pixels


def validation_row_count(total_rows, val_size):
    """Turns a count or a fraction into the number of validation rows (at least 1)."""
    if isinstance(val_size, float):
        return max(1, int(round(total_rows * val_size)))
    return int(val_size)


def _read_bytes(path):
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                text = handle.read()
        else:
            with open(path, "rb") as handle:
                text = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UsageError(f"{path}: cannot be read ({reason})") from None
    if not text.strip():
        raise UsageError(f"{path}: file is empty")
    return text


KAGGLE_USAGE_FIELD = re.compile(rb",[^,\n]*\n")  # a wrong line stays wrong, for the line check
KAGGLE_USAGE_VALUE = re.compile(rb",([^,\n]*)\n")


def _kaggle_to_course_rows(path, body):
    """Rewrites `emotion,pixels,Usage` rows as `emotion,pixels` rows, keeping one line per row."""
    rows = []
    for line_number, line in enumerate(body.rstrip().split(b"\n"), start=2):
        fields = line.split(b",")
        if len(fields) != 3:
            raise UsageError(f"{path}: line {line_number}: expected 3 comma-separated fields "
                             f"(emotion,pixels,Usage), got {len(fields)}")
        if fields[2].strip() not in USAGES:
            raise UsageError(f"{path}: line {line_number}: Usage {fields[2].decode(errors='replace')!r} "
                             f"is not one of Training, PublicTest, PrivateTest")
        rows.append(fields[0] + b"," + fields[1].strip(b'"'))
    return b"\n".join(rows) + b"\n"


def _parse_rows(path, body, body_start, kaggle=False):
    """Parses the `LEADING,P1 ... P2304` lines of `body[body_start:]` (which ends with a line end);
    `kaggle=True`: `EMOTION,"P1 ... P2304",USAGE` lines, rewritten chunk by chunk.

    Returns the leading values (labels or ids), the pixels as a (rows, 2304) uint8 array, and for
    Kaggle lines each row's Usage as an index into USAGES (else None).
    """
    buffer = np.frombuffer(body, dtype=np.uint8)
    chunk_bounds = []  # (first byte, end byte, first row) of each chunk of whole lines
    start, row = body_start, 0
    while start < len(body):
        end = body.find(b"\n", min(start + CHUNK_BYTES, len(body) - 1)) + 1 or len(body)
        chunk_bounds.append((start, end, row))
        row += body.count(b"\n", start, end)
        start = end
    leading = np.empty(row, dtype=np.int64)
    pixels = np.empty((row, NUM_PIXELS), dtype=np.uint8)
    usage = np.zeros(row, dtype=np.int8) if kaggle else None

    def parse_chunk(bounds):
        start, end, first_row = bounds
        chunk = buffer[start:end]
        if kaggle:
            chunk_text = body[start:end].replace(b'"', b"")
            try:
                usages = [USAGES.index(name.strip()) for name in KAGGLE_USAGE_VALUE.findall(chunk_text)]
            except ValueError:
                return False
            usage[first_row:first_row + len(usages)] = usages
            chunk = np.frombuffer(KAGGLE_USAGE_FIELD.sub(b"\n", chunk_text), dtype=np.uint8)
        chunk_leading = _parse_chunk(chunk, pixels[first_row:])
        if chunk_leading is None:
            return False
        leading[first_row:first_row + len(chunk_leading)] = chunk_leading
        return True

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        chunks_ok = list(pool.map(parse_chunk, chunk_bounds))
    if not all(chunks_ok):
        rows_text = body[body_start:]
        _raise_first_bad_line(path, _kaggle_to_course_rows(path, rows_text) if kaggle else rows_text)
        raise UsageError(f"{path}: could not be parsed")  # unreachable when the line check is complete
    return leading, pixels, usage


def _parse_chunk(chunk, pixels_out):
    """Parses whole lines into `pixels_out` and returns their leading values, or None if any is wrong."""
    digits = chunk - np.uint8(ord("0"))  # non-digit bytes wrap around to values >= 10
    separators = np.flatnonzero(digits >= 10)  # the byte after each number
    if separators.size % (NUM_PIXELS + 1):
        return None
    rows = separators.size // (NUM_PIXELS + 1)
    separator_bytes = chunk[separators].reshape(rows, NUM_PIXELS + 1)
    if not ((separator_bytes[:, 0] == ord(",")).all()
            and (separator_bytes[:, 1:-1] == ord(" ")).all()
            and (separator_bytes[:, -1] == ord("\n")).all()):
        return None
    lengths = np.diff(separators, prepend=-1) - 1  # digits in each number
    lengths = lengths.reshape(rows, NUM_PIXELS + 1)
    pixel_lengths = lengths[:, 1:]
    if pixel_lengths.min() < 1 or pixel_lengths.max() > 3:
        return None
    pixel_ends = separators.reshape(rows, NUM_PIXELS + 1)[:, 1:]
    values = digits[pixel_ends - 1].astype(np.uint16)  # (rows, 2304)
    values += np.where(pixel_lengths >= 2, digits[pixel_ends - 2], 0).astype(np.uint16) * 10
    values += np.where(pixel_lengths >= 3, digits[pixel_ends - 3], 0).astype(np.uint16) * 100
    if values.max() > 255:
        return None
    pixels_out[:rows] = values
    leading_lengths = lengths[:, 0]
    if leading_lengths.min() < 1 or leading_lengths.max() > MAX_LEADING_DIGITS:
        return None
    leading_ends = separators[:: NUM_PIXELS + 1]
    leading = np.zeros(rows, dtype=np.int64)
    place = 1
    for position in range(1, leading_lengths.max() + 1):
        digit = digits[np.maximum(leading_ends - position, 0)].astype(np.int64)
        leading += np.where(leading_lengths >= position, digit, 0) * place
        place *= 10
    return leading


def _raise_first_bad_line(path, body):
    """Reads the rows one by one and raises a UsageError naming the first line that is wrong."""
    for line_number, line in enumerate(body.split(b"\n")[:-1], start=2):
        text = line.decode("utf-8", errors="replace")
        fields = text.split(",")
        if len(fields) != 2:
            raise UsageError(f"{path}: line {line_number}: expected 2 comma-separated fields, "
                             f"got {len(fields)}")
        leading, feature = fields
        if not leading.isdigit() or not leading.isascii():
            raise UsageError(f"{path}: line {line_number}: {leading!r} is not a label or id "
                             f"(expected a non-negative integer)")
        if len(leading) > MAX_LEADING_DIGITS:
            raise UsageError(f"{path}: line {line_number}: {leading!r} has more than "
                             f"{MAX_LEADING_DIGITS} digits")
        pixels = feature.split(" ")
        if len(pixels) != NUM_PIXELS:
            raise UsageError(f"{path}: line {line_number}: expected {NUM_PIXELS} pixel values "
                             f"separated by single spaces, got {len(pixels)}")
        for column, pixel in enumerate(pixels, start=1):
            if not (pixel.isdigit() and pixel.isascii() and int(pixel) <= 255):
                raise UsageError(f"{path}: line {line_number}: pixel {column} is {pixel!r}, "
                                 f"expected an integer in 0..255")


def _load_npz(path, part):
    """The `part_*` arrays of a csv_to_npz.py cache, checked: no pickles, consistent lengths, labels
    that index its class names (FER2013's seven when it names none)."""
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path}: not an .npz archive; expected a cache written by csv_to_npz.py")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files
                      if name.startswith(part + "_") or name == "class_names"}
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile, tokenize.TokenError,
            SyntaxError, KeyError) as error:  # NumPy reads a damaged array header with tokenize
        reason = " ".join(str(error).split()) or type(error).__name__
        raise UsageError(f"{path}: not a readable .npz cache ({reason}); write it again with "
                         f"csv_to_npz.py") from None
    if f"{part}_images" not in arrays:
        raise UsageError(f"{path}: has no '{part}_images' array; expected a cache written by "
                         f"csv_to_npz.py")
    images = arrays[f"{part}_images"]
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise UsageError(f"{path}: '{part}_images' is {images.dtype} {images.shape}, "
                         f"expected uint8 (rows, {IMAGE_SIZE}, {IMAGE_SIZE})")
    class_names = arrays.get("class_names")
    class_names = FER2013_CLASSES if class_names is None else _checked_class_names(path, class_names)
    labels = arrays.get(f"{part}_labels")
    if labels is not None:
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer) or (
                labels.size and (labels.min() < 0 or labels.max() >= len(class_names))):
            raise UsageError(f"{path}: '{part}_labels' must hold {len(images)} integer labels in "
                             f"0..{len(class_names) - 1}, one per image")
        labels = labels.astype(np.int64)
    ids = arrays.get(f"{part}_ids")
    textual = ids is not None and ids.dtype.kind == "U"  # the image paths of an image-folder dataset
    if ids is not None and (ids.shape != (len(images),) or not (textual or np.issubdtype(ids.dtype, np.integer))):
        raise UsageError(f"{path}: '{part}_ids' must hold {len(images)} integer or text ids, one per image; "
                         f"it has shape {ids.shape}")
    ids = np.arange(len(images), dtype=np.int64) if ids is None else ids if textual else ids.astype(np.int64)
    validation_rows = arrays.get(f"{part}_validation_rows")
    return Dataset(images, labels, ids, path,
                   default_validation_rows=None if validation_rows is None else int(validation_rows),
                   class_names=class_names)


def _checked_class_names(path, class_names):
    """The `class_names` array of an .npz cache as a tuple: at least two different texts."""
    names = class_names.tolist() if class_names.dtype.kind == "U" and class_names.ndim == 1 else None
    if not names or len(names) < 2 or len(set(names)) != len(names):
        raise UsageError(f"{path}: 'class_names' must hold two or more different class names; it is "
                         f"{class_names.dtype} {class_names.shape}")
    return tuple(names)
