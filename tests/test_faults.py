"""Faults a hostile user would try: each gets one line naming the file, row or argument, exit 2,
and nothing written; or the right result."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from common import cli, data, files, synthetic
from helpers import REPO, assert_refused, run_script


def write_npz(path, **arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def faces(rows):
    return synthetic.generate_faces(rows, seed=0)[0]


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(open(write_npz(p.with_suffix(".full.npz"), test_images=faces(4)), "rb").read()[:300]),
     "not a"),
    (lambda p: write_npz(p, test_images=faces(10), test_ids=np.arange(3)), "'test_ids' must hold 10 integer or text ids"),
    (lambda p: write_npz(p, test_images=faces(0)), "holds no test faces"),
    (lambda p: p.write_text("id,feature\n1,2 3\n"), "not an .npz archive"),
], ids=["truncated", "ids of another length", "no rows", "text named npz"])
def test_broken_npz_test_files_are_refused(tmp_path, trained_model, make, message):
    path = tmp_path / "data.npz"
    make(path)
    result = run_script("test.py", path, tmp_path / "result.csv", trained_model)
    assert_refused(result, str(path), message)
    assert "allow_pickle" not in result.stderr
    assert not (tmp_path / "result.csv").exists()


def test_an_npz_label_below_zero_is_refused(tmp_path):
    path = write_npz(tmp_path / "train.npz", train_images=faces(10), train_labels=np.full(10, -1))
    assert_refused(run_script("train.py", path, "--val-size", 2), str(path), "labels in 0..6")


def test_duplicate_test_ids_are_refused_with_their_lines(tmp_path, trained_model):
    path = tmp_path / "test.csv"
    row = " ".join(["9"] * 2304)
    path.write_text(f"id,feature\n5,{row}\n6,{row}\n5,{row}\n")
    result = run_script("test.py", path, tmp_path / "result.csv", trained_model)
    assert_refused(result, str(path), "id 5 appears more than once (lines 2 and 4)")


@pytest.mark.parametrize("arguments, message", [
    (["--val-size", "nan"], "argument --val-size"),
    (["--val-size", "inf"], "argument --val-size"),
    (["--val-size", "1.0"], "a fraction below 1"),
    (["--val-size", "100%"], "a fraction below 1"),
    (["--seed", "-1"], "argument --seed: expected an integer in 0..4294967295"),
    (["--seed", str(2 ** 32)], "argument --seed"),
    (["--labeled-ratio", "0"], "argument --labeled-ratio: expected a number above 0"),
    (["--learning-rate", "inf"], "argument --learning-rate: expected a positive finite number"),
])
def test_senseless_numbers_are_refused_before_training(train_csv, tmp_path, arguments, message):
    result = run_script("train.py", train_csv, *arguments, "--out-dir", tmp_path / "models")
    assert_refused(result, message)
    assert not (tmp_path / "models").exists()


def test_a_result_path_that_is_a_folder_is_refused(tmp_path, test_csv, trained_model):
    assert_refused(run_script("test.py", test_csv, tmp_path, trained_model), "is a folder")


def test_a_model_with_a_lambda_layer_is_refused_in_safe_mode(tmp_path, test_csv):
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(lambda t: t * 2)(inputs)
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(x))
    path = str(tmp_path / "lambda.h5")
    keras.Model(inputs, outputs).save(path)
    result = run_script("test.py", test_csv, tmp_path / "result.csv", path)
    assert_refused(result, path, "holds a Lambda layer (Python code)", "save the model without Lambda layers")
    assert "safe_mode" not in result.stderr and len(result.stderr.strip()) <= 200 + len(path)
    assert not (tmp_path / "result.csv").exists()


def test_a_broken_model_file_is_refused_in_one_short_line(tmp_path, test_csv):
    (tmp_path / "broken.h5").write_bytes(b"\x89HDF\r\n" + bytes(range(256)) * 40)
    result = run_script("test.py", test_csv, tmp_path / "result.csv", tmp_path / "broken.h5")
    assert_refused(result, "broken.h5: not a usable Keras model file")
    assert len(result.stderr.strip()) <= 200 + len(str(tmp_path))


@pytest.mark.parametrize("arguments, message", [
    (["predict.py", os.path.join(REPO, "examples", "astronaut.jpg"), "--model", "{list}"],
     "line 2: model {missing} does not exist"),
    (["test.py", "{test_csv}", "{out}/r.csv", "{missing}"], "no such model file or model list"),
    (["dnn_test.py", "{missing_data}", "{out}/r.csv"], "no such file or folder"),
    (["retrain.py", "{test_csv}", "{missing}", "20", "30"], "no such model file"),
    (["train.py", "{missing_data}", "--out-dir", "{out}"], "no such file or folder"),
    (["dnn_train.py", "{missing_data}", "--out-dir", "{out}"], "no such file or folder"),
    (["semi_train.py", "{missing_data}", "{test_csv}", "{model}", "--out-dir", "{out}"], "no such file or folder"),
    (["semi_retrain.py", "{missing_data}", "{test_csv}", "{model}", "{model}", "1", "2"], "no such file or folder"),
    (["csv_to_npz.py", "{missing_data}", "{test_csv}", "-o", "{out}/d.npz"], "no such file or folder"),
    (["test_by_vote.py", "{test_csv}", "{out}/r.csv", "{out}/missing_list.txt"], "no such model file or model list"),
    (["plot_model.py", "{missing_data}", "{model}"], "no such file or folder"),
    (["gradient_ascent.py", "{missing}"], "no such model file"),
    (["plot_model.py", "{test_csv}", "{missing}"], "no such model file"),
    (["export.py", "{missing}", "--format", "h5"], "no such model file"),
    (["serve.py", "--model", "{missing}"], "no such model file or model list"),
    (["make_faces.py", "{out}/faces.csv", "--rows", "0"], "expected a positive integer"),
    (["run_queue.py", "{out}/missing_queue.txt"], "cannot be read"),
    (["ship_model.py", "{test_csv}", "{missing_data}", "{model}", "--out-dir", "{out}/shipped"], "no such file or folder"),
    (["train.py", "{train_csv}", "--val-size", "32", "--teacher", "{model}", "--out-dir", "{out}"],
     "a teacher must not have trained on the rows the run is scored on"),
    (["semi_train.py", "{train_csv}", "{test_csv}", "{model}", "--val-size", "32", "--out-dir", "{out}"],
     "a predictor must not have trained on the rows the run is scored on"),
    (["train.py", "{train_csv}", "--unlabelled", "{test_csv}", "--out-dir", "{out}"],
     "--unlabelled faces are labelled by the teachers: give --teacher"),
    (["train.py", "{train_csv}", "--val-size", "64", "--teacher", "{model}", "--unlabelled", "{missing_data}",
      "--out-dir", "{out}"],
     "{missing_data}: no such file or folder"),
], ids=lambda value: value[0] if isinstance(value, list) else "")
def test_every_script_checks_its_input_before_tensorflow_loads(tmp_path, train_csv, test_csv, trained_model,
                                                               arguments, message):
    fake = tmp_path / "no_tensorflow" / "tensorflow"  # importing it fails: the refusal must come first
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('TensorFlow was loaded')\n")
    missing = tmp_path / "missing.h5"
    (tmp_path / "list.txt").write_text(f"1 {trained_model}\n1 {missing}\n")
    values = dict(list=tmp_path / "list.txt", train_csv=train_csv, test_csv=test_csv, out=tmp_path, missing=missing,
                  missing_data=tmp_path / "missing.csv", model=trained_model)
    command = [sys.executable, os.path.join(REPO, arguments[0])] + [part.format(**values) for part in arguments[1:]]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                               env=dict(os.environ, PYTHONPATH=f"{tmp_path / 'no_tensorflow'}:{REPO}"))
    assert completed.returncode == 2, completed.stderr[-1000:]
    assert message.format(**values) in completed.stderr and "TensorFlow was loaded" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1  # one line, no traceback


def test_every_listed_model_is_checked_before_any_predicts(tmp_path, test_csv, trained_model):
    (tmp_path / "broken.h5").write_bytes(b"not a model")
    (tmp_path / "list.txt").write_text(f"\ufeff1 {trained_model}\n1 broken.h5\n", encoding="utf-8")
    result = run_script("test_by_vote.py", test_csv, tmp_path / "r.csv", tmp_path / "list.txt")
    assert_refused(result, "list.txt: line 2:", "not a usable Keras model file")
    assert "model 1 of 2" not in result.stdout  # nothing was predicted


def test_a_folder_listed_as_a_model_is_named_as_a_folder(tmp_path, test_csv):
    (tmp_path / "sub").mkdir()
    (tmp_path / "list.txt").write_text("1 sub\n")
    result = run_script("test_by_vote.py", test_csv, tmp_path / "r.csv", tmp_path / "list.txt")
    assert_refused(result, "line 1:", "is a folder, expected a model file")


def test_continuing_a_half_label_model_keeps_its_labeled_ratio_and_threshold(tmp_path):
    settings = tmp_path / "0.500000_settings.json"
    settings.write_text(json.dumps({"labeled_ratio": 0.5, "threshold": 0.8, "val_size": 300}))
    parser = cli.ArgumentParser("test")
    for name in ("model", "finished_epochs", "last_epoch"):
        parser.add_argument(name, type=str if name == "model" else int)
    cli.add_self_training_options(parser, from_model=True)
    cli.add_training_options(parser, from_model=True)
    options = cli.parse_continuation(parser, [str(tmp_path / "0.500000.h5"), "1", "2", "--threshold", "0.6"])
    assert (options.labeled_ratio, options.threshold, options.val_size) == (0.5, 0.6, 300)
    assert options.out_dir == str(tmp_path)


def test_scoring_may_use_every_row_of_a_small_file():
    dataset = data.Dataset(faces(30), np.zeros(30, int), np.arange(30), "small.csv")
    _, val_set = data.split_validation(dataset, 30, for_training=False)
    assert len(val_set) == 30
    with pytest.raises(cli.BadValue, match="has only 30 rows"):
        data.split_validation(dataset, 31, for_training=False)


@pytest.mark.slow
def test_deterministic_runs_with_the_same_seed_give_the_same_history(tmp_path, train_csv):
    histories = []
    for attempt in range(2):  # own processes: op determinism stays on for the rest of a process
        out_dir = tmp_path / str(attempt)
        process = subprocess.run(
            [sys.executable, os.path.join(REPO, "train.py"), str(train_csv), "--recipe", "strong",
             "--epochs", "2", "--warmup-epochs", "1", "--val-size", "64", "--batch-size", "64",
             "--deterministic", "--out-dir", str(out_dir)], capture_output=True, text=True)
        assert process.returncode == 0, process.stderr[-2000:]
        rows = files.read_history(process.stdout.strip().splitlines()[-1])
        histories.append([row[:files.EPOCH_SECONDS] for row in rows])  # all but the epochs' wall times
    assert histories[0] == histories[1]
