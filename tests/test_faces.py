"""The face finder: several, small and turned faces in generated photos made from the example photo,
framing and alignment, the detector's score, and its independence from the classifier's settings."""

import os

import cv2
import keras
import numpy as np
import pytest
from PIL import Image

from common import faces, tracking
from helpers import REPO, assert_refused, run_script

EXAMPLE_PHOTO = os.path.join(REPO, "examples", "astronaut.jpg")
FACE_BOX = (150, 30, 150, 150)  # a square around the astronaut's face in the example photo


@pytest.fixture(scope="module")
def mtcnn():
    return faces.make_detector("mtcnn")


def example_face(side):
    """The example photo's face and shoulders, `side` pixels wide (BGR)."""
    x, y, width, height = FACE_BOX
    return cv2.resize(cv2.imread(EXAMPLE_PHOTO)[y:y + height, x:x + width], (side, side),
                      interpolation=cv2.INTER_AREA)


def group_photo(sides, centres, size=(960, 1280)):
    """A photo of a noisy gradient holding the example face at each centre with each side."""
    rng = np.random.default_rng(0)
    photo = np.clip(np.linspace(60, 200, size[1])[None, :, None] + rng.normal(0, 8, (*size, 3)), 0, 255)
    photo = photo.astype(np.uint8)
    for side, (x, y) in zip(sides, centres):
        photo[y - side // 2:y - side // 2 + side, x - side // 2:x - side // 2 + side] = example_face(side)
    return photo


def turned(image, degrees):
    """`image` turned by `degrees` clockwise about its centre, edges repeated."""
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), -degrees, 1.0)
    return cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)


def test_every_face_of_a_three_face_photo_is_found_where_it_is(mtcnn):
    centres = [(200, 200), (700, 500), (1100, 800)]
    photo = group_photo([70, 130, 240], centres)
    detections = mtcnn.detect(photo)
    assert len(detections) == 3
    found_centres = sorted((x + width / 2, y + height / 2) for x, y, width, height in
                           (detection.box for detection in detections))
    for (found_x, found_y), (x, y) in zip(found_centres, centres):
        assert abs(found_x - x) < 25 and abs(found_y - y) < 30
    assert all(0.9 <= detection.score <= 1 for detection in detections)
    assert [detection.box[2] for detection in detections] == sorted(
        (detection.box[2] for detection in detections), reverse=True)  # largest first


def test_a_second_look_confirms_a_face_near_its_box_and_refuses_background(mtcnn):
    photo = cv2.imread(EXAMPLE_PHOTO)
    (found,) = mtcnn.detect(photo)
    x, y, width, height = found.box
    near = (x + width // 8, y - height // 10, width, height)  # where a tracker might expect her
    background = (360, 330, 100, 100)  # her suit's arm and the flag behind it
    confirmed, refused = mtcnn.check_boxes(photo, [near, background])
    assert refused is None
    assert tracking.overlap(confirmed.box, found.box) > 0.8  # refined back onto her face
    assert confirmed.score > 0.9
    assert faces.eye_angle(confirmed.eyes) == pytest.approx(faces.eye_angle(found.eyes), abs=3)
    assert mtcnn.check_boxes(photo, []) == []


def test_faces_narrower_than_min_face_are_not_reported():
    photo = group_photo([70, 240], [(200, 200), (900, 600)])
    assert len(faces.make_detector("mtcnn", min_face=120).detect(photo)) == 1


@pytest.mark.parametrize("height, width", [(1, 1), (10, 300), (39, 39)])
def test_an_image_smaller_than_the_smallest_face_has_none(mtcnn, height, width):
    for detector in (mtcnn, faces.make_detector("mtcnn", min_face=12), faces.make_detector("haar")):
        assert detector.detect(np.full((height, width, 3), 128, np.uint8)) == []


def test_the_label_of_a_face_at_the_right_edge_is_drawn_inside_the_photo():
    photo = np.zeros((200, 300, 3), np.uint8)
    face = faces.Face((260, 80, 40, 40), np.zeros((48, 48), np.uint8), np.eye(7)[3], 1.0)
    drawn = faces.annotate(photo, [face])
    label_columns = np.flatnonzero((drawn[:80] == (0, 200, 0)).all(axis=2).any(axis=0))  # above the box
    assert label_columns.min() < 260 and label_columns.max() == 299  # moved left to end at the edge


def test_a_turned_face_is_found_and_cut_out_upright(mtcnn):
    photo = cv2.imread(EXAMPLE_PHOTO)
    (upright,) = faces.find_faces(photo, mtcnn)
    tilted_photo = turned(photo, 20)
    (detection,) = mtcnn.detect(tilted_photo)
    assert faces.eye_angle(detection.eyes) == pytest.approx(20 + faces.eye_angle(mtcnn.detect(photo)[0].eyes),
                                                            abs=5)
    (aligned,) = faces.find_faces(tilted_photo, mtcnn, align=True)
    (unaligned,) = faces.find_faces(tilted_photo, mtcnn, align=False)

    def difference(crop):
        return np.abs(crop.astype(float) - upright.crop.astype(float)).mean()

    assert difference(aligned.crop) < 0.6 * difference(unaligned.crop)


def test_the_turned_crop_of_a_level_face_is_the_plain_crop():
    grey = (np.random.default_rng(1).random((200, 300)) * 255).astype(np.uint8)
    plain = faces.crop_face(grey, (100, 50, 80, 80), margin=0.1, offset=0.0625)  # a 96-pixel square
    turned_by_nothing = faces._turned_square(grey, (140.0, 90.0 + 6), 96, 1e-9)
    np.testing.assert_allclose(cv2.resize(turned_by_nothing, (48, 48), interpolation=cv2.INTER_AREA)
                               .astype(int), plain.astype(int), atol=1)


def test_a_jpeg_cut_short_is_told_from_one_with_data_after_its_end():
    with open(EXAMPLE_PHOTO, "rb") as handle:
        photo = handle.read()
    thumbnail = cv2.imencode(".jpg", np.full((8, 8, 3), 90, np.uint8))[1].tobytes()  # ends in FF D9 too
    app1 = b"\xff\xe1" + (2 + len(thumbnail)).to_bytes(2, "big") + thumbnail
    with_thumbnail = photo[:2] + app1 + photo[2:]
    assert cv2.imdecode(np.frombuffer(with_thumbnail, np.uint8), cv2.IMREAD_COLOR).shape == (512, 512, 3)
    assert not faces.jpeg_cut_short(photo) and not faces.jpeg_cut_short(with_thumbnail)
    assert not faces.jpeg_cut_short(photo + b"ftypmp42" + bytes(500))  # a motion photo's video after the end
    assert faces.jpeg_cut_short(photo[:len(photo) // 2])
    assert faces.jpeg_cut_short(with_thumbnail[:len(with_thumbnail) // 2])
    assert not faces.jpeg_cut_short(b"\x89PNG\r\n\x1a\n")  # not a JPEG: left to the decoder


def test_a_cut_short_photo_is_skipped_in_a_folder_and_refused_when_named(tmp_path):
    with open(EXAMPLE_PHOTO, "rb") as handle:
        (tmp_path / "cut.jpg").write_bytes(handle.read()[:6000])
    sources, _ = faces.collect_sources([str(tmp_path)])
    with pytest.raises(faces.UsageError, match="cut.jpg: the JPEG image is cut short"):
        faces.read_image(sources[0].path)
    with pytest.raises(faces.UsageError, match="cut short"):
        faces.collect_sources([str(tmp_path / "cut.jpg")])


def test_a_gif_in_a_folder_is_read_as_its_first_frame(tmp_path):
    photo = cv2.imread(EXAMPLE_PHOTO)
    Image.fromarray(photo[:, :, ::-1]).save(tmp_path / "photo.gif")
    sources, warnings = faces.collect_sources([str(tmp_path)])
    assert [(source.kind, os.path.basename(source.path)) for source in sources] == [("image", "photo.gif")]
    assert not warnings and faces.read_image(sources[0].path).shape == photo.shape


def test_the_detector_keeps_float32_under_the_classifiers_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    detector = faces.make_detector("mtcnn")
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    stage_model = detector.network.stages[0]._model
    assert all(weight.dtype == "float32" for weight in stage_model.weights)
    assert len(detector.detect(cv2.imread(EXAMPLE_PHOTO))) == 1


def test_predictions_carry_the_detectors_score(tmp_path, trained_model):
    scores = {}
    for detector in ("mtcnn", "haar", "none"):
        out = tmp_path / detector
        result = run_script("predict.py", EXAMPLE_PHOTO, "--model", trained_model, "--out", out,
                            "--detector", detector, "--no-annotate")
        assert result.exit_code == 0, result.stderr
        lines = (out / "predictions.csv").read_text().splitlines()
        assert lines[0].endswith(",neutral,detector_score,annotated,time,person") and len(lines) == 2
        scores[detector] = lines[1].split(",")[-4]
    assert 0.9 <= float(scores["mtcnn"]) <= 1 and scores["haar"] == "" and float(scores["none"]) == 1


def test_a_detector_that_cannot_load_names_the_package(tmp_path, trained_model, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "mtcnn", None)  # as if it were not installed
    result = run_script("predict.py", EXAMPLE_PHOTO, "--model", trained_model, "--out", tmp_path / "out")
    assert_refused(result, "mtcnn", "pip install -r requirements.txt")
