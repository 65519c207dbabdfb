"""Following faces from frame to frame: each detection gets the id of the person it belongs to.

A tracker takes the boxes found in a frame and its time, and answers with a person id for each
(numbered from 1 in order of first appearance); between detections it can say where each person it
follows is expected to be. A new tracker is a class with these two methods and a line of `TRACKERS`.

`FaceTracker`, the default: each person's box centre and side follow a constant-velocity Kalman
filter; boxes are matched to people by the Hungarian method (scipy) on their distance from where
each person was expected, measured in face widths, and on the ratio of their sizes. A person
missed for up to `coast` seconds (covered, turned away, missed by the detector) is expected where
their motion carries them; one missed longer is expected where they were last seen, and a face
appearing near there within `memory` seconds takes their id back (leaving the frame and coming
back). Choices measured by benchmarks/video.py (docs/video.md, RESULTS.md "Following people").
"""

import dataclasses
import typing

import numpy as np
from scipy.optimize import linear_sum_assignment


class Tracker(typing.Protocol):
    def update(self, boxes, time, crops=None) -> list:
        """The person id of each box (x, y, width, height) found in the frame at `time` seconds;
        `crops`: the 48x48 face of each box, for trackers that use appearance."""

    def expected_boxes(self, time) -> list:
        """(person id, box) of each person still followed at the last update (seen then or shortly
        before), where they are expected at `time`."""


@dataclasses.dataclass
class _Track:
    """One person: the Kalman state (centre x, centre y, side, and their velocities per second)."""

    person: int
    state: np.ndarray  # (6,)
    covariance: np.ndarray  # (6, 6)
    last_seen: float
    aspect: float  # height / width of their last box
    hits: int = 1
    look: np.ndarray | None = None  # their appearance (an average of `appearance` vectors)

    def box(self):
        centre_x, centre_y, side = self.state[:3]
        width = side / np.sqrt(self.aspect)
        height = side * np.sqrt(self.aspect)
        return (int(round(centre_x - width / 2)), int(round(centre_y - height / 2)), int(round(width)),
                int(round(height)))


def intersection_area(first, second):
    """The area two (x, y, width, height) boxes share."""
    width = min(first[0] + first[2], second[0] + second[2]) - max(first[0], second[0])
    height = min(first[1] + first[3], second[1] + second[3]) - max(first[1], second[1])
    return max(0, width) * max(0, height)


def overlap(first, second):
    """Intersection over union of two (x, y, width, height) boxes."""
    shared = intersection_area(first, second)
    union = first[2] * first[3] + second[2] * second[3] - shared
    return shared / union if union else 0.0


def _measurement(box):
    """(centre x, centre y, side) of a box, the side the square root of its area."""
    x, y, width, height = box
    return np.array([x + width / 2, y + height / 2, max(np.sqrt(width * height), 1.0)], dtype=np.float64)


class FaceTracker:
    """See the module's text. `coast`: seconds a missed person is carried by their motion; `memory`:
    seconds an unseen person's id is kept for their return; `gate`: the farthest match, in face
    widths, for a person seen within `coast`; `return_gate`: for one unseen longer, in face widths
    plus `return_spread` per second unseen, at a cost `return_cost` above a recent person's;
    `hold`: seconds a person missed by the detector is still given where expected
    (`expected_boxes`); `look_weight`: the cost of a face that looks nothing like the person
    (1 - the cosine of their 12x12 thumbnails, `appearance`), when crops are given; `size_gate`: the
    largest change of a face's side, as a natural log (1.0: 2.7 times; detectors' boxes of one face
    differ that much from frame to frame)."""

    def __init__(self, coast=0.6, memory=6.0, gate=0.9, return_gate=1.0, return_spread=0.5, return_cost=0.3,
                 hold=0.5, look_weight=1.0, size_gate=1.0):
        self.coast, self.memory, self.gate, self.hold, self.size_gate = coast, memory, gate, hold, size_gate
        self.return_gate, self.return_spread, self.return_cost = return_gate, return_spread, return_cost
        self.look_weight = look_weight
        self.tracks, self.next_person, self.time = [], 1, None

    def update(self, boxes, time, crops=None):
        """The person id of each box; `crops`: the 48x48 face of each box, when appearance may help."""
        self._forget_older_than(time - self.memory)
        measurements = [_measurement(box) for box in boxes]
        looks = [None] * len(boxes) if crops is None else [appearance(crop) for crop in crops]
        persons = self._assign(measurements, looks, time)
        for index, person in enumerate(persons):
            if person is not None:
                self._correct(self._track(person), measurements[index], boxes[index], looks[index], time)
        for index, person in enumerate(persons):
            if person is None:
                persons[index] = self._start(measurements[index], boxes[index], looks[index], time)
        self.time = time
        return persons

    def expected_boxes(self, time):
        return [(track.person, self._predicted(track, time)[0]) for track in self.tracks
                if self.time is not None and self.time - track.last_seen <= self.hold + 1e-9]

    def _assign(self, measurements, looks, time):
        """The person of each measurement (None: unmatched): Hungarian on the gated costs."""
        persons = [None] * len(measurements)
        if not measurements or not self.tracks:
            return persons
        costs = np.array([[self._cost(track, measurement, look, time) for track in self.tracks]
                          for measurement, look in zip(measurements, looks)])  # (boxes, tracks)
        rows, columns = linear_sum_assignment(np.where(np.isfinite(costs), costs, 1e6))
        for row, column in zip(rows, columns):
            if np.isfinite(costs[row, column]):
                persons[row] = self.tracks[column].person
        return persons

    def _cost(self, track, measurement, look, time):
        """Distance in face widths from where `track` may be, plus twice the log size ratio, plus
        how unlike the person the face looks; infinite beyond the gate. A person unseen longer
        than `coast` may be where their motion carried them or where they were last seen (coming
        back), within a gate that widens with the time unseen, at `return_cost` more."""
        unseen = time - track.last_seen
        returning = unseen > self.coast
        expected = [self._predicted(track, time)[1]]
        if returning:
            expected.append(track.state[:3])
        gate = self.return_gate + self.return_spread * unseen if returning else self.gate
        best = np.inf
        for centre_x, centre_y, side in expected:
            distance = np.hypot(measurement[0] - centre_x, measurement[1] - centre_y) / side
            size_change = abs(np.log(measurement[2] / side))
            if distance <= gate and size_change <= self.size_gate:
                best = min(best, distance + 2 * size_change)
        if look is not None and track.look is not None:
            best += self.look_weight * (1 - float(look @ track.look))
        return best + (self.return_cost if returning else 0.0)

    def _predicted(self, track, time):
        state, _ = _kalman_predict(track.state, track.covariance, time - track.last_seen)
        state[2] = max(state[2], 0.5 * track.state[2])  # a face does not shrink to nothing while unseen
        carried = _Track(track.person, state, track.covariance, time, track.aspect)
        return carried.box(), state[:3]

    def _start(self, measurement, box, look, time):
        state = np.concatenate([measurement, np.zeros(3)])
        self.tracks.append(_Track(self.next_person, state, _initial_covariance(measurement[2]), time,
                                  box[3] / max(box[2], 1), look=look))
        self.next_person += 1
        return self.next_person - 1

    def _correct(self, track, measurement, box, look, time):
        gap = time - track.last_seen
        if gap > self.coast:  # back after a while: start again from here, velocity unknown
            track.state = np.concatenate([measurement, np.zeros(3)])
            track.covariance = _initial_covariance(measurement[2])
        else:
            state, covariance = _kalman_predict(track.state, track.covariance, gap)
            track.state, track.covariance = _kalman_correct(state, covariance, measurement)
        if look is not None:
            blended = look if track.look is None else 0.7 * track.look + 0.3 * look
            track.look = blended / max(np.linalg.norm(blended), 1e-9)
        track.last_seen, track.aspect, track.hits = time, box[3] / max(box[2], 1), track.hits + 1

    def _track(self, person):
        return next(track for track in self.tracks if track.person == person)

    def _forget_older_than(self, time):
        self.tracks = [track for track in self.tracks if track.last_seen >= time]


def appearance(crop):
    """A face's look: its 48x48 crop shrunk to 12x12, less its mean, of unit length (the cosine of two
    is about 0.9 for the same face a little moved, 0.1 for two people)."""
    import cv2

    small = cv2.resize(crop, (12, 12), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    small -= small.mean()
    return small / max(np.linalg.norm(small), 1e-9)


def _initial_covariance(side):
    """A new track's uncertainty: position and size to 10% of the side, velocity to a side a second."""
    return np.diag([(0.1 * side) ** 2] * 3 + [(1.0 * side) ** 2] * 2 + [(0.3 * side) ** 2])


def _kalman_predict(state, covariance, seconds):
    """The constant-velocity prediction `seconds` ahead; process noise grows with the face's side."""
    transition = np.eye(6)
    transition[:3, 3:] = seconds * np.eye(3)
    side = max(state[2], 1.0)
    acceleration = np.array([2.0, 2.0, 0.5]) * side  # pixels per second squared, a face's scale
    noise_position = (acceleration * seconds ** 2 / 2) ** 2
    noise_velocity = (acceleration * seconds) ** 2
    noise = np.diag(np.concatenate([noise_position, noise_velocity]))
    return transition @ state, transition @ covariance @ transition.T + noise


def _kalman_correct(state, covariance, measurement):
    """The state after seeing `measurement` (centre x, centre y, side), measured to 5% of the side."""
    observe = np.hstack([np.eye(3), np.zeros((3, 3))])  # (3, 6)
    noise = np.diag([(0.05 * measurement[2]) ** 2] * 3)
    innovation = measurement - observe @ state
    gain = covariance @ observe.T @ np.linalg.inv(observe @ covariance @ observe.T + noise)  # (6, 3)
    return state + gain @ innovation, (np.eye(6) - gain @ observe) @ covariance


class LargestFirst:
    """No tracking: the person id is the face's rank by size in its frame (1 = largest), what a
    per-frame face index gives. Kept to measure trackers against."""

    def update(self, boxes, time, crops=None):
        order = sorted(range(len(boxes)), key=lambda index: -boxes[index][2] * boxes[index][3])
        persons = [0] * len(boxes)
        for rank, index in enumerate(order, start=1):
            persons[index] = rank
        self.last = [(person, box) for person, box in zip(persons, boxes)]
        return persons

    def expected_boxes(self, time):
        return list(getattr(self, "last", []))


TRACKERS = {"faces": FaceTracker, "largest-first": LargestFirst}
DEFAULT_TRACKER = "faces"


def make_tracker(name=DEFAULT_TRACKER, **options):
    """The tracker registered as `name`, with its options."""
    return TRACKERS[name](**options)
