"""How well predict.py finds faces in photos and keeps a model's accuracy on them: FER2013 faces put
into generated photos, found again by each detector, cut out and classified, against the same faces
given as 48x48 rows.

Usage:
    python benchmarks/photos.py MODEL.h5 --data data.npz                        # validation rows 0..999
    python benchmarks/photos.py MODEL.h5 --data data.npz --rows 2400:3400 --fit-framing   # training rows

Two sets of photos, made from the rows asked for:
- easy: each face enlarged 3x (144 pixels) at a random place in a 640x480 noisy gradient, JPEG 90;
- hard: one to three faces per 1280x960 photo of coloured clutter, each 48 to 260 pixels wide,
  turned by up to 25 degrees (--turn), under its own lighting, the photo at JPEG quality 40 to 95
  (--turn 0 gives the same photos with upright faces: what turning costs).
For every detector (and, where it gives landmarks, with and without turning faces upright) the
table gives: the share of faces found; false faces per photo; the accuracy on the found faces and of
the same faces as 48x48 rows; how often the two labels agree; photos per second of the detector
alone (detectors timed in turn on each photo, so machine load hits all alike), of predict.py's
whole run on --speed-photos of them as JPEG files, and the ratio of that run to the detector alone
on the same files (timed in alternating rounds). A face is found when a box's centre lies within 0.35 of the
face's side from the face's centre and its longer side is 0.35 to 1.6 times the face's.

--fit-framing prints, for each detector, the crop margin and vertical offset that reproduce
FER2013's framing from its boxes on the easy set (medians over the found faces): choose them on
training rows (e.g. --rows 2400:3400), report on validation rows.
"""

import argparse
import dataclasses
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from common import cli, config, data, faces, synthetic  # noqa: E402  (needs the repo on sys.path)


@dataclasses.dataclass(frozen=True)
class PlacedFace:
    row: int  # index into the rows measured
    centre: tuple  # (x, y) in the photo
    side: float  # the 48x48 face's side in the photo
    angle: float  # degrees the face was turned by (clockwise in the image)


def row_range(text):
    """argparse type: `START:END` rows of the data file."""
    try:
        start, end = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:END row numbers, got {text!r}") from None
    if not 0 <= start < end:
        raise argparse.ArgumentTypeError(f"expected 0 <= START < END, got {text!r}")
    return slice(start, end)


def jpeg(photo, quality):
    """The photo after a round trip through JPEG at `quality`."""
    _, encoded = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def make_easy_photos(images, seed=0):
    """Each face enlarged 3x at a random place in a 640x480 noisy gradient, JPEG quality 90."""
    rng = np.random.default_rng(seed)
    photos = []
    for row, face in enumerate(images):
        photo, (top, left) = synthetic.photo_and_corner(
            cv2.resize(face, (144, 144), interpolation=cv2.INTER_CUBIC), rng)
        photos.append((jpeg(cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR), 90),
                       [PlacedFace(row, (left + 72.0, top + 72.0), 144.0, 0.0)]))
    return photos


def clutter(rng, height=960, width=1280):
    """A BGR picture of a coloured gradient with random rectangles, discs and lines and sensor noise."""
    ramp = np.linspace(0, 1, width)[None, :, None]
    start, end = rng.uniform(30, 220, 3), rng.uniform(30, 220, 3)
    canvas = np.repeat(start + (end - start) * ramp, height, axis=0).astype(np.float32)
    for _ in range(rng.integers(15, 40)):
        colour = tuple(float(value) for value in rng.uniform(0, 255, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(10, 250))
        shape = rng.integers(0, 3)
        if shape == 0:
            cv2.rectangle(canvas, (x, y), (x + size, y + int(rng.integers(10, 250))), colour, cv2.FILLED)
        elif shape == 1:
            cv2.circle(canvas, (x, y), size // 2, colour, cv2.FILLED)
        else:
            cv2.line(canvas, (x, y), (int(rng.integers(0, width)), int(rng.integers(0, height))), colour,
                     int(rng.integers(1, 8)))
    canvas += rng.normal(0, 6, canvas.shape)
    return canvas


def paste_turned(canvas, face, centre, side, angle, gain, bias):
    """Pastes the grey face, resized to `side` and turned by `angle` degrees about `centre`, with its
    own lighting (gain, bias), onto the float BGR canvas."""
    interpolation = cv2.INTER_CUBIC if side > face.shape[0] else cv2.INTER_AREA
    patch = cv2.resize(face, (int(side), int(side)), interpolation=interpolation).astype(np.float32)
    patch = np.clip(patch * gain + bias, 0, 255)
    # the patch's pixel (u, v) goes to centre + R(angle) (u - side/2, v - side/2)
    turn = cv2.getRotationMatrix2D((side / 2, side / 2), -angle, 1.0)
    turn[:, 2] += (centre[0] - side / 2, centre[1] - side / 2)
    size = (canvas.shape[1], canvas.shape[0])
    warped = cv2.warpAffine(patch, turn, size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.ones_like(patch), turn, size, flags=cv2.INTER_LINEAR)[..., None]
    canvas *= 1 - mask
    canvas += mask * warped[..., None]


def make_hard_photos(images, seed=0, turn=25.0):
    """One to three faces per 1280x960 cluttered photo, 48-260 pixels wide, turned up to `turn`
    degrees, each under its own lighting; the photo at JPEG quality 40-95."""
    rng = np.random.default_rng(seed)
    photos, row = [], 0
    while row < len(images):
        canvas = clutter(rng)
        placed = []
        for _ in range(min(int(rng.integers(1, 4)), len(images) - row)):
            side = float(rng.integers(48, 261))
            centre = _free_place(rng, side, placed, canvas.shape)
            if centre is None:
                break
            angle = float(rng.uniform(-1, 1)) * turn  # the same draws whatever the turn
            paste_turned(canvas, images[row], centre, side, angle, rng.uniform(0.6, 1.3), rng.uniform(-30, 30))
            placed.append(PlacedFace(row, centre, side, angle))
            row += 1
        photo = np.clip(canvas * rng.uniform(0.7, 1.2) + rng.uniform(-20, 20), 0, 255).astype(np.uint8)
        photos.append((jpeg(photo, rng.integers(40, 96)), placed))
    return photos


def _free_place(rng, side, placed, shape, tries=50):
    """A centre for a face of `side` inside the photo and clear of the faces placed already."""
    reach = side * 0.75  # a turned square reaches up to side / sqrt(2) from its centre
    for _ in range(tries):
        centre = (float(rng.uniform(reach, shape[1] - reach)), float(rng.uniform(reach, shape[0] - reach)))
        if all(np.hypot(centre[0] - other.centre[0], centre[1] - other.centre[1]) > reach + other.side * 0.75
               for other in placed):
            return centre
    return None


def match(detections, placed):
    """Pairs each placed face with at most one detection: {placed index: detection}, and the count
    of detections matching no face."""
    pairs, used = {}, set()
    for index, face in enumerate(placed):
        best = None
        for number, detection in enumerate(detections):
            x, y, width, height = detection.box
            distance = np.hypot(x + width / 2 - face.centre[0], y + height / 2 - face.centre[1])
            if number in used or distance > 0.35 * face.side or not (
                    0.35 * face.side <= max(width, height) <= 1.6 * face.side):
                continue
            if best is None or distance < best[0]:
                best = (distance, number)
        if best:
            used.add(best[1])
            pairs[index] = detections[best[1]]
    return pairs, len(detections) - len(used)


def detect_all(photos, detectors):
    """Every detector's detections of every photo, and its seconds in all (detectors in turn on each
    photo, so that load on the machine hits all alike)."""
    found = {name: [] for name in detectors}
    seconds = dict.fromkeys(detectors, 0.0)
    for photo, _ in photos:
        for name, detector in detectors.items():
            started = time.perf_counter()
            found[name].append(detector.detect(photo))
            seconds[name] += time.perf_counter() - started
    return found, seconds


def fit_framing(photos, detections):
    """The margin and downward offset (shares of the crop's side) that turn the detections' boxes
    into the placed faces' squares: medians over the found faces."""
    margins, offsets = [], []
    for (_, placed), found in zip(photos, detections):
        for index, detection in match(found, placed)[0].items():
            x, y, width, height = detection.box
            face = placed[index]
            margins.append((face.side / max(width, height) - 1) / 2)
            offsets.append((face.centre[1] - (y + height / 2)) / face.side)
    return float(np.median(margins)), float(np.median(offsets))


def score_detector(photos, detections, detector, align, classifier, labels, direct):
    """found share, false faces per photo, accuracy on found faces, their rows' accuracy, agreement."""
    crops, rows, false_faces, total = [], [], 0, 0
    for (photo, placed), found in zip(photos, detections):
        pairs, unmatched = match(found, placed)
        false_faces += unmatched
        total += len(placed)
        grey = faces.to_grey(photo)
        for index, detection in pairs.items():
            crops.append(faces.cut_face(grey, detection, detector, align))
            rows.append(placed[index].row)
    rows = np.array(rows, dtype=int)
    predicted = classifier.probabilities(np.stack(crops)).argmax(axis=1) if crops else np.array([])
    return {"found": len(rows) / total, "false_per_photo": false_faces / len(photos),
            "accuracy": float(np.mean(predicted == labels[rows])) if len(rows) else float("nan"),
            "rows_accuracy": float(np.mean(direct[rows] == labels[rows])) if len(rows) else float("nan"),
            "agreement": float(np.mean(predicted == direct[rows])) if len(rows) else float("nan")}


def whole_run_speed(photos, classifier, detector, align, count, rounds=2):
    """Photos per second of predict.py's run (read, detect, cut, classify, write) on `count` photos
    saved as JPEG files, and of the detector alone (read, detect) on the same files, in alternating
    rounds (medians), so that machine load hits both alike."""
    from common import face_prediction

    with tempfile.TemporaryDirectory() as folder:
        for number, (photo, _) in enumerate(photos[:count]):
            cv2.imwrite(os.path.join(folder, f"photo{number:04d}.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
        sources, _ = faces.collect_sources([folder])
        whole, alone = [], []
        for round_number in range(rounds):
            started = time.perf_counter()
            run = face_prediction.FacePredictionRun(classifier, detector, os.path.join(folder, f"out{round_number}"),
                                                    align=align)
            for source in sources:
                run.add(source)
            run.finish()
            whole.append(len(sources) / (time.perf_counter() - started))
            started = time.perf_counter()
            for source in sources:
                detector.detect(faces.read_image(source.path))
            alone.append(len(sources) / (time.perf_counter() - started))
        return float(np.median(whole)), float(np.median(alone))


def report(set_name, photos, detectors, classifier, labels, direct, speed_photos):
    detections, seconds = detect_all(photos, detectors)
    faces_placed = sum(len(placed) for _, placed in photos)
    print(f"\n{set_name}: {len(photos)} photos, {faces_placed} faces; the same faces as 48x48 rows: "
          f"accuracy {np.mean(direct == labels):.4f}")
    print(f"{'detector':<16}{'found':>8}{'false/photo':>13}{'accuracy':>10}{'as rows':>9}{'agree':>8}"
          f"{'detect/s':>10}{'whole/s':>9}{'whole/detect':>14}")
    for name, detector in detectors.items():
        for align in ((True, False) if name == "mtcnn" else (False,)):
            scores = score_detector(photos, detections[name], detector, align, classifier, labels, direct)
            label = name + ("" if name != "mtcnn" else (" aligned" if align else " upright"))
            whole, alone = (whole_run_speed(photos, classifier, detector, align, speed_photos)
                            if speed_photos else (float("nan"), float("nan")))
            print(f"{label:<16}{scores['found']:>8.1%}{scores['false_per_photo']:>13.3f}"
                  f"{scores['accuracy']:>10.4f}{scores['rows_accuracy']:>9.4f}{scores['agreement']:>8.4f}"
                  f"{len(photos) / seconds[name]:>10.1f}{whole:>9.1f}{whole / alone:>14.2f}")
    return detections


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("model", help="the model to measure")
    parser.add_argument("--data", required=True, help="labelled faces (.csv, .csv.gz or .npz)")
    parser.add_argument("--rows", type=row_range, default=slice(0, 1000), help="START:END rows used")
    parser.add_argument("--detectors", default="mtcnn,haar", help="comma-separated detector names")
    parser.add_argument("--sets", default="easy,hard", help="comma-separated: easy, hard")
    parser.add_argument("--speed-photos", type=cli.non_negative_int, default=100,
                        help="photos of each set timed through predict.py's whole run (0: none)")
    parser.add_argument("--turn", type=float, default=25.0,
                        help="largest turn of a face in the hard set, in degrees (0: the same photos, upright)")
    parser.add_argument("--fit-framing", action="store_true",
                        help="print the margin and offset that reproduce FER2013's framing (easy set)")
    options = parser.parse_args()
    names = options.detectors.split(",")
    unknown = sorted(set(names) - set(config.DETECTORS))
    if unknown:
        raise cli.UsageError(f"--detectors: unknown {', '.join(unknown)}; known: {', '.join(config.DETECTORS)}")
    dataset = data.load_dataset(options.data, require_labels=True).subset(options.rows)

    from common import prediction

    classifier = prediction.load_classifier(options.model)
    direct = classifier.probabilities(dataset.images).argmax(axis=1)
    detectors = {name: faces.make_detector(name) for name in names}
    print(f"rows {options.rows.start}..{options.rows.stop - 1} of {options.data}; model {options.model}")
    makers = {"easy": make_easy_photos, "hard": lambda images: make_hard_photos(images, turn=options.turn)}
    for set_name in options.sets.split(","):
        photos = makers[set_name](dataset.images)
        detections = report(set_name, photos, detectors, classifier, dataset.labels, direct, options.speed_photos)
        if options.fit_framing and set_name == "easy":
            for name in names:
                margin, offset = fit_framing(photos, detections[name])
                print(f"framing of {name}: margin {margin:.3f}, offset {offset:+.3f} of the side")


if __name__ == "__main__":
    cli.run(main)
