"""Fine-tuning the shipped VGG-style model (`pretrained-vgg`) against training the same architecture
from scratch, by the number of labelled faces per class, on faces the shipped models have never seen.

Usage:
    python benchmarks/finetune.py                                  # generated faces, 10/30/100/300 a class
    python benchmarks/finetune.py --faces fer2013 --data data/fer2013.npz   # FER2013, three other classes
    python benchmarks/finetune.py --per-class 10,30 --epochs 20

Faces (--faces):
- synthetic: the generated faces of `common/synthetic.py`, FER2013's seven classes (fine-tuning
  draws a new last layer with --new-head, the classes meaning something else);
- fer2013: FER2013 rows the shipped model never trained on - its validation rows (the first 2,400 of
  --data's training part), less those with an exact copy anywhere among the training rows - in
  three classes that are not FER2013's seven: negative (angry, disgust, fear, sad), happy and
  neutral (surprise left out). The data file carries those class names, so fine-tuning replaces
  the 7-way last layer with a 3-way one.

For each size, a data file holds 100 validation faces per class first (the same for every run,
apart from the training faces) and then that many training faces per class; both runs get the same
budget (--epochs at --batch-size over the same rows) and keep their last epoch:
- scratch:   train.py FILE --recipe strong --epochs E --batch-size B --val-size V
- fine-tune: train.py FILE --recipe finetune --init pretrained-vgg [--new-head] --head-init random|fit
             --epochs E --batch-size B --val-size V
  (random: the new last layer starts from random weights; fit: from a logistic regression on the
  shipped model's features of the training faces)
The table gives each run's validation accuracy (last epoch, nothing chosen). Writes
benchmarks/results/finetune-<faces>-<date>.json.
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
    "fine-tune, random head": ["--recipe", "finetune", "--init", "pretrained-vgg", "--head-init", "random"],
    "fine-tune, fitted head": ["--recipe", "finetune", "--init", "pretrained-vgg", "--head-init", "fit"],
}
SHIPPED_VALIDATION_ROWS = 2400  # the shipped model's validation rows: it never trained on them
FER2013_GROUPS = {"negative": ("angry", "disgust", "fear", "sad"), "happy": ("happy",), "neutral": ("neutral",)}


def faces_per_class(images, labels, count, class_count):
    """The first `count` faces of each class, in the pool's order."""
    rows = np.concatenate([np.flatnonzero(labels == label)[:count] for label in range(class_count)])
    rows.sort()
    return images[rows], labels[rows]


def synthetic_pool(largest):
    """(training pool, validation faces, class names) of generated faces."""
    pool = synthetic.generate_faces(largest * len(data.FER2013_CLASSES) * 2, seed=11)
    validation = faces_per_class(*synthetic.generate_faces(VALIDATION_PER_CLASS * 9, seed=12),
                                 VALIDATION_PER_CLASS, len(data.FER2013_CLASSES))
    return pool, validation, data.FER2013_CLASSES


def fer2013_pool(path):
    """(training pool, validation faces, class names) of FER2013 rows the shipped model never saw,
    in FER2013_GROUPS' classes; the first VALIDATION_PER_CLASS of each class validate."""
    dataset = data.load_dataset(path, require_labels=True)
    training, unseen_rows = data.split_validation(dataset, SHIPPED_VALIDATION_ROWS)
    copied, _ = data.exact_copies(unseen_rows, training)
    unseen_rows = unseen_rows.subset(~copied & ~data.repeated_rows(unseen_rows))
    group_of = np.full(len(data.FER2013_CLASSES), -1)
    for group, members in enumerate(FER2013_GROUPS.values()):
        group_of[[data.FER2013_CLASSES.index(name) for name in members]] = group
    labels = group_of[unseen_rows.labels]
    images, labels = unseen_rows.images[labels >= 0], labels[labels >= 0]
    validation_rows = np.zeros(len(labels), dtype=bool)
    for group in range(len(FER2013_GROUPS)):
        validation_rows[np.flatnonzero(labels == group)[:VALIDATION_PER_CLASS]] = True
    return ((images[~validation_rows], labels[~validation_rows]),
            (images[validation_rows], labels[validation_rows]), tuple(FER2013_GROUPS))


def write_data_file(path, validation, training, class_names):
    """An .npz whose training part is the validation faces followed by the training faces."""
    images, labels = (np.concatenate(arrays) for arrays in zip(validation, training))
    train = data.Dataset(images, labels, np.arange(len(images)), path, class_names=class_names)
    data.save_npz(path, train, train.subset(slice(0, 1)))


def run(method, data_path, out_dir, epochs, batch_size, seed, validation_rows, new_head):
    """Trains one model; its last epoch's validation accuracy and wall seconds."""
    extra = ["--new-head"] if new_head and method != "scratch" else []
    command = [sys.executable, os.path.join(REPO, "train.py"), data_path, *METHODS[method], *extra,
               "--epochs", str(epochs), "--batch-size", str(batch_size), "--val-size", str(validation_rows),
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
    parser.add_argument("--faces", choices=("synthetic", "fer2013"), default="synthetic",
                        help="which faces (see above)")
    parser.add_argument("--data", default="data/fer2013.npz",
                        help="with --faces fer2013: FER2013's training rows in the course's order (.npz or .csv)")
    options = parser.parse_args()
    sizes = [int(part) for part in options.per_class.split(",")]
    if options.faces == "fer2013":
        (pool_images, pool_labels), validation, class_names = fer2013_pool(options.data)
    else:
        (pool_images, pool_labels), validation, class_names = synthetic_pool(max(sizes))
    short = [name for label, name in enumerate(class_names) if (pool_labels == label).sum() < max(sizes)]
    if short:
        raise cli.UsageError(f"--per-class {max(sizes)}: the {options.faces} faces hold fewer for {', '.join(short)}")
    report = {"faces": options.faces, "classes": list(class_names), "epochs": options.epochs,
              "batch_size": options.batch_size, "validation_faces": len(validation[1]), "rows": []}
    print("faces/class  " + "  ".join(METHODS))
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            training = faces_per_class(pool_images, pool_labels, size, len(class_names))
            data_path = os.path.join(folder, f"faces_{size}.npz")
            write_data_file(data_path, validation, training, class_names)
            row = {"per_class": size}
            for method in METHODS:
                run_folder = os.path.join(folder, f"{method.replace(', ', '_').replace(' ', '_')}_{size}")
                accuracy, seconds = run(method, data_path, run_folder,
                                        options.epochs, options.batch_size, options.seed, len(validation[1]),
                                        new_head=options.faces == "synthetic")
                row[method] = {"val_accuracy": round(accuracy, 4), "seconds": round(seconds, 1)}
            report["rows"].append(row)
            print(f"{size:>11}  " + "  ".join(f"{row[method]['val_accuracy']:>{len(method)}.4f}" for method in METHODS),
                  flush=True)
    out_folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_folder, exist_ok=True)
    path = os.path.join(out_folder, f"finetune-{options.faces}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    files.write_json(path, report)
    print(json.dumps(report))
    print(path)


if __name__ == "__main__":
    cli.run(main)
