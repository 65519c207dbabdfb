"""The loaders are total: damaged CSV, .npz and model-list files parse to the right rows or are
refused in one line, quickly and in bounded memory (tests/loader_fuzzing.py, in its own process)."""

import json
import os
import resource
import subprocess
import sys

import numpy as np
import pytest

from common import data, synthetic
from helpers import REPO, run_script

MEMORY_LIMIT_BYTES = 3 << 30  # address space of the fuzzing process; a runaway parse hits it
TIME_LIMIT_SECONDS = 300  # for all the cases together (they take a few seconds)


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def fuzz(folder, variants):
    """Runs the fuzzing process with `variants` seeded mutations per form; its JSON report."""
    completed = subprocess.run(
        [sys.executable, os.path.join(REPO, "tests", "loader_fuzzing.py"), str(folder), str(variants)],
        capture_output=True, text=True, timeout=TIME_LIMIT_SECONDS, preexec_fn=_limit_memory,
        env=dict(os.environ, PYTHONPATH=REPO, OPENBLAS_NUM_THREADS="1"))
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_every_damaged_file_parses_right_or_is_refused_in_one_line(tmp_path):
    report = fuzz(tmp_path, 150)
    assert report["cases"] > 2000
    assert report["failure_count"] == 0, report["failures"]
    assert report["slowest_seconds"] < 5


@pytest.mark.slow
def test_many_more_damaged_files_parse_right_or_are_refused(tmp_path):
    report = fuzz(tmp_path, 3000)
    assert report["cases"] > 20000
    assert report["failure_count"] == 0, report["failures"]
    assert report["slowest_seconds"] < 5


def test_a_csv_cut_after_a_single_space_converts_with_every_row(tmp_path):
    images, labels = synthetic.generate_faces(4, seed=2)
    train_path, test_path = tmp_path / "train.csv", tmp_path / "test.csv"
    data.write_csv_dataset(str(train_path), images, labels)
    data.write_csv_dataset(str(test_path), images)
    for path in (train_path, test_path):  # what `head -c` leaves: the last row, then one space
        path.write_bytes(path.read_bytes().rstrip(b"\n") + b" ")
    result = run_script("csv_to_npz.py", train_path, test_path, "-o", tmp_path / "cut.npz")
    assert result.exit_code == 0, result.stderr
    converted = data.load_dataset(str(tmp_path / "cut.npz"))
    np.testing.assert_array_equal(converted.images, images)
    np.testing.assert_array_equal(converted.labels, labels)
    np.testing.assert_array_equal(data.load_dataset(str(tmp_path / "cut.npz"), part="test").images, images)
