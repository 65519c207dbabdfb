"""A queue of long commands run one after another in the background, across sessions.

The queue is a text file with one shell command per line (`#` starts a comment). Each command is
run in its turn with its output appended to `<state folder>/<job>.log`; a command that exits 0 is
marked done (`<job>.done`) and skipped from then on, so starting the same queue again continues
with the first command not yet done. Training commands resume after their last finished epoch by
themselves, so a queue stopped mid-run loses at most one epoch. A job is named by a hash of its
command's text: editing a line makes it a new job, moving it does not.

One queue runner holds a folder at a time (`queue_lock`: `queue.lock` with its process id and
host); a lock left by a process that no longer runs is taken over with a note.
"""

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import re
import signal
import statistics
import subprocess

from common import files
from common.errors import UsageError

INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C or SIGTERM
START_MARK = "=== "  # begins the line a job's log gets each time its command starts
EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+)\s*$", re.MULTILINE)  # Keras's line as an epoch starts
EPOCH_END_LINE = re.compile(r"^\d+/\d+ - (\d+)s - ", re.MULTILINE)  # Keras's line as an epoch ends (verbose 2)
VALIDATION_ACCURACY = re.compile(r" - val_accuracy: ([0-9.]+)")  # on the epoch-end line
RECENT_EPOCHS = 5  # the epochs whose median duration estimates the time a training has left
LOG_TAIL_BYTES = 1 << 16  # how much of a log's end --list reads


@dataclasses.dataclass(frozen=True)
class Job:
    line_number: int
    command: str

    @property
    def name(self):
        """A stable name: the first 12 hex digits of the command's sha256."""
        return hashlib.sha256(self.command.encode()).hexdigest()[:12]


def read_jobs(queue_path):
    """The commands of a queue file, in order; blank lines and `#` comments are skipped."""
    try:
        with open(queue_path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{queue_path}: cannot be read as a text queue ({error})") from None
    jobs = [Job(number, line.strip()) for number, line in enumerate(lines, start=1)
            if line.strip() and not line.strip().startswith("#")]
    if not jobs:
        raise UsageError(f"{queue_path}: no commands (expected one shell command per line)")
    return jobs


def job_state(job, state_folder):
    """'running', 'done', 'failed (exit N)' or 'waiting' for `job`, from its marker files."""
    running = files.read_json(os.path.join(state_folder, f"{job.name}.running"))
    if running and files.process_alive(running["pid"]):
        return "running"
    if os.path.exists(os.path.join(state_folder, f"{job.name}.done")):
        return "done"
    failed = os.path.join(state_folder, f"{job.name}.failed")
    if os.path.exists(failed):
        with open(failed, encoding="utf-8") as handle:
            return f"failed (exit {json.load(handle)['exit_code']})"
    return "waiting"


def queue_lock(state_folder):
    """The lock that one queue runner holds on its state folder (a `files.ProcessLock`)."""
    return files.ProcessLock(os.path.join(state_folder, "queue.lock"), f"the queue of {state_folder}")


def run_queue(queue_path, state_folder, working_folder="."):
    """Runs every job of the queue file not yet done, in order, each in `working_folder`; the file
    is read again after each job, so lines added meanwhile run in their place. Returns the number
    of jobs that failed (each is tried once per start). Stops at once (exit status 130 of a job, or
    SIGTERM/Ctrl-C to the runner) when interrupted, stopping the running command too."""
    failures, attempted = 0, set()
    while True:
        job = next((job for job in read_jobs(queue_path) if job.name not in attempted
                    and job_state(job, state_folder) != "done"), None)
        if job is None:
            return failures
        attempted.add(job.name)
        exit_code = _run_job(job, state_folder, working_folder)
        if exit_code == INTERRUPTED:
            raise KeyboardInterrupt
        _mark(job, state_folder, exit_code)
        failures += exit_code != 0
        print(f"{_now()}  line {job.line_number}: {'done' if exit_code == 0 else f'failed (exit {exit_code})'}"
              f"  {job.command}")


def _run_job(job, state_folder, working_folder):
    """Runs one job's command under bash with its output appended to its log; its exit status."""
    log_path = os.path.join(state_folder, f"{job.name}.log")
    print(f"{_now()}  line {job.line_number}: running  {job.command}  (log: {log_path})")
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n{START_MARK}{_now()} {job.command}\n")
        log.flush()
        running_marker = os.path.join(state_folder, f"{job.name}.running")  # for --list, while this runner lives
        files.write_json(running_marker, {"pid": os.getpid(), "started": _now()}, replace=True)
        process = subprocess.Popen(["bash", "-c", job.command], cwd=working_folder, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            return process.wait()
        except KeyboardInterrupt:  # the runner was stopped: stop the command's whole group with it
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            raise
        finally:
            os.unlink(running_marker)


def _mark(job, state_folder, exit_code):
    """Records a finished job: `<name>.done`, or `<name>.failed` (retried by the next run)."""
    for suffix in (".done", ".failed"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(state_folder, job.name + suffix))
    suffix = ".done" if exit_code == 0 else ".failed"
    with open(os.path.join(state_folder, job.name + suffix), "w", encoding="utf-8") as handle:
        json.dump({"command": job.command, "exit_code": exit_code, "finished": _now()}, handle)


def _now():
    return datetime.datetime.now().isoformat(timespec="seconds")


def describe(jobs, state_folder):
    """Prints one line per job: its line number, state (with the epoch a running training is on and
    about how long it has left) and command."""
    states = []
    for job in jobs:
        state = job_state(job, state_folder)
        progress = running_progress(job, state_folder) if state == "running" else None
        states.append(f"{state} ({progress})" if progress else state)
    width = max(map(len, states), default=0)
    for job, state in zip(jobs, states):
        print(f"line {job.line_number:>3}  {state:<{width}}  {job.command}")


def running_progress(job, state_folder):
    """`epoch N/M` from the last Keras epoch line (`Epoch N/M`) that the job's command wrote to its
    log since it last started, with `about K min left` (the median of its last finished epochs'
    durations, times the epochs not finished) and the last finished epoch's validation accuracy once
    an epoch has finished; None without an epoch line."""
    since_start = _log_since_start(job, state_folder)
    epochs = EPOCH_LINE.findall(since_start)
    if not epochs:
        return None
    epoch, last_epoch = (int(number) for number in epochs[-1])
    progress = f"epoch {epoch}/{last_epoch}"
    durations = [int(seconds) for seconds in EPOCH_END_LINE.findall(since_start)[-RECENT_EPOCHS:]]
    if durations:
        progress += f", about {round(statistics.median(durations) * (last_epoch - epoch + 1) / 60)} min left"
    accuracies = VALIDATION_ACCURACY.findall(since_start)
    if accuracies:
        progress += f", validation {float(accuracies[-1]):.2%}"
    return progress


def _log_since_start(job, state_folder):
    """What the job's command wrote to its log (the last LOG_TAIL_BYTES of it) since it last started."""
    log_path = os.path.join(state_folder, f"{job.name}.log")
    try:
        with open(log_path, "rb") as log:
            log.seek(max(0, os.path.getsize(log_path) - LOG_TAIL_BYTES))
            tail = log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return tail.rsplit(f"\n{START_MARK}", 1)[-1]
