"""Generated video clips of people whose faces move, cross, change expression, leave the frame and
come back, with the truth of every frame: who is where, how much of the face shows, which class.

Each person follows straight lines between timed waypoints (positions outside the frame take them
out of it) and shows a sequence of faces, each from its start time on. Faces are square, drawn
largest last (the nearer face covers the farther), slightly turned, on a smooth background. Used by
`benchmarks/video.py` (faces of the validation rows) and by the tests (faces they make).

    scene = Scene(width=320, height=180, people=[
        Person(waypoints=[(0, 60, 90, 70), (4, 260, 90, 70)], faces=[(0, face, 3, "smile")]),
    ])
    truth = write_clip("clip.avi", scene, duration=4, rate=15)   # one row per person and frame
"""

import dataclasses

import cv2
import numpy as np
import pandas as pd

EXIT_SPEED = 100.0  # pixels a second of a person leaving the frame or coming back
TRUTH_COLUMNS = ("frame", "time", "person", "x", "y", "width", "height", "visible", "label", "face_key")


@dataclasses.dataclass
class Person:
    """`waypoints`: (seconds, centre x, centre y, side in pixels), in time order; `faces`: (from
    seconds, grey face image, class, key), in time order, the key any value that names the face; `turns`: degrees of in-plane turn, a sine of
    this amplitude over `turn_period` seconds."""

    waypoints: list
    faces: list
    turn: float = 0.0
    turn_period: float = 3.0

    def place(self, time):
        """(centre x, centre y, side) at `time`, by straight lines between the waypoints."""
        times = [point[0] for point in self.waypoints]
        return tuple(float(np.interp(time, times, [point[axis] for point in self.waypoints]))
                     for axis in (1, 2, 3))

    def face(self, time):
        """(grey face image, class, key) shown at `time`."""
        shown = self.faces[0]
        for face in self.faces:
            if face[0] <= time:
                shown = face
        return shown[1:]


@dataclasses.dataclass
class Scene:
    width: int
    height: int
    people: list
    seed: int = 0

    def background(self):
        """A smooth grey-blue background with soft blobs, the same for every frame."""
        rng = np.random.default_rng(self.seed)
        small = rng.uniform(60, 200, size=(6, 10, 3)).astype(np.float32)
        return cv2.GaussianBlur(cv2.resize(small, (self.width, self.height), interpolation=cv2.INTER_CUBIC),
                                (0, 0), 9).clip(0, 255).astype(np.uint8)


def render(scene, time, background):
    """(BGR frame, truth rows): the scene at `time`. A truth row per person whose face is at least
    partly in the frame: (person from 1, x, y, width, height, visible share, class, face key); the visible
    share counts what is inside the frame and not covered by a nearer face."""
    frame = background.copy()
    owner = np.zeros((scene.height, scene.width), np.int16)  # which person each pixel shows
    placed = []
    for number, person in enumerate(scene.people, start=1):
        centre_x, centre_y, side = person.place(time)
        placed.append((side, number, person, centre_x, centre_y))
    for side, number, person, centre_x, centre_y in sorted(placed, key=lambda item: item[0]):
        image = person.face(time)[0]
        angle = person.turn * np.sin(2 * np.pi * time / person.turn_period)
        _paste(frame, owner, number, image, centre_x, centre_y, int(round(side)), angle)
    rows = []
    for side, number, person, centre_x, centre_y in placed:
        side = int(round(side))
        x, y = int(round(centre_x - side / 2)), int(round(centre_y - side / 2))
        visible = np.count_nonzero(owner[max(0, y):max(0, y + side), max(0, x):max(0, x + side)] == number)
        if visible:
            _, label, key = person.face(time)
            rows.append((number, x, y, side, side, visible / side ** 2, label, key))
    return frame, rows


def _paste(frame, owner, number, image, centre_x, centre_y, side, angle):
    """Draws the face `image` as a `side`-pixel square turned by `angle` degrees about its centre."""
    face = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
    face = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR) if face.ndim == 2 else face
    turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)  # (2, 3)
    turn[:, 2] += (centre_x - side / 2, centre_y - side / 2)  # face square -> frame
    warped = cv2.warpAffine(face, turn, (frame.shape[1], frame.shape[0]), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.ones((side, side), np.uint8), turn, (frame.shape[1], frame.shape[0]),
                          flags=cv2.INTER_NEAREST)
    covered = mask > 0
    frame[covered] = warped[covered]
    owner[covered] = number


def write_clip(path, scene, duration, rate=15.0, codec="MJPG"):
    """Writes `duration` seconds of `scene` at `rate` frames/s to `path`; returns the truth as a
    DataFrame of TRUTH_COLUMNS (a row per person and frame where the face is in the frame)."""
    background = scene.background()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), rate, (scene.width, scene.height))
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write a {codec} video here")
    truth = []
    try:
        for frame_number in range(int(round(duration * rate))):
            time = frame_number / rate
            frame, rows = render(scene, time, background)
            writer.write(frame)
            truth.extend((frame_number, time, *row) for row in rows)
    finally:
        writer.release()
    return pd.DataFrame(truth, columns=TRUTH_COLUMNS)


def random_scene(rng, faces_by_label, duration, width=640, height=360, people=None):
    """A scene of 1-4 people (or `people`) who move at different speeds and sizes (60-170 pixels),
    pass one another, change expression every 2-5 seconds (faces drawn from `faces_by_label`, a
    list per class of grey face images), turn a little, and some of whom leave the frame for 1-3
    seconds and come back near where they left."""
    count = int(rng.integers(1, 5)) if people is None else people
    crowd = []
    for index in range(count):
        side = float(rng.uniform(60, 170))
        lane_y = height * (index + 1) / (count + 1) + rng.uniform(-20, 20)
        speed = float(rng.uniform(10, 70)) * rng.choice([-1, 1])  # pixels a second, left or right
        crowd.append(Person(_random_waypoints(rng, duration, width, height, side, lane_y, speed),
                            _random_faces(rng, faces_by_label, duration),
                            turn=float(rng.uniform(0, 10)), turn_period=float(rng.uniform(2, 5))))
    return Scene(width, height, crowd, seed=int(rng.integers(1 << 30)))


def _random_waypoints(rng, duration, width, height, side, lane_y, speed):
    """Back and forth along a lane, bouncing off the margins, with one exit and return (half the
    people): a walk to the nearest side edge, out of the frame at EXIT_SPEED, 1-3 seconds away,
    and back in where they left."""
    margin = side / 2 + 4
    x = float(rng.uniform(margin, width - margin))
    points, time = [(0.0, x, lane_y, side)], 0.0
    exit_at = float(rng.uniform(0.2, 0.7) * duration) if rng.random() < 0.5 else None
    while time < duration:
        step = float(rng.uniform(1.0, 3.0))
        if exit_at is not None and time >= exit_at:
            near_edge = margin if x < width / 2 else width - margin
            outside = -side / 2 - 2 if x < width / 2 else width + side / 2 + 2  # fully out of the frame
            walk = abs(near_edge - x) / abs(speed)
            out = side / EXIT_SPEED  # from touching the edge to gone
            away = float(rng.uniform(1.0, 3.0))
            points += [(time + walk, near_edge, lane_y, side), (time + walk + out, outside, lane_y, side),
                       (time + walk + out + away, outside, lane_y, side),
                       (time + walk + 2 * out + away, near_edge, lane_y, side)]
            time, x = time + walk + 2 * out + away, near_edge
            exit_at = None
            continue
        target = x + speed * step
        if not margin <= target <= width - margin:
            speed = -speed
            target = float(np.clip(x + speed * step, margin, width - margin))
        drift_y = float(np.clip(lane_y + rng.uniform(-15, 15), side / 2, height - side / 2))
        time, x = time + step, target
        points.append((time, x, drift_y, side * float(rng.uniform(0.9, 1.1))))
    return points


def _random_faces(rng, faces_by_label, duration):
    """(from seconds, face, class, key) with a new class every 2-5 seconds, classes drawn as often
    as `faces_by_label` holds them; the key is (class, index)."""
    shown, time, label = [], 0.0, None
    counts = np.array([len(images) for images in faces_by_label], dtype=np.float64)
    while time < duration:
        weights = counts.copy()
        if label is not None:
            weights[label] = 0
        label = int(rng.choice(len(counts), p=weights / weights.sum()))
        index = int(rng.integers(len(faces_by_label[label])))
        shown.append((time, faces_by_label[label][index], label, (label, index)))
        time += float(rng.uniform(2, 5))
    return shown
