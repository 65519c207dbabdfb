"""Shared fixtures: small generated data sets and an in-process runner for the top-level scripts."""

import sys

import pytest

from common import data, synthetic
from helpers import run_script


@pytest.fixture(autouse=True)
def fresh_keras_state():
    """Every test leaves Keras (when a test loaded it) with its default float32 policy and a clear
    session; tests that never need Keras never import it."""
    yield
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.mixed_precision.set_global_policy("float32")
        keras.backend.clear_session()


@pytest.fixture(scope="session")
def faces():
    """320 labelled synthetic faces: (images, labels)."""
    return synthetic.generate_faces(320, seed=0)


@pytest.fixture(scope="session")
def train_csv(tmp_path_factory, faces):
    path = tmp_path_factory.mktemp("data") / "train.csv"
    data.write_csv_dataset(str(path), *faces)
    return path


@pytest.fixture(scope="session")
def test_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "test.csv"
    images, _ = synthetic.generate_faces(40, seed=1)
    data.write_csv_dataset(str(path), images)
    return path


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, train_csv):
    """A report CNN trained for 1 epoch on the synthetic data: its path."""
    out_dir = tmp_path_factory.mktemp("models")
    result = run_script("train.py", train_csv, "--epochs", 1, "--val-size", 64, "--batch-size", 64,
                        "--out-dir", out_dir)
    assert result.exit_code == 0, result.stderr
    return result.last_line


@pytest.fixture(scope="session")
def trained_dnn(tmp_path_factory, train_csv):
    """A report DNN trained for 1 epoch on the synthetic data: its path."""
    result = run_script("dnn_train.py", train_csv, "--epochs", 1, "--out-dir",
                        tmp_path_factory.mktemp("dnn"))
    assert result.exit_code == 0, result.stderr
    return result.last_line
