"""Every kind of bad input ends with exit code 2, one line naming the file and line or argument, and no
file written."""

import os
import shutil
import subprocess
import sys

import h5py
import keras
import pytest

from common import files
from helpers import REPO, assert_refused, run_script

GOOD_ROW = "3," + " ".join(["128"] * 2304)



BAD_CSVS = {
    "empty": ("", "file is empty"),
    "header only": ("label,feature\n", "no data rows after the header"),
    "wrong header": ("emotion,feature\n" + GOOD_ROW + "\n", "line 1: expected a header"),
    "short row": ("label,feature\n" + GOOD_ROW + "\n" + "3," + " ".join(["1"] * 2303) + "\n",
                  "line 3: expected 2304 pixel values"),
    "non-numeric pixel": ("label,feature\n" + GOOD_ROW + "\n" + "2," + " ".join(["7"] * 2303) + " x9\n",
                          "line 3: pixel 2304 is 'x9'"),
    "pixel above 255": ("label,feature\n" + "1," + "256 " + " ".join(["7"] * 2303) + "\n",
                        "line 2: pixel 1 is '256'"),
    "negative pixel": ("label,feature\n" + "1," + "-4 " + " ".join(["7"] * 2303) + "\n",
                       "line 2: pixel 1 is '-4'"),
    "label outside 0..6": ("label,feature\n" + GOOD_ROW + "\n" + GOOD_ROW + "\n" + "7," + " ".join(["7"] * 2304) + "\n",
                           "line 4: label 7 is outside 0..6"),
    "non-numeric label": ("label,feature\n" + "happy," + " ".join(["7"] * 2304) + "\n",
                          "line 2: 'happy' is not a label or id"),
    "an image, not a CSV": ("\x00\x10JFIF\x00\x01\x01\x00\x00\x01\n" + GOOD_ROW + "\n",
                            "is not a CSV text file (binary bytes in its first line)"),
}


@pytest.mark.parametrize("case", BAD_CSVS, ids=list(BAD_CSVS))
def test_bad_training_csv_is_refused_with_its_line(tmp_path, case):
    content, message = BAD_CSVS[case]
    path = tmp_path / "train.csv"
    path.write_text(content)
    out_dir = tmp_path / "models"
    result = run_script("train.py", path, "--epochs", 1, "--out-dir", out_dir)
    assert_refused(result, str(path), message)
    assert not out_dir.exists()


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nothere.csv"
    assert_refused(run_script("train.py", missing), str(missing), "no such file")


@pytest.mark.parametrize("script", ["train.py", "csv_to_npz.py", "predict.py"])
def test_a_pipe_is_refused_at_once_instead_of_waited_on(tmp_path, script):
    pipe = tmp_path / "faces.csv"
    os.mkfifo(pipe)  # nobody writes to it: reading it would wait for ever
    assert_refused(run_script(script, pipe), str(pipe), "is a pipe, device or socket, not a file")


@pytest.mark.parametrize("script", ["train.py", "plot_model.py"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_loading(train_csv, tmp_path, script):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder would have to be made")
    arguments = [train_csv] + (["pretrained"] if script == "plot_model.py" else [])
    result = run_script(script, *arguments, "--out-dir", blocked / "plots")
    assert_refused(result, "--out-dir", f"{blocked / 'plots'}: cannot be made, {blocked} is a file")


@pytest.mark.parametrize("script", ["test.py", "csv_to_npz.py"])
def test_a_result_named_as_an_input_is_refused_and_the_input_kept(tmp_path, test_csv, train_csv, script):
    if script == "test.py":
        data_file = tmp_path / "faces.csv"
        shutil.copy(test_csv, data_file)
        arguments = [data_file, data_file]
    else:
        data_file = tmp_path / "faces.npz"
        assert run_script("csv_to_npz.py", train_csv, test_csv, "-o", data_file).exit_code == 0
        arguments = [data_file, "-o", data_file]
    before = data_file.read_bytes()
    assert_refused(run_script(script, *arguments), "is also an input of this command")
    assert data_file.read_bytes() == before


def test_corrupt_gzip_is_refused(tmp_path):
    path = tmp_path / "train.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00 this is not gzip data")
    assert_refused(run_script("train.py", path), str(path), "cannot be read")


@pytest.mark.parametrize("arguments, message", [
    (["--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
    (["--epochs", "many"], "argument --epochs: expected a positive integer, got 'many'"),
    (["--val-size", "-5"], "argument --val-size"),
    (["--batch-size", "1.5"], "argument --batch-size"),
    (["--label-smoothing", "1.5"], "argument --label-smoothing: expected a number between 0 and 1, got '1.5'"),
    (["--weight-decay", "-1"], "argument --weight-decay: expected a finite number >= 0, got '-1'"),
    (["--mixup", "-0.2"], "argument --mixup: expected a finite number >= 0, got '-0.2'"),
    (["--recipe", "fancy"], "argument --recipe: 'fancy' is neither a recipe (report, strong, long, finetune)"),
    (["--recipe", "strong", "--epochs", "2"],
     "--warmup-epochs 2 leaves no epoch for the cosine decay of --epochs 2; use fewer warm-up epochs"),
])
def test_senseless_training_options_are_refused(train_csv, arguments, message):
    assert_refused(run_script("train.py", train_csv, *arguments), message)


def test_an_output_folder_that_is_a_file_is_refused(train_csv, tmp_path):
    occupied = tmp_path / "models"
    occupied.write_text("a file")
    result = run_script("train.py", train_csv, "--out-dir", occupied)
    assert_refused(result, f"argument --out-dir: {occupied} is a file, expected a folder")


def test_val_size_larger_than_the_data_is_refused(train_csv, tmp_path):
    result = run_script("train.py", train_csv, "--val-size", 5000, "--out-dir", tmp_path / "m")
    assert_refused(result, "--val-size 5000: 5000 validation rows leave no training rows", str(train_csv))


def test_retrain_refuses_epochs_that_make_no_sense(train_csv, trained_model):
    assert_refused(run_script("retrain.py", train_csv, trained_model, 3, 2),
                   "LAST_EPOCH 2 must be larger than FINISHED_EPOCHS 3")
    assert_refused(run_script("retrain.py", train_csv, trained_model, 4, 6),
                   "FINISHED_EPOCHS is 4", "ends at epoch 1")


def test_retrain_refuses_validation_rows_other_than_the_models(train_csv, trained_model):
    saved_rows = files.read_json(files.settings_path(trained_model))["validation_rows"]
    assert_refused(run_script("retrain.py", train_csv, trained_model, 1, 2, "--val-size", saved_rows + 8),
                   f"validated on the first {saved_rows} of 320 rows, this run asks for the first {saved_rows + 8} of 320")
    assert_refused(run_script("retrain.py", train_csv, trained_model, 1, 2, "--folds", 4, "--fold", 1),
                   "this run asks for fold 1 of 4", "train.py --init")


def write_not_a_model(path):
    with h5py.File(path, "w") as handle:
        handle["numbers"] = [1, 2, 3]


def write_one_output_model(path):
    inputs = keras.Input(shape=(48, 48, 1))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inputs))
    keras.Model(inputs, outputs).save(path)


def write_model_naming_too_many_classes(path):
    inputs = keras.Input(shape=(48, 48, 1))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs))
    keras.Model(inputs, outputs).save(path)
    with h5py.File(path, "a") as handle:
        handle.attrs["class_names"] = '["a", "b", "c", "d"]'



@pytest.mark.parametrize("make_model, message", [
    (lambda path: open(path, "wb").write(b"garbage, not HDF5"), "not a usable Keras model file"),
    (write_not_a_model, "not a usable Keras model file"),
    (write_one_output_model, "expected one probability per class"),
    (write_model_naming_too_many_classes, "names 4 classes but has 3 outputs"),
    (None, "no such model file"),
], ids=["corrupt", "hdf5 without a model", "one output", "four names for three outputs", "missing"])
def test_unusable_models_are_refused_and_no_result_is_written(tmp_path, test_csv, make_model, message):
    model_path = tmp_path / "model.h5"
    if make_model is not None:
        make_model(str(model_path))
    result_path = tmp_path / "result.csv"
    assert_refused(run_script("test.py", test_csv, result_path, model_path), str(model_path), message)
    assert sorted(os.listdir(tmp_path)) == (["model.h5"] if make_model else [])


def test_a_real_process_gets_one_line_and_exit_code_2(tmp_path, test_csv):
    """The same through a fresh interpreter, as a user would run it: before TensorFlow loads (a
    missing file) and after (a corrupt model), stderr holds the error line alone."""
    missing = tmp_path / "missing.csv"
    process = subprocess.run([sys.executable, "test.py", str(missing), "r.csv", "m.h5"], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    assert process.stderr == f"test.py: error: {missing}: no such file or folder\n"
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"not a model")
    process = subprocess.run([sys.executable, "test.py", str(test_csv), str(tmp_path / "r.csv"),
                              str(corrupt)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    assert process.stderr.startswith(f"test.py: error: {corrupt}: not a usable Keras model file")
    assert process.stderr.count("\n") == 1
    assert not (tmp_path / "r.csv").exists()
