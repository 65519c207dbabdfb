"""End to end on generated data: train -> model named by its validation accuracy -> predict -> retrain."""

import csv
import gzip
import json
import os

import h5py
import keras
import numpy as np
import pytest

from common import data, files, model_files, models, prediction, synthetic, training
from helpers import run_script


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_training_writes_a_model_named_by_its_last_validation_accuracy(trained_model):
    history = read_rows(files.history_path(trained_model))
    assert history[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_unseen_accuracy", "seconds"]
    assert len(history) == 2 and history[1][0] == "1"
    assert os.path.basename(trained_model) == f"{float(history[1][4]):.6f}.h5"
    settings = json.load(open(files.settings_path(trained_model)))
    # the epoch's accuracy on the validation rows without a copy among the training rows
    assert float(history[1][5]) == pytest.approx(settings["kept_val_unseen_accuracy"], abs=1 / 64)
    assert settings["trainable_parameters"] == 1_703_047
    assert 0 < float(history[1][6]) <= settings["wall_seconds"] + 0.05 and settings["timed_epochs"] == 1
    assert (settings["epochs"], settings["batch_size"], settings["val_size"]) == (1, 64, 64)
    assert settings["training_rows"] == 256 and settings["validation_rows"] == 64
    assert settings["dtype_policy"] == "mixed_bfloat16"
    with h5py.File(trained_model) as handle:
        assert "model_config" in handle.attrs and "optimizer_weights" in handle


def test_test_script_writes_one_prediction_per_id_in_order(tmp_path, test_csv, trained_model):
    result = run_script("test.py", test_csv, tmp_path / "result.csv", trained_model)
    assert result.exit_code == 0, result.stderr
    assert result.last_line == str(tmp_path / "result.csv")
    rows = read_rows(tmp_path / "result.csv")
    assert rows[0] == ["id", "label"]
    assert [int(row[0]) for row in rows[1:]] == list(range(40))
    assert all(0 <= int(row[1]) <= 6 for row in rows[1:])
    (tmp_path / "result.csv").write_text("stale")
    again = run_script("test.py", test_csv, tmp_path / "result.csv", trained_model, "--tta")
    assert again.last_line == str(tmp_path / "result.csv")  # the named file is replaced, and it says so
    assert f"replaced {tmp_path / 'result.csv'}" in again.stderr
    assert read_rows(tmp_path / "result.csv")[0] == ["id", "label"]
    assert sorted(os.listdir(tmp_path)) == ["result.csv"]  # no temporary file left
    run_script("test.py", test_csv, tmp_path / "result.csv.gz", trained_model)
    with gzip.open(tmp_path / "result.csv.gz", "rt") as handle:
        assert handle.read().splitlines() == [",".join(row) for row in rows]


def test_one_prediction_path_serves_cnn_and_dnn_models(tmp_path, test_csv, trained_model, trained_dnn):
    dnn_path = trained_dnn
    assert os.path.basename(dnn_path).startswith("dnn_0.")
    assert json.load(open(files.settings_path(dnn_path)))["validation_rows"] == 32  # 10% by default
    for script, model_path in [("dnn_test.py", trained_model), ("test.py", dnn_path),
                               ("dnn_test.py", dnn_path)]:
        result_path = tmp_path / f"{script}_{os.path.basename(model_path)}.csv"
        result = run_script(script, test_csv, result_path, model_path)
        assert result.exit_code == 0, result.stderr
        assert len(read_rows(result_path)) == 41


def test_prediction_matches_a_plain_keras_predict(test_csv, trained_model):
    model = model_files.load_model(trained_model)
    images = data.load_dataset(str(test_csv)).images
    ours = prediction.predict_probabilities(model, images, batch_size=16)
    plain = model.predict(images[..., np.newaxis].astype("float32"), verbose=0)
    np.testing.assert_allclose(ours, plain, atol=1e-5)
    views = prediction.tta_views(images.astype("float32"))
    per_view = [model.predict(np.ascontiguousarray(view)[..., np.newaxis], verbose=0) for view in views]
    np.testing.assert_allclose(prediction.predict_probabilities(model, images, tta=True),
                               np.mean(per_view, axis=0), atol=1e-5)


def test_tta_views_are_the_faces_and_mirrors_zoomed_about_the_centre():
    views = prediction.tta_views(np.zeros((3, 48, 48), dtype=np.float32))
    assert len(views) == 10 and all(view.shape == (3, 48, 48) for view in views)
    ramp = np.tile(np.arange(9, dtype=np.float32) * 10, (2, 9, 1))  # (2, 9, 9): value = 10 x column
    views = prediction.tta_views(ramp, zooms=(0.5, 1.0, 2.0))
    centre, columns = 4, np.arange(9)
    np.testing.assert_array_equal(views[1], ramp)  # zoom 1: the faces as they are
    # closer: output column x shows input column centre + (x - centre) / 2 (bilinear: exact on a ramp)
    np.testing.assert_allclose(views[2][0, 4], 10 * (centre + (columns - centre) / 2), atol=1e-3)
    # farther: input column centre + 2 (x - centre), the edge repeated beyond the face
    np.testing.assert_allclose(views[0][0, 4], 10 * np.clip(centre + 2 * (columns - centre), 0, 8), atol=1e-3)
    for plain, mirrored in zip(views[:3], views[3:]):  # the mirrors follow, zoomed alike
        np.testing.assert_allclose(mirrored, plain[:, :, ::-1], atol=1e-3)


def test_retrain_continues_from_the_saved_epoch(tmp_path, train_csv, trained_model):
    result = run_script("retrain.py", train_csv, trained_model, 1, 2, "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "optimizer state restored" in result.stdout
    new_model = result.last_line
    history = read_rows(files.history_path(new_model))
    assert [row[0] for row in history[1:]] == ["1", "2"]
    assert history[1] == read_rows(files.history_path(trained_model))[1]
    old_name = os.path.basename(trained_model)
    old_best, new_epoch = float(history[1][4]), float(history[2][4])
    kept = new_epoch if new_epoch > old_best else old_best  # the old kept epoch is the record to beat
    assert os.path.basename(new_model) == f"{kept:.6f}_{old_name}"
    settings = json.load(open(files.settings_path(new_model)))
    assert settings["continued_from"] == old_name and settings["val_size"] == 64  # from the model
    with h5py.File(new_model) as handle:
        (adam_state,) = handle["optimizer_weights"].values()
        assert adam_state["iteration"][()] == 8  # 4 steps in each epoch: the count went on from 4


def test_existing_models_are_never_overwritten(tmp_path):
    model = models.build_dnn()
    history = [[1, 1.0, 0.5, 1.0, 0.25]]
    first = training.save_trained_model(model, str(tmp_path), history, {"run": 1})
    second = training.save_trained_model(model, str(tmp_path), history, {"run": 2})
    assert os.path.basename(first) == "0.250000.h5"
    assert os.path.basename(second) == "0.250000-1.h5"
    assert json.load(open(files.settings_path(first))) == {"run": 1}
    assert sorted(os.listdir(tmp_path)) == ["0.250000-1.h5", "0.250000-1_history.csv",
                                            "0.250000-1_settings.json", "0.250000.h5",
                                            "0.250000_history.csv", "0.250000_settings.json"]


def test_the_same_seed_gives_the_same_initial_weights():
    def initial_weights(seed):
        keras.utils.set_random_seed(seed)
        return models.build_seed_cnn().get_weights()

    first, again, other = initial_weights(5), initial_weights(5), initial_weights(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_a_model_learns_the_generated_expressions(tmp_path):
    """The synthetic faces are learnable: 15 DNN epochs get well above the 14% of chance."""
    images, labels = synthetic.generate_faces(1400, seed=7)
    train_csv = tmp_path / "faces.csv"
    data.write_csv_dataset(str(train_csv), images, labels)
    result = run_script("dnn_train.py", train_csv, "--epochs", 15, "--val-size", 200, "--batch-size", 32,
                        "--out-dir", tmp_path, "--precision", "fp32")
    assert result.exit_code == 0, result.stderr
    val_accuracy = float(os.path.basename(result.last_line)[4:12])
    assert val_accuracy > 0.3, result.stdout


def test_labeled_ratio_baseline_with_the_mirrored_strategy(tmp_path, train_csv):
    result = run_script("train.py", train_csv, "--epochs", 1, "--val-size", 64, "--labeled-ratio", 0.5,
                        "--strategy", "mirrored", "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    settings = json.load(open(files.settings_path(result.last_line)))
    assert settings["training_rows"] == 128 and settings["strategy"] == "mirrored"
    assert settings["labeled_ratio"] == 0.5
    assert "seed_cnn: 1,703,047 trainable parameters (1,704,391 in all); 128 training rows" in result.stdout


def test_prediction_precision_copies_compute_in_the_asked_precision(test_csv, trained_model):
    model = model_files.load_model(trained_model)  # trained with the default bf16 policy
    assert model_files.with_precision(model, "saved") is model
    images = data.load_dataset(str(test_csv)).images
    saved = prediction.predict_probabilities(model, images)
    for precision, compute_dtype in (("fp32", "float32"), ("bf16", "bfloat16")):
        copy = model_files.with_precision(model, precision)
        assert copy.get_layer("block1_conv1").compute_dtype == compute_dtype
        assert copy.layers[-1].compute_dtype == "float32"
        probabilities = prediction.predict_probabilities(copy, images)
        assert probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities, saved, atol=0.05)  # bfloat16 rounding at most
        assert model_files.with_precision(copy, precision) is copy  # computes as asked already: no copy
    assert model_files.with_precision(model, "bf16") is model
