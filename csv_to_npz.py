"""Parses the train and test CSVs once into a compressed `.npz` cache that every script accepts.

Usage:
    python csv_to_npz.py train.csv test.csv                  # writes data.npz
    python csv_to_npz.py train.csv.gz test.csv.gz -o fer2013.npz
    python csv_to_npz.py fer2013.csv -o fer2013.npz           # Kaggle's file: all three parts

The cache holds uint8 images (rows, 48, 48), labels and ids: arrays train_images, train_labels,
train_ids, test_images and test_ids. Training scripts read its train part, test scripts its test
part. From Kaggle's fer2013.csv the train part is the PublicTest rows (the default validation rows,
recorded as train_validation_rows) followed by the Training rows, and the test part is the
PrivateTest rows with their labels (test_labels). An -o file that exists is replaced (atomically,
with a note on stderr); without -o, data.npz is written, or data-1.npz, ... if that exists.
"""

import time

from common import cli, data, files


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("train_csv", help="labelled data: course CSV (label,feature), Kaggle fer2013.csv or .csv.gz")
    parser.add_argument("test_csv", nargs="?",
                        help="test data: course CSV (id,feature), any labelled CSV or .csv.gz (default: "
                             "the PrivateTest rows of a Kaggle fer2013.csv given as TRAIN_CSV)")
    parser.add_argument("-o", "--output", type=cli.output_file,
                        help="the .npz file to write, replaced if it exists (default: data.npz, or "
                             "data-1.npz, ... if that exists)")
    options = parser.parse_args()
    if options.output and not options.output.endswith(".npz"):
        raise cli.UsageError(f"--output {options.output}: expected a file name ending in .npz")

    started = time.perf_counter()
    train = data.load_dataset(options.train_csv, require_labels=True)
    test = data.load_dataset(options.test_csv or options.train_csv, part="test")
    parsed = time.perf_counter()
    output = options.output or files.free_path("data.npz")
    data.save_npz(output, train, test)
    print(f"parsed {len(train)} training and {len(test)} test faces in {parsed - started:.2f} s, "
          f"wrote them in {time.perf_counter() - parsed:.2f} s")
    print(output)


if __name__ == "__main__":
    cli.run(main)
