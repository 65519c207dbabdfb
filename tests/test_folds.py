"""Cross-validation folds: every row held out by exactly one fold, fold members scored out of fold."""

import os

import numpy as np
import pytest

from common import data, ensemble, files, model_lists
from helpers import assert_refused, run_script


def numbered_dataset(rows):
    images = np.arange(rows, dtype=np.uint8)[:, None, None] * np.ones((1, 48, 48), np.uint8)
    return data.Dataset(images, np.arange(rows) % 7, np.arange(rows), "numbered")


def test_the_folds_hold_out_every_row_exactly_once_in_blocks():
    dataset = numbered_dataset(103)
    held_out = []
    for fold in range(8):
        train_set, val_set = data.split_validation(dataset, 2400, folds=8, fold=fold)  # val_size unused
        assert len(train_set) + len(val_set) == 103 and not set(train_set.ids) & set(val_set.ids)
        assert np.all(np.diff(val_set.ids) == 1)  # one contiguous block
        held_out.extend(val_set.ids)
    assert sorted(held_out) == list(range(103))


def test_rows_repeated_elsewhere_in_a_file_are_found():
    dataset = numbered_dataset(10)
    dataset.images[7] = dataset.images[2]
    assert np.flatnonzero(data.repeated_rows(dataset)).tolist() == [2, 7]


@pytest.mark.parametrize("arguments, message", [
    (["--folds", "4"], "--folds and --fold come together"),
    (["--folds", "4", "--fold", "4"], "--folds 4 --fold 4: expected at least 2 folds and a fold 0..3"),
    (["--folds", "1", "--fold", "0"], "expected at least 2 folds"),
    (["--folds", "4", "--fold", "0", "--val-size", "100"], "--val-size and --folds both choose"),
])
def test_inconsistent_folds_are_refused(train_csv, tmp_path, arguments, message):
    assert_refused(run_script("train.py", train_csv, *arguments, "--out-dir", tmp_path / "m"), message)
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_fold_members_are_scored_out_of_fold_and_retrain_keeps_their_fold(tmp_path, train_csv, test_csv):
    members = []
    for fold in (0, 1):
        result = run_script("train.py", train_csv, "--folds", 2, "--fold", fold, "--epochs", 1,
                            "--batch-size", 64, "--out-dir", tmp_path / str(fold))
        assert result.exit_code == 0, result.stderr
        members.append(result.last_line)
        settings = files.read_json(files.settings_path(result.last_line))
        assert (settings["folds"], settings["fold"], settings["validation_rows"]) == (2, fold, 160)
    model_list = tmp_path / "folds.txt"
    model_list.write_text("".join(f"1 {path}\n" for path in members))

    result = run_script("test_by_vote.py", test_csv, tmp_path / "result.csv", model_list, "--eval", train_csv)
    assert result.exit_code == 0, result.stderr
    assert "out-of-fold: 320 of the 320 rows" in result.stdout
    member_lines = [line for line in result.stdout.splitlines() if line.startswith("  validation accuracy")]
    assert [line.split(" on ")[1].split()[0] for line in member_lines] == ["160", "160"]
    listed = model_lists.read_model_list(str(model_list))
    scored, unseen, held_out = ensemble.evaluation_rows(str(train_csv), None, listed)
    assert len(scored) == 320 and sorted(np.concatenate(list(held_out.values()))) == list(range(320))

    continued = run_script("retrain.py", train_csv, members[1], 1, 2, "--out-dir", tmp_path / "again")
    assert continued.exit_code == 0, continued.stderr
    settings = files.read_json(files.settings_path(continued.last_line))  # its options: from the member's
    assert (settings["folds"], settings["fold"], settings["validation_rows"]) == (2, 1, 160)
    assert os.path.exists(tmp_path / "result.csv")
