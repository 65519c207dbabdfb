"""Loading round-trips through every accepted format, and the fast parser agrees with a naive one."""

import gzip
import os

import numpy as np
import pytest

from common import data, synthetic
from common.cli import BadValue, UsageError
from helpers import assert_refused, run_script


def naive_parse(path):
    """The obvious per-row parse, as a reference."""
    with open(path) as handle:
        lines = handle.read().splitlines()[1:]
    leading = np.array([int(line.split(",")[0]) for line in lines])
    pixels = np.array([[int(value) for value in line.split(",")[1].split()] for line in lines])
    return leading, pixels.reshape(-1, 48, 48)


def test_csv_round_trip_matches_a_naive_parse(train_csv, faces):
    dataset = data.load_dataset(str(train_csv))
    leading, pixels = naive_parse(train_csv)
    np.testing.assert_array_equal(dataset.images, pixels)
    np.testing.assert_array_equal(dataset.labels, leading)
    np.testing.assert_array_equal(dataset.images, faces[0])
    assert dataset.images.dtype == np.uint8 and dataset.images.shape == (320, 48, 48)
    np.testing.assert_array_equal(dataset.ids, np.arange(320))


def test_extreme_pixel_values_and_long_ids_parse_exactly(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.choice(np.array([0, 1, 9, 10, 99, 100, 254, 255], dtype=np.uint8), size=(5, 48, 48))
    ids = [7177, 3, 123456789, 0, 42]
    lines = ["id,feature"] + [f"{i},{' '.join(map(str, image.ravel()))}" for i, image in zip(ids, images)]
    path = tmp_path / "test.csv"
    path.write_text("\r\n".join(lines) + "\r\n\n")
    dataset = data.load_dataset(str(path), part="test")
    assert dataset.labels is None
    np.testing.assert_array_equal(dataset.ids, ids)
    np.testing.assert_array_equal(dataset.images, images)


def test_gzip_and_kaggle_formats_give_the_same_faces(tmp_path, train_csv):
    plain = data.load_dataset(str(train_csv))
    gzipped = tmp_path / "train.csv.gz"
    gzipped.write_bytes(gzip.compress(train_csv.read_bytes()))
    kaggle = tmp_path / "fer2013.csv"
    rows = train_csv.read_text().splitlines()[1:]
    kaggle.write_text("emotion,pixels,Usage\n" + "".join(f"{row},Training\n" for row in rows))
    for path in (gzipped, kaggle):
        dataset = data.load_dataset(str(path))
        np.testing.assert_array_equal(dataset.images, plain.images)
        np.testing.assert_array_equal(dataset.labels, plain.labels)


def test_csv_to_npz_round_trip(tmp_path, train_csv, test_csv):
    output = tmp_path / "cache.npz"
    result = run_script("csv_to_npz.py", train_csv, test_csv, "-o", output)
    assert result.exit_code == 0, result.stderr
    assert result.last_line == str(output)
    train = data.load_dataset(str(output), part="train", require_labels=True)
    test = data.load_dataset(str(output), part="test")
    np.testing.assert_array_equal(train.images, data.load_dataset(str(train_csv)).images)
    np.testing.assert_array_equal(train.labels, data.load_dataset(str(train_csv)).labels)
    np.testing.assert_array_equal(test.images, data.load_dataset(str(test_csv)).images)
    np.testing.assert_array_equal(test.ids, np.arange(40))
    assert test.labels is None
    again = run_script("csv_to_npz.py", train_csv, test_csv, "-o", output)  # a path the user named
    assert again.last_line == str(output) and f"replaced {output}" in again.stderr
    assert sorted(os.listdir(tmp_path)) == ["cache.npz"]


def test_csv_to_npz_without_o_never_replaces_its_default_file(tmp_path, train_csv, test_csv, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_script("csv_to_npz.py", train_csv, test_csv).last_line == "data.npz"
    assert run_script("csv_to_npz.py", train_csv, test_csv).last_line == "data-1.npz"


def test_csv_to_npz_into_an_unwritable_place_is_refused_before_parsing(tmp_path, train_csv, test_csv):
    (tmp_path / "taken").write_text("a file")
    result = run_script("csv_to_npz.py", train_csv, test_csv, "-o", tmp_path / "taken" / "x.npz")
    assert_refused(result, "cannot be made", "is a file")


def test_validation_rows_are_the_first_rows(train_csv):
    dataset = data.load_dataset(str(train_csv))
    train, val = data.split_validation(dataset, 64)
    np.testing.assert_array_equal(val.images, dataset.images[:64])
    np.testing.assert_array_equal(train.labels, dataset.labels[64:])
    _, tenth = data.split_validation(dataset, 0.1)
    assert len(tenth) == 32
    with pytest.raises(BadValue, match="320 validation rows leave no training rows"):  # scripts name the option
        data.split_validation(dataset, 320)


def test_unlabelled_file_is_refused_for_training(test_csv):
    with pytest.raises(UsageError, match="has no labels"):
        data.load_dataset(str(test_csv), require_labels=True)


def test_exact_copies_of_validation_rows_are_found_with_their_labels():
    images, labels = synthetic.generate_faces(20, seed=7)
    val = data.Dataset(images[:5], labels[:5], np.arange(5), "val")
    train_images = np.concatenate([images[5:], images[[1, 3]]])  # copies of validation rows 1 and 3
    train_labels = np.concatenate([labels[5:], [labels[1], (labels[3] + 1) % 7]])  # row 3 relabelled
    train = data.Dataset(train_images, train_labels, np.arange(len(train_images)), "train")
    copied, relabelled = data.exact_copies(val, train)
    assert copied.tolist() == [False, True, False, True, False]
    assert relabelled.tolist() == [False, False, False, True, False]


def test_a_kaggle_file_is_parsed_without_copying_it_whole(tmp_path):
    import tracemalloc

    images, labels = synthetic.generate_faces(1500, seed=8)
    path = tmp_path / "fer2013.csv"
    with open(path, "w") as handle:
        handle.write("emotion,pixels,Usage\n")
        for image, label in zip(images, labels):
            handle.write(f'{label},"{" ".join(map(str, image.ravel()))}",Training\n')
    tracemalloc.start()
    try:
        dataset = data.parse_csv(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(dataset.images, images)
    assert peak < 3.5 * os.path.getsize(path)  # rewriting the whole text first took 5x


def write_kaggle(path, images, labels, usages):
    with open(path, "w") as handle:
        handle.write("emotion,pixels,Usage\n")
        for image, label, usage in zip(images, labels, usages):
            handle.write(f'{label},"{" ".join(map(str, image.ravel()))}",{usage}\n')


def test_kaggle_usage_gives_the_standard_protocol_and_survives_the_cache(tmp_path):
    images, labels = synthetic.generate_faces(12, seed=9)
    usages = ["Training", "PublicTest", "PrivateTest"] * 4
    path = str(tmp_path / "fer2013.csv")
    write_kaggle(path, images, labels, usages)
    train = data.load_dataset(path, require_labels=True)
    public, training, private = ([i for i, u in enumerate(usages) if u == name]
                                 for name in ("PublicTest", "Training", "PrivateTest"))
    np.testing.assert_array_equal(train.images, images[public + training])  # PublicTest rows first
    train_part, val_part = data.split_validation(train, None)
    np.testing.assert_array_equal(val_part.labels, labels[public])
    test = data.load_dataset(path, part="test")
    np.testing.assert_array_equal(test.ids, private)  # row numbers in the file
    np.testing.assert_array_equal(test.labels, labels[private])
    assert run_script("csv_to_npz.py", path, "-o", tmp_path / "cache.npz").exit_code == 0
    cached_train = data.load_dataset(str(tmp_path / "cache.npz"))
    assert cached_train.default_validation_rows == len(public)
    np.testing.assert_array_equal(data.load_dataset(str(tmp_path / "cache.npz"), part="test").labels,
                                  labels[private])


def test_an_unknown_usage_is_refused_with_its_line(tmp_path):
    images, labels = synthetic.generate_faces(3, seed=9)
    path = tmp_path / "fer2013.csv"
    write_kaggle(path, images, labels, ["Training", "Validation", "Training"])
    result = run_script("train.py", path)
    assert result.exit_code == 2 and "line 3: Usage 'Validation' is not one of" in result.stderr
