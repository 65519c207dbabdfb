"""Runs that survive interruption, refuse to start where they could not finish, and stop on NaN."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest

from common import files
from helpers import REPO, assert_refused, run_script


def model_files(folder):
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


def start_and_stop_after(command, out_dir, epochs_done, signal_number, while_running=None):
    """Starts a training command and sends it `signal_number` once its kept state holds
    `epochs_done` finished epochs (calling `while_running()` first, if given); returns what it
    printed and its exit code."""
    # a shell's background job inherits SIGINT ignored, which Python keeps: give it the default back
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        states = [os.path.join(root, "state.json") for root, _, names in os.walk(out_dir)
                  if "state.json" in names]
        if states and len((files.read_json(states[0]) or {"rows": []})["rows"]) >= epochs_done:
            break
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be stopped"
    if while_running:
        while_running()
    time.sleep(0.3)
    process.send_signal(signal_number)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.slow
def test_an_interrupted_and_a_killed_run_continue_and_end_like_an_uninterrupted_one(tmp_path, train_csv):
    out_dir = tmp_path / "models"
    command = [sys.executable, os.path.join(REPO, "train.py"), str(train_csv), "--epochs", "7",
               "--val-size", "64", "--batch-size", "64", "--out-dir", str(out_dir)]
    interrupted = start_and_stop_after(command, out_dir, 2, signal.SIGINT)  # Ctrl-C
    assert interrupted.returncode == 130, interrupted.stdout[-1500:] + interrupted.stderr[-1500:]
    assert "run the same command again to continue" in interrupted.stderr

    def the_same_command_is_refused():
        second = run_script("train.py", *command[2:])
        assert_refused(second, "train.py with these options", "already being run by process")

    killed = start_and_stop_after(command, out_dir, 4, signal.SIGKILL,  # kill -9: no clean-up at all
                                  while_running=the_same_command_is_refused)
    assert killed.returncode == -signal.SIGKILL
    assert not [name for name in model_files(out_dir) if name.endswith(".h5")]

    resumed = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming at epoch" in resumed.stdout
    assert "taking over" in resumed.stderr and "which no longer runs" in resumed.stderr  # the killed run's lock
    names = model_files(out_dir)
    assert len(names) == 3 and [name.endswith(suffix) for name, suffix in
                                zip(names, (".h5", "_history.csv", "_settings.json"))] == [True] * 3
    history = files.read_history(os.path.join(out_dir, names[0]))
    assert [row[0] for row in history] == [1, 2, 3, 4, 5, 6, 7]
    # the run's time covers the killed attempt's epochs as well as the resumed ones
    settings = files.read_json(files.settings_path(os.path.join(out_dir, names[0])))
    epoch_seconds = [row[files.EPOCH_SECONDS] for row in history]
    assert all(seconds > 0 for seconds in epoch_seconds) and settings["timed_epochs"] == 7
    assert settings["wall_seconds"] >= sum(epoch_seconds) - 0.1
    assert not [name for name in os.listdir(out_dir) if name.startswith(".run-")]  # backup and lock removed


def test_a_run_keeps_its_state_folder_when_options_added_later_stay_off(tmp_path):
    from common import config

    run = config.RunOptions(out_dir=str(tmp_path))
    strong = config.RECIPES["strong"]
    with_script_options = dataclasses.replace(strong, script_options={"data": "train.csv", "teacher_tta": False})
    later = dataclasses.replace(with_script_options, script_options={"data": "train.csv", "teacher_tta": False,
                                                                     "new_path_option": None})
    assert run.run_folder(later) == run.run_folder(with_script_options)
    assert "mixup" not in strong.settings_that_are_on()  # off: the name a run had before --mixup existed
    assert strong.settings_that_are_on()["arch"] == "vgg"
    for changed in (dataclasses.replace(strong, mixup=0.2), dataclasses.replace(strong, seed=1),
                    dataclasses.replace(strong, arch="seed")):  # the field's default, not the recipe's
        assert run.run_folder(changed) != run.run_folder(strong)
    other_data = dataclasses.replace(with_script_options, script_options={"data": "other.csv", "teacher_tta": False})
    assert run.run_folder(other_data) != run.run_folder(with_script_options)
    assert run.run_folder(dataclasses.replace(strong, val_size=0)) != run.run_folder(strong)  # 0 is not off


def test_a_nan_loss_stops_the_run_and_saves_nothing(tmp_path, train_csv):
    out_dir = tmp_path / "models"
    result = run_script("train.py", train_csv, "--epochs", 2, "--val-size", 64, "--batch-size", 64,
                        "--learning-rate", "1e30", "--optimizer", "sgd", "--out-dir", out_dir)
    assert result.exit_code == 1
    assert "the loss became nan in epoch 1; nothing was saved" in result.stderr
    assert not out_dir.exists() or os.listdir(out_dir) == []


def test_an_output_folder_under_a_file_is_refused_before_training(tmp_path, train_csv):
    (tmp_path / "occupied").write_text("a file")
    result = run_script("train.py", train_csv, "--epochs", 1, "--out-dir", tmp_path / "occupied" / "models")
    assert_refused(result, "cannot be made", "is a file")


def test_temporary_files_of_killed_runs_are_cleaned_up_by_the_next_write(tmp_path):
    abandoned = tmp_path / ".0.612500.h5.4194300-x1y2.partial.h5"  # beyond Linux's largest pid
    abandoned.write_text("half a model")
    ours = tmp_path / f".result.csv.{os.getpid()}-abcd.partial.csv"  # a live process's
    ours.write_text("being written")
    files.write_csv(str(tmp_path / "result.csv"), ("id", "label"), [(0, 3)])
    assert not abandoned.exists() and ours.exists()
    assert (tmp_path / "result.csv").read_text().splitlines() == ["id,label", "0,3"]
