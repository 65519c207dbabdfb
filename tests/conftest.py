"""Shared fixtures: small generated data sets and an in-process runner for the top-level scripts."""

import contextlib
import io
import os
import runpy
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from common import data, synthetic  # noqa: E402  (needs the repo on sys.path)


class ScriptResult:
    def __init__(self, exit_code, stdout, stderr):
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr

    @property
    def last_line(self):
        return self.stdout.strip().splitlines()[-1]


def run_script(script, *arguments):
    """Runs a top-level script as `python script ARGS` would, in this process (TensorFlow loads once)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_argv = sys.argv
    sys.argv = [script, *map(str, arguments)]
    exit_code = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            runpy.run_path(os.path.join(REPO, script), run_name="__main__")
    except SystemExit as exit:
        exit_code = exit.code if isinstance(exit.code, int) else 1
    finally:
        sys.argv = saved_argv
    return ScriptResult(exit_code, stdout.getvalue(), stderr.getvalue())


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
