"""Fuzzing of the file loaders, run in its own process under a memory limit by test_loader_fuzzing.py.

Every case writes one damaged file and loads it: the load must either give the right rows or raise
a UsageError whose message is one line naming the file. Anything else (another exception, a hang,
runaway memory) fails the case. Prints one JSON line: the number of cases, failures, slowest case.
"""

import gzip
import io
import json
import os
import random
import sys
import time

import numpy as np

from common import data, model_lists, synthetic
from common.cli import UsageError

SPECIAL_BYTES = (b" ", b"\t", b"\r", b"\n", b"\x00", b'"', b",", b"\xff", b"\xc3", b"9", b"-")
CUT_REGION = 300  # bytes at the end of each file that are cut at every offset
MUTATED_VARIANTS = 150  # seeded random variants of each form (the second argument changes it)


def csv_forms(images, labels):
    """The text of each CSV form holding `images`: course train, course test, Kaggle's."""
    pixels = [" ".join(map(str, image.ravel())) for image in images]
    usages = ["Training", "PublicTest", "PrivateTest"]
    return {
        "train": "label,feature\n" + "".join(f"{label},{row}\n" for label, row in zip(labels, pixels)),
        "test": "id,feature\n" + "".join(f"{index},{row}\n" for index, row in enumerate(pixels)),
        "kaggle": "emotion,pixels,Usage\n" + "".join(
            f'{label},"{row}",{usages[index % 3]}\n' for index, (label, row) in enumerate(zip(labels, pixels))),
    }


class Fuzzer:
    def __init__(self, folder):
        self.folder = folder
        self.cases = 0
        self.failures = []
        self.slowest = 0.0

    def check(self, name, content, load, verify):
        """Writes `content` to `name`, runs `load(path)` and `verify(result)` on success."""
        path = os.path.join(self.folder, name)
        with open(path, "wb") as handle:
            handle.write(content)
        self.cases += 1
        started = time.perf_counter()
        try:
            result = load(path)
        except UsageError as error:
            message = str(error)
            if "\n" in message or path not in message:
                self.failures.append(f"{name}: message not one line naming the file: {message!r}")
        except Exception as error:  # noqa: BLE001  (any other exception is what this looks for)
            self.failures.append(f"{name} ({len(content)} bytes): {type(error).__name__}: {error}")
        else:
            problem = verify(result)
            if problem:
                self.failures.append(f"{name}: {problem}")
        self.slowest = max(self.slowest, time.perf_counter() - started)


def prefix_rows(expected_images):
    """A check that parsed rows are the expected rows' first ones, the last possibly cut inside its
    final pixel value (a cut file's last number can lose digits and still be a number)."""

    def verify(dataset):
        images = dataset.images.reshape(len(dataset), -1)
        expected = expected_images.reshape(len(expected_images), -1)
        rows = len(images)
        if rows == 0 or rows > len(expected):
            return f"{rows} rows parsed from a file of {len(expected)}"
        if not (images[:rows - 1] == expected[:rows - 1]).all() or not (
                images[rows - 1, :-1] == expected[rows - 1, :-1]).all():
            return "parsed pixels differ from the file's"
        if not str(expected[rows - 1, -1]).startswith(str(images[rows - 1, -1])):
            return "the last pixel is not a cut of the file's"
        return None

    return verify


def sound_dataset(dataset):
    """A check for a damaged file that still parsed: consistent shapes, labels in 0..6."""
    if dataset.images.shape[1:] != (48, 48) or len(dataset.ids) != len(dataset.images):
        return f"inconsistent arrays: images {dataset.images.shape}, ids {dataset.ids.shape}"
    if dataset.labels is not None and (dataset.labels.min() < 0 or dataset.labels.max() > 6):
        return "labels outside 0..6"
    return None


def mutate(content, generator):
    """One to three random byte flips, deletions or insertions of awkward bytes."""
    content = bytearray(content)
    for _ in range(generator.randint(1, 3)):
        where = generator.randrange(len(content))
        kind = generator.choice(("flip", "delete", "insert"))
        special = generator.choice(SPECIAL_BYTES)
        if kind == "flip":
            content[where:where + 1] = special
        elif kind == "delete":
            del content[where]
        else:
            content[where:where] = special
    return bytes(content)


def fuzz_csv(fuzzer, images, labels):
    """Each CSV form (rows in file order whatever the form) cut at every offset of its end, with
    awkward endings, and mutated; gzipped copies cut and mutated too."""
    for form, text in csv_forms(images, labels).items():
        content = text.encode()
        squeezed = gzip.compress(content)
        for cut in range(max(0, len(content) - CUT_REGION), len(content) + 1):
            fuzzer.check(f"{form}_cut_{cut}.csv", content[:cut], data.parse_csv, prefix_rows(images))
        for cut in range(max(0, len(squeezed) - CUT_REGION), len(squeezed), 3):
            fuzzer.check(f"{form}_cut_{cut}.csv.gz", squeezed[:cut], data.parse_csv, sound_dataset)
        for ending in (b" ", b"\t", b"  ", b" \t\n", b"\r\n", b"\n\n\n"):
            fuzzer.check(f"{form}_ending.csv", content.rstrip(b"\n") + ending, data.parse_csv,
                         prefix_rows(images))
        generator = random.Random(form)
        for variant in range(MUTATED_VARIANTS):
            mutated = mutate(content, generator)
            fuzzer.check(f"{form}_mutated_{variant}.csv", mutated, data.parse_csv, sound_dataset)
            if variant % 10 == 0:
                fuzzer.check(f"{form}_mutated_{variant}.csv.gz", gzip.compress(mutated), data.parse_csv,
                             sound_dataset)


def fuzz_npz(fuzzer, images, labels):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, train_images=images, train_labels=labels.astype(np.uint8),
                        train_ids=np.arange(len(images)), test_images=images, test_ids=np.arange(len(images)))
    content = buffer.getvalue()
    for cut in range(0, len(content), max(1, len(content) // 400)):
        fuzzer.check(f"cut_{cut}.npz", content[:cut], data.load_dataset,
                     lambda dataset: f"a cut .npz loaded {len(dataset)} rows")
    generator = random.Random("npz")
    for variant in range(MUTATED_VARIANTS):
        fuzzer.check(f"mutated_{variant}.npz", mutate(content, generator), data.load_dataset, sound_dataset)


def fuzz_model_lists(fuzzer):
    for name in ("a.h5", "b.h5"):
        open(os.path.join(fuzzer.folder, name), "wb").close()
    content = b"# members\n1 a.h5\n0.5 b.h5 pixel-scale=unit\n2.5 a.h5  # again\n"

    def sound_list(listed):
        if not listed or not all(member.weight > 0 and os.path.isfile(member.path) for member in listed):
            return f"a list read as {listed}"
        return None

    for cut in range(len(content) + 1):
        fuzzer.check("cut.txt", content[:cut], model_lists.read_model_list, sound_list)
    generator = random.Random("lists")
    for variant in range(MUTATED_VARIANTS * 2):
        fuzzer.check("mutated.txt", mutate(content, generator), model_lists.read_model_list, sound_list)


def main(folder):
    images, labels = synthetic.generate_faces(3, seed=0)
    fuzzer = Fuzzer(folder)
    fuzz_csv(fuzzer, images, labels)
    fuzz_npz(fuzzer, images, labels)
    fuzz_model_lists(fuzzer)
    print(json.dumps({"cases": fuzzer.cases, "failures": fuzzer.failures[:20],
                      "failure_count": len(fuzzer.failures), "slowest_seconds": round(fuzzer.slowest, 3)}))


if __name__ == "__main__":
    if len(sys.argv) > 2:
        MUTATED_VARIANTS = int(sys.argv[2])
    main(sys.argv[1])
