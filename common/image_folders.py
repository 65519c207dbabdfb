"""Datasets as folders of images named by class: `DIR/<class>/<images>`, the form FER2013 is most
often downloaded in today (`train/angry/*.jpg`, ..., `test/surprise/*.jpg`) and the form of most
other expression sets.

- With `train/` and `test/` (or `val/`) subfolders those are the parts; without, the folder is the
  training part. A test part's class folders give labelled test rows.
- Class names are the folder names (`common.classes`). FER2013's seven (`angry disgust fear happy
  sad surprise neutral`, any case; `anger`, `happiness`, `sadness` accepted) keep FER2013's order, so
  a JPEG tree of FER2013 gives the same labels 0..6 as its CSV; other sets are sorted by name, or
  ordered as given (`--classes a,b,c`, or a model's classes). A test part takes the training part's
  classes: a test class folder the training part lacks is refused.
- Images of any size and colour. Face crops (every image at most 100 pixels on its longer side, or
  every image square) are resized whole; otherwise each image's face is found and cut out exactly
  as `predict.py` does (`faces.find_faces`); an image with no face or several is counted and
  skipped, as are files that are not images or cannot be decoded. Counts are printed per class.
- Ids are the images' paths relative to the part's folder, e.g. `happy/im12.jpg`; rows come in a
  fixed shuffled order (the same every time), so that the first rows, which validate, hold every
  class.
"""

import collections
import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from common import classes, config, faces, files
from common.errors import UsageError

PART_FOLDERS = {"train": ("train",), "test": ("test", "val")}
CROP_SIDE_LIMIT = 100  # images no larger than this (pixels, longer side) are taken as face crops


def part_folder(path, part):
    """The folder holding `part` ("train" or "test") of the image-folder dataset at `path`: its
    train/ or test/ (val/) subfolder, or, when it has none, the folder itself."""
    for name in PART_FOLDERS[part]:
        if os.path.isdir(os.path.join(path, name)):
            return os.path.join(path, name)
    if has_parts(path):
        raise UsageError(f"{path}: has no {' or '.join(name + '/' for name in PART_FOLDERS[part])} "
                         f"subfolder for the {part} part")
    return path


def has_parts(path):
    """Whether the folder is split into train/ and test/ (or val/) parts."""
    return any(os.path.isdir(os.path.join(path, name)) for names in PART_FOLDERS.values() for name in names)


def class_folder_names(folder):
    """The names of the class folders in `folder` (sorted), checked: at least one, no class twice."""
    names = sorted(name for name in os.listdir(folder)
                   if os.path.isdir(os.path.join(folder, name)) and not name.startswith("."))
    if not names:
        raise UsageError(f"{folder}: holds no class folders; expected {folder}/<class>/<images>, e.g. "
                         f"{folder}/happy/1.jpg")
    classes.check_distinct(names, folder)
    return names


def dataset_classes(path):
    """The classes of the image-folder dataset at `path` in label order (`classes.default_order`),
    from the folder names of its training part (of the folder itself when it has no parts)."""
    return classes.default_order(class_folder_names(part_folder(path, "train")))


def class_folders(folder, class_names, part):
    """(label, folder name) of each class folder of one part, by `class_names`. Every folder must
    name one of the classes; a training part needs a folder for each class."""
    names = class_folder_names(folder)
    listed = []
    for name in names:
        label = classes.label_of(name, class_names)
        if label is None:
            raise UsageError(f"{os.path.join(folder, name)}: the class {name!r} is not one of "
                             f"{', '.join(class_names)}")
        listed.append((label, name))
    if part == "train" and len(class_names) < 2:
        raise UsageError(f"{folder}: needs two or more class folders to learn from; it has "
                         f"{', '.join(names)}")
    if part == "train":
        missing = [name for label, name in enumerate(class_names) if label not in dict(listed)]
        if missing:
            raise UsageError(f"{folder}: has no folder for the class{'es' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)}")
    return sorted(listed)


def image_files(class_path):
    """The image files of one folder (sorted) as paths, and what else it holds that is not read:
    {"not_images": other files, "subfolders_not_read": folders}."""
    entries = sorted(name for name in os.listdir(class_path) if not name.startswith("."))
    names = [name for name in entries if os.path.isfile(os.path.join(class_path, name))]
    subfolders = [name for name in entries if os.path.isdir(os.path.join(class_path, name))]
    images = [name for name in names if name.lower().endswith(faces.IMAGE_SUFFIXES)]
    if not images:
        inside = (f"; the folders in it ({', '.join(subfolders[:3])}{', ...' if len(subfolders) > 3 else ''}) "
                  "are not read: put the images directly in it" if subfolders else "")
        raise UsageError(f"{class_path}: holds no images (looked for {', '.join(faces.IMAGE_SUFFIXES[:5])}, "
                         f"...){inside}")
    skipped = {"not_images": len(names) - len(images), "subfolders_not_read": len(subfolders)}
    return [os.path.join(class_path, name) for name in images], skipped


def image_size(path):
    """(width, height) from the file's header, or None when it is not a readable image."""
    try:
        with Image.open(path) as header:
            return header.size
    except Exception:  # noqa: BLE001  (Pillow raises several kinds for what is not an image)
        return None


def choose_detector(sizes, detector):
    """`detector` as given, or, when None: "none" if every image is a face crop (small or square),
    else the default detector."""
    if detector:
        return detector
    known = [size for size in sizes if size]
    crops = all(max(size) <= CROP_SIDE_LIMIT or size[0] == size[1] for size in known)
    return "none" if crops else config.DEFAULT_DETECTOR


@dataclasses.dataclass
class FolderFaces:
    """The faces read from one part of an image-folder dataset."""

    images: np.ndarray  # (rows, 48, 48) uint8
    labels: np.ndarray | None  # (rows,) int64 indices into class_names; None: an unlabelled folder
    ids: np.ndarray  # (rows,) str: each image's path relative to the part's folder
    class_names: tuple
    detector: str  # the detector name the faces were cut with
    counts: dict  # per class folder: kept, and each reason for a skip


def read_image_folder(path, part="train", detector=None, class_names=None):
    """The faces of `part` of the image-folder dataset at `path` (a FolderFaces), labelled by
    `class_names` (None: `dataset_classes`)."""
    class_names = class_names or dataset_classes(path)
    folder = part_folder(path, part)
    listed = [(label, name, image_files(os.path.join(folder, name)))
              for label, name in class_folders(folder, class_names, part)]
    paths = [file for _, _, (class_files, _) in listed for file in class_files]
    detector_name, crops = _faces_of(paths, detector)
    images, labels, ids, counts = [], [], [], {}
    first = 0
    for label, name, (class_files, skipped) in listed:
        kept, kept_ids, counts[name] = _kept_faces(class_files, crops[first:first + len(class_files)], skipped, folder)
        first += len(class_files)
        images += kept
        labels += [label] * len(kept)
        ids += kept_ids
    if not images:
        raise UsageError(f"{folder}: no face could be read from its {len(paths)} images")
    order = np.random.default_rng(0).permutation(len(images))  # validation rows come from every class
    return FolderFaces(np.stack(images)[order], np.array(labels, dtype=np.int64)[order],
                       np.array(ids)[order], tuple(class_names), detector_name, counts)


def holds_images(path):
    """Whether the folder at `path` has image files directly in it (not in class folders)."""
    return any(name.lower().endswith(faces.IMAGE_SUFFIXES) and os.path.isfile(os.path.join(path, name))
               for name in os.listdir(path) if not name.startswith("."))


def read_unlabelled_folder(path, detector=None):
    """The faces of the images directly in the folder at `path`, without labels (a FolderFaces with
    `labels` None and no classes), cut as a training folder's are; skips are counted."""
    paths, skipped = image_files(path)
    detector_name, crops = _faces_of(paths, detector)
    kept, ids, tally = _kept_faces(paths, crops, skipped, path)
    if not kept:
        raise UsageError(f"{path}: no face could be read from its {len(paths)} images")
    return FolderFaces(np.stack(kept), None, np.array(ids), (), detector_name, {"(unlabelled)": tally})


def _kept_faces(paths, crops, skipped, folder):
    """The crops kept from one folder's images, their ids (paths relative to `folder`) and the tally
    of the folder: images kept, and each reason for a skip (`skipped` counts what was not read)."""
    tally = collections.Counter(kept=0, **skipped)
    kept, ids = [], []
    for file, (crop, outcome) in zip(paths, crops):
        tally[outcome] += 1
        if crop is not None:
            kept.append(crop)
            ids.append(files.printable_path(os.path.relpath(file, folder)))
    return kept, ids, dict(tally)


def _faces_of(paths, detector):
    """(the detector's name, (48x48 crop or None, outcome) of each image): `detector`, or chosen by
    the images' sizes."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(image_size, paths))
    detector_name = choose_detector(sizes, detector)
    return detector_name, _cut_faces(paths, faces.make_detector(detector_name), parallel=detector_name == "none")


def _cut_faces(paths, detector, parallel):
    """(48x48 crop or None, outcome) of each image: kept, unreadable, no_face or several_faces."""
    def cut(path):
        try:
            image = faces.read_image(path)
        except UsageError:
            return None, "unreadable"
        found = faces.find_faces(image, detector)
        if len(found) != 1:
            return None, "no_face" if not found else "several_faces"
        return found[0].crop, "kept"

    if parallel:  # decoding and resizing release the GIL
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(cut, paths))
    return [cut(path) for path in paths]


def describe_counts(folder, part, found):
    """One line per class (or one for an unlabelled folder): images kept and skipped, and how faces
    were cut."""
    classes_found = f"{len(found.class_names)} classes" if found.class_names else "no classes"
    lines = [f"{folder} ({part}): {classes_found}, faces cut with --detector {found.detector}"]
    for name, tally in found.counts.items():
        skipped = [f"{count} {what.replace('_', ' ')}" for what, count in tally.items() if what != "kept" and count]
        lines.append(f"  {name}: {tally.get('kept', 0)} images" + (f" (skipped: {', '.join(skipped)})" if skipped else ""))
    return lines
