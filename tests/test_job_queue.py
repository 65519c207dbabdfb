"""run_queue.py: commands run in order, done ones skipped on the next start, failures retried, one
runner per state folder, an interrupted command stops the queue."""

import json
import os
import socket
import subprocess
import sys

from helpers import REPO, assert_refused, run_script


def write_queue(tmp_path, *commands):
    path = tmp_path / "queue.txt"
    path.write_text("# a comment\n\n" + "\n".join(commands) + "\n")
    return path


def run_queue(tmp_path, queue_path, *extra):
    return run_script("run_queue.py", queue_path, "--state-dir", tmp_path / "state", *extra)


def test_done_commands_are_skipped_and_failed_ones_run_again(tmp_path):
    ran = tmp_path / "ran.txt"
    queue_path = write_queue(tmp_path, f"echo first >> {ran}", f"test -f {tmp_path}/flag || exit 3",
                             f"echo third >> {ran}")
    first = run_queue(tmp_path, queue_path)
    assert first.exit_code == 1 and "1 of 3 commands failed" in first.stderr
    assert ran.read_text().split() == ["first", "third"]
    listing = run_queue(tmp_path, queue_path, "--list").stdout.splitlines()
    assert [line.split()[2] for line in listing] == ["done", "failed", "done"]
    (tmp_path / "flag").touch()
    second = run_queue(tmp_path, queue_path)
    assert second.exit_code == 0 and "all 3 commands done" in second.stdout
    assert ran.read_text().split() == ["first", "third"]  # neither done command ran again


def test_each_command_logs_to_its_own_file(tmp_path):
    queue_path = write_queue(tmp_path, "echo out-line; echo err-line >&2")
    assert run_queue(tmp_path, queue_path).exit_code == 0
    logs = [name for name in os.listdir(tmp_path / "state") if name.endswith(".log")]
    assert len(logs) == 1
    text = (tmp_path / "state" / logs[0]).read_text()
    assert "out-line" in text and "err-line" in text


def test_an_interrupted_command_stops_the_queue_unmarked(tmp_path):
    ran = tmp_path / "ran.txt"
    queue_path = write_queue(tmp_path, "exit 130", f"echo later >> {ran}")
    result = run_queue(tmp_path, queue_path)
    assert result.exit_code == 130
    assert not ran.exists()
    assert "waiting" in run_queue(tmp_path, queue_path, "--list").stdout.splitlines()[0]


def test_a_second_runner_is_refused_while_the_first_lives(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (state / "queue.lock").write_text(json.dumps(
            {"pid": sleeper.pid, "host": socket.gethostname(), "started": "then"}))
        result = run_queue(tmp_path, write_queue(tmp_path, "true"))
        assert_refused(result, "already being run by process", str(sleeper.pid))
    finally:
        sleeper.kill()
        sleeper.wait()
    taken_over = run_queue(tmp_path, write_queue(tmp_path, "true"))
    assert taken_over.exit_code == 0 and "taking over" in taken_over.stderr
    assert not (state / "queue.lock").exists()


def test_a_queue_without_commands_is_refused(tmp_path):
    assert_refused(run_queue(tmp_path, write_queue(tmp_path)), "no commands")
    assert_refused(run_queue(tmp_path, tmp_path / "missing.txt"), "missing.txt", "cannot be read")


def test_the_repository_queue_parses(tmp_path):
    listing = run_script("run_queue.py", os.path.join(REPO, "queue.txt"), "--list", "--state-dir",
                         tmp_path / "state")
    assert listing.exit_code == 0 and "train.py" in listing.stdout


def test_lines_added_while_the_queue_runs_are_run_in_their_place(tmp_path):
    ran = tmp_path / "ran.txt"
    queue_path = tmp_path / "queue.txt"
    adds_a_line = f"echo first >> {ran}; echo 'echo added >> {ran}' >> {queue_path}"
    queue_path.write_text(adds_a_line + "\n" + f"echo last >> {ran}\n")
    assert run_queue(tmp_path, queue_path).exit_code == 0
    assert ran.read_text().split() == ["first", "last", "added"]


def test_the_listing_shows_the_command_that_runs_now(tmp_path):
    queue_path = tmp_path / "queue.txt"
    lists_the_queue = (f"{sys.executable} {os.path.join(REPO, 'run_queue.py')} {queue_path} "
                       f"--state-dir {tmp_path / 'state'} --list > {tmp_path / 'listing.txt'}")
    two_epochs = (r"Epoch 1/5\n3/3 - 60s - loss: 1 - val_accuracy: 0.5000\nEpoch 2/5\n"
                  r"3/3 - 100s - loss: 1 - val_accuracy: 0.6125 - val_unseen_accuracy: 0.6000\nEpoch 3/5\n")
    queue_path.write_text(f"echo Epoch 9/9\nprintf '{two_epochs}' && {lists_the_queue}\n")
    assert run_queue(tmp_path, queue_path).exit_code == 0
    during = [line.split()[2:4] for line in (tmp_path / "listing.txt").read_text().splitlines()]
    assert during == [["done", "echo"], ["running", "(epoch"]]
    # the epoch it is on now, three epochs left at the median 80 s of those finished (4 minutes), and
    # the last finished epoch's validation accuracy
    assert "running (epoch 3/5, about 4 min left, validation 61.25%)" in (tmp_path / "listing.txt").read_text()
    after = [line.split()[2] for line in run_queue(tmp_path, queue_path, "--list").stdout.splitlines()]
    assert after == ["done", "done"]
