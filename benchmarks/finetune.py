"""Fine-tuning the shipped model against training from scratch, by the number of labelled faces per
class, on faces the shipped model has never seen: the generated faces of `common/synthetic.py`.

Usage:
    python benchmarks/finetune.py                                  # 10, 30, 100, 300 faces per class
    python benchmarks/finetune.py --per-class 10,30 --epochs 20

For each size, a training file holds 100 validation faces per class first (the same for every run,
drawn apart from the training faces) and then that many training faces per class; both runs get
the same budget (--epochs at --batch-size over the same rows) and keep their last epoch:
- scratch:   train.py FILE --recipe strong --epochs E --batch-size B --val-size 700
- fine-tune: train.py FILE --recipe finetune --init pretrained --new-head --epochs E --batch-size B --val-size 700
The table gives each run's validation accuracy (last epoch, nothing chosen). Writes
benchmarks/results/finetune-<date>.json.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from common import cli, data, files, synthetic  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VALIDATION_PER_CLASS = 100
METHODS = {
    "scratch": ["--recipe", "strong"],
    "fine-tune": ["--recipe", "finetune", "--init", "pretrained", "--new-head"],
}


def faces_per_class(images, labels, count):
    """The first `count` faces of each class, in the pool's order."""
    rows = np.concatenate([np.flatnonzero(labels == label)[:count] for label in range(data.NUM_CLASSES)])
    rows.sort()
    return images[rows], labels[rows]


def run(method, csv_path, out_dir, epochs, batch_size, seed):
    """Trains one model; its last epoch's validation accuracy and wall seconds."""
    command = [sys.executable, os.path.join(REPO, "train.py"), csv_path, *METHODS[method], "--epochs", str(epochs),
               "--batch-size", str(batch_size), "--val-size", str(VALIDATION_PER_CLASS * data.NUM_CLASSES),
               "--seed", str(seed), "--out-dir", out_dir]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise cli.RunFailed(f"{method}: train.py failed: {completed.stderr.strip().splitlines()[-1]}")
    model_path = completed.stdout.strip().splitlines()[-1]
    history = files.read_history(model_path)
    return history[-1][files.VAL_ACCURACY], time.perf_counter() - started


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--per-class", default="10,30,100,300", help="training faces per class, comma-separated")
    parser.add_argument("--epochs", type=cli.positive_int, default=30, help="epochs of every run")
    parser.add_argument("--batch-size", type=cli.positive_int, default=32, help="batch size of every run")
    parser.add_argument("--seed", type=cli.seed_number, default=0, help="seed of every run")
    options = parser.parse_args()
    sizes = [int(part) for part in options.per_class.split(",")]
    pool_images, pool_labels = synthetic.generate_faces(max(sizes) * data.NUM_CLASSES * 2, seed=11)
    val_images, val_labels = faces_per_class(*synthetic.generate_faces(VALIDATION_PER_CLASS * 9, seed=12),
                                             VALIDATION_PER_CLASS)
    report = {"epochs": options.epochs, "batch_size": options.batch_size, "rows": []}
    print(f"{'faces/class':>12}{'scratch':>10}{'fine-tune':>11}")
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            train_images, train_labels = faces_per_class(pool_images, pool_labels, size)
            csv_path = os.path.join(folder, f"faces_{size}.csv")
            data.write_csv_dataset(csv_path, np.concatenate([val_images, train_images]),
                                   np.concatenate([val_labels, train_labels]))
            row = {"per_class": size}
            for method in METHODS:
                accuracy, seconds = run(method, csv_path, os.path.join(folder, f"{method}_{size}"),
                                        options.epochs, options.batch_size, options.seed)
                row[method] = {"val_accuracy": round(accuracy, 4), "seconds": round(seconds, 1)}
            report["rows"].append(row)
            print(f"{size:>12}{row['scratch']['val_accuracy']:>10.4f}{row['fine-tune']['val_accuracy']:>11.4f}",
                  flush=True)
    out_folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_folder, exist_ok=True)
    path = os.path.join(out_folder, f"finetune-{time.strftime('%Y%m%d-%H%M%S')}.json")
    files.write_json(path, report)
    print(json.dumps(report))
    print(path)


if __name__ == "__main__":
    cli.run(main)
