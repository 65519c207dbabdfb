"""predict.py on photos, folders and videos, and the face crops behind it."""

import csv
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from common import data, faces, files, model_files, synthetic
from helpers import REPO, assert_refused, run_script

EXAMPLE_PHOTO = os.path.join(REPO, "examples", "astronaut.jpg")
COLUMNS = ["source", "frame", "face", "x", "y", "width", "height", "label", "emotion", "angry",
           "disgust", "fear", "happy", "sad", "surprise", "neutral", "detector_score", "annotated", "time",
           "person"]


def read_predictions(folder):
    with open(os.path.join(folder, "predictions.csv"), newline="") as handle:
        return list(csv.DictReader(handle))


def write_upscaled_faces(folder, images, scale=2):
    """Each 48x48 face as a (48*scale)-pixel PNG whose area downscale gives the face back exactly."""
    os.makedirs(folder, exist_ok=True)
    for index, image in enumerate(images):
        big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(os.path.join(folder, f"face{index:02d}.png"), big)


def test_the_example_photo_gives_one_face_with_its_box_and_probabilities(tmp_path, trained_model):
    out = tmp_path / "out"
    result = run_script("predict.py", EXAMPLE_PHOTO, "--model", trained_model, "--out", out)
    assert result.exit_code == 0, result.stderr
    with open(out / "predictions.csv", newline="") as handle:
        assert next(csv.reader(handle)) == COLUMNS
    (row,) = read_predictions(out)
    assert row["source"] == EXAMPLE_PHOTO and row["frame"] == "0" and row["face"] == "0"
    x, y, width, height = (int(row[name]) for name in ("x", "y", "width", "height"))
    assert 150 < x < 210 and 40 < y < 100 and 70 < width < 130 and 70 < height < 130  # her face
    probabilities = np.array([float(row[name]) for name in COLUMNS[9:16]])
    assert abs(probabilities.sum() - 1) < 0.002
    assert int(row["label"]) == probabilities.argmax() and row["emotion"] == data.FER2013_CLASSES[int(row["label"])]
    annotated = cv2.imread(str(out / "astronaut_faces.png"))
    assert annotated.shape == cv2.imread(EXAMPLE_PHOTO).shape
    assert "found 1 faces" in result.stdout and result.last_line == str(out / "predictions.csv")


def test_a_folder_of_face_crops_gets_the_same_labels_as_test_py(tmp_path, trained_model):
    images, _ = synthetic.generate_faces(10, seed=3)
    write_upscaled_faces(tmp_path / "crops", images)
    (tmp_path / "crops" / "notes.txt").write_text("not a picture")
    out = tmp_path / "out"
    result = run_script("predict.py", tmp_path / "crops", "--detector", "none", "--model", trained_model,
                        "--out", out, "--batch-size", 4, "--no-annotate", "--precision", "fp32")  # 3 batches
    assert result.exit_code == 0, result.stderr
    assert "notes.txt: skipped, neither an image nor a video" in result.stderr
    rows = read_predictions(out)
    assert [os.path.basename(row["source"]) for row in rows] == [f"face{i:02d}.png" for i in range(10)]
    assert all((row["x"], row["y"], row["width"], row["height"]) == ("0", "0", "96", "96") for row in rows)
    from common import prediction
    model = model_files.with_precision(model_files.load_model(trained_model), "fp32")
    expected = prediction.predict_probabilities(model, images)  # test.py's path on the 48x48 faces
    found = np.array([[float(row[name]) for name in COLUMNS[9:16]] for row in rows])
    np.testing.assert_allclose(found, expected, atol=6e-5)  # the 4 decimals written
    assert not [name for name in os.listdir(out) if name.endswith(".png")]


def test_every_nth_video_frame_is_read_and_the_annotated_video_written(tmp_path, trained_model):
    images, _ = synthetic.generate_faces(6, seed=4)
    video_path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(video_path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 96))
    for image in images:
        writer.write(cv2.cvtColor(cv2.resize(image, (96, 96)), cv2.COLOR_GRAY2BGR))
    writer.release()
    out = tmp_path / "out"
    result = run_script("predict.py", video_path, "--detector", "none", "--every", 2, "--annotate-video",
                        "--model", trained_model, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert [row["frame"] for row in read_predictions(out)] == ["0", "2", "4"]
    capture = cv2.VideoCapture(str(out / "clip_faces.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert "read 0 images and 3 frames of 1 videos; found 3 faces" in result.stdout
    timeline = cv2.imread(str(out / "clip_emotions.png"))  # the face's emotions over the video's time
    assert timeline is not None and timeline.shape[1] > 800
    assert "1 annotated copy in" in result.stdout
    assert f"{video_path}: 1 person: person 1 " in result.stdout  # its dominant emotion and time seen
    assert f"emotions over time: {out / 'clip_emotions.png'}" in result.stdout
    assert f"people: {out / 'clip_people.csv'}" in result.stdout
    quiet = run_script("predict.py", video_path, "--detector", "none", "--no-annotate", "--model", trained_model,
                       "--out", tmp_path / "csv_only")
    assert quiet.exit_code == 0, quiet.stderr
    assert sorted(os.listdir(tmp_path / "csv_only")) == ["clip_people.csv", "predictions.csv"]


def test_each_row_names_its_annotated_copy_when_names_collide(tmp_path, trained_model):
    for folder in ("first", "second"):
        (tmp_path / folder).mkdir()
        shutil.copy(EXAMPLE_PHOTO, tmp_path / folder / "face.jpg")
    out = tmp_path / "out"
    for run in range(2):  # the second run into the same --out keeps the first's files
        result = run_script("predict.py", tmp_path / "first", tmp_path / "second", "--detector", "none",
                            "--model", trained_model, "--out", out)
        assert result.exit_code == 0, result.stderr
    first_rows = read_predictions(out)
    with open(out / "predictions-1.csv", newline="") as handle:
        second_rows = list(csv.DictReader(handle))
    annotated = [row["annotated"] for row in first_rows + second_rows]
    assert len(set(annotated)) == 4 and all(os.path.isfile(path) for path in annotated)
    assert [os.path.basename(path) for path in annotated] == [
        "face_faces.png", "face_faces-1.png", "face_faces-2.png", "face_faces-3.png"]
    assert [row["source"] for row in first_rows] == [str(tmp_path / "first" / "face.jpg"),
                                                     str(tmp_path / "second" / "face.jpg")]


def test_a_photo_without_a_face_gets_no_row_and_is_named(tmp_path, trained_model):
    cv2.imwrite(str(tmp_path / "wall.png"), np.full((120, 160, 3), 128, np.uint8))
    out = tmp_path / "out"
    result = run_script("predict.py", tmp_path / "wall.png", "--model", trained_model, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert read_predictions(out) == []
    assert f"no face in 1 inputs: {tmp_path / 'wall.png'}" in result.stdout


def test_the_crop_is_a_square_with_a_margin_and_repeats_edges_outside_the_image():
    grey = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    grey[:] = np.arange(100, dtype=np.uint8)[None, :]  # brightness = column
    inside = faces.crop_face(grey, (30, 30, 40, 40), margin=0.1)  # square 48 wide from column 26
    assert inside.shape == (48, 48) and inside[:, 0].mean() == pytest.approx(26, abs=0.6)
    corner = faces.crop_face(grey, (0, 0, 40, 20), margin=0.1)  # 48-pixel square from column -4
    assert corner[:, :4].max() == 0  # edge column repeated


@pytest.mark.parametrize("make_input, message", [
    (lambda tmp_path: tmp_path / "missing.jpg", "no such file or folder"),
    (lambda tmp_path: _write(tmp_path / "broken.jpg", b"not a jpeg"), "cannot be read as an image"),
    (lambda tmp_path: _write(tmp_path / "broken.mp4", b"not a video"), "cannot be read as a video"),
    (lambda tmp_path: _folder(tmp_path / "empty"), "holds no images or videos"),
])
def test_bad_inputs_are_refused_and_nothing_is_written(tmp_path, trained_model, make_input, message):
    path = make_input(tmp_path)
    out = tmp_path / "out"
    result = run_script("predict.py", path, "--model", trained_model, "--out", out)
    assert_refused(result, str(path), message)
    assert not out.exists()


def test_an_unwritable_output_is_refused_before_predicting(tmp_path, trained_model):
    (tmp_path / "taken").write_text("a file")
    result = run_script("predict.py", EXAMPLE_PHOTO, "--model", trained_model, "--out", tmp_path / "taken" / "x")
    assert_refused(result, "cannot be made", "is a file")


def _write(path, content):
    path.write_bytes(content)
    return path


def _folder(path):
    path.mkdir()
    return path


def test_every_shipped_model_is_found_and_small():
    for name in files.SHIPPED_MODEL_FOLDERS:  # pretrained, pretrained-vgg, pretrained-small
        path = files.pretrained_model_path(name)
        assert os.path.getsize(path) <= 10 * 1024 * 1024
        assert os.path.isfile(os.path.join(os.path.dirname(path), "MODEL_CARD.md"))


def test_the_repositorys_model_list_works_on_a_fresh_clone(tmp_path):
    result = run_script("predict.py", EXAMPLE_PHOTO, "--model", os.path.join(REPO, "model_list.txt"),
                        "--out", tmp_path / "out", "--no-annotate")
    assert result.exit_code == 0, result.stderr
    assert len(read_predictions(tmp_path / "out")) == 1


def test_a_fresh_clone_classifies_the_example_photo_with_the_shipped_model(tmp_path):
    result = run_script("predict.py", EXAMPLE_PHOTO, "--out", tmp_path / "out")  # no --model
    assert result.exit_code == 0, result.stderr
    (row,) = read_predictions(tmp_path / "out")
    assert row["emotion"] == "happy"  # she smiles broadly
    assert f"model: {files.pretrained_model_path()}" in result.stdout


def test_the_second_shipped_model_classifies_the_example_photo(tmp_path):
    result = run_script("predict.py", EXAMPLE_PHOTO, "--model", "pretrained-vgg", "--out", tmp_path / "out",
                        "--no-annotate")
    assert result.exit_code == 0, result.stderr
    (row,) = read_predictions(tmp_path / "out")
    assert row["emotion"] == "happy"
    assert f"model: {files.pretrained_model_path('pretrained-vgg')}" in result.stdout


def test_test_py_uses_the_shipped_model_when_none_is_given(tmp_path, test_csv):
    result = run_script("test.py", test_csv, tmp_path / "result.csv")
    assert result.exit_code == 0, result.stderr
    assert str(files.pretrained_model_path()) in result.stdout
    assert len((tmp_path / "result.csv").read_text().splitlines()) == 41


def write_video(path, frame_count):
    images, _ = synthetic.generate_faces(frame_count, seed=4)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 96))
    for image in images:
        writer.write(cv2.cvtColor(cv2.resize(image, (96, 96)), cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_a_truncated_video_is_named_once_without_ffmpegs_own_line(tmp_path):
    whole = write_video(tmp_path / "whole.mp4", 10).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[:len(whole) // 2])  # its index ("moov atom") is lost
    completed = subprocess.run([sys.executable, os.path.join(REPO, "predict.py"), str(tmp_path / "cut.mp4"),
                                "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        f"predict.py: error: {tmp_path / 'cut.mp4'}: cannot be read as a video by OpenCV"]


def test_a_video_with_one_frame_read_is_not_written_as_a_video(tmp_path, trained_model):
    video_path = write_video(tmp_path / "clip.mp4", 6)
    out = tmp_path / "out"
    result = run_script("predict.py", video_path, "--detector", "none", "--every", 1000000,
                        "--annotate-video", "--model", trained_model, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "1 frame read (--every 1000000), so no annotated video was written" in result.stderr
    assert sorted(os.listdir(out)) == ["clip_people.csv", "predictions.csv"] and "annotated copies" not in result.stdout


def test_unreadable_files_in_a_folder_are_listed_not_counted_as_read(tmp_path, trained_model):
    (tmp_path / "in").mkdir()
    shutil.copy(EXAMPLE_PHOTO, tmp_path / "in" / "good.jpg")
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    result = run_script("predict.py", tmp_path / "in", "--detector", "none", "--model", trained_model,
                        "--out", tmp_path / "out", "--no-annotate")
    assert result.exit_code == 0, result.stderr
    assert "read 1 images and 0 frames of 0 videos; found 1 faces" in result.stdout
    assert f"skipped, unreadable: 1 inputs: {tmp_path / 'in' / 'broken.png'}" in result.stdout


def test_writing_into_an_input_folder_is_warned_about(tmp_path, trained_model):
    (tmp_path / "in").mkdir()
    shutil.copy(EXAMPLE_PHOTO, tmp_path / "in" / "good.jpg")
    result = run_script("predict.py", tmp_path / "in", "--detector", "none", "--model", trained_model,
                        "--out", tmp_path / "in" / ".." / "in")
    assert result.exit_code == 0, result.stderr
    assert "is also an input folder: a later run on it will read the annotated copies" in result.stderr
    assert sorted(os.listdir(tmp_path / "in")) == ["good.jpg", "good_faces.png", "predictions.csv"]


def test_file_names_that_are_not_utf8_are_read_or_named_not_crashed_on(tmp_path, trained_model):
    """OpenCV crashes on such names: images are decoded from their bytes, videos refused by name."""
    folder = tmp_path / "in"
    folder.mkdir()
    with open(EXAMPLE_PHOTO, "rb") as handle:
        photo = handle.read()
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.jpg"), "wb") as handle:  # a Latin-1 name
        handle.write(photo)
    video = write_video(tmp_path / "clip.mp4", 3)
    os.rename(video, os.path.join(os.fsencode(folder), b"clip\xe9.mp4"))
    out = tmp_path / "out"
    result = run_script("predict.py", folder, "--detector", "none", "--model", trained_model, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "clip\\xe9.mp4: OpenCV cannot open a video whose name is not UTF-8; rename it; skipped" in result.stderr
    with open(out / "predictions.csv", encoding="utf-8") as handle:  # valid UTF-8 throughout
        rows = list(csv.DictReader(handle))
    assert [row["source"] for row in rows] == [f"{folder}/caf\\xe9.jpg"]
    assert os.path.exists(os.path.join(os.fsencode(out), b"caf\xe9_faces.png"))
    assert_refused(run_script("predict.py", os.path.join(folder, os.fsdecode(b"clip\xe9.mp4")), "--model", trained_model),
                   "clip\\xe9.mp4: OpenCV cannot open a video whose name is not UTF-8")
