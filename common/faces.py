"""Faces in photos and videos: which inputs to read, finding faces, cutting each out the way FER2013's
faces were cut (a square around the face with a small margin, greyscale, 48x48 by area
interpolation), and classifying them in batches through the one prediction path.

For a notebook:

    from common import faces
    found = faces.classify_faces("examples/astronaut.jpg")      # the shipped model, MTCNN detector
    for face in found:
        print(face.box, face.emotion, face.probabilities.round(3))

Nothing here loads TensorFlow until a model is needed, so input checks run before it.
"""

import dataclasses
import os
import typing

import cv2
import numpy as np

from common import config, files
from common.classes import FER2013_CLASSES
from common.config import DEFAULT_DETECTOR, DEFAULT_MIN_FACE, IMAGE_SIZE
from common.errors import UsageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".webp", ".tif", ".tiff", ".gif",
                  ".pgm", ".ppm", ".pbm", ".pnm", ".jp2", ".sr", ".ras")  # a GIF: its first frame
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
FACE_MARGIN = 0.05  # the crop's side: the detection's longer side plus this share on each side (chosen
# on training rows by benchmarks/photos.py: the margin whose crops best keep the 48x48 rows' labels)
CAMERA_PREFIX = "camera:"  # camera:0 is OpenCV's first video device
CHECK_THRESHOLD = 0.3  # MTCNN's last network's score at which a box where a person is expected holds a face
# (benchmarks/video.py: about 70% of the faces its full search misses score above it, 0.3% of background)
HAAR_CASCADE = "haarcascade_frontalface_default.xml"  # ships inside opencv-python(-headless) 4.x
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own lines off: a bad video is named once, by us


@dataclasses.dataclass(frozen=True)
class Source:
    """One input: a still image or a video, and whether the user named it (else found in a folder)."""

    path: str
    kind: str  # "image", "video" or "camera"
    named: bool


@dataclasses.dataclass
class Face:
    """A face found in an image: its box (x, y, width, height) in the image's pixels, its 48x48 grey
    crop, the detector's score and, once classified, the probability of each of the classifier's
    classes (FER2013's seven: 0 angry ... 6 neutral, for the shipped model)."""

    box: tuple
    crop: np.ndarray
    probabilities: np.ndarray | None = None
    score: float | None = None  # the detector's confidence
    class_names: tuple = FER2013_CLASSES  # the classifier's, given with the probabilities

    @property
    def label(self):
        return int(np.argmax(self.probabilities))

    @property
    def emotion(self):
        """The name of the most probable class."""
        return self.class_names[self.label]


def collect_sources(paths):
    """The images and videos to read, in the order given (a folder's files sorted by name, not
    descending into subfolders), and one warning per folder file that is neither.

    A path that does not exist, a named file OpenCV cannot read, or a folder with nothing to read
    raises a UsageError naming it.
    """
    sources, warnings = [], []
    for path in paths:
        if path.startswith(CAMERA_PREFIX):
            sources.append(_camera_source(path))
            continue
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such file or folder")
        files.check_not_special_file(path)
        if os.path.isdir(path):
            found = _folder_sources(path, warnings)
            if not found:
                raise UsageError(f"{path}: the folder holds no images or videos (looked for "
                                 f"{', '.join(IMAGE_SUFFIXES[:4] + VIDEO_SUFFIXES[:4])}, ...)")
            sources.extend(found)
        else:
            sources.append(_named_source(path))
    return sources, warnings


def _folder_sources(folder, warnings):
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or name.startswith("."):
            continue
        kind = _kind_by_suffix(path)
        if kind is None:
            warnings.append(f"{path}: skipped, neither an image nor a video")
        else:
            found.append(Source(path, kind, named=False))
    return found


def _named_source(path):
    """A file the user named: checked now to be an image or video OpenCV can open."""
    kind = _kind_by_suffix(path)
    if kind != "video" and (cv2.haveImageReader(path) if opencv_can_open(path) else kind == "image"):
        with open(path, "rb") as file:  # images are decoded from their bytes, whatever their name
            refuse_cut_short_jpeg(file.read(), path)
        return Source(path, "image", named=True)
    if kind != "image":
        capture = open_video(path)
        readable = capture.isOpened() and capture.read()[0]
        capture.release()
        if readable:
            return Source(path, "video", named=True)
    what = {"image": "an image", "video": "a video"}.get(kind, "an image or a video")
    raise UsageError(f"{path}: cannot be read as {what} by OpenCV")


def _camera_source(text):
    """`camera:N`: OpenCV's device N, checked now to open."""
    index = text[len(CAMERA_PREFIX):]
    if not index.isdigit():
        raise UsageError(f"{text}: expected camera:N with N a device index (0 for the first camera)")
    capture = cv2.VideoCapture(int(index))
    opened = capture.isOpened()
    capture.release()
    if not opened:
        raise UsageError(f"{text}: the camera cannot be opened (no such device, or it is in use)")
    return Source(text, "camera", named=True)


def _kind_by_suffix(path):
    suffix = os.path.splitext(path)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def read_image(path):
    """A colour image (height, width, 3) uint8 in OpenCV's BGR order, or a UsageError."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise UsageError(f"{path}: cannot be read ({error.strerror})") from None
    return decode_image(data, path)


def decode_image(data, name):
    """A colour image (height, width, 3) uint8 in OpenCV's BGR order from an image file's bytes, or a
    UsageError naming `name`. A JPEG cut short is refused rather than decoded in part (OpenCV would
    fill its missing rows with grey)."""
    if not data:
        raise UsageError(f"{name}: the file is empty; expected an image")
    refuse_cut_short_jpeg(data, name)
    # greyscale, 16-bit and alpha images become 8-bit BGR; the EXIF orientation is applied
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise UsageError(f"{name}: cannot be read as an image by OpenCV")
    return image


def jpeg_cut_short(data):
    """Whether JPEG bytes stop before their end-of-image marker. Bytes after the marker (a phone's
    motion-photo video or maker data) are fine, and so are bytes that are not a JPEG."""
    if not data.startswith(b"\xff\xd8"):
        return False
    if data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return False
    position = 2  # past the header's segments (an EXIF thumbnail holds an end marker of its own)
    while position + 4 <= len(data) and data[position] == 0xFF and data[position + 1] != 0xDA:
        position += 2 + int.from_bytes(data[position + 2:position + 4], "big")
    # in the compressed data a 0xFF byte is always followed by 0x00 or a marker, so this is the end
    return data.find(b"\xff\xd9", position) < 0


def refuse_cut_short_jpeg(data, name):
    """A UsageError naming `name` when its JPEG bytes are cut short."""
    if jpeg_cut_short(data):
        raise UsageError(f"{name}: the JPEG image is cut short (its data ends before the end-of-image "
                         f"marker: a partial copy or download?)")


def opencv_can_open(path):
    """Whether OpenCV can be given the file name `path`: it takes names as UTF-8 and crashes on one
    that is not (which Python keeps as lone surrogates)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_opencv_can_open(path, what):
    """A UsageError naming `path` when OpenCV cannot be given its name; `what` it is, e.g. "a video"."""
    if not opencv_can_open(path):
        raise UsageError(f"{files.printable_path(path)}: OpenCV cannot open {what} whose name is not "
                         f"UTF-8; rename it")


def open_video(path):
    """A cv2.VideoCapture of the video at `path` (check `isOpened()`), or a UsageError when OpenCV
    cannot be given its name."""
    check_opencv_can_open(path, "a video")
    return cv2.VideoCapture(path)


@dataclasses.dataclass(frozen=True)
class Detection:
    """One face as a detector reports it, in the image's pixels."""

    box: tuple  # (x, y, width, height)
    score: float | None = None  # the detector's confidence; None when it gives none
    eyes: tuple | None = None  # ((x, y) of the eye on the image's left, (x, y) of the other); None: no landmarks


class FaceDetector(typing.Protocol):
    """What `find_faces` needs of a detector; a new one is a class like these and a line of `config.DETECTORS`.

    `margin` and `offset` frame its boxes as FER2013's faces were framed: the crop is a square whose
    side is the box's longer side plus `margin` of it on each side, its centre `offset` of the side
    below the box's centre (both chosen on training rows by benchmarks/photos.py --fit-framing)."""

    margin: float
    offset: float

    def detect(self, image) -> list:
        """The faces (Detection) in a BGR or grey uint8 image, largest first."""


class MtcnnDetector:
    """MTCNN (the `mtcnn` package: TensorFlow networks, weights inside the wheel, five landmarks):
    finds turned, small and several faces. The search runs on a copy scaled so that the smallest
    face asked for (`min_face` pixels wide) is 20 pixels, the size the package's image pyramid is
    built for; boxes are given in the original's pixels and faces are cut from the original."""

    margin, offset = -0.02, 0.0  # see FaceDetector: its box is a little larger than FER2013's crop
    SEARCH_MIN_FACE = 20  # smaller values of the package's min_face_size are slow; larger ones break its pyramid

    THRESHOLDS = dict(threshold_pnet=0.5, threshold_rnet=0.6, threshold_onet=0.7)  # chosen on training rows

    def __init__(self, min_face=40):
        from common import backend  # noqa: F401  (TensorFlow loads quietly)
        import keras
        import tensorflow as tf

        try:
            from mtcnn import MTCNN
            from mtcnn.stages import StageONet, StagePNet, StageRNet
        except ImportError as error:
            raise UsageError(f"the MTCNN face detector's package, mtcnn, cannot be loaded ({error}); "
                             f"reinstall it with pip install -r requirements.txt") from None
        self.min_face = min_face
        policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("float32")  # its layers never take the classifier's policy
        try:
            last_stage = StageONet()  # also asked on its own by `check_boxes`
            self.network = MTCNN(stages=[StagePNet, StageRNet, last_stage], device="CPU:0")
        finally:
            keras.mixed_precision.set_global_policy(policy)
        self.last_network = tf.function(last_stage.model, reduce_retracing=True)

    def detect(self, image):
        rgb = to_rgb(image)
        scale = min(1.0, self.SEARCH_MIN_FACE / self.min_face)
        if min(rgb.shape[:2]) * scale < self.SEARCH_MIN_FACE:
            return []  # smaller than the smallest face searched for
        searched = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale,
                                                        interpolation=cv2.INTER_AREA)
        found = self.network.detect_faces(searched, min_face_size=self.SEARCH_MIN_FACE, output_type="numpy",
                                          box_format="xywh", **self.THRESHOLDS)
        detections = []
        for row in np.asarray(found, dtype=np.float64).reshape(-1, 16):
            # row: image, x, y, width, height, score, then the x of 5 landmarks and their y
            x, y, width, height = row[1:5] / scale
            if max(width, height) < self.min_face:
                continue
            landmarks = row[6:16].reshape(2, 5).T / scale  # (5, 2): eyes, nose, mouth corners
            eyes = tuple(tuple(float(value) for value in point) for point in landmarks[:2])
            detections.append(Detection((int(round(x)), int(round(y)), int(round(width)),
                                         int(round(height))), float(row[5]), eyes))
        return sorted(detections, key=lambda detection: -detection.box[2] * detection.box[3])

    def check_boxes(self, image, boxes, threshold=CHECK_THRESHOLD):
        """Asks MTCNN's last network whether each (x, y, width, height) box of `image` holds a face:
        for each, a Detection with the box as that network refines it, its score and the eyes, or
        None when the score is below `threshold`. A video's tracker asks it where it expects a person
        the full search missed or was not run for."""
        import tensorflow as tf

        if not boxes:
            return []
        height, width = image.shape[:2]
        normalised = (to_rgb(image).astype(np.float32) - 127.5) / 128  # (height, width, 3) in -1..1, as MTCNN's
        squares = np.array([_square_around(box) for box in boxes], dtype=np.float32)  # (boxes, 4): x1, y1, x2, y2
        corners = squares[:, [1, 0, 3, 2]] / np.array([height, width, height, width], dtype=np.float32)
        patches = tf.image.crop_and_resize(normalised[None], corners, np.zeros(len(boxes), np.int32),
                                           (48, 48))  # (boxes, 48, 48, 3)
        offsets, landmarks, scores = (np.asarray(output) for output in self.last_network(patches))
        sides = (squares[:, 2:] - squares[:, :2])[:, [0, 1, 0, 1]]  # (boxes, 4): width, height, width, height
        refined = squares + offsets * sides
        checked = []
        for corners_of, marks, side, origin, score in zip(refined, landmarks, sides, squares, scores[:, -1]):
            if score < threshold:
                checked.append(None)
                continue
            x1, y1, x2, y2 = corners_of
            eyes = tuple((float(origin[0] + side[0] * marks[index]), float(origin[1] + side[1] * marks[5 + index]))
                         for index in range(2))  # landmarks: 5 x then 5 y, as shares of the square
            checked.append(Detection((int(round(x1)), int(round(y1)), int(round(x2 - x1)), int(round(y2 - y1))),
                                     float(score), eyes))
        return checked


def _square_around(box):
    """(x1, y1, x2, y2) of the square with `box`'s centre and longer side."""
    x, y, width, height = box
    side = max(width, height)
    left, top = x + width / 2 - side / 2, y + height / 2 - side / 2
    return left, top, left + side, top + side


class HaarDetector:
    """OpenCV's frontal-face Haar cascade, as shipped with OpenCV: nothing to download; no score,
    no landmarks, upright faces only."""

    margin, offset = FACE_MARGIN, 0.0  # the cascade's box is tighter than FER2013's faces

    def __init__(self, min_face=24):
        path = os.path.join(cv2.data.haarcascades, HAAR_CASCADE)
        self.cascade = cv2.CascadeClassifier(path)
        self.min_face = min_face
        if self.cascade.empty():
            raise UsageError(f"{path}: OpenCV's face detector could not be loaded; reinstall "
                             f"opencv-python-headless 4.x")

    def detect(self, image):
        grey = to_grey(image)
        equalised = cv2.equalizeHist(grey)  # evens out lighting for the cascade only
        smallest = max(self.min_face, min(grey.shape) // 40)
        found = self.cascade.detectMultiScale(equalised, scaleFactor=1.1, minNeighbors=5,
                                              minSize=(smallest, smallest))
        boxes = sorted((tuple(int(value) for value in box) for box in found), key=lambda box: -box[2] * box[3])
        return [Detection(box) for box in boxes]


class WholeImage:
    """The detector of `--detector none`: every image already is one face, cut as it is."""

    margin, offset = 0.0, 0.0

    def __init__(self, min_face=0):
        pass

    def detect(self, image):
        return [Detection((0, 0, image.shape[1], image.shape[0]), 1.0)]


def make_detector(name=DEFAULT_DETECTOR, min_face=DEFAULT_MIN_FACE):
    """The detector registered as `name`, finding faces at least `min_face` pixels wide."""
    return globals()[config.DETECTORS[name]](min_face=min_face)


def to_rgb(image):
    """An RGB (height, width, 3) uint8 image from a BGR, BGRA or grey one."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def to_grey(image):
    """A grey (height, width) uint8 image from a BGR, BGRA or grey one."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def eye_angle(eyes):
    """Degrees by which the line from the left eye to the right one rises clockwise in the image
    (y grows downwards): turning the face back by it levels the eyes."""
    (left_x, left_y), (right_x, right_y) = eyes
    return float(np.degrees(np.arctan2(right_y - left_y, right_x - left_x)))


def crop_face(grey, box, margin=FACE_MARGIN, offset=0.0, angle=0.0):
    """The 48x48 uint8 face of `box` cut from a grey image as FER2013's faces were: a square
    centred on the box (moved down by `offset` of its side), its side the box's longer side plus
    `margin` of it on each side (edges repeated where it leaves the image), turned by `angle`
    degrees about its centre so that a face tilted by that angle comes out upright, resized by area
    interpolation."""
    x, y, width, height = box
    side = max(1, int(round(max(width, height) * (1 + 2 * margin))))
    centre_x, centre_y = x + width / 2, y + height / 2 + offset * side
    if angle:
        square = _turned_square(grey, (centre_x, centre_y), side, angle)
    else:
        square = _square(grey, int(round(centre_x - side / 2)), int(round(centre_y - side / 2)), side)
    interpolation = cv2.INTER_AREA if side >= IMAGE_SIZE else cv2.INTER_LINEAR
    return cv2.resize(square, (IMAGE_SIZE, IMAGE_SIZE), interpolation=interpolation)


def _square(grey, left, top, side):
    """The side x side square at (left, top), image edges repeated where it leaves the image."""
    pad = max(0, -left, -top, left + side - grey.shape[1], top + side - grey.shape[0])
    if pad:
        grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        left, top = left + pad, top + pad
    return grey[top:top + side, left:left + side]


def _turned_square(grey, centre, side, angle):
    """The side x side square about `centre`, turned by `angle` degrees (at full resolution)."""
    pixel_centre = (centre[0] - 0.5, centre[1] - 0.5)  # pixel i spans i - 0.5 .. i + 0.5
    turn = cv2.getRotationMatrix2D(pixel_centre, angle, 1.0)  # (2, 3): image -> turned image
    turn[:, 2] += ((side - 1) / 2 - pixel_centre[0], (side - 1) / 2 - pixel_centre[1])  # lands mid-square
    return cv2.warpAffine(grey, turn, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def find_faces(image, detector, align=True):
    """The faces `detector` finds in a BGR or grey image, each with its 48x48 crop; with `align`,
    faces with landmarks are turned so that their eyes are level."""
    grey = to_grey(image)
    return [Face(detection.box, cut_face(grey, detection, detector, align), score=detection.score)
            for detection in detector.detect(image)]


def cut_face(grey, detection, detector, align=True):
    """The 48x48 crop of one detection, framed by its detector's margin and offset; with `align`
    and landmarks, turned so that the eyes are level."""
    angle = eye_angle(detection.eyes) if align and detection.eyes else 0.0
    return crop_face(grey, detection.box, detector.margin, detector.offset, angle)


def classify_faces(image, classifier=None, detector=DEFAULT_DETECTOR, tta=False, align=True,
                   min_face=DEFAULT_MIN_FACE):
    """The faces in `image` (a path, or a BGR or grey array as OpenCV gives) with their class
    probabilities. `classifier`: a model path, a model list path, a Keras model, a
    `prediction.Classifier`, the name of a shipped model ('pretrained', 'pretrained-vgg'), or None
    for the default shipped model. `detector`: a name in `config.DETECTORS` or a detector object."""
    if isinstance(image, (str, os.PathLike)):
        image = read_image(os.fspath(image))
    if isinstance(detector, str):
        detector = make_detector(detector, min_face)
    found = find_faces(image, detector, align)
    classify(as_classifier(classifier), found, tta)
    return found


def as_classifier(classifier=None):
    """A `prediction.Classifier` from a model path, a model list path, a Keras model, a Classifier,
    the name of a shipped model, or None (the default shipped model)."""
    from common import files, prediction  # TensorFlow loads only when something is classified

    if classifier is None:
        classifier = files.DEFAULT_SHIPPED_MODEL
    if isinstance(classifier, (str, os.PathLike)):
        return prediction.load_classifier(files.model_path_or_shipped(os.fspath(classifier)))
    if isinstance(classifier, prediction.Classifier):
        return classifier
    return prediction.Classifier([prediction.ModelPredictor(classifier)], [1.0], "model")


def classify(classifier, found, tta=False):
    """Gives each face of `found` its class probabilities, in one call of the classifier."""
    if found:
        probabilities = classifier.probabilities(np.stack([face.crop for face in found]), tta=tta)
        for face, face_probabilities in zip(found, probabilities):
            face.probabilities, face.class_names = face_probabilities, classifier.class_names


def annotate(image, found, texts=None, blur=False):
    """A BGR copy of `image` with each face's box and text drawn on it (by default its emotion and
    probability); `blur`: each face blurred under its box, so the copy can be shared."""
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    if texts is None:
        texts = [f"{face.emotion} {face.probabilities[face.label]:.2f}" for face in found]
    if blur:
        for face in found:
            blur_box(canvas, face.box)
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    for face, text in zip(found, texts):
        x, y, width, height = face.box
        cv2.rectangle(canvas, (x, y), (x + width, y + height), (0, 200, 0), thickness)
        scale = max(0.4, width / 200)
        (text_width, text_height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale,
                                                              thickness)
        top = y - text_height - baseline if y - text_height - baseline >= 0 else y + height
        left = max(0, min(x, canvas.shape[1] - text_width))  # the label stays inside the photo
        cv2.rectangle(canvas, (left, top), (left + text_width, top + text_height + baseline), (0, 200, 0),
                      cv2.FILLED)
        cv2.putText(canvas, text, (left, top + text_height), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas


def blur_box(canvas, box):
    """Blurs the part of `canvas` under `box` (in place) beyond recognition: a mosaic of 6x6 blocks,
    smoothed."""
    x, y, width, height = box
    left, top = max(0, x), max(0, y)
    right, bottom = min(canvas.shape[1], x + width), min(canvas.shape[0], y + height)
    if right - left < 2 or bottom - top < 2:
        return
    region = canvas[top:bottom, left:right]
    mosaic = cv2.resize(cv2.resize(region, (6, 6), interpolation=cv2.INTER_AREA), (right - left, bottom - top),
                        interpolation=cv2.INTER_LINEAR)
    canvas[top:bottom, left:right] = cv2.GaussianBlur(mosaic, (0, 0), max(1.0, (right - left) / 12))
