"""The face pipeline over HTTP: `serve.py`'s FastAPI application.

    POST /predict   an image (multipart field `image`, or the raw bytes with an image/* type)
                    -> {"model", "detector", "width", "height", "faces": [{"box": {x, y, width,
                    height}, "detector_score", "emotion", "label", "probabilities": {class: p}}]}
                    ?session=ID&time=SECONDS (a camera's frames, one after another): each face
                    also has its "person" id, "smoothed" probabilities and "smoothed_emotion"
    GET  /health    {"status": "ok", "model", "detector", "classes": [the model's class names]}
    GET  /          the page: photos and the camera, labelled in the browser
    GET  /docs      the OpenAPI page

Each request's image is checked (size in bytes before it is read whole, pixels from its header
before it is decoded), its faces found and cut out by `faces.find_faces` exactly as `predict.py`
does, and classified together with the faces of the requests that arrive within a few milliseconds
of it (`FaceBatcher`): one model call for many requests. Nothing is written to disk. Bad input is a
4xx answer with {"error": "one line"}; the server goes on.
"""

import asyncio
import collections
import concurrent.futures
import email.parser
import email.policy
import io
import os
import time as clock

import numpy as np
from PIL import Image

from common import faces, tracking, video
from common.config import DEFAULT_SMOOTHING
from common.errors import UsageError

PAGE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page", "index.html")
MAX_PIXELS = 50_000_000  # larger images are refused from their header (decompression bombs)


class BadUpload(Exception):
    """An upload the API refuses: `status` (4xx) and a one-line message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class FaceBatcher:
    """Classifies the faces of concurrent requests together: faces wait at most `window` seconds
    (or until `batch_cap` faces are waiting) and go through the classifier in one call."""

    def __init__(self, classifier, window=0.005, batch_cap=256):
        self.classifier, self.window, self.batch_cap = classifier, window, batch_cap
        self.waiting = []  # (crops, tta, future)
        self.wake = None
        self.model_calls = 0
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # one model call at a time

    async def probabilities(self, crops, tta):
        """Class probabilities (faces, classes) of `crops` (faces, 48, 48) uint8."""
        if not len(crops):
            return np.zeros((0, len(self.classifier.class_names)), np.float32)
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((crops, tta, future))
        if self.wake is None:
            self.wake = asyncio.get_running_loop().create_task(self._classify_soon())
        return await future

    async def _classify_soon(self):
        waited = 0.0
        while waited < self.window and sum(len(item[0]) for item in self.waiting) < self.batch_cap:
            await asyncio.sleep(self.window / 5)
            waited += self.window / 5
        taken, self.waiting, self.wake = self.waiting, [], None
        for tta in (False, True):  # the ten views of --tta are another call
            group = [item for item in taken if item[1] == tta]
            if group:
                await self._classify(group, tta)

    async def _classify(self, group, tta):
        stacked = np.concatenate([crops for crops, _, _ in group])
        self.model_calls += 1
        try:
            probabilities = await asyncio.get_running_loop().run_in_executor(
                self.executor, lambda: self.classifier.probabilities(stacked, tta=tta))
        except Exception as error:  # noqa: BLE001  (handed to every waiting request)
            for _, _, future in group:
                future.set_exception(error)
            return
        start = 0
        for crops, _, future in group:
            future.set_result(probabilities[start:start + len(crops)])
            start += len(crops)


class CameraSessions:
    """Each camera session's tracker and smoother, so that a page sending a session's frames one
    after another gets each face's person id and probabilities smoothed over the past `smoothing`
    seconds, as `predict.py camera:N` gives them. Sessions unused for `idle` seconds are dropped,
    and the oldest beyond `limit`."""

    def __init__(self, smoothing=DEFAULT_SMOOTHING, idle=120.0, limit=256):
        self.smoothing, self.idle, self.limit = smoothing, idle, limit
        self.sessions = collections.OrderedDict()  # id -> [tracker, smoother, frames, last used]

    def follow(self, session, seconds, found, class_names):
        """Person ids and smoothed probabilities of the classified faces `found` in the session's
        frame at `seconds` (None: the server's clock); [(person, smoothed)] in their order."""
        now = clock.monotonic()
        for stale in [key for key, value in self.sessions.items() if now - value[3] > self.idle]:
            del self.sessions[stale]
        if session not in self.sessions:
            while len(self.sessions) >= self.limit:
                self.sessions.popitem(last=False)
            self.sessions[session] = [tracking.make_tracker(), video.Smoother(self.smoothing, causal=True), 0, now, now]
        state = self.sessions[session]
        self.sessions.move_to_end(session)
        tracker, smoother, number, _, started = state
        seconds = now - started if seconds is None else seconds
        state[2], state[3] = number + 1, now
        persons = tracker.update([face.box for face in found], seconds, [face.crop for face in found])
        people = [video.PersonInFrame(person, face.box, face.score, face.probabilities, face.probabilities,
                                      tuple(class_names)) for person, face in zip(persons, found)]
        (smoothed,) = smoother.add(video.FramePeople(number, seconds, None, people))
        return [(person.person, person.smoothed) for person in smoothed.people]


def decode_upload(data, max_pixels=MAX_PIXELS):
    """A BGR image from uploaded bytes, its size checked from the header before decoding."""
    if not data:
        raise BadUpload(400, "the upload is empty; expected an image file (JPEG, PNG, WebP, GIF, BMP, TIFF)")
    try:
        with Image.open(io.BytesIO(data)) as header:
            width, height = header.size
            image_format = header.format
    except Image.DecompressionBombError:
        raise BadUpload(413, f"the image has too many pixels; at most {max_pixels:,} are accepted") from None
    except Exception:  # noqa: BLE001  (Pillow raises several kinds for what is not an image)
        raise BadUpload(415, f"the upload ({len(data):,} bytes) is not an image; expected JPEG, PNG, WebP, GIF, "
                             f"BMP or TIFF") from None
    if width * height > max_pixels:
        raise BadUpload(413, f"the image is {width}x{height} ({width * height:,} pixels); at most "
                             f"{max_pixels:,} are accepted")
    try:
        return faces.decode_image(data, f"the {width}x{height} {image_format} image")
    except UsageError as error:
        raise BadUpload(400, str(error)) from None


def image_from_form(body, content_type):
    """The bytes of the `image` field of a multipart/form-data body (parsed in memory)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise BadUpload(400, "the multipart form could not be read; send the image as the field 'image'")
    images = [part for part in message.iter_parts()
              if part.get_param("name", header="content-disposition") == "image"]
    if not images:
        raise BadUpload(400, "the form has no field 'image'; send the image as the multipart field 'image'")
    if len(images) > 1:
        raise BadUpload(400, f"the form has {len(images)} fields 'image'; send one image a request")
    return images[0].get_payload(decode=True) or b""


def face_answers(found, followed=None):
    """The JSON faces of an answer (each classified), in predict.py's order (largest first); with
    `followed` ([(person, smoothed probabilities)] of a camera session), each face also has its
    `person` and `smoothed` probabilities, and `smoothed_emotion`."""
    answers = []
    for index, face in enumerate(found):
        answer = {"box": dict(zip(("x", "y", "width", "height"), (int(value) for value in face.box))),
                  "detector_score": None if face.score is None else round(float(face.score), 6),
                  "emotion": face.emotion, "label": face.label, "probabilities": _by_class(face, face.probabilities)}
        if followed is not None:
            person, smoothed = followed[index]
            answer.update(person=int(person), smoothed=_by_class(face, smoothed),
                          smoothed_emotion=face.class_names[int(np.argmax(smoothed))])
        answers.append(answer)
    return answers


def _by_class(face, probabilities):
    return {name: round(float(value), 6) for name, value in zip(face.class_names, probabilities)}


def create_app(classifier, detector, model_name, detector_name, max_upload_bytes=10 << 20,
               max_pixels=MAX_PIXELS, align=True, cors_origin=None, detector_threads=2, default_tta=False,
               batch_cap=256):
    """The FastAPI application serving `classifier` behind `detector` (both loaded already);
    `default_tta`: 10-view averaging unless a request says ?tta=false; `batch_cap`: the most faces
    of concurrent requests classified in one call."""
    import fastapi
    from fastapi.responses import HTMLResponse, JSONResponse

    app = fastapi.FastAPI(title="FER toolkit", description="Facial expressions of the faces in a photo.",
                          version="1")
    batcher = FaceBatcher(classifier, batch_cap=batch_cap)
    sessions = CameraSessions()
    detection_threads = concurrent.futures.ThreadPoolExecutor(max_workers=detector_threads)
    app.state.batcher = batcher
    if cors_origin:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=[cors_origin], allow_methods=["GET", "POST"])

    @app.exception_handler(BadUpload)
    async def refuse(request, error):
        return JSONResponse({"error": str(error)}, status_code=error.status)

    @app.exception_handler(fastapi.exceptions.RequestValidationError)
    async def refuse_parameter(request, error):  # e.g. ?tta=maybe: the same {"error": ...} as the rest
        problems = "; ".join(f"{'.'.join(str(part) for part in problem['loc'][1:])} {problem.get('input')!r}: "
                             f"{problem['msg']}" for problem in error.errors())
        return JSONResponse({"error": problems}, status_code=422)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_name, "detector": detector_name,
                "classes": list(classifier.class_names)}

    @app.get("/", response_class=HTMLResponse)
    async def page():
        with open(PAGE_PATH, encoding="utf-8") as handle:
            return handle.read()

    @app.post("/predict", responses={400: {}, 413: {}, 415: {}})
    async def predict(request: fastapi.Request, tta: bool | None = None,
                      session: str | None = fastapi.Query(None, max_length=64),
                      time: float | None = fastapi.Query(None, ge=0, le=1e7)):
        """Faces, boxes and expressions of the image sent as the multipart field `image` or as the
        raw body with an image/* content type. A camera's frames sent with the same `session` (and
        their `time` in seconds) get each face's `person` id and `smoothed` probabilities."""
        body = await _bounded_body(request, max_upload_bytes)
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            body = image_from_form(body, content_type)
        elif not (content_type.startswith("image/") or content_type == "application/octet-stream"):
            raise BadUpload(415, f"content type {content_type or 'none'!r}; send multipart/form-data with "
                                 f"the field 'image', or the image bytes as image/*")
        image = decode_upload(body, max_pixels)
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(detection_threads, faces.find_faces, image, detector, align)
        probabilities = await batcher.probabilities(np.array([face.crop for face in found]),
                                                    default_tta if tta is None else tta)
        for face, face_probabilities in zip(found, probabilities):
            face.probabilities, face.class_names = face_probabilities, classifier.class_names
        followed = None if session is None else sessions.follow(session, time, found, classifier.class_names)
        return {"model": model_name, "detector": detector_name, "width": int(image.shape[1]),
                "height": int(image.shape[0]), "faces": face_answers(found, followed)}

    return app


async def _bounded_body(request, max_bytes):
    """The request body, refused (413) once it passes `max_bytes`, before it is read whole."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BadUpload(413, f"the upload is {int(declared):,} bytes; at most {max_bytes:,} are accepted "
                             f"(--max-upload-mb)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BadUpload(413, f"the upload passed {max_bytes:,} bytes; at most that is accepted "
                                 f"(--max-upload-mb)")
        chunks.append(chunk)
    return b"".join(chunks)
