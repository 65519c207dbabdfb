"""Parses the train and test CSVs once into a compressed `.npz` cache that every script accepts.

Usage:
    python csv_to_npz.py train.csv test.csv                  # writes data.npz
    python csv_to_npz.py train.csv.gz test.csv.gz -o fer2013.npz
    python csv_to_npz.py fer2013.csv -o fer2013.npz           # Kaggle's file: all three parts
    python csv_to_npz.py faces/ -o faces.npz                  # faces/train/<class>/*, faces/test/<class>/*
    python csv_to_npz.py faces/train faces/test -o faces.npz
    python csv_to_npz.py faces/ --classes happy,sad,contempt -o faces.npz   # three classes, this order

The cache holds uint8 images (rows, 48, 48), labels and ids: arrays train_images, train_labels,
train_ids, test_images and test_ids. Training scripts read its train part, test scripts its test
part. From Kaggle's fer2013.csv the train part is the PublicTest rows (the default validation rows,
recorded as train_validation_rows) followed by the Training rows, and the test part is the
PrivateTest rows with their labels (test_labels). From folders of images by class (see
common/image_folders.py) both parts are labelled, the ids are the images' relative paths, and the
class names (the folder names, or --classes) are kept as class_names unless they are FER2013's seven;
a test class folder the training part lacks is refused. An -o file that exists is replaced (atomically,
with a note on stderr); without -o, data.npz is written, or data-1.npz, ... if that exists.
"""

import os
import time

from common import cli, config, data, files, image_folders


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("train_data", help="labelled data: course CSV (label,feature), Kaggle fer2013.csv, "
                                          ".csv.gz, or a folder of images by class (DIR/<class>/*, or "
                                          "DIR/train/<class>/* beside DIR/test/<class>/*)")
    parser.add_argument("test_data", nargs="?",
                        help="test data: course CSV (id,feature), any labelled CSV or .csv.gz, or a folder "
                             "of images by class (default: the PrivateTest rows of a Kaggle fer2013.csv "
                             "given as TRAIN_DATA, or the test/ part of its folder)")
    parser.add_argument("--detector", choices=tuple(config.DETECTORS),
                        help="how faces are cut from a folder's images (default: 'none' when every image "
                             "is a face crop, at most 100 pixels or square, else predict.py's default)")
    cli.add_classes_option(parser)
    parser.add_argument("-o", "--output", type=cli.output_file,
                        help="the .npz file to write, replaced if it exists (default: data.npz, or "
                             "data-1.npz, ... if that exists)")
    options = parser.parse_args()
    if options.output and not options.output.endswith(".npz"):
        raise cli.UsageError(f"--output {options.output}: expected a file name ending in .npz")

    if (options.test_data is None and os.path.isdir(options.train_data)
            and not image_folders.has_parts(options.train_data)):
        raise cli.UsageError(f"{options.train_data}: a folder without train/ and test/ parts; give the "
                             f"test images' folder as TEST_DATA")
    cli.check_output_is_no_input(options.output, f"--output {options.output}", options.train_data,
                                 options.test_data)
    cli.check_classes_option(options.classes, options.train_data)
    started = time.perf_counter()
    train = data.load_dataset(options.train_data, require_labels=True, detector=options.detector,
                              class_names=options.classes)
    test = data.load_dataset(options.test_data or options.train_data, part="test", detector=options.detector,
                             class_names=train.class_names)
    parsed = time.perf_counter()
    output = options.output or files.free_path("data.npz")
    data.save_npz(output, train, test)
    print(f"parsed {len(train)} training and {len(test)} test faces in {parsed - started:.2f} s, "
          f"wrote them in {time.perf_counter() - parsed:.2f} s")
    print(output)


if __name__ == "__main__":
    cli.run(main)
