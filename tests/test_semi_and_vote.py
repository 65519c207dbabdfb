"""Self-training data selection, the voting arithmetic, and both scripts end to end."""

import csv
import os

import numpy as np
import pytest

from common import data, files, model_lists, prediction
from common.cli import UsageError
from helpers import assert_refused, run_script
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # a placeholder model file's first bytes


def labelled_dataset(counts):
    labels = np.repeat(np.arange(7), counts)
    images = np.zeros((len(labels), 48, 48), dtype=np.uint8)
    return data.Dataset(images, labels, np.arange(len(labels)), "made up")


def test_labelled_split_keeps_the_ratio_in_every_class():
    dataset = labelled_dataset([10, 4, 20, 30, 6, 8, 12])
    labelled, hidden = data.split_labelled(dataset, 0.5, seed=3)
    assert np.bincount(labelled.labels).tolist() == [5, 2, 10, 15, 3, 4, 6]
    assert np.bincount(hidden.labels).tolist() == [5, 2, 10, 15, 3, 4, 6]
    assert not set(labelled.ids) & set(hidden.ids)
    again, _ = data.split_labelled(dataset, 0.5, seed=3)
    np.testing.assert_array_equal(again.ids, labelled.ids)
    quarter, _ = data.split_labelled(dataset, 0.25, seed=3)
    assert np.bincount(quarter.labels).tolist() == [2, 1, 5, 8, 2, 2, 3]  # rounded per class


def test_self_labels_keep_rows_at_or_above_the_threshold():
    from common import self_training

    probabilities = np.array([[0.5, 0.3, 0.2, 0, 0, 0, 0],
                              [0.2, 0.49, 0.31, 0, 0, 0, 0],
                              [0, 0, 0, 0, 0, 0.9, 0.1],
                              [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.4]])
    rows, labels = self_training.confident_rows(probabilities, 0.5)
    assert rows.tolist() == [0, 2] and labels.tolist() == [0, 5]
    rows, labels = self_training.confident_rows(probabilities, 0.4)
    assert rows.tolist() == [0, 1, 2, 3] and labels.tolist() == [0, 1, 5, 6]


def probabilities_for(classes, confidence=0.6):
    """Rows that put `confidence` on the given class and spread the rest."""
    rows = np.full((len(classes), 7), (1 - confidence) / 6)
    rows[np.arange(len(classes)), classes] = confidence
    return rows


def test_weighted_hard_vote():
    vote = prediction.Vote(2, 7)
    vote.add(probabilities_for([1, 2]), weight=1)
    vote.add(probabilities_for([1, 3]), weight=1)
    vote.add(probabilities_for([4, 3]), weight=3)
    assert vote.hard_labels().tolist() == [4, 3]  # weight 3 beats two votes of weight 1
    np.testing.assert_allclose(vote.votes[0, [1, 4]], [2, 3])


def test_a_tie_goes_to_the_larger_summed_probability():
    vote = prediction.Vote(1, 7)
    vote.add(probabilities_for([2], confidence=0.9), weight=1)
    vote.add(probabilities_for([5], confidence=0.6), weight=1)
    assert vote.hard_labels().tolist() == [2]
    vote = prediction.Vote(1, 7)
    vote.add(probabilities_for([2], confidence=0.5), weight=1)
    vote.add(probabilities_for([5], confidence=0.95), weight=1)
    assert vote.hard_labels().tolist() == [5]


def test_soft_vote_is_the_weighted_mean():
    first = np.array([[0.6, 0.4, 0, 0, 0, 0, 0]])
    second = np.array([[0.0, 0.7, 0.3, 0, 0, 0, 0]])
    vote = prediction.Vote(1, 7)
    vote.add(first, 3)
    vote.add(second, 1)
    np.testing.assert_allclose(vote.soft_probabilities(), (3 * first + second) / 4)
    assert vote.labels(soft=True).tolist() == [1]  # class 1: (1.2 + 0.7) / 4 beats class 0: 1.8 / 4
    assert vote.labels(soft=False).tolist() == [0]  # but class 0 has the heavier vote


def write_list(folder, text):
    path = folder / "model_list.txt"
    path.write_text(text)
    return path


def test_model_list_reads_weights_paths_and_comments(tmp_path):
    (tmp_path / "a.h5").write_bytes(HDF5_SIGNATURE)
    os.makedirs(tmp_path / "sub")
    (tmp_path / "sub" / "b.h5").write_bytes(HDF5_SIGNATURE)
    path = write_list(tmp_path, "# ensemble\n\n2 a.h5  # best model\n0.5 sub/b.h5\n")
    listed = model_lists.read_model_list(str(path))
    assert [(m.weight, m.path, m.line_number) for m in listed] == [
        (2.0, str(tmp_path / "a.h5"), 3), (0.5, str(tmp_path / "sub" / "b.h5"), 4)]


def test_a_list_line_may_name_a_shipped_model(tmp_path, monkeypatch):
    (tmp_path / "shipped").mkdir()
    (tmp_path / "shipped" / "fer_vgg_0.690000.h5").write_bytes(HDF5_SIGNATURE)
    monkeypatch.setitem(files.SHIPPED_MODEL_FOLDERS, "pretrained-vgg", str(tmp_path / "shipped"))
    monkeypatch.setitem(files.SHIPPED_MODEL_FOLDERS, "pretrained", str(tmp_path / "nothing shipped"))
    listed = model_lists.read_model_list(str(write_list(tmp_path, "1 pretrained-vgg\n")))
    assert [model.path for model in listed] == [str(tmp_path / "shipped" / "fer_vgg_0.690000.h5")]
    with pytest.raises(UsageError, match=r"model_list.txt: line 2: .*nothing shipped.*'pretrained'"):
        model_lists.read_model_list(str(write_list(tmp_path, "1 pretrained-vgg\n1 pretrained\n")))


@pytest.mark.parametrize("text, message", [
    ("", "lists no models"),
    ("# only a comment\n", "lists no models"),
    ("1 a.h5\n2 missing.h5\n", "line 2: model"),
    ("1 a.h5\nthree a.h5\n", "line 2: weight 'three' is not a number"),
    ("0 a.h5\n", "line 1: weight 0 must be a positive number"),
    ("-1 a.h5\n", "line 1: weight -1 must be a positive number"),
    ("1a.h5\n", "line 1: expected 'WEIGHT PATH'"),
])
def test_bad_model_lists_are_refused_and_no_result_is_written(tmp_path, test_csv, text, message):
    (tmp_path / "a.h5").write_bytes(HDF5_SIGNATURE)
    path = write_list(tmp_path, text)
    result = run_script("test_by_vote.py", test_csv, tmp_path / "result.csv", path)
    assert_refused(result, str(path), message)
    assert not (tmp_path / "result.csv").exists()


def test_a_listed_model_that_is_not_seven_classes_is_named(tmp_path, test_csv, trained_model):
    (tmp_path / "broken.h5").write_bytes(b"not a model")
    path = write_list(tmp_path, f"1 {trained_model}\n1 broken.h5\n")
    result = run_script("test_by_vote.py", test_csv, tmp_path / "result.csv", path)
    assert_refused(result, f"{path}: line 2:", "not a usable Keras model file")
    assert not (tmp_path / "result.csv").exists()


def test_a_model_file_in_place_of_the_list_votes_as_a_list_of_that_model(tmp_path, train_csv, test_csv,
                                                                          trained_model):
    path = write_list(tmp_path, f"1 {trained_model}\n")
    by_list = run_script("test_by_vote.py", test_csv, tmp_path / "by_list.csv", path, "--eval", train_csv,
                         "--val-size", 64)
    by_file = run_script("test_by_vote.py", test_csv, tmp_path / "by_file.csv", trained_model, "--eval",
                         train_csv, "--val-size", 64)
    assert by_list.exit_code == 0 and by_file.exit_code == 0, by_list.stderr + by_file.stderr
    assert (tmp_path / "by_file.csv").read_text() == (tmp_path / "by_list.csv").read_text()
    accuracy_lines = [line for line in by_file.stdout.splitlines() if "accuracy" in line]
    assert accuracy_lines == [line for line in by_list.stdout.splitlines() if "accuracy" in line]
    assert any("reporting half" in line for line in accuracy_lines)
    assert "the model (single view): validation accuracy" in by_file.stdout
    (tmp_path / "broken.h5").write_bytes(HDF5_SIGNATURE)
    assert_refused(run_script("test_by_vote.py", test_csv, tmp_path / "r.csv", tmp_path / "broken.h5"),
                   f"error: {tmp_path / 'broken.h5'}: not a usable Keras model file")


def test_mixed_cnn_and_dnn_ensemble_end_to_end(tmp_path, train_csv, test_csv, trained_model, trained_dnn):
    path = write_list(tmp_path, f"2 {trained_model}\n1 {trained_dnn}\n")
    result = run_script("test_by_vote.py", test_csv, tmp_path / "result.csv", path,
                        "--eval", train_csv, "--val-size", 64, "--tta")
    assert result.exit_code == 0, result.stderr
    assert "model 1 of 2: " + os.path.basename(trained_model) in result.stdout
    assert result.stdout.count("validation accuracy") == 5  # two models, the ensemble and its halves
    assert "ensemble (hard voting, tta): validation accuracy" in result.stdout
    halves = [line for line in result.stdout.splitlines() if "half, rows" in line]
    assert [line.split(":")[0].strip() for line in halves] == ["choosing half, rows 0..31",
                                                               "reporting half, rows 32..63"]
    whole, first, second = (float(line.split("validation accuracy ")[1].split()[0]) for line in
                            [next(line for line in result.stdout.splitlines() if "ensemble (" in line)] + halves)
    assert abs((first + second) / 2 - whole) < 1e-3  # equal halves average to the whole
    with open(tmp_path / "result.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "label"] and len(rows) == 41


def test_semi_supervised_training_and_retraining(tmp_path, train_csv, test_csv, trained_model):
    result = run_script("semi_train.py", train_csv, test_csv, trained_model, "--labeled-ratio", 0.5,
                        "--threshold", 0, "--epochs", 1, "--val-size", 64, "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    # 256 training rows: 128 keep labels (per class rounding aside), the rest + 40 test rows are
    # unlabelled, and threshold 0 keeps every one of them
    assert "self-labelled 168 rows with max probability >= 0" in result.stdout
    assert "self-labels on hidden-label training rows: " in result.stdout
    model_path = result.last_line
    assert os.path.basename(model_path).startswith("semi_0.")
    settings = files.read_json(files.settings_path(model_path))
    assert settings["model_labelled_rows"] == 168 and settings["training_rows"] == 168 + 128
    assert data.held_out_rows(model_path) == data.HeldOutRows(64, 320)  # the file's rows, not the trained ones
    again = run_script("semi_retrain.py", train_csv, test_csv, trained_model, model_path, 1, 2,
                       "--labeled-ratio", 0.5, "--threshold", 0.9)
    assert again.exit_code == 0, again.stderr
    assert os.path.basename(again.last_line).endswith("_" + os.path.basename(model_path))


def test_a_predictor_validated_on_other_rows_is_refused(tmp_path, train_csv, test_csv, trained_model):
    result = run_script("semi_train.py", train_csv, test_csv, trained_model, "--val-size", 32, "--out-dir", tmp_path)
    assert_refused(result, f"predictor: {trained_model} was validated on the first 64 of 320 rows, this run on "
                           "the first 32 of 320", "a predictor must not have trained on the rows the run is scored on")
    assert os.listdir(tmp_path) == []  # nothing written


def test_thresholds_outside_zero_to_one_are_refused(train_csv, test_csv, trained_model):
    assert_refused(run_script("semi_train.py", train_csv, test_csv, trained_model, "--threshold", 1.5),
                   "argument --threshold: expected a number between 0 and 1, got '1.5'")


def test_unlabelled_data_cannot_evaluate(test_csv, tmp_path, trained_model):
    path = write_list(tmp_path, f"1 {trained_model}\n")
    assert_refused(run_script("test_by_vote.py", test_csv, tmp_path / "r.csv", path, "--eval", test_csv),
                   "has no labels")
    with pytest.raises(UsageError):
        model_lists.read_model_list(str(tmp_path / "nothing.txt"))
