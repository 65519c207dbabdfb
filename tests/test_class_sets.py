"""Any set of classes: class names from folder names (or --classes), models with one output per
class that keep their class names, every script speaking them, fine-tuning across class sets, and
mismatched classes refused in one line."""

import csv
import os

import h5py
import numpy as np
import pytest

from common import classes, data, files, model_files, synthetic
from helpers import assert_refused, run_script, write_image_tree

MOODS = ("calm", "Excited", "tired")  # sorted by name, whatever the case


def write_mood_tree(root, images, labels):
    """`root/<mood>/faceNNN.png`, FER2013 label modulo 3 choosing the mood."""
    write_image_tree(root, images, labels, lambda label: MOODS[label % 3])


@pytest.fixture(scope="module")
def mood_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("moods")
    images, labels = synthetic.generate_faces(150, seed=7)
    write_mood_tree(root / "train", images[:120], labels[:120])
    write_mood_tree(root / "test", images[120:], labels[120:])
    return root, labels


@pytest.fixture(scope="module")
def mood_model(tmp_path_factory, mood_tree):
    root, _ = mood_tree
    result = run_script("train.py", root, "--epochs", 1, "--val-size", 24, "--batch-size", 32,
                        "--out-dir", tmp_path_factory.mktemp("mood_models"))
    assert result.exit_code == 0, result.stderr
    return result.last_line


def test_classes_come_from_folder_names_and_classes_orders_them(tmp_path, mood_tree):
    root, labels = mood_tree
    assert run_script("csv_to_npz.py", root, "-o", tmp_path / "sorted.npz").exit_code == 0
    reordered = run_script("csv_to_npz.py", root, "--classes", "tired,CALM,excited", "-o", tmp_path / "given.npz")
    assert reordered.exit_code == 0, reordered.stderr
    for name, expected in (("sorted.npz", MOODS), ("given.npz", ("tired", "CALM", "excited"))):
        train = data.load_dataset(str(tmp_path / name))
        assert train.class_names == expected
        for image_id, label in zip(train.ids, train.labels):  # each file keeps its own class
            index = int(image_id.split("face")[1][:3])
            assert classes.canonical(train.class_names[label]) == MOODS[labels[index] % 3].lower()
        test = data.load_dataset(str(tmp_path / name), part="test")
        assert test.class_names == expected and len(test) == 30


def test_a_model_has_one_output_per_class_and_keeps_their_names(mood_model):
    model = model_files.load_model(mood_model)
    assert model.output_shape[-1] == 3
    assert classes.saved_class_names(mood_model) == MOODS
    assert files.read_json(files.settings_path(mood_model))["class_names"] == list(MOODS)


def test_test_py_and_predict_py_speak_the_models_classes(tmp_path, mood_tree, mood_model):
    root, _ = mood_tree
    scored = run_script("test.py", root, tmp_path / "result.csv", mood_model)
    assert scored.exit_code == 0, scored.stderr
    assert "Excited" in scored.stdout and "on 30 labelled faces" in scored.stdout
    assert "probabilities: mean top probability " in scored.stdout
    rows = (tmp_path / "result.csv").read_text().splitlines()
    assert rows[0] == "id,label" and all(int(row.rsplit(",", 1)[1]) in (0, 1, 2) for row in rows[1:])
    predicted = run_script("predict.py", root / "test" / "tired", "--detector", "none", "--model", mood_model,
                           "--out", tmp_path / "out", "--no-annotate")
    assert predicted.exit_code == 0, predicted.stderr
    with open(tmp_path / "out" / "predictions.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0])[9:12] == list(MOODS) and table[0]["emotion"] in MOODS
    assert abs(sum(float(table[0][name]) for name in MOODS) - 1) < 1e-3


def test_a_part_of_the_classes_is_scored_by_the_models_labels():
    dataset = data.Dataset(np.zeros((3, 48, 48), np.uint8), np.array([0, 1, 1]), np.arange(3), "two moods",
                           class_names=("TIRED", "calm"))
    relabelled = classes.relabel(dataset, MOODS, "the model")
    assert relabelled.class_names == MOODS and relabelled.labels.tolist() == [2, 0, 0]
    with pytest.raises(Exception, match="has the class happy, which the model lacks"):
        classes.relabel(data.Dataset(dataset.images, np.array([3, 3, 3]), dataset.ids, "fer"), MOODS, "the model")


def test_export_keeps_the_class_names(tmp_path, mood_model):
    result = run_script("export.py", mood_model, "--format", "h5", "-o", tmp_path / "portable.h5")
    assert result.exit_code == 0, result.stderr
    assert classes.saved_class_names(str(tmp_path / "portable.h5")) == MOODS


def test_fine_tuning_a_seven_class_model_on_three_classes_draws_a_new_head(tmp_path, mood_tree, trained_model):
    root, _ = mood_tree
    start = model_files.load_model(trained_model)
    last_but_head = [layer.name for layer in start.layers if layer.weights][-2]
    result = run_script("train.py", root, "--init", trained_model, "--freeze-until", last_but_head,
                        "--epochs", 1, "--val-size", 24, "--batch-size", 32, "--precision", "fp32",
                        "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "a new last layer fitted to the training faces' features for 3 classes (the model's: angry" in result.stdout
    tuned = model_files.load_model(result.last_line)
    assert tuned.output_shape[-1] == 3 and classes.saved_class_names(result.last_line) == MOODS
    for layer in start.layers[:start.layers.index(start.get_layer(last_but_head)) + 1]:
        for before, after in zip(layer.get_weights(), tuned.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(before, after)


def test_mismatched_classes_are_refused_in_one_line(tmp_path, mood_tree, mood_model, trained_model, train_csv,
                                                    test_csv):
    root, _ = mood_tree
    model_list = tmp_path / "list.txt"
    model_list.write_text(f"1 {trained_model}\n1 {mood_model}\n")
    assert_refused(run_script("test_by_vote.py", test_csv, tmp_path / "vote.csv", model_list),
                   "line 2", "are not those of the list's first model")
    assert_refused(run_script("retrain.py", train_csv, mood_model, 1, 2, "--out-dir", tmp_path),
                   str(train_csv), "its classes (angry, disgust", "are not those of")
    assert_refused(run_script("test.py", root, tmp_path / "result.csv", trained_model),
                   "test/Excited: the class 'Excited' is not one of angry, disgust")
    assert_refused(run_script("train.py", train_csv, "--classes", "a,b", "--out-dir", tmp_path),
                   "--classes: ", "is a file")
    assert_refused(run_script("csv_to_npz.py", root, "--classes", "calm,tired", "-o", tmp_path / "x.npz"),
                   "the class 'Excited' is not one of calm, tired")
    assert_refused(run_script("csv_to_npz.py", root, "--classes", "calm,Calm", "-o", tmp_path / "x.npz"),
                   "'calm' and 'Calm' name the same class")
    assert sorted(os.listdir(tmp_path)) == ["list.txt"]


def test_a_model_whose_file_names_other_classes_than_its_outputs_is_refused(tmp_path, mood_model, test_csv):
    broken = tmp_path / "broken.h5"
    broken.write_bytes(open(mood_model, "rb").read())
    with h5py.File(broken, "a") as handle:
        handle.attrs["class_names"] = '["one", "two"]'
    assert_refused(run_script("test.py", test_csv, tmp_path / "r.csv", broken),
                   "names 2 classes but has 3 outputs")
