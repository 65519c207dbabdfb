"""Class names: which expression each label of a dataset or output of a model stands for.

FER2013's seven classes (`FER2013_CLASSES`, labels 0 angry ... 6 neutral) are the default:
every CSV is in them, and a model file that names no classes and has seven outputs is taken to be
in them. Other class sets come from image folders (`common.image_folders`) or `--classes`; a model
trained on one keeps its class names in its `.h5` file (an HDF5 attribute plain Keras ignores) and
in its settings file. Names are compared without regard to case, with FER2013's usual other spellings
(`anger`, `happiness`, `sadness`) taken as its own names.
"""

import dataclasses
import json

import h5py
import numpy as np

from common.errors import BadValue, UsageError

FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # labels 0..6
FER2013_SPELLINGS = {"anger": "angry", "happiness": "happy", "sadness": "sad"}
H5_ATTRIBUTE = "class_names"  # a JSON list in the root of a model's .h5 file


def canonical(name):
    """The name classes are compared by: lower case, FER2013's other spellings as its own."""
    lowered = name.strip().lower()
    return FER2013_SPELLINGS.get(lowered, lowered)


def parse_class_list(text):
    """`a,b,c` (`--classes`) as a tuple of names, checked: two or more, none empty, none twice."""
    names = tuple(name.strip() for name in text.split(","))
    if len(names) < 2 or not all(names):
        raise BadValue(f"expected two or more comma-separated class names, e.g. happy,sad,neutral; got {text!r}")
    check_distinct(names, repr(text))
    return names


def check_distinct(names, where):
    """Refuses two names that are the same class (by `canonical`)."""
    seen = {}
    for name in names:
        if canonical(name) in seen:
            raise UsageError(f"{where}: {seen[canonical(name)]!r} and {name!r} name the same class")
        seen[canonical(name)] = name


def default_order(names):
    """The classes of a set of folder names, in label order: FER2013's order when every name is one
    of its classes (all seven give exactly its labels 0..6), else sorted by name."""
    if all(canonical(name) in FER2013_CLASSES for name in names):
        present = {canonical(name) for name in names}
        return tuple(name for name in FER2013_CLASSES if name in present)
    return tuple(sorted(names, key=canonical))


def label_of(name, class_names):
    """The label of a class named `name` (any case or spelling) among `class_names`, or None."""
    wanted = canonical(name)
    return next((label for label, known in enumerate(class_names) if canonical(known) == wanted), None)


def same(first, second):
    """Whether two class lists name the same classes in the same order."""
    return len(first) == len(second) and all(canonical(a) == canonical(b) for a, b in zip(first, second))


def check_same(expected, given, given_where, expected_where):
    """Refuses `given` classes that are not `expected` (same names, same order), naming both."""
    if not same(expected, given):
        raise UsageError(f"{given_where}: its classes ({', '.join(given)}) are not those of "
                         f"{expected_where} ({', '.join(expected)})")


def relabel(dataset, class_names, model_name):
    """A labelled dataset (`data.Dataset`) with its labels as indices into a model's `class_names`:
    each of the data's classes must be one of the model's (a UsageError naming the first that is
    not). Scoring a model on data with fewer classes, or the same in another order, is right."""
    if dataset.labels is None or same(dataset.class_names, class_names):
        return dataclasses.replace(dataset, class_names=tuple(class_names))
    labels = [label_of(name, class_names) for name in dataset.class_names]
    mapping = np.array([-1 if label is None else label for label in labels])
    present = np.unique(dataset.labels)
    unknown = [dataset.class_names[label] for label in present if mapping[label] < 0]
    if unknown:
        raise UsageError(f"{dataset.source}: has the class{'es' if len(unknown) > 1 else ''} "
                         f"{', '.join(unknown)}, which {model_name} lacks (its classes: {', '.join(class_names)})")
    return dataclasses.replace(dataset, labels=mapping[dataset.labels], class_names=tuple(class_names))


def saved_class_names(model_path):
    """The class names stored in a model's `.h5` file, or None (not an .h5 file, or none stored)."""
    try:
        with h5py.File(model_path, "r") as handle:
            stored = handle.attrs.get(H5_ATTRIBUTE)
    except (OSError, ValueError):
        return None
    if stored is None:
        return None
    names = json.loads(stored.decode() if isinstance(stored, bytes) else stored)
    return tuple(names) if isinstance(names, list) and all(isinstance(name, str) for name in names) else None


def store_class_names(model_path, class_names):
    """Writes the class names into a model's `.h5` file."""
    with h5py.File(model_path, "a") as handle:
        handle.attrs[H5_ATTRIBUTE] = json.dumps(list(class_names))


def model_class_names(model_path, output_count):
    """The classes of a model with `output_count` outputs: those stored in its file, else FER2013's
    seven for seven outputs, else `class 0`, `class 1`, ...; a UsageError when the stored names do
    not fit the outputs."""
    stored = saved_class_names(model_path)
    if stored is not None:
        if len(stored) != output_count:
            raise UsageError(f"{model_path}: names {len(stored)} classes but has {output_count} outputs")
        return stored
    return default_class_names(output_count)


def default_class_names(output_count):
    """The classes of a model that names none: FER2013's seven for seven outputs, else `class 0`,
    `class 1`, ..."""
    if output_count == len(FER2013_CLASSES):
        return FER2013_CLASSES
    return tuple(f"class {label}" for label in range(output_count))
