"""Following every person through a video: frames read with their times, faces found (or carried by
the tracker between detections), each face given its person's id, classified in batches, and each
person's probabilities smoothed over time.

For a notebook, one call, frame by frame:

    from common import video
    for frame in video.follow_people("interview.mp4"):          # or 0 for a camera, or frames
        for person in frame.people:
            print(frame.time, person.person, person.box, person.emotion, person.smoothed.round(2))

Memory does not grow with the video's length: frames are read, classified and handed on as they
come; nothing is kept but the frames of the current batch and of the smoothing window.
"""

import collections
import dataclasses
import math
import os
import time as clock

import cv2
import numpy as np

from common import faces, tracking
from common.config import DEFAULT_DETECTOR, DEFAULT_MIN_FACE, DEFAULT_SMOOTHING
from common.errors import BadValue, UsageError

CAMERA_PREFIX = faces.CAMERA_PREFIX
FALLBACK_RATE = 25.0  # frames/s assumed for a video whose container gives none
UNREADABLE_RUN = 250  # a damaged stretch longer than this many frames ends the video


@dataclasses.dataclass(frozen=True)
class Frame:
    """A frame read: its number from the video's first frame (0), its time in seconds, the image."""

    number: int
    time: float
    image: np.ndarray


@dataclasses.dataclass(frozen=True)
class VideoSettings:
    """How videos are read and followed: see `follow_people`."""

    every: int = 1
    detect_every: int = 1
    smoothing: float = DEFAULT_SMOOTHING
    start: float = 0.0
    end: float | None = None
    tracker: str = tracking.DEFAULT_TRACKER


def camera_index(text):
    """The OpenCV device index of a `camera:N` input, else None."""
    if isinstance(text, str) and text.startswith(CAMERA_PREFIX) and text[len(CAMERA_PREFIX):].isdigit():
        return int(text[len(CAMERA_PREFIX):])
    return None


def check_time_range(paths, start):
    """A BadValue naming the first video whose container says it ends before `start` seconds."""
    if not start:
        return
    for path in paths:
        capture = faces.open_video(path)
        rate, count = capture.get(cv2.CAP_PROP_FPS), capture.get(cv2.CAP_PROP_FRAME_COUNT)
        capture.release()
        if rate and math.isfinite(rate) and rate > 0 and count and math.isfinite(count) and count > 0:
            if start >= count / rate:
                raise BadValue(f"{path}: the video ends at {count / rate:.2f} s, before the start; give "
                               f"a start within it")


class VideoReader:
    """The frames of a video file or a camera, every `every`-th from `start` seconds to `end`.

    A file's frame times are its container's timestamps (or frame / frames per second where it
    gives none); a camera's, the seconds since its first frame. `notes` collects what the reader
    worked around (a damaged stretch, a missing frame rate), one line each.
    """

    def __init__(self, source, every=1, start=0.0, end=None):
        self.source, self.every, self.start, self.end = source, every, start, end
        self.live = isinstance(source, int)
        self.notes = []
        self.name = f"{CAMERA_PREFIX}{source}" if self.live else source
        self.capture = cv2.VideoCapture(source) if self.live else faces.open_video(source)
        if not self.capture.isOpened():
            self.capture.release()
            what = "a camera: no such device, or it is in use" if self.live else "a video by OpenCV"
            raise UsageError(f"{self.name}: cannot be opened as {what}")
        rate = self.capture.get(cv2.CAP_PROP_FPS)
        self.rate_known = bool(rate and math.isfinite(rate) and 0 < rate < 1000)
        self.rate = rate if self.rate_known else FALLBACK_RATE
        count = self.capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if not self.live and count and math.isfinite(count) and count > 0 else None

    @property
    def duration(self):
        """Seconds of the file by its container (None for a camera or when it does not say)."""
        return None if self.frame_count is None else self.frame_count / self.rate

    def expected_frames(self):
        """How many frames will be analysed, when the container says (for the progress bar)."""
        if self.frame_count is None:
            return None
        first = int(self.start * self.rate)
        last = self.frame_count if self.end is None else min(self.frame_count, int(self.end * self.rate) + 1)
        return max(0, (last - first + self.every - 1) // self.every)

    def frames(self):
        """Yields each Frame analysed; closes the capture at the end."""
        try:
            yield from (self._camera_frames() if self.live else self._file_frames())
        finally:
            self.capture.release()

    def _camera_frames(self):
        started, number = None, 0
        while True:
            read, image = self.capture.read()
            if not read:
                self.notes.append(f"{self.name}: the camera gave no more frames after {number}")
                return
            now = clock.monotonic()
            started = now if started is None else started
            seconds = now - started
            if self.end is not None and seconds > self.end:
                return
            if seconds >= self.start and number % self.every == 0:
                yield Frame(number, seconds, image)
            number += 1

    def _file_frames(self):
        if not self.rate_known:
            self.notes.append(f"{self.name}: the container gives no frame rate; times are frame numbers "
                              f"at {FALLBACK_RATE:g} frames/s where it gives no timestamps either")
        number, last_time, analysed, lost = 0, -1.0, 0, []
        while True:
            if not self.capture.grab():
                number = self._skip_damage(number, lost)
                if number is None:
                    break
            seconds = self._frame_time(number, last_time)
            last_time = seconds
            if self.end is not None and seconds > self.end + 1e-9:
                break
            if seconds + 1e-9 >= self.start:
                if analysed % self.every == 0:
                    read, image = self.capture.retrieve()
                    if read:
                        yield Frame(number, seconds, image)
                    else:
                        lost.append(number)
                analysed += 1
            number += 1
        if lost:
            self.notes.append(f"{self.name}: {len(lost)} damaged frames could not be decoded (from frame "
                              f"{lost[0]} to {lost[-1]}); the frames after them were read")
        if number == 0:
            raise UsageError(f"{self.name}: no frame could be decoded from the video")

    def _frame_time(self, number, last_time):
        """The container's timestamp of the frame just grabbed, or its number over the rate where
        the timestamp is missing or does not move forward."""
        stamp = self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
        if math.isfinite(stamp) and stamp > last_time and (stamp > 0 or number == 0):
            return float(stamp)
        return number / self.rate

    def _skip_damage(self, number, lost):
        """After frame `number` could not be read before the container's end: tries the frames after
        it; the number of the first one grabbed (the damaged ones noted in `lost`), or None."""
        if self.frame_count is None or number >= self.frame_count - 1:
            return None
        for skipped in range(1, UNREADABLE_RUN + 1):
            if number + skipped >= self.frame_count:
                return None
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, number + skipped)
            if self.capture.grab():
                lost.extend(range(number, number + skipped))
                return number + skipped
        return None


@dataclasses.dataclass
class PersonInFrame:
    """One person's face in a frame: their id, box (x, y, width, height), the detector's score
    (None where the tracker carried the box unconfirmed), the probability of each class
    in this frame and smoothed over time, and the classifier's class names."""

    person: int
    box: tuple
    score: float | None
    probabilities: np.ndarray
    smoothed: np.ndarray
    class_names: tuple

    @property
    def label(self):
        """The most probable class after smoothing."""
        return int(np.argmax(self.smoothed))

    @property
    def emotion(self):
        return self.class_names[self.label]


@dataclasses.dataclass
class FramePeople:
    """A frame analysed: its number, time in seconds, image, and the people in it."""

    number: int
    time: float
    image: np.ndarray
    people: list


class Smoother:
    """Each person's probabilities averaged over a window of `seconds`: centred on the frame
    (`causal=False`; a frame is handed on once the frames half a window later have arrived) or
    over the past only (`causal=True`; handed on at once), the nearer frames weighing more (a
    triangle: it kept more accuracy than equal weights on the benchmark's clips). 0: no smoothing."""

    def __init__(self, seconds, causal=False):
        self.seconds, self.causal = seconds, causal
        self.held = collections.deque()  # FramePeople not yet handed on, oldest first
        self.history = collections.deque()  # (time, person, probabilities) within reach of the window

    def add(self, frame):
        """Takes a classified frame; returns the frames now ready, in order."""
        for person in frame.people:
            self.history.append((frame.time, person.person, person.probabilities))
        self.held.append(frame)
        ahead = 0.0 if self.causal else self.seconds / 2
        return self._hand_on(lambda held: held.time + ahead <= frame.time + 1e-9)

    def finish(self):
        """The frames still held, smoothed with what there is."""
        return self._hand_on(lambda held: True)

    def _average(self, person, time, before, after):
        """The person's probabilities within the window about `time`, weighted by a triangle: 1 at
        `time`, 0.1 at the window's ends."""
        if not self.seconds:
            return person.probabilities
        total, weights = 0.0, 0.0
        for seen, who, probabilities in self.history:
            if who == person.person and time - before - 1e-9 <= seen <= time + after + 1e-9:
                weight = 1 - 0.9 * abs(seen - time) / max(before, after)
                total, weights = total + weight * probabilities, weights + weight
        return total / weights

    def _hand_on(self, ready):
        done = []
        while self.held and ready(self.held[0]):
            frame = self.held.popleft()
            before, after = (self.seconds, 0.0) if self.causal else (self.seconds / 2, self.seconds / 2)
            for person in frame.people:
                person.smoothed = self._average(person, frame.time, before, after)
            done.append(frame)
            reach = (self.held[0].time if self.held else frame.time) - before - 1e-9
            while self.history and self.history[0][0] < reach:
                self.history.popleft()
        return done


class PeopleFollower:
    """Finds, follows, classifies and smooths the people of a stream of Frames; see `follow_people`."""

    def __init__(self, classifier, detector, tracker, smoothing=DEFAULT_SMOOTHING, causal=False,
                 detect_every=1, tta=False, align=True, batch_faces=256, batch_frames=16, check_missed=True):
        self.classifier, self.detector, self.tracker = classifier, detector, tracker
        self.check_missed = check_missed
        self.detect_every, self.tta, self.align = detect_every, tta, align
        self.batch_faces, self.batch_frames = batch_faces, batch_frames
        self.smoother = Smoother(smoothing, causal)
        self.angles = {}  # person -> the eye angle of their last detection (crops of carried boxes)

    def follow(self, frames):
        """Yields a FramePeople for each Frame of `frames`, in order."""
        waiting = []  # (frame, [(person, box, score, crop)])
        for index, frame in enumerate(frames):
            waiting.append((frame, self._faces(frame, detect=index % self.detect_every == 0)))
            if len(waiting) >= self.batch_frames or sum(len(found) for _, found in waiting) >= self.batch_faces:
                yield from self._classify(waiting)
                waiting = []
        yield from self._classify(waiting)
        yield from self.smoother.finish()

    def _faces(self, frame, detect):
        """(person, box, detector score, 48x48 crop) of each face of `frame`, largest first."""
        grey = faces.to_grey(frame.image)
        detections = without_nested(self.detector.detect(frame.image)) if detect else []
        checking = self.check_missed and callable(getattr(self.detector, "check_boxes", None))
        if checking:
            detections = without_nested(detections + self._looked_for(frame, detections))
        angles = [faces.eye_angle(detection.eyes) if self.align and detection.eyes else 0.0
                  for detection in detections]
        crops = [faces.crop_face(grey, detection.box, self.detector.margin, self.detector.offset, angle)
                 for detection, angle in zip(detections, angles)]
        persons = self.tracker.update([detection.box for detection in detections], frame.time, crops) \
            if detections or detect else []
        found = []
        for person, detection, angle, crop in zip(persons, detections, angles, crops):
            self.angles[person] = angle
            found.append((person, detection.box, detection.score, crop))
        found += self._held(frame, grey, persons)
        return sorted(found, key=lambda face: -face[1][2] * face[1][3])

    def _looked_for(self, frame, detections):
        """Detections where the tracker expects people that `detections` do not cover, each one
        the detector confirms on a second look (`check_boxes`): a face it missed, or every face on
        a frame it did not search."""
        expected = [box for _, box in self.tracker.expected_boxes(frame.time) if _in_view(box, frame.image)
                    and not any(tracking.overlap(box, detection.box) >= 0.3 for detection in detections)]
        confirmed = []
        for detection in self.detector.check_boxes(frame.image, expected):
            if detection and not any(tracking.overlap(detection.box, other.box) >= 0.3
                                     for other in detections + confirmed):
                confirmed.append(detection)  # two people expected on one face: the first keeps it
        return confirmed

    def _held(self, frame, grey, persons):
        """(person, box, None, crop) of each person missed in this frame but seen shortly before, at
        the box where they are expected, unconfirmed."""
        held = []
        for person, box in self.tracker.expected_boxes(frame.time):
            if person not in persons and _in_view(box, grey):
                crop = faces.crop_face(grey, box, self.detector.margin, self.detector.offset,
                                       self.angles.get(person, 0.0))
                held.append((person, box, None, crop))
        return held

    def _classify(self, waiting):
        crops = [crop for _, found in waiting for _, _, _, crop in found]
        if crops:
            probabilities = self.classifier.probabilities(np.stack(crops), tta=self.tta)  # (faces, classes)
        start, names = 0, tuple(self.classifier.class_names)
        for frame, found in waiting:
            people = [PersonInFrame(person, tuple(int(value) for value in box), score, probabilities[start + at],
                                    probabilities[start + at], names)
                      for at, (person, box, score, _) in enumerate(found)]
            start += len(found)
            yield from self.smoother.add(FramePeople(frame.number, frame.time, frame.image, people))


def _in_view(box, image):
    """Whether the centre of `box` lies inside `image`."""
    height, width = image.shape[:2]
    return 0 <= box[0] + box[2] / 2 < width and 0 <= box[1] + box[3] / 2 < height


def without_nested(detections, share=0.6):
    """The detections less those lying mostly (`share` of their area) inside a larger one: a face
    holds no other face, and the detector sometimes finds a part of one as a face of its own."""
    kept = []
    for detection in sorted(detections, key=lambda found: -found.box[2] * found.box[3]):
        x, y, width, height = detection.box
        inside = any(tracking.intersection_area(detection.box, larger.box) >= share * width * height for larger in kept)
        if not inside:
            kept.append(detection)
    return kept


def frames_of(source, every=1, start=0.0, end=None, rate=None):
    """(frames iterator, reader or None, live): the Frames of a path, a camera index or an iterable of
    images (or of Frames); images of an iterable are timed at `rate` frames/s (live: by the clock)."""
    if isinstance(source, (str, os.PathLike)) and camera_index(os.fspath(source)) is None:
        reader = VideoReader(os.fspath(source), every, start, end)
        return reader.frames(), reader, False
    if isinstance(source, (int, str)):
        reader = VideoReader(source if isinstance(source, int) else camera_index(source), every, start, end)
        return reader.frames(), reader, True
    return _timed(source, every, rate), None, rate is None


def _timed(images, every, rate):
    started = clock.monotonic()
    for number, item in enumerate(images):
        if number % every:
            continue
        if isinstance(item, Frame):
            yield item
        else:
            yield Frame(number, number / rate if rate else clock.monotonic() - started, item)


def follow_people(source, classifier=None, detector=DEFAULT_DETECTOR, smoothing=DEFAULT_SMOOTHING,
                  every=1, detect_every=1, start=0.0, end=None, tta=False, align=True,
                  min_face=DEFAULT_MIN_FACE, tracker=tracking.DEFAULT_TRACKER, rate=None):
    """Yields, frame by frame, a FramePeople: the people found with their ids, boxes, and raw and
    smoothed class probabilities.

    `source`: a video's path, a camera's index (or "camera:N"), or an iterable of BGR images or
    Frames (timed at `rate` frames/s, or by the clock when `rate` is None). `classifier`: as
    `faces.classify_faces` takes it (None: the shipped model). `smoothing`: seconds of the window
    each person's probabilities are averaged over (0: none), centred on the frame for a file and
    over the past for a camera or an untimed iterable. `every`: every Nth frame is analysed;
    `detect_every`: the detector runs on every Kth analysed frame and the tracker carries the boxes
    in between. `start`, `end`: seconds.
    """
    frames, _, live = frames_of(source, every, start, end, rate)
    follower = PeopleFollower(faces.as_classifier(classifier), _detector(detector, min_face),
                              tracking.make_tracker(tracker) if isinstance(tracker, str) else tracker,
                              smoothing, causal=live, detect_every=detect_every, tta=tta, align=align,
                              batch_frames=1 if live else 16)
    yield from follower.follow(frames)


def _detector(detector, min_face):
    return faces.make_detector(detector, min_face) if isinstance(detector, str) else detector


class Timeline:
    """One person's smoothed probabilities over time in bins of equal width: at most `max_bins`, the
    width doubling (bins merged in pairs) when a long video needs more, so memory stays bounded."""

    def __init__(self, classes, width=0.2, max_bins=1500):
        self.classes, self.width, self.max_bins = classes, width, max_bins
        self.bins = {}  # bin index -> [probability sums (classes,), count]

    def add(self, time, probabilities):
        index = int(time // self.width)
        held = self.bins.setdefault(index, [np.zeros(self.classes), 0])
        held[0] += probabilities
        held[1] += 1
        while max(self.bins) - min(self.bins) + 1 > self.max_bins:
            merged = {}
            for index, (sums, count) in self.bins.items():
                held = merged.setdefault(index // 2, [np.zeros(self.classes), 0])
                held[0] += sums
                held[1] += count
            self.bins, self.width = merged, self.width * 2

    def points(self):
        """(seconds (bins,), probabilities (bins, classes)): each bin's centre and mean, from the
        first bin with a face to the last; NaN rows where the person was not seen (gaps)."""
        first, last = min(self.bins), max(self.bins)
        probabilities = np.full((last - first + 1, self.classes), np.nan)
        for index, (sums, count) in self.bins.items():
            probabilities[index - first] = sums / count
        return (np.arange(first, last + 1) + 0.5) * self.width, probabilities


@dataclasses.dataclass
class PersonTally:
    """What a run keeps of one person: sums, not frames."""

    person: int
    first_time: float
    last_time: float
    frames: int
    class_counts: np.ndarray  # frames by smoothed label
    score_sum: float = 0.0
    scored_frames: int = 0
    timeline: Timeline | None = None

    def dominant(self, class_names):
        return class_names[int(np.argmax(self.class_counts))]


class PeopleTally:
    """Each person's first and last time, frames seen, frames per class, detector scores and
    timeline, added up frame by frame; `interval` the seconds between frames analysed."""

    def __init__(self, class_names):
        self.class_names = tuple(class_names)
        self.people = {}
        self.frames, self.first_time, self.last_time = 0, None, None

    def add(self, frame):
        self.frames += 1
        self.first_time = frame.time if self.first_time is None else self.first_time
        self.last_time = frame.time
        for seen in frame.people:
            tally = self.people.get(seen.person)
            if tally is None:
                tally = self.people[seen.person] = PersonTally(
                    seen.person, frame.time, frame.time, 0, np.zeros(len(self.class_names), np.int64),
                    timeline=Timeline(len(self.class_names)))
            tally.last_time, tally.frames = frame.time, tally.frames + 1
            tally.class_counts[seen.label] += 1
            if seen.score is not None:
                tally.score_sum, tally.scored_frames = tally.score_sum + seen.score, tally.scored_frames + 1
            tally.timeline.add(frame.time, seen.smoothed)

    @property
    def interval(self):
        """Seconds between analysed frames, from the first to the last (0 for a single frame)."""
        if self.frames < 2:
            return 0.0
        return (self.last_time - self.first_time) / (self.frames - 1)

    def table(self):
        """A DataFrame with a row per person in order of first appearance: first and last time,
        seconds and frames seen, the share of frames in each class, the dominant class and the
        mean detector score."""
        import pandas as pd

        rows = []
        for tally in sorted(self.people.values(), key=lambda tally: tally.person):
            shares = tally.class_counts / tally.frames
            rows.append([tally.person, round(tally.first_time, 3), round(tally.last_time, 3),
                         round(tally.frames * self.interval, 3), tally.frames, *np.round(shares, 4),
                         tally.dominant(self.class_names),
                         round(tally.score_sum / tally.scored_frames, 4) if tally.scored_frames else None])
        columns = ["person", "first_time", "last_time", "seconds_seen", "frames_seen",
                   *(f"share_{name}" for name in self.class_names), "dominant_emotion", "mean_detector_score"]
        return pd.DataFrame(rows, columns=columns)
