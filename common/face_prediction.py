"""The run behind `predict.py`: every face of every image and video frame, classified in batches,
written as one `predictions.csv` row each, with annotated copies of the images (and, when asked,
of the videos) and each video's emotions over time.
"""

import dataclasses
import os
import sys

import cv2
import numpy as np
import pandas as pd

from common import faces, files
from common.errors import UsageError

PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def prediction_columns(class_names):
    """The columns of predictions.csv: one probability column per class of the model, named by it."""
    return ("source", "frame", "face", "x", "y", "width", "height", "label", "emotion", *class_names,
            "detector_score", "annotated")


@dataclasses.dataclass
class RunSummary:
    images: int = 0
    videos: int = 0
    frames: int = 0
    faces: int = 0
    without_face: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)  # found in a folder, could not be read
    written: list = dataclasses.field(default_factory=list)  # predictions.csv, then the annotated copies
    timelines: list = dataclasses.field(default_factory=list)  # each video's emotions over time
    video_emotions: list = dataclasses.field(default_factory=list)  # (path, [(emotion, frames)], frames)


class BatchedClassification:
    """Collects the faces of many images and frames, classifies them in batches, and hands each
    image or frame back with its classified faces, in the order they came (`on_classified(item,
    faces)`). A batch closes at `batch_size` faces or when the images held pass `max_bytes`."""

    def __init__(self, classifier, on_classified, batch_size=256, tta=False, max_bytes=256 << 20):
        self.classifier, self.on_classified = classifier, on_classified
        self.batch_size, self.tta, self.max_bytes = batch_size, tta, max_bytes
        self.pending, self.face_count, self.held_bytes = [], 0, 0

    def add(self, item, found, image=None):
        self.pending.append((item, found))
        self.face_count += len(found)
        self.held_bytes += 0 if image is None else image.nbytes
        if self.face_count >= self.batch_size or self.held_bytes >= self.max_bytes:
            self.flush()

    def flush(self):
        faces.classify(self.classifier, [face for _, found in self.pending for face in found], self.tta)
        pending, self.pending, self.face_count, self.held_bytes = self.pending, [], 0, 0
        for item, found in pending:
            self.on_classified(item, found)


class FacePredictionRun:
    """Reads sources one after another; faces are classified in batches across them."""

    def __init__(self, classifier, detector, out_dir, tta=False, every=1, annotate_images=True,
                 annotate_videos=False, batch_size=256, align=True):
        self.detector, self.out_dir, self.every, self.align = detector, out_dir, every, align
        self.annotate_images, self.annotate_videos = annotate_images, annotate_videos
        self.batches = BatchedClassification(classifier, self._on_classified, batch_size, tta)
        self.rows, self.summary = [], RunSummary()
        self.faces_by_source = {}
        self.timelines = {}  # video path -> [(frame number, its largest face's probabilities)]

    def add(self, source):
        """Reads one image or video and queues its faces. A file the user named must be readable
        (a UsageError otherwise); one found in a folder that cannot be read is skipped with a
        warning on stderr."""
        try:
            self._read(source)
        except UsageError as error:
            if source.named:
                raise
            self.faces_by_source.pop(source.path, None)
            self.summary.skipped.append(source.path)
            print(f"warning: {error}; skipped", file=sys.stderr)

    def _read(self, source):
        self.faces_by_source[source.path] = 0
        if source.kind == "image":
            image = faces.read_image(source.path)
            self.summary.images += 1
            kept = image if self.annotate_images else None  # held until its faces are classified
            self.batches.add((source, 0, kept, None), faces.find_faces(image, self.detector, self.align), kept)
        else:
            self._add_video(source)

    def _add_video(self, source):
        if not self.annotate_videos:
            self._queue_frames(source, writer=None)
            self.summary.videos += 1
            return
        out_path = files.free_path(self._output_path(source, "_faces.mp4"))
        try:
            with files.atomic_output(out_path) as temporary_path:
                writer = _VideoWriter(temporary_path, faces.video_rate(source.path) / self.every, out_path)
                try:
                    self._queue_frames(source, writer)
                    self.batches.flush()  # every frame of this video is written before the file closes
                finally:
                    writer.release()
                if writer.frames < 2:
                    raise _TooShortForAVideo
        except _TooShortForAVideo:
            print(f"note: {source.path}: {writer.frames} frame read (--every {self.every}), so no annotated "
                  f"video was written", file=sys.stderr)
        else:
            self.summary.written.append(out_path)
        self.summary.videos += 1
    def _queue_frames(self, source, writer):
        for frame_number, frame in faces.video_frames(source.path, self.every):
            self.summary.frames += 1
            kept = frame if writer else None
            self.batches.add((source, frame_number, kept, writer),
                             faces.find_faces(frame, self.detector, self.align), kept)

    def _on_classified(self, item, found):
        source, frame_number, image, writer = item
        self.summary.faces += len(found)
        self.faces_by_source[source.path] += len(found)
        annotated = writer.final_path if writer is not None else None
        if writer is not None:
            writer.write(faces.annotate(image, found))
        elif image is not None and found:
            annotated = files.free_path(self._output_path(source, "_faces.png"))
            _, encoded = cv2.imencode(".png", faces.annotate(image, found), PNG_FAST)
            with files.atomic_output(annotated) as temporary_path, open(temporary_path, "wb") as handle:
                handle.write(encoded.tobytes())  # written by Python: OpenCV's paths must be UTF-8
            self.summary.written.append(annotated)
        if source.kind == "video" and found:
            largest = max(found, key=lambda face: face.box[2] * face.box[3])
            self.timelines.setdefault(source.path, []).append((frame_number, largest.probabilities))
        for index, face in enumerate(found):
            x, y, width, height = face.box
            self.rows.append([files.printable_path(source.path), frame_number, index, x, y, width, height,
                              face.label, face.emotion, *face.probabilities.tolist(), face.score,
                              annotated and files.printable_path(annotated)])

    def _output_path(self, source, suffix):
        stem = os.path.splitext(os.path.basename(source.path))[0]
        return os.path.join(self.out_dir, stem + suffix)

    def finish(self):
        """Classifies what is queued, writes `predictions.csv` (and, unless annotation is off, each
        video's emotions over time) and returns the run's summary."""
        self.batches.flush()
        self.summary.without_face = [path for path, count in self.faces_by_source.items() if not count]
        class_names = self.batches.classifier.class_names
        table = pd.DataFrame(self.rows, columns=prediction_columns(class_names))
        csv_path = files.free_path(os.path.join(self.out_dir, "predictions.csv"))
        with files.atomic_output(csv_path) as temporary_path:
            table.to_csv(temporary_path, index=False, float_format="%.4f")
        self.summary.written.insert(0, csv_path)
        for video_path, points in self.timelines.items():
            self.summary.video_emotions.append((video_path, emotion_shares(points, class_names), len(points)))
        if self.annotate_images:
            for video_path, points in self.timelines.items():
                if len(points) >= 2:  # a line needs two frames with a face
                    self.summary.timelines.append(self._plot_timeline(video_path, points, class_names))
        return self.summary

    def _plot_timeline(self, video_path, points, class_names):
        """`<name>_emotions.png`: the probabilities of the largest face of each frame read, over time."""
        from common import plots  # matplotlib loads only for a video with faces

        seconds, probabilities = emotion_timeline(points, self.every, faces.video_rate(video_path))
        stem = os.path.splitext(os.path.basename(video_path))[0]
        title = (f"{files.printable_path(os.path.basename(video_path))}: the largest face in each of "
                 f"{len(points)} frames read with a face (--every {self.every})")
        return plots.emotion_timeline(seconds, probabilities, class_names,
                                      os.path.join(self.out_dir, stem + "_emotions.png"), title)


def emotion_shares(points, class_names):
    """[(emotion, frames)] of the frames in `points` ((frame number, probabilities) each) by the
    emotion of their face, most frequent first, emotions of no frame left out."""
    counts = np.bincount([probabilities.argmax() for _, probabilities in points], minlength=len(class_names))
    return [(class_names[label], int(counts[label])) for label in np.argsort(-counts, kind="stable") if counts[label]]


def emotion_timeline(points, every, rate):
    """(seconds, probabilities): the time of each frame read from the first with a face to the last,
    and the probabilities of its face there ((frames, classes); NaN for a frame read without a face),
    from `points`, the (frame number, probabilities) of the frames with a face in order, read every
    `every`-th frame of a video of `rate` frames per second."""
    first, last = points[0][0], points[-1][0]
    probabilities = np.full(((last - first) // every + 1, len(points[0][1])), np.nan)
    for frame_number, face_probabilities in points:
        probabilities[(frame_number - first) // every] = face_probabilities
    seconds = (first + every * np.arange(len(probabilities))) / rate
    return seconds, probabilities


class _TooShortForAVideo(Exception):
    """Fewer than two frames were read: an annotated video is not written."""


class _VideoWriter:
    """cv2.VideoWriter opened at the first frame, when the frame size is known (MPEG-4 part 2);
    `final_path` is where the finished video will be."""

    def __init__(self, path, rate, final_path):
        self.path, self.rate, self.writer, self.final_path = path, max(1.0, rate), None, final_path
        self.frames = 0

    def write(self, frame):
        if self.writer is None:
            height, width = frame.shape[:2]
            self.writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.rate,
                                          (width, height))
            if not self.writer.isOpened():
                raise UsageError(f"{self.final_path}: OpenCV cannot write an MPEG-4 video of "
                                 f"{width}x{height} at {self.rate:.2f} frames/s here")
        self.writer.write(frame)
        self.frames += 1

    def release(self):
        if self.writer is not None:
            self.writer.release()


def describe(summary, limit=10):
    """The run's closing lines: what was read and found, and the inputs with no face."""
    lines = [f"read {summary.images} images and {summary.frames} frames of {summary.videos} videos; "
             f"found {summary.faces} faces"]
    for path, ranked, frames in summary.video_emotions:
        shares = ", ".join(f"{emotion} {count / frames:.0%}" for emotion, count in ranked)
        lines.append(f"{files.printable_path(path)}: the largest face of {frames} frames read with a face: {shares}")
    for what, paths in (("no face in", summary.without_face), ("skipped, unreadable:", summary.skipped)):
        if paths:
            shown = ", ".join(files.printable_path(path) for path in paths[:limit])
            more = len(paths) - limit
            lines.append(f"{what} {len(paths)} inputs: {shown}" + (f" and {more} more" if more > 0 else ""))
    return lines


def progress(sources):
    """The sources, with Keras's progress bar on a terminal when there are several."""
    if len(sources) < 2 or not sys.stdout.isatty():
        yield from sources
        return
    import keras

    bar = keras.utils.Progbar(len(sources), unit_name="input")
    for index, source in enumerate(sources, start=1):
        yield source
        bar.update(index)
