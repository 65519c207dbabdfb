"""How well predict.py follows people through videos: generated clips of validation faces whose truth
is known, run through the video pipeline with each tracker and smoothing window compared.

Usage:
    python benchmarks/video.py --data data/fer2013.npz                    # trackers and windows
    python benchmarks/video.py --data data/fer2013.npz --speed            # + frames/s, detect-every
    python benchmarks/video.py --data data/fer2013.npz --memory           # + peak memory, 1 and 10 min

The clips (--clips of --duration seconds, 640x360 at 15 frames/s, MJPG): 1-4 people each, faces of
validation rows 0..2399 that have no exact copy among the training rows, 60-170 pixels, moving at
10-70 pixels/s along lanes and passing one another (the nearer, larger face covers the other),
changing expression every 2-5 s, turning up to 10 degrees, half of them leaving the frame for 1-3 s
and coming back where they left (common/generated_clips.py). The detector runs once per frame and
its boxes are replayed to every tracker and window, so the choices differ only in what they choose.

Figures (common/video_scores.py): faces found of those at least 60% in view, false faces per frame,
identity F1, id switches per person-minute, accuracy of the written labels on the matched faces
against the same faces as 48x48 rows, label changes per person-minute against the truth's. --speed:
frames/s of the whole run (follow_people, detect-every 1 and 3) against the detector alone on one
clip, in alternating rounds. --memory: peak resident memory of predict.py on a 1- and a 10-minute
clip (320x180, two people), each in its own process.
"""

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from common import cli, data, faces, generated_clips, tracking, video, video_scores  # noqa: E402

RATE = 15.0
CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "video")


def validation_faces(data_path):
    """The faces of validation rows 0..2399 with no exact copy among the training rows, by class."""
    dataset = data.load_dataset(data_path)
    val_set = data.select_rows(dataset, range(2400))
    copied, _ = data.exact_copies(val_set, data.select_rows(dataset, range(2400, len(dataset))))
    images, labels = val_set.images[~copied], val_set.labels[~copied]
    return [list(images[labels == label]) for label in range(7)]


def make_clips(faces_by_label, count, duration, seed, folder):
    """[(path, truth)] of `count` generated clips, made once per seed and kept in `folder`."""
    clips = []
    for index in range(count):
        path = os.path.join(folder, f"clip_s{seed}_{index}_{duration:g}s.avi")
        truth_path = path.replace(".avi", "_truth.pkl")
        if not os.path.exists(truth_path):
            scene = generated_clips.random_scene(np.random.default_rng([seed, index]), faces_by_label, duration)
            truth = generated_clips.write_clip(path, scene, duration, RATE)
            truth.to_pickle(truth_path)
        clips.append((path, pd.read_pickle(truth_path)))
    return clips


class ReplayedDetector:
    """The detector's answers for frames seen before, by the frame's bytes; runs it on new frames.
    `answers` is kept in a file so later runs of the benchmark detect nothing again."""

    def __init__(self, detector, cache_path):
        self.detector, self.cache_path = detector, cache_path
        self.margin, self.offset = detector.margin, detector.offset
        self.answers = {}
        if os.path.exists(cache_path):
            with open(cache_path, "rb") as handle:
                self.answers = pickle.load(handle)

    def detect(self, image):
        key = zlib.crc32(image.tobytes())
        if key not in self.answers:
            self.answers[key] = self.detector.detect(image)
        return self.answers[key]

    def check_boxes(self, image, boxes):
        return self.detector.check_boxes(image, boxes)

    def save(self):
        with open(self.cache_path, "wb") as handle:
            pickle.dump(self.answers, handle)


class ByteTrackFaces:
    """supervision's ByteTrack behind the tracker interface (pip install 'supervision<0.27'):
    boxes it leaves unconfirmed get an id of their own."""

    def __init__(self, rate=RATE, memory=6.0):
        import supervision

        self.tracker = supervision.ByteTrack(frame_rate=int(rate), lost_track_buffer=int(memory * rate),
                                             minimum_consecutive_frames=1)
        self.supervision, self.spare = supervision, 10 ** 6

    def update(self, boxes, time, crops=None):
        corners = np.array([[x, y, x + width, y + height] for x, y, width, height in boxes], float).reshape(-1, 4)
        answer = self.tracker.update_with_detections(self.supervision.Detections(
            xyxy=corners, confidence=np.full(len(boxes), 0.9), class_id=np.zeros(len(boxes), int)))
        persons = []
        for box in boxes:
            overlaps = [tracking.overlap(box, (x1, y1, x2 - x1, y2 - y1)) for x1, y1, x2, y2 in answer.xyxy]
            best = int(np.argmax(overlaps)) if overlaps else None
            if best is not None and overlaps[best] > 0.9:
                persons.append(int(answer.tracker_id[best]))
            else:
                self.spare += 1
                persons.append(self.spare)
        return persons

    def expected_boxes(self, time):
        return []


TRACKER_CHOICES = {"faces": tracking.FaceTracker, "largest-first": tracking.LargestFirst, "bytetrack": ByteTrackFaces}


def run_clip(path, classifier, detector, tracker, smoothing, detect_every=1, check_missed=True):
    """The rows a run writes for one clip: frame, person, box, smoothed label, and the raw label."""
    rows = []
    follower = video.PeopleFollower(classifier, detector, tracker, smoothing, detect_every=detect_every,
                                    check_missed=check_missed)
    frames, _, _ = video.frames_of(path)
    for frame in follower.follow(frames):
        for person in frame.people:
            rows.append((frame.number, person.person, *person.box, person.label, int(np.argmax(person.probabilities))))
    return pd.DataFrame(rows, columns=["frame", "person", "x", "y", "width", "height", "label", "raw_label"])


def row_labels(classifier, faces_by_label):
    """The classifier's label of each face as a 48x48 row, by its key (class, index)."""
    labels = {}
    for label, images in enumerate(faces_by_label):
        if images:
            predicted = classifier.probabilities(np.stack(images)).argmax(axis=1)
            labels.update({(label, index): int(value) for index, value in enumerate(predicted)})
    return labels


def table_row(name, clips, runs, labels_of_rows):
    """One line of the table: the scores of all clips together."""
    found = true = false = frames = switches = minutes = 0
    f1_numerator = f1_denominator = 0.0
    right = rows_right = matched_total = 0
    changes = true_changes = found_minutes = 0.0
    for (path, truth), found_rows in zip(clips, runs):
        frame_count = int(truth["frame"].max()) + 1
        scores = video_scores.score(truth, found_rows, frame_count, RATE)
        found += len(scores.matched)
        true += scores.true_faces
        false += scores.false_per_frame * frame_count
        frames += frame_count
        switches += scores.id_switches
        minutes += scores.person_minutes
        f1_numerator += scores.identity_f1 * (scores.true_faces + len(found_rows))
        f1_denominator += scores.true_faces + len(found_rows)
        keys = truth.set_index(["frame", "person"])["face_key"]
        matched = scores.matched
        right += int((matched["found_label"] == matched["true_label"]).sum())
        rows_right += sum(labels_of_rows[keys[(frame, person)]] == label for frame, person, label
                          in zip(matched["frame"], matched["true_person"], matched["true_label"]))
        matched_total += len(matched)
        person_minutes = len(found_rows) / RATE / 60
        changes += scores.found_label_changes_per_minute * person_minutes
        true_changes += scores.true_label_changes_per_minute * scores.person_minutes
        found_minutes += person_minutes
    return (f"| {name} | {found / max(true, 1):.1%} | {false / max(frames, 1):.3f} | "
            f"{f1_numerator / max(f1_denominator, 1):.3f} | {switches / max(minutes, 1e-9):.2f} | "
            f"{right / max(matched_total, 1):.1%} | {rows_right / max(matched_total, 1):.1%} | "
            f"{changes / max(found_minutes, 1e-9):.1f} | {true_changes / max(minutes, 1e-9):.1f} |")


def compare_choices(options, classifier, clips, detector, labels_of_rows):
    print(f"{len(clips)} clips, {sum(int(truth['frame'].max()) + 1 for _, truth in clips)} frames, "
          f"{sum(truth['person'].nunique() for _, truth in clips)} people")
    print("| choice | found | false/frame | identity F1 | id switches/person-min | accuracy (matched) | "
          "same faces as rows | label changes/person-min | truth's |")
    print("|---|---|---|---|---|---|---|---|---|")
    if options.second_look:
        runs = [run_clip(path, classifier, detector, tracking.FaceTracker(**options.tracker_options), 0.0,
                         check_missed=False) for path, _ in clips]
        print(table_row("tracker faces, no second look (missed people held where expected), no smoothing",
                        clips, runs, labels_of_rows))
    for tracker_name in options.trackers:
        settings = options.tracker_options if tracker_name == "faces" else {}
        try:
            TRACKER_CHOICES[tracker_name](**settings)
        except ImportError as error:
            print(f"| tracker {tracker_name}: not measured ({error}; pip install 'supervision<0.27') |")
            continue
        runs = [run_clip(path, classifier, detector, TRACKER_CHOICES[tracker_name](**settings), 0.0,
                         check_missed=tracker_name == "faces") for path, _ in clips]  # the others as they come
        detector.save()
        print(table_row(f"tracker {tracker_name} {json.dumps(settings) if settings else ''}, no smoothing",
                        clips, runs, labels_of_rows))
    for window in options.windows:
        runs = [run_clip(path, classifier, detector, tracking.FaceTracker(), window) for path, _ in clips]
        print(table_row(f"tracker faces, --smooth {window:g}", clips, runs, labels_of_rows))
    for detect_every in options.detect_every:
        runs = [run_clip(path, classifier, detector, tracking.FaceTracker(), video.DEFAULT_SMOOTHING,
                         detect_every) for path, _ in clips]
        print(table_row(f"defaults, --detect-every {detect_every}", clips, runs, labels_of_rows))


def measure_speed(classifier, path, rounds, seconds=20.0):
    """Frames/s of the detector alone and of the whole run at detect-every 1 and 3 on the first
    `seconds` of a clip, in alternating rounds."""
    detector = faces.make_detector()
    timings = {"detector alone": [], "whole run, --detect-every 1": [], "whole run, --detect-every 3": []}
    for _ in range(rounds):
        started = time.perf_counter()
        count = 0
        for frame in video.VideoReader(path, end=seconds).frames():
            detector.detect(frame.image)
            count += 1
        timings["detector alone"].append(count / (time.perf_counter() - started))
        for detect_every in (1, 3):
            started = time.perf_counter()
            count = sum(1 for _ in video.follow_people(path, classifier, detector, detect_every=detect_every,
                                                       end=seconds))
            timings[f"whole run, --detect-every {detect_every}"].append(count / (time.perf_counter() - started))
    alone = np.median(timings["detector alone"])
    for name, values in timings.items():
        print(f"{name}: {np.median(values):.1f} frames/s (rounds {', '.join(f'{value:.1f}' for value in values)}); "
              f"{np.median(values) / alone:.2f}x the detector alone")


def measure_memory(folder, faces_by_label, detect_every=5):
    """Peak resident memory of predict.py on a 1- and a 10-minute clip, each in its own process (the
    detector on every `detect_every`-th frame, so that the 10 minutes take minutes)."""
    for minutes in (1, 10):
        path = os.path.join(folder, f"memory_{minutes}min.avi")
        if not os.path.exists(path):
            scene = generated_clips.random_scene(np.random.default_rng(minutes), faces_by_label, minutes * 60,
                                                 width=320, height=180, people=2)
            generated_clips.write_clip(path, scene, minutes * 60, RATE)
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            completed = subprocess.run(
                [sys.executable, "-c", "import resource, runpy, sys; sys.argv = sys.argv[1:]; "
                 "exec('try:\\n runpy.run_path(sys.argv[0], run_name=\"__main__\")\\nfinally:\\n "
                 "print(\"peak\", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)')",
                 os.path.join(os.path.dirname(CACHE), "..", "..", "predict.py"), path, "--out", out,
                 "--min-face", "30", "--detect-every", str(detect_every)], capture_output=True, text=True)
            peak = [line for line in completed.stderr.splitlines() if line.startswith("peak")]
            print(f"{minutes}-minute clip (--detect-every {detect_every}): peak {int(peak[-1].split()[1]) / 1024:.0f} "
                  f"MiB, {time.perf_counter() - started:.0f} s, exit {completed.returncode}")


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--data", required=True, help="the .npz cache or CSV of FER2013's training file")
    parser.add_argument("--model", type=cli.model_or_shipped, default="pretrained")
    parser.add_argument("--clips", type=cli.positive_int, default=6)
    parser.add_argument("--duration", type=cli.positive_float, default=40.0, help="seconds per clip")
    parser.add_argument("--seed", type=cli.non_negative_int, default=0)
    parser.add_argument("--trackers", type=lambda text: text.split(","), default=["largest-first", "bytetrack", "faces"],
                        help=f"trackers compared, of {', '.join(TRACKER_CHOICES)}")
    parser.add_argument("--tracker-options", type=json.loads, default={},
                        help='keyword arguments of the "faces" tracker\'s rows, e.g. \'{"hold": 1.0}\'')
    parser.add_argument("--windows", type=lambda text: [float(value) for value in text.split(",") if value],
                        default=[0.5, 1.0, 2.0], help="smoothing windows compared ('' for none)")
    parser.add_argument("--detect-every", type=lambda text: [int(value) for value in text.split(",") if value],
                        default=[1, 3], help="--detect-every values compared ('' for none)")
    parser.add_argument("--second-look", action=argparse.BooleanOptionalAction, default=True,
                        help="also the faces tracker without the detector's second look where it expects people")
    parser.add_argument("--table", action=argparse.BooleanOptionalAction, default=True,
                        help="the table of choices (--no-table: only --speed and --memory)")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--speed-rounds", type=cli.positive_int, default=2)
    parser.add_argument("--memory", action="store_true")
    options = parser.parse_args()
    os.makedirs(CACHE, exist_ok=True)
    faces_by_label = validation_faces(options.data)
    clips = make_clips(faces_by_label, options.clips, options.duration, options.seed, CACHE)
    classifier = faces.as_classifier(options.model)
    detector = ReplayedDetector(faces.make_detector(), os.path.join(CACHE, f"detections_s{options.seed}.pkl"))
    if options.table:
        compare_choices(options, classifier, clips, detector, row_labels(classifier, faces_by_label))
        detector.save()
    if options.memory:
        measure_memory(CACHE, faces_by_label)
    if options.speed:
        measure_speed(classifier, clips[0][0], options.speed_rounds)
    print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    cli.run(main)
