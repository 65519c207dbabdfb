"""Following people through videos: ids that stay, times, per-person summaries, smoothing, live
sources, and the tracker, smoother and scores behind them."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from common import faces, generated_clips, synthetic, tracking, video, video_scores
from helpers import REPO, assert_refused, run_script

EXAMPLE_PHOTO = os.path.join(REPO, "examples", "astronaut.jpg")


def her_face():
    """A grey square around the astronaut's face, as the clips' people show it."""
    grey = cv2.imread(EXAMPLE_PHOTO, cv2.IMREAD_GRAYSCALE)
    return grey[50:190, 150:290]


def read_rows(folder, name="predictions.csv"):
    return pd.read_csv(os.path.join(folder, name), keep_default_na=False)


def nearest_true_person(rows, truth):
    """For each row, the true person whose box centre is nearest in that frame."""
    nearest = []
    for _, row in rows.iterrows():
        frame = truth[truth["frame"] == row["frame"]]
        centres = np.c_[frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2]
        distances = np.hypot(*(centres - [row["x"] + row["width"] / 2, row["y"] + row["height"] / 2]).T)
        nearest.append(int(frame["person"].to_numpy()[np.argmin(distances)]))
    return nearest


@pytest.fixture(scope="module")
def crossing_clip(tmp_path_factory):
    """Two people crossing: the nearer (larger) face passes in front of the other."""
    face = her_face()
    scene = generated_clips.Scene(320, 180, [
        generated_clips.Person([(0, 50, 90, 80), (3, 270, 90, 80)], [(0, face, 3, "her")]),
        generated_clips.Person([(0, 270, 95, 60), (3, 50, 95, 60)], [(0, face[:, ::-1], 3, "mirrored")]),
    ])
    path = tmp_path_factory.mktemp("clips") / "crossing.avi"
    return path, generated_clips.write_clip(path, scene, duration=3, rate=15)


def test_two_people_crossing_keep_their_ids(tmp_path, crossing_clip, trained_model):
    path, truth = crossing_clip
    out = tmp_path / "out"
    result = run_script("predict.py", path, "--model", trained_model, "--out", out)
    assert result.exit_code == 0, result.stderr
    rows = read_rows(out)
    detected = rows[rows["detector_score"] != ""].copy()  # boxes the tracker carried may sit on both
    detected["true_person"] = nearest_true_person(detected, truth)
    pairs = detected.groupby("person")["true_person"].unique()
    assert sorted(pairs.index) == [1, 2] and all(len(true) == 1 for true in pairs)  # one true person each
    assert pairs[1][0] != pairs[2][0]
    hidden = truth[truth["visible"] < 0.6]["frame"].unique()
    assert len(hidden) > 3  # the farther face really is covered for a while
    before, after = rows[rows["frame"] < hidden.min()], rows[rows["frame"] > hidden.max()]
    assert set(before["person"]) == set(after["person"]) == {1, 2}
    assert "2 people: person 1 " in result.stdout and ", person 2 " in result.stdout


def test_a_person_who_leaves_and_comes_back_keeps_their_id(tmp_path, trained_model):
    face = her_face()
    scene = generated_clips.Scene(320, 180, [generated_clips.Person(
        [(0, 200, 90, 80), (1.2, 380, 90, 80), (2.4, 380, 90, 80), (3.4, 230, 90, 80)], [(0, face, 3, "her")])])
    path = tmp_path / "away.avi"
    truth = generated_clips.write_clip(path, scene, duration=3.6, rate=15)
    assert set(range(54)) - set(truth["frame"])  # frames without her: she was away
    out = tmp_path / "out"
    result = run_script("predict.py", path, "--model", trained_model, "--out", out, "--no-annotate")
    assert result.exit_code == 0, result.stderr
    rows = read_rows(out)
    assert set(rows["person"]) == {1}
    assert rows["time"].max() - rows["time"].min() > 3  # seen before and after being away
    people = read_rows(out, "away_people.csv")
    assert list(people["person"]) == [1]


def write_still_clip(path, frames=20, rate=10.0, noise=0, seed=0, face=None):
    """One face (by default a synthetic one), the same in every frame but for random noise, as a
    96x96 video."""
    face = synthetic.generate_faces(1, seed=seed)[0][0] if face is None else face
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), rate, (96, 96))
    for _ in range(frames):
        noisy = np.clip(face.astype(np.float64) + rng.normal(0, noise, face.shape) if noise else face, 0, 255)
        writer.write(cv2.cvtColor(cv2.resize(noisy.astype(np.uint8), (96, 96)), cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_time_is_the_frames_time_and_every_nth_frame_is_written(tmp_path, trained_model):
    path = write_still_clip(tmp_path / "still.avi", frames=20, rate=8.0)
    out = tmp_path / "out"
    result = run_script("predict.py", path, "--detector", "none", "--every", 3, "--start", 0.5, "--end", 2,
                        "--model", trained_model, "--out", out, "--no-annotate")
    assert result.exit_code == 0, result.stderr
    rows = read_rows(out)
    assert list(rows["frame"]) == [4, 7, 10, 13, 16]  # from 0.5 s (frame 4) to 2 s (frame 16)
    np.testing.assert_allclose(rows["time"], rows["frame"] / 8.0, atol=1e-3)
    assert set(rows["person"]) == {1}


def test_the_people_file_adds_up(tmp_path, crossing_clip, trained_model):
    path, _ = crossing_clip
    out = tmp_path / "out"
    result = run_script("predict.py", path, "--model", trained_model, "--out", out, "--no-annotate")
    assert result.exit_code == 0, result.stderr
    rows, people = read_rows(out), read_rows(out, "crossing_people.csv")
    shares = people[[column for column in people.columns if column.startswith("share_")]]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-3)
    counts = rows.groupby("person").size()
    assert list(people["frames_seen"]) == [counts[person] for person in people["person"]]
    for _, person in people.iterrows():
        theirs = rows[rows["person"] == person["person"]]
        assert person["first_time"] == pytest.approx(theirs["time"].min(), abs=1e-3)
        assert person["last_time"] == pytest.approx(theirs["time"].max(), abs=1e-3)
        assert person["seconds_seen"] == pytest.approx(person["frames_seen"] / 15, abs=1e-3)
        assert person["dominant_emotion"] == theirs["emotion"].value_counts().idxmax()


def label_changes(rows):
    labels = rows.sort_values("frame")["label"].to_numpy()
    return int(np.count_nonzero(labels[1:] != labels[:-1]))


def save_brightness_model(path):
    """A model that labels a face by its brightness: Happy when bright, Sad when dark, always sure."""
    import keras

    inputs = keras.Input(shape=(48, 48, 1))
    mean = keras.layers.GlobalAveragePooling2D()(inputs)  # (rows, 1): the mean pixel value
    outputs = keras.layers.Dense(7, activation="softmax")(mean)
    model = keras.Model(inputs, outputs)
    weights = np.zeros((1, 7), dtype="float32")
    biases = np.full(7, -10.0, dtype="float32")
    weights[0, 3], biases[3] = 0.1, -13.0  # Happy above a mean of 130
    weights[0, 4], biases[4] = -0.1, 13.0  # Sad below it
    model.layers[-1].set_weights([weights, biases])
    model.save(path)
    return path


def test_smoothing_lowers_label_changes_on_a_clip_whose_truth_does_not_change(tmp_path):
    model = save_brightness_model(str(tmp_path / "brightness.h5"))
    face = cv2.resize(her_face(), (96, 96), interpolation=cv2.INTER_AREA).astype(np.float64)
    looks = [np.clip(face * 0.4 + 150, 0, 255), np.clip(face * 0.4 + 20, 0, 255)]  # one face, lit and in shade
    path = tmp_path / "flicker.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (96, 96))
    for look in np.tile([0, 0, 0, 1], 15):  # the shade comes every fourth frame: the raw label flickers
        writer.write(cv2.cvtColor(looks[look].astype(np.uint8), cv2.COLOR_GRAY2BGR))
    writer.release()
    changes = {}
    for window in (0, 2):
        out = tmp_path / f"smooth{window}"
        result = run_script("predict.py", path, "--detector", "none", "--smooth", window, "--model", model,
                            "--out", out, "--no-annotate", "--precision", "fp32")
        assert result.exit_code == 0, result.stderr
        changes[window] = label_changes(read_rows(out))
    assert changes[0] >= 10, changes  # the flicker alone changes the raw label
    assert changes[2] < changes[0] / 3, changes


def test_a_live_source_read_from_a_file_behaves_as_a_camera(tmp_path, trained_model, monkeypatch):
    path = write_still_clip(tmp_path / "live.avi", frames=12)
    opened = []

    def capture(source, *rest):  # the camera's device 0 plays the file
        opened.append(source)
        return real_capture(str(path) if source == 0 else source, *rest)

    real_capture = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", capture)
    out = tmp_path / "out"
    result = run_script("predict.py", "camera:0", "--detector", "none", "--model", trained_model, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert opened and all(source == 0 for source in opened)
    rows = read_rows(out)
    assert list(rows["frame"]) == list(range(12)) and set(rows["source"]) == {"camera:0"}
    assert rows["time"].is_monotonic_increasing and rows["time"].iloc[0] == 0
    assert os.path.exists(out / "camera0_people.csv") and os.path.exists(out / "camera0_emotions.png")
    assert "camera:0: 1 person: person 1 " in result.stdout


def test_an_interrupted_live_run_keeps_every_row_written(tmp_path, trained_model, monkeypatch):
    path = write_still_clip(tmp_path / "live.avi", frames=30)
    real_capture = cv2.VideoCapture

    class InterruptedCamera:
        """Plays the file, then Ctrl-C arrives while the 8th frame is read."""

        def __init__(self, source, *rest):
            self.capture, self.reads = real_capture(str(path) if source == 0 else source, *rest), 0

        def read(self):
            self.reads += 1
            if self.reads == 8:
                raise KeyboardInterrupt
            return self.capture.read()

        def __getattr__(self, name):
            return getattr(self.capture, name)

    monkeypatch.setattr(cv2, "VideoCapture", InterruptedCamera)
    out = tmp_path / "out"
    result = run_script("predict.py", "camera:0", "--detector", "none", "--model", trained_model, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "stopped: the rows so far are kept" in result.stderr
    assert list(read_rows(out)["frame"]) == list(range(7))
    assert not [name for name in os.listdir(out) if name.endswith(".partial") or name.startswith(".")]


def test_detect_every_carries_boxes_between_detections(tmp_path, crossing_clip, trained_model):
    path, _ = crossing_clip
    out = tmp_path / "out"
    result = run_script("predict.py", path, "--detect-every", 3, "--model", trained_model, "--out", out,
                        "--no-annotate")
    assert result.exit_code == 0, result.stderr
    rows = read_rows(out)
    assert set(rows["frame"] % 3) == {0, 1, 2}  # frames the search skipped still have their people
    assert len(set(rows["frame"])) > 40 and set(rows["person"]) == {1, 2}


def test_blur_hides_the_faces_of_annotated_videos(tmp_path, trained_model):
    face = her_face()
    scene = generated_clips.Scene(320, 180, [generated_clips.Person([(0, 160, 90, 100), (1, 160, 90, 100)],
                                                                    [(0, face, 3, "her")])])
    path = tmp_path / "still.avi"
    generated_clips.write_clip(path, scene, duration=1, rate=10)
    sharpness = {}
    for blur in (False, True):
        out = tmp_path / f"blur{blur}"
        result = run_script("predict.py", path, "--model", trained_model, "--out", out, "--annotate-video",
                            *(["--blur"] if blur else []))
        assert result.exit_code == 0, result.stderr
        read, frame = cv2.VideoCapture(str(out / "still_faces.mp4")).read()
        x, y, width, height = (int(value) for value in read_rows(out).iloc[0][["x", "y", "width", "height"]])
        inside = cv2.cvtColor(frame[y + height // 4:y + height * 3 // 4, x + 4:x + width - 4], cv2.COLOR_BGR2GRAY)
        sharpness[blur] = cv2.Laplacian(inside, cv2.CV_64F).var()
    assert sharpness[True] < sharpness[False] / 10, sharpness


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("arguments, message", [
    (["--every", "0"], "--every: expected a positive integer, got '0'"),
    (["--smooth", "-1"], "--smooth: expected a finite number >= 0, got '-1'"),
    (["--start", "3", "--end", "2"], "--start 3 is not before --end 2"),
    (["--start", "60"], "the video ends at 2.00 s, before the start"),
])
def test_bad_video_options_are_refused_before_anything_is_written(tmp_path, arguments, message):
    path = write_still_clip(tmp_path / "clip.avi", frames=20)
    out = tmp_path / "out"
    assert_refused(run_script("predict.py", path, *arguments, "--out", out), message)
    assert not os.path.exists(out / "predictions.csv")


def test_a_camera_that_does_not_open_is_named(tmp_path):
    assert_refused(run_script("predict.py", "camera:97", "--out", tmp_path / "out"),
                   "camera:97: the camera cannot be opened")
    assert_refused(run_script("predict.py", "camera:first", "--out", tmp_path / "out"),
                   "camera:first: expected camera:N")


def test_a_video_damaged_in_the_middle_is_read_past_the_damage(tmp_path, trained_model):
    path = write_still_clip(tmp_path / "clip.avi", frames=30)
    content = bytearray(path.read_bytes())
    index = content.rindex(b"idx1")  # the frames' chunks come before their index
    frames = [position for position in range(index) if content[position:position + 4] == b"00dc"]
    start = frames[len(frames) // 2] + 16  # inside the JPEG data of a frame in the middle
    content[start:start + 2000] = os.urandom(2000)
    path.write_bytes(bytes(content))
    out = tmp_path / "out"
    result = run_script("predict.py", path, "--detector", "none", "--model", trained_model, "--out", out,
                        "--no-annotate")
    assert result.exit_code == 0, result.stderr
    rows = read_rows(out)
    assert rows["frame"].max() == 29  # the frames after the damage were read
    damaged = set(range(30)) - set(rows["frame"])
    assert damaged and max(damaged) < 29
    assert "damaged frames could not be decoded" in result.stderr


def test_a_container_without_a_frame_rate_is_timed_by_its_frame_count(tmp_path, trained_model, monkeypatch):
    path = write_still_clip(tmp_path / "clip.avi", frames=10, rate=10.0)
    real_capture = cv2.VideoCapture

    class NoRate:
        """What OpenCV gives for a container without a frame rate or timestamps: 0."""

        def __init__(self, *arguments):
            self.capture = real_capture(*arguments)

        def get(self, what):
            return 0.0 if what in (cv2.CAP_PROP_FPS, cv2.CAP_PROP_POS_MSEC) else self.capture.get(what)

        def __getattr__(self, name):
            return getattr(self.capture, name)

    monkeypatch.setattr(cv2, "VideoCapture", NoRate)
    out = tmp_path / "out"
    result = run_script("predict.py", path, "--detector", "none", "--model", trained_model, "--out", out,
                        "--no-annotate")
    assert result.exit_code == 0, result.stderr
    rows = read_rows(out)
    np.testing.assert_allclose(rows["time"], np.arange(10) / video.FALLBACK_RATE, atol=1e-3)
    assert "the container gives no frame rate" in result.stderr


# --- the parts ---------------------------------------------------------------------------------

def test_the_tracker_follows_crossing_boxes_and_numbers_people_by_first_appearance():
    tracker = tracking.FaceTracker()
    seen = []
    for step in range(30):
        time = step / 15
        left = (20 + 8 * step, 50, 80, 80)  # moving right, nearer (larger)
        right = (260 - 8 * step, 60, 60, 60)  # moving left, covered while they overlap
        boxes = [left] if 12 <= step <= 16 else [left, right]
        seen.append(tracker.update(boxes, time))
    assert seen[0] == [1, 2]
    assert all(ids == [1] for ids in seen[12:17])
    assert all(ids == [1, 2] for ids in seen[17:])


def test_the_tracker_gives_back_the_id_of_a_person_returning_near_where_they_left():
    tracker = tracking.FaceTracker()
    assert tracker.update([(100, 50, 80, 80)], 0.0) == [1]
    assert tracker.update([(300, 50, 80, 80)], 0.1) == [2]  # someone else, far away
    assert tracker.update([(105, 55, 80, 80)], 2.0) == [1]  # back after 1.9 s
    assert tracker.update([(110, 55, 80, 80)], 2.1) == [1]
    assert tracker.update([(600, 50, 80, 80)], 2.2) == [3]  # new


def test_the_smoother_averages_a_centred_or_a_past_window():
    def frames():
        for number, label in enumerate([0, 0, 1, 0, 0]):
            probabilities = np.eye(2)[label]
            person = video.PersonInFrame(1, (0, 0, 1, 1), None, probabilities, probabilities, ("a", "b"))
            yield video.FramePeople(number, float(number), None, [person])

    centred, past = video.Smoother(2.0), video.Smoother(2.0, causal=True)
    centred_out, past_out = [], []
    for frame in frames():
        centred_out += centred.add(frame)
        past_out += past.add(video.FramePeople(frame.number, frame.time, None, [
            video.PersonInFrame(1, (0, 0, 1, 1), None, person.probabilities, person.probabilities, ("a", "b"))
            for person in frame.people]))
    centred_out += centred.finish()
    assert [frame.number for frame in centred_out] == [0, 1, 2, 3, 4]
    # centred: weights 0.1, 1, 0.1 for the frames 1 s before, at and after; past: 1, 0.55, 0.1 for 0, 1, 2 s ago
    np.testing.assert_allclose([frame.people[0].smoothed[1] for frame in centred_out],
                               [0, 0.1 / 1.2, 1 / 1.2, 0.1 / 1.2, 0])
    np.testing.assert_allclose([frame.people[0].smoothed[1] for frame in past_out],
                               [0, 0, 1 / 1.65, 0.55 / 1.65, 0.1 / 1.65])


def test_a_timeline_keeps_gaps_and_stays_bounded():
    timeline = video.Timeline(2, width=1.0, max_bins=8)
    for second in (0, 1, 4):
        timeline.add(second + 0.5, np.array([1.0, 0.0]))
    seconds, probabilities = timeline.points()
    np.testing.assert_allclose(seconds, [0.5, 1.5, 2.5, 3.5, 4.5])
    assert np.isnan(probabilities[2:4]).all() and probabilities[0, 0] == 1
    timeline.add(20.5, np.array([0.0, 1.0]))  # bins 0..20 would be 21: merged twice, 4 s wide
    assert timeline.width == 4.0 and len(timeline.points()[0]) == 6


def test_identity_scores_match_a_hand_counted_case():
    truth = pd.DataFrame([(frame, person, x, 0, 10, 10, 1.0, 0) for frame in range(4)
                          for person, x in ((1, 0), (2, 50))],
                         columns=["frame", "person", "x", "y", "width", "height", "visible", "label"])
    # found: person 1 as 7 in frames 0-1 and as 8 in frames 2-3 (one switch); person 2 as 9 but
    # missed in frame 3; one false box in frame 0
    found = pd.DataFrame([(0, 7, 0), (1, 7, 0), (2, 8, 0), (3, 8, 0), (0, 9, 50), (1, 9, 50), (2, 9, 50),
                          (0, 10, 200)], columns=["frame", "person", "x"])
    found = found.assign(y=0, width=10, height=10, label=0)
    scores = video_scores.score(truth, found, frames=4, rate=1.0)
    assert scores.found_share == pytest.approx(7 / 8)
    assert scores.false_per_frame == pytest.approx(1 / 4)
    assert scores.id_switches == 1
    # pairs: (1, 7) share 2 frames (or (1, 8) 2), (2, 9) share 3: IDTP 5; 8 true, 8 found
    assert scores.identity_f1 == pytest.approx(2 * 5 / (8 + 8))


def test_the_python_call_follows_people_in_an_iterable_of_frames(trained_model):
    face = her_face()
    scene = generated_clips.Scene(240, 160, [generated_clips.Person([(0, 60, 80, 70), (1, 180, 80, 70)],
                                                                    [(0, face, 3, "her")])])
    background = scene.background()
    images = [generated_clips.render(scene, number / 10, background)[0] for number in range(10)]
    found = list(video.follow_people(images, trained_model, rate=10.0, smoothing=0.5))
    assert [frame.number for frame in found] == list(range(10))
    assert all([person.person for person in frame.people] == [1] for frame in found)
    person = found[5].people[0]
    assert person.smoothed.shape == person.probabilities.shape == (7,)
    assert 100 < person.box[0] + person.box[2] / 2 < 140  # she is half-way at 0.5 s


class ForgetfulDetector:
    """Finds the face of `still_frames` only in the first five frames; on a second look it confirms a
    box near the face while the face is there (frames 0-14 of 30), and nothing once it has gone."""

    margin, offset = 0.0, 0.0
    BOX = (40, 40, 60, 60)

    def __init__(self):
        self.frame = -1

    def detect(self, image):
        self.frame += 1
        return [faces.Detection(self.BOX, 0.99)] if self.frame < 5 else []

    def check_boxes(self, image, boxes):
        there = image.mean() > 10
        return [faces.Detection(self.BOX, 0.5) if there and tracking.overlap(box, self.BOX) > 0.5 else None
                for box in boxes]


def written_frames(found):
    """{frame number: (person, detector score)} of a one-person run."""
    return {frame.number: (person.person, person.score) for frame in found for person in frame.people}


def test_a_face_the_detector_misses_is_followed_while_a_second_look_confirms_it(trained_model):
    face = cv2.cvtColor(cv2.resize(her_face(), (60, 60), interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2BGR)
    images = []
    for number in range(30):
        image = np.zeros((140, 140, 3), np.uint8)
        if number < 15:
            image[40:100, 40:100] = face
        images.append(image)
    looked_again = written_frames(video.follow_people(images, trained_model, ForgetfulDetector(), rate=10.0))
    assert sorted(looked_again) == list(range(20))  # seen to frame 14, then held for 0.5 s
    assert {person for person, _ in looked_again.values()} == {1}
    assert all(looked_again[number][1] == 0.5 for number in range(5, 15))  # confirmed, with its score
    assert all(looked_again[number][1] is None for number in range(15, 20))  # held where expected

    class NoSecondLook(ForgetfulDetector):
        check_boxes = None

    held_only = written_frames(video.follow_people(images, trained_model, NoSecondLook(), rate=10.0))
    assert sorted(held_only) == list(range(10))  # detected to frame 4, held for 0.5 s


def test_detect_every_searches_every_kth_frame_and_looks_again_between(trained_model):
    face = cv2.cvtColor(cv2.resize(her_face(), (60, 60), interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2BGR)
    image = np.zeros((140, 140, 3), np.uint8)
    image[40:100, 40:100] = face
    detector = ForgetfulDetector()  # its search finds her on its first five runs: frames 0, 3, ..., 12
    found = written_frames(video.follow_people([image] * 30, trained_model, detector, rate=10.0, detect_every=3))
    assert detector.frame + 1 == 10  # the search ran on frames 0, 3, ..., 27 only
    assert sorted(found) == list(range(30)) and {person for person, _ in found.values()} == {1}
    assert all(found[number][1] == 0.5 for number in range(30) if number % 3 or number > 12)  # looked again


def test_predict_help_loads_without_tensorflow():
    completed = subprocess.run([sys.executable, "-c", "import runpy, sys; sys.argv = ['predict.py', '--help']\n"
                                "try:\n runpy.run_path('predict.py', run_name='__main__')\nexcept SystemExit:\n pass\n"
                                "print('tensorflow' in sys.modules)"], cwd=REPO, capture_output=True, text=True)
    assert completed.stdout.strip().endswith("False") and "--detect-every" in completed.stdout
