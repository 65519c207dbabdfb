"""The run behind `predict.py`: every face of every image and video frame classified, written as one
`predictions.csv` row each as it comes, with annotated copies of the images (and, when asked, of
the videos), and for each video its people: `<name>_people.csv` and `<name>_emotions.png`.

Videos go through `video.PeopleFollower`: each face gets its person's id, its frame's time, and
probabilities smoothed over the person's recent and coming frames. Nothing per frame is kept once
it is written, so a long video needs no more memory than a short one.
"""

import contextlib
import csv
import dataclasses
import os
import sys
import time as clock

import cv2
import numpy as np

from common import faces, files, tracking, video
from common.errors import UsageError

PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def prediction_columns(class_names):
    """The columns of predictions.csv: one probability column per class of the model, named by it;
    `time` (seconds from the video's start) and `person` are empty for still images."""
    return ("source", "frame", "face", "x", "y", "width", "height", "label", "emotion", *class_names,
            "detector_score", "annotated", "time", "person")


@dataclasses.dataclass
class VideoPeople:
    """What a run says of one video: its path, its people's table, and how many frames it analysed."""

    path: str
    people: object  # a DataFrame, `video.PeopleTally.table()`
    frames: int


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
    people_files: list = dataclasses.field(default_factory=list)  # each video's <name>_people.csv
    videos_people: list = dataclasses.field(default_factory=list)  # VideoPeople of each video


class RowWriter:
    """predictions.csv, written row by row: floats to 4 decimals (times to 3), None as empty. A
    file run writes a hidden temporary file that takes the final name when the run ends well;
    a live run (`live`) writes the final file directly and flushes every frame, so an
    interrupted session keeps its rows."""

    def __init__(self, path, class_names, live=False):
        self.path, self.live = path, live
        self._stack = contextlib.ExitStack()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        target = path if live else self._stack.enter_context(files.atomic_output(path))
        self.handle = self._stack.enter_context(open(target, "w", newline="", encoding="utf-8"))
        self.writer = csv.writer(self.handle)
        self.writer.writerow(prediction_columns(class_names))

    def write(self, source, frame, index, box, probabilities, class_names, score, annotated, time=None, person=None):
        label = int(np.argmax(probabilities))
        self.writer.writerow([files.printable_path(source), frame, index, *box, label, class_names[label],
                              *(f"{value:.4f}" for value in probabilities), _number(score, 4),
                              annotated and files.printable_path(annotated), _number(time, 3),
                              "" if person is None else person])

    def frame_done(self):
        if self.live:
            self.handle.flush()

    def close(self, keep=True):
        """Ends the file: kept under its name when `keep`, else removed (a file run's failure)."""
        if keep:
            self._stack.close()
        else:
            self._stack.__exit__(RuntimeError, RuntimeError("abandoned"), None)


def _number(value, decimals):
    return "" if value is None else f"{value:.{decimals}f}"


class BatchedClassification:
    """Collects the faces of many images, classifies them in batches, and hands each image back with
    its classified faces, in the order they came (`on_classified(item, faces)`). A batch closes at
    `batch_size` faces or when the images held pass `max_bytes`."""

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
    """Reads sources one after another: images' faces are classified in batches across images,
    each video is followed frame by frame (`video.PeopleFollower`). `blur`: annotated copies show
    each face blurred under its box and label."""

    def __init__(self, classifier, detector, out_dir, tta=False, every=1, annotate_images=True,
                 annotate_videos=False, batch_size=256, align=True, video_settings=None, blur=False,
                 show_progress=False):
        self.classifier, self.detector, self.out_dir, self.align = classifier, detector, out_dir, align
        self.tta, self.batch_size, self.blur, self.show_progress = tta, batch_size, blur, show_progress
        self.settings = video_settings or video.VideoSettings(every=every)
        self.annotate_images, self.annotate_videos = annotate_images, annotate_videos
        self.batches = BatchedClassification(classifier, self._on_classified, batch_size, tta)
        self.summary = RunSummary()
        self.faces_by_source = {}
        self.rows = None

    def start(self, live=False):
        """Opens predictions.csv (a free name in the output folder); `live`: written as it goes."""
        self.csv_path = files.free_path(os.path.join(self.out_dir, "predictions.csv"))
        self.rows = RowWriter(self.csv_path, self.classifier.class_names, live)

    def add(self, source):
        """Reads one image, video or camera and writes its faces' rows. A file the user named must be
        readable (a UsageError otherwise); one found in a folder that cannot be read is skipped
        with a warning on stderr."""
        if self.rows is None:
            self.start()
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
            self.batches.add((source, kept), faces.find_faces(image, self.detector, self.align), kept)
        else:
            self.batches.flush()  # rows stay in the order of the inputs
            self._follow_video(source)
            self.summary.videos += 1

    def _on_classified(self, item, found):
        source, image = item
        self.summary.faces += len(found)
        self.faces_by_source[source.path] += len(found)
        annotated = None
        if image is not None and found:
            annotated = files.free_path(self._output_path(source, "_faces.png"))
            texts = [f"{face.emotion} {face.probabilities[face.label]:.2f}" for face in found]
            _, encoded = cv2.imencode(".png", faces.annotate(image, found, texts, self.blur), PNG_FAST)
            with files.atomic_output(annotated) as temporary_path, open(temporary_path, "wb") as handle:
                handle.write(encoded.tobytes())  # written by Python: OpenCV's paths must be UTF-8
            self.summary.written.append(annotated)
        for index, face in enumerate(found):
            self.rows.write(source.path, 0, index, face.box, face.probabilities, face.class_names, face.score,
                            annotated)

    def _follow_video(self, source):
        settings = self.settings
        camera = video.camera_index(source.path) if source.kind == "camera" else None
        reader = video.VideoReader(source.path if camera is None else camera, settings.every, settings.start,
                                   settings.end)
        follower = video.PeopleFollower(self.classifier, self.detector, tracking.make_tracker(settings.tracker),
                                        settings.smoothing, causal=reader.live, detect_every=settings.detect_every,
                                        tta=self.tta, align=self.align, batch_faces=self.batch_size,
                                        batch_frames=1 if reader.live else 16)
        tally = video.PeopleTally(self.classifier.class_names)
        writer = None
        if self.annotate_videos:
            out_path = files.free_path(self._output_path(source, "_faces.mp4"))
            writer = _VideoWriter(files.temporary_sibling(out_path), reader.rate / settings.every, out_path)
        progress = ProgressLine(reader.name, reader.expected_frames()) if self.show_progress else None
        try:
            for frame in _until_interrupted(follower.follow(reader.frames()), reader.live):
                self._write_frame(source, frame, writer, tally)
                if progress:
                    progress.update()
        except BaseException:
            if writer is not None:
                writer.abandon()
            raise
        finally:
            if progress:
                progress.close()
        for note in reader.notes:
            print(f"note: {note}", file=sys.stderr)
        self._finish_video(source, tally, writer)

    def _write_frame(self, source, frame, writer, tally):
        self.summary.frames += 1
        self.summary.faces += len(frame.people)
        self.faces_by_source[source.path] += len(frame.people)
        tally.add(frame)
        if writer is not None:
            texts = [f"{person.person}: {person.emotion} {person.smoothed[person.label]:.2f}" for person in frame.people]
            writer.write(faces.annotate(frame.image, frame.people, texts, self.blur))
        annotated = writer.final_path if writer is not None else None
        for index, person in enumerate(frame.people):
            self.rows.write(source.path, frame.number, index, person.box, person.smoothed, person.class_names,
                            person.score, annotated, frame.time, person.person)
        self.rows.frame_done()

    def _finish_video(self, source, tally, writer):
        if writer is not None:
            if writer.frames >= 2:
                writer.finish()
                self.summary.written.append(writer.final_path)
            else:
                writer.abandon()
                print(f"note: {source.path}: {writer.frames} frame read (--every {self.settings.every}), so no "
                      f"annotated video was written", file=sys.stderr)
        if not tally.people:
            return
        table = tally.table()
        self.summary.videos_people.append(VideoPeople(source.path, table, tally.frames))
        people_path = files.free_path(self._output_path(source, "_people.csv"))
        with files.atomic_output(people_path) as temporary_path:
            table.to_csv(temporary_path, index=False)
        self.summary.people_files.append(people_path)
        if self.annotate_images and sum(person.frames for person in tally.people.values()) >= 2:
            self.summary.timelines.append(self._plot_people(source, tally))

    def _plot_people(self, source, tally):
        """`<name>_emotions.png`: each person's smoothed probabilities over the video's time."""
        from common import plots  # matplotlib loads only for a video with faces

        ranked = sorted(tally.people.values(), key=lambda person: -person.frames)[:12]
        shown = []
        for person in sorted(ranked, key=lambda person: person.person):
            seconds, probabilities = person.timeline.points()
            shown.append((person.person, seconds, probabilities, person.dominant(tally.class_names)))
        smoothing = f"smoothed over {self.settings.smoothing:g} s" if self.settings.smoothing else "not smoothed"
        title = (f"{files.printable_path(os.path.basename(source.path))}: {len(tally.people)} people, "
                 f"{tally.frames} frames read (--every {self.settings.every}), {smoothing}")
        return plots.people_timelines(shown, tally.class_names, self._output_path(source, "_emotions.png"), title)

    def _output_path(self, source, suffix):
        stem = os.path.splitext(os.path.basename(source.path))[0].replace(":", "")
        return os.path.join(self.out_dir, stem + suffix)

    def finish(self):
        """Classifies what is queued, closes `predictions.csv` and returns the run's summary."""
        if self.rows is None:
            self.start()
        self.batches.flush()
        self.rows.close()
        self.summary.without_face = [path for path, count in self.faces_by_source.items() if not count]
        self.summary.written.insert(0, self.csv_path)
        return self.summary

    def abandon(self):
        """Ends a run that failed: a file run's predictions.csv is not written; a live run's keeps its rows."""
        if self.rows is not None:
            self.rows.close(keep=self.rows.live)


def _until_interrupted(frames, live):
    """The frames; for a live source, Ctrl-C (or SIGTERM) ends the stream instead of the run."""
    try:
        yield from frames
    except KeyboardInterrupt:
        if not live:
            raise
        print("stopped: the rows so far are kept", file=sys.stderr)


class _VideoWriter:
    """cv2.VideoWriter opened at the first frame, when the frame size is known (MPEG-4 part 2), into
    a temporary file that `finish` moves to `final_path`."""

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

    def finish(self):
        self.writer.release()
        os.link(self.path, self.final_path)  # fails, rather than replaces, if the name was taken meanwhile
        os.unlink(self.path)

    def abandon(self):
        if self.writer is not None:
            self.writer.release()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class ProgressLine:
    """One line on stderr, rewritten at most twice a second: frames done (of the total when known),
    frames/s, time left."""

    def __init__(self, name, total):
        self.name, self.total, self.done = files.printable_path(name), total, 0
        self.started = self.shown = clock.monotonic()

    def update(self):
        self.done += 1
        now = clock.monotonic()
        if now - self.shown >= 0.5:
            self.shown = now
            print("\r" + self.text(now), end="", file=sys.stderr, flush=True)

    def text(self, now):
        rate = self.done / max(now - self.started, 1e-9)
        if self.total:
            left = max(0, self.total - self.done) / max(rate, 1e-9)
            return (f"{self.name}: {self.done}/{self.total} frames, {rate:.1f} frames/s, "
                    f"{int(left // 60)}:{int(left % 60):02d} left ")
        return f"{self.name}: {self.done} frames, {rate:.1f} frames/s "

    def close(self):
        if self.done:
            print("\r" + self.text(clock.monotonic()), file=sys.stderr)


def describe(summary, limit=10):
    """The run's closing lines: what was read and found, each video's people, and the inputs with no face."""
    lines = [f"read {summary.images} images and {summary.frames} frames of {summary.videos} videos; "
             f"found {summary.faces} faces"]
    for found in summary.videos_people:
        lines.append(f"{files.printable_path(found.path)}: {people_line(found.people, limit)}")
    for what, paths in (("no face in", summary.without_face), ("skipped, unreadable:", summary.skipped)):
        if paths:
            shown = ", ".join(files.printable_path(path) for path in paths[:limit])
            more = len(paths) - limit
            lines.append(f"{what} {len(paths)} inputs: {shown}" + (f" and {more} more" if more > 0 else ""))
    return lines


def people_line(table, limit=10):
    """'3 people: person 1 happy 62% of 12.4 s, ...' for a video's people table (the `limit`
    seen longest, in order of first appearance)."""
    shown = table.nlargest(limit, "frames_seen").sort_values("person")
    parts = []
    for _, row in shown.iterrows():
        share = row[f"share_{row['dominant_emotion']}"]
        parts.append(f"person {row['person']} {row['dominant_emotion']} {share:.0%} of {row['seconds_seen']:.1f} s")
    more = len(table) - len(shown)
    count = f"{len(table)} {'person' if len(table) == 1 else 'people'}"
    return f"{count}: " + ", ".join(parts) + (f" and {more} more" if more > 0 else "")


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

