"""Runs a queue of long commands (one shell command per line) one after another, skipping the ones
already done: start it in the background at the start of every session and it continues where it
stopped.

Usage:
    nohup python run_queue.py queue.txt > models/queue/runner.log 2>&1 &   # run what is left
    python run_queue.py queue.txt --list                                  # each line's state (a running training: its epoch, time left)

The file is read again after each command, so lines added meanwhile run in their place (editing a
line makes it a new command). Each command's output is appended to <state-dir>/<job>.log (the job is named by a hash of its
command); a command that exits 0 is marked done there and not run again, one that fails is marked
failed and run again by the next start. Training commands resume after their last finished epoch,
so stopping the queue (Ctrl-C, SIGTERM, the end of a session) loses at most one epoch. Exit status:
0 when every command is done, 1 when some failed, 130 when stopped.
"""

import os

from common import cli, job_queue


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("queue", help="a text file with one shell command per line (# comments)")
    parser.add_argument("--state-dir", type=cli.output_folder, default="models/queue",
                        help="where the logs, done/failed markers and the lock are kept")
    parser.add_argument("--list", action="store_true", help="print each command's state and exit")
    options = parser.parse_args()

    jobs = job_queue.read_jobs(options.queue)
    if options.list:
        job_queue.describe(jobs, options.state_dir)
        return
    os.makedirs(options.state_dir, exist_ok=True)
    with job_queue.queue_lock(options.state_dir):
        failures = job_queue.run_queue(options.queue, options.state_dir)
    if failures:
        raise cli.RunFailed(f"{failures} of {len(jobs)} commands failed; their logs are in {options.state_dir}")
    print(f"all {len(jobs)} commands done")


if __name__ == "__main__":
    cli.run(main)
