"""Folders of images by class as datasets: FER2013's classes from folder names, crops resized whole,
faces cut from larger photos as predict.py cuts them, skips counted, bad trees refused in one line."""

import os
import shutil

import cv2
import numpy as np
import pytest

from common import data, image_folders, synthetic
from helpers import REPO, assert_refused, run_script, write_image_tree

NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EXAMPLE_PHOTO = os.path.join(REPO, "examples", "astronaut.jpg")


def write_tree(root, images, labels):
    """`root/<class>/faceNNN.png|jpg` for each image (class folder names in mixed case)."""
    write_image_tree(root, images, labels, lambda label: NAMES[label].capitalize() if label % 2 else NAMES[label],
                     (".png", ".jpg"))


@pytest.fixture(scope="module")
def faces_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    images, labels = synthetic.generate_faces(70, seed=5)
    labels = np.arange(70) % 7  # every class
    write_tree(root / "train", images[:56], labels[:56])
    write_tree(root / "test", images[56:], labels[56:])
    return root, images, labels


def test_a_tree_converts_with_fer2013s_labels_and_paths_as_ids(tmp_path, faces_tree):
    root, images, labels = faces_tree
    result = run_script("csv_to_npz.py", root, "-o", tmp_path / "tree.npz")
    assert result.exit_code == 0, result.stderr
    assert "faces cut with --detector none" in result.stdout and "  Happy: 8 images" in result.stdout
    train = data.load_dataset(str(tmp_path / "tree.npz"))
    test = data.load_dataset(str(tmp_path / "tree.npz"), part="test")
    assert len(train) == 56 and len(test) == 14
    by_id = {name: row for row, name in enumerate(train.ids)}
    for index in range(56):
        folder = NAMES[labels[index]].capitalize() if labels[index] % 2 else NAMES[labels[index]]
        suffix = (".png", ".jpg")[index % 2]
        row = by_id[f"{folder}/face{index:03d}{suffix}"]
        assert train.labels[row] == labels[index]
        if suffix == ".png":  # lossless: the very pixels
            np.testing.assert_array_equal(train.images[row], images[index])
    assert test.labels is not None and sorted(test.labels.tolist()) == sorted(labels[56:].tolist())


def test_the_two_parts_can_be_given_apart_and_test_py_names_each_file(tmp_path, faces_tree, trained_model):
    root, _, _ = faces_tree
    result = run_script("csv_to_npz.py", root / "train", root / "test", "-o", tmp_path / "apart.npz")
    assert result.exit_code == 0, result.stderr
    scored = run_script("test.py", root, tmp_path / "result.csv", trained_model)  # the folder directly
    assert scored.exit_code == 0, scored.stderr
    lines = (tmp_path / "result.csv").read_text().splitlines()
    assert lines[0] == "id,label" and len(lines) == 15
    assert all(os.path.isfile(root / "test" / line.split(",")[0]) for line in lines[1:])


def test_faces_are_cut_from_photos_and_photos_without_one_face_are_counted(tmp_path):
    face = cv2.resize(cv2.imread(EXAMPLE_PHOTO)[30:180, 150:300], (120, 120))
    canvas = np.full((300, 400, 3), 90, np.uint8)
    one = canvas.copy()
    one[60:180, 100:220] = face
    two = one.copy()
    two[150:270, 260:380] = face
    for name, photo in (("happy/one.jpg", one), ("happy/wall.jpg", canvas), ("sad/two.jpg", two),
                        ("sad/one_again.png", one)):
        (tmp_path / "photos" / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "photos" / name), photo)
    (tmp_path / "photos" / "sad" / "empty.jpg").write_bytes(b"")
    (tmp_path / "photos" / "sad" / "notes.txt").write_text("not an image")
    make_class(tmp_path / "photos" / "happy", "2019")  # one level only: counted, not read
    found = image_folders.read_image_folder(str(tmp_path / "photos"))
    assert found.detector == "mtcnn" and sorted(found.ids.tolist()) == ["happy/one.jpg", "sad/one_again.png"]
    assert found.counts["happy"] == {"kept": 1, "not_images": 0, "subfolders_not_read": 1, "no_face": 1}
    assert found.counts["sad"] == {"kept": 1, "not_images": 1, "subfolders_not_read": 0, "several_faces": 1,
                                   "unreadable": 1}
    assert "  happy: 1 images (skipped: 1 subfolders not read, 1 no face)" in image_folders.describe_counts(
        "photos", "train", found)
    assert found.class_names == ("happy", "sad")  # FER2013's names in its order, only those present
    assert found.images.shape == (2, 48, 48) and sorted(found.labels.tolist()) == [0, 1]


def make_class(root, name, count=1):
    (root / name).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        cv2.imwrite(str(root / name / f"{index}.png"), np.zeros((48, 48), np.uint8))


@pytest.mark.parametrize("build, message", [
    (lambda root: (make_class(root, "sad"), make_class(root, "happy", 0)), "holds no images"),
    (lambda root: (make_class(root, "sad"), make_class(root / "happy", "2019")),
     "happy: holds no images (looked for .jpg, .jpeg, .jpe, .png, .bmp, ...); the folders in it (2019) are not read"),
    (lambda root: root.mkdir(), "holds no class folders"),
    (lambda root: (make_class(root, "happy"), make_class(root, "Happiness")), "name the same class"),
    (lambda root: make_class(root, "contempt"), "needs two or more class folders"),
    (lambda root: (make_class(root, "contempt"), make_class(root, "happy")), "the class 'sad' is not one of"),
    (lambda root: (make_class(root / "train", "sad"), make_class(root / "train", "happy"), (root / "val").mkdir()),
     "holds no class folders"),
], ids=["empty class", "images a level down", "no classes", "a class twice", "one class", "a test class training lacks",
        "empty test part"])
def test_bad_trees_are_refused_in_one_line_and_nothing_is_written(tmp_path, build, message):
    root = tmp_path / "tree"
    build(root)
    if not (root / "train").exists():
        make_class(tmp_path / "fine_test", "sad")  # a test folder that is fine
        arguments = (root, tmp_path / "fine_test")
    else:
        arguments = (root,)
    result = run_script("csv_to_npz.py", *arguments, "-o", tmp_path / "out.npz")
    assert_refused(result, message)
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.slow
def test_train_py_takes_a_folder_and_validates_on_every_class(tmp_path, faces_tree):
    root, _, _ = faces_tree
    result = run_script("train.py", root / "train", "--epochs", 1, "--val-size", 14, "--batch-size", 16,
                        "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    validation = data.load_dataset(str(root / "train")).labels[:14]
    assert len(set(validation.tolist())) >= 5  # the first rows are not one class


def test_a_folder_validates_on_a_tenth_of_its_images_by_default(tmp_path, faces_tree):
    root, _, _ = faces_tree
    train_set, val_set = data.split_validation(data.load_dataset(str(root / "train")), None)
    assert (len(train_set), len(val_set)) == (50, 6)  # 56 images: the 2,400 of FER2013's CSV would leave none
    result = run_script("csv_to_npz.py", root, "-o", tmp_path / "tree.npz")
    assert result.exit_code == 0, result.stderr
    assert data.load_dataset(str(tmp_path / "tree.npz")).default_validation_rows == 6  # kept in its cache


def test_a_file_name_that_is_not_utf8_becomes_a_printable_id(tmp_path, faces_tree):
    root, _, _ = faces_tree
    copy = tmp_path / "tree"
    shutil.copytree(root, copy)
    first = sorted(os.listdir(copy / "test" / "Happy"))[0]
    renamed = os.path.join(os.fsencode(copy / "test" / "Happy"), b"caf\xe9" + os.fsencode(first))
    os.rename(os.fsencode(copy / "test" / "Happy" / first), renamed)
    result = run_script("csv_to_npz.py", copy, "-o", tmp_path / "tree.npz")
    assert result.exit_code == 0, result.stderr
    ids = data.load_dataset(str(tmp_path / "tree.npz"), part="test").ids.tolist()
    assert f"Happy/caf\\xe9{first}" in ids and len(ids) == 14


def test_a_folder_of_images_without_classes_gives_unlabelled_faces(tmp_path, faces_tree, capsys):
    _, images, _ = faces_tree
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    for number, image in enumerate(images[:5]):
        cv2.imwrite(str(folder / f"face{number}.png"), image)
    (folder / "notes.txt").write_text("not an image")
    faces = data.load_unlabelled_faces(str(folder))
    assert faces.labels is None and sorted(faces.ids) == [f"face{number}.png" for number in range(5)]
    np.testing.assert_array_equal(faces.images[list(faces.ids).index("face3.png")], images[3])  # crops resized whole
    assert "no classes, faces cut with --detector none" in capsys.readouterr().out
    # a tree of class folders: its faces, the labels unused
    tree = data.load_unlabelled_faces(str(faces_tree[0]))
    assert tree.labels is None and len(tree) == 14  # the test part
