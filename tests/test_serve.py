"""serve.py: the API gives predict.py's numbers, refuses bad uploads with a 4xx and lives on, and
classifies the faces of concurrent requests together; the page works in headless Chromium."""

import asyncio
import csv
import os
import shutil
import socket
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from common import data, faces, prediction, serving
from helpers import REPO, assert_refused, run_script

EXAMPLE_PHOTO = os.path.join(REPO, "examples", "astronaut.jpg")
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def classifier(trained_model):
    return prediction.load_classifier(str(trained_model))


@pytest.fixture(scope="module")
def detector():
    return faces.make_detector("mtcnn")


@pytest.fixture(scope="module")
def client(classifier, detector):
    from fastapi.testclient import TestClient

    app = serving.create_app(classifier, detector, "test-model", "mtcnn", max_upload_bytes=2 << 20)
    with TestClient(app) as test_client:
        yield test_client


def photo_bytes():
    with open(EXAMPLE_PHOTO, "rb") as handle:
        return handle.read()


def predict_py_rows(tmp_path, trained_model, *extra):
    result = run_script("predict.py", EXAMPLE_PHOTO, "--model", trained_model, "--out", tmp_path / "out",
                        "--no-annotate", *extra)
    assert result.exit_code == 0, result.stderr
    with open(tmp_path / "out" / "predictions.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("tta", [False, True])
def test_the_api_gives_predict_pys_faces_and_probabilities(client, tmp_path, trained_model, tta):
    expected = predict_py_rows(tmp_path, trained_model, *(["--tta"] if tta else []))
    answer = client.post(f"/predict?tta={str(tta).lower()}", files={"image": ("a.jpg", photo_bytes(), "image/jpeg")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["width"], body["height"], body["model"], body["detector"]) == (512, 512, "test-model", "mtcnn")
    assert len(body["faces"]) == len(expected) == 1
    face, row = body["faces"][0], expected[0]
    assert face["box"] == {name: int(row[name]) for name in ("x", "y", "width", "height")}
    assert face["emotion"] == row["emotion"] and face["label"] == int(row["label"])
    for name in data.FER2013_CLASSES:  # the CSV's 4 decimals, a value at a rounding edge either way
        assert abs(face["probabilities"][name] - float(row[name])) <= 0.00006, name
    assert abs(face["detector_score"] - float(row["detector_score"])) <= 0.00006


def test_raw_image_bytes_are_accepted_too(client):
    form = client.post("/predict", files={"image": ("a.jpg", photo_bytes(), "image/jpeg")}).json()
    raw = client.post("/predict", content=photo_bytes(), headers={"content-type": "image/jpeg"}).json()
    assert raw == form


def test_a_photo_with_data_after_its_jpeg_end_marker_is_read_as_it_is(client):
    """Phones append a motion-photo video or maker data after the JPEG's end-of-image marker."""
    plain = client.post("/predict", content=photo_bytes(), headers={"content-type": "image/jpeg"}).json()
    motion_photo = photo_bytes() + b"\0\0\0\x18ftypmp42" + bytes(range(256)) * 8
    appended = client.post("/predict", content=motion_photo, headers={"content-type": "image/jpeg"})
    assert appended.status_code == 200, appended.text
    assert appended.json() == plain and len(plain["faces"]) == 1


def png_header_claiming(width, height):
    """A PNG whose header claims width x height pixels, followed by one tiny compressed row."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("send, status, message", [
    (dict(content=b"", headers={"content-type": "image/jpeg"}), 400, "empty"),
    (dict(files={"image": ("notes.txt", b"plain words, not pixels", "text/plain")}), 415, "not an image"),
    (dict(files={"image": ("cut.jpg", photo_bytes()[:5000], "image/jpeg")}), 400, "cut short"),
    (dict(files={"photo": ("a.jpg", photo_bytes(), "image/jpeg")}), 400, "no field 'image'"),
    (dict(content=photo_bytes(), headers={"content-type": "text/plain"}), 415, "content type"),
    (dict(content=b"x" * (3 << 20), headers={"content-type": "image/jpeg"}), 413, "at most"),
    (dict(files={"image": ("bomb.png", png_header_claiming(20000, 20000), "image/png")}), 413, "pixels"),
    (dict(files=[("image", ("a.jpg", photo_bytes(), "image/jpeg"))] * 2), 400, "2 fields 'image'; send one"),
    (dict(files={"image": ("a.jpg", photo_bytes(), "image/jpeg")}, params={"tta": "maybe"}), 422,
     "tta 'maybe': Input should be a valid boolean"),
], ids=["empty", "not an image", "truncated", "missing field", "wrong type", "too large", "bomb", "two images",
        "tta not a boolean"])
def test_bad_uploads_get_a_4xx_with_one_line_and_the_server_lives_on(client, send, status, message):
    answer = client.post("/predict", **send)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert message in error and "\n" not in error
    assert client.post("/predict", files={"image": ("a.jpg", photo_bytes(), "image/jpeg")}).status_code == 200


def test_a_camera_session_gets_person_ids_and_probabilities_smoothed_over_its_past(client):
    photo = photo_bytes()
    moved = cv2.imencode(".jpg", cv2.copyMakeBorder(cv2.imread(EXAMPLE_PHOTO), 0, 0, 400, 0, cv2.BORDER_CONSTANT))[1]
    answers = []
    for number, image in enumerate([photo, photo, moved.tobytes()]):
        response = client.post(f"/predict?session=s1&time={number * 0.2}", files={"image": image})
        assert response.status_code == 200, response.text
        answers.append(response.json()["faces"])
    assert [faces[0]["person"] for faces in answers[:2]] == [1, 1]  # the same place: the same person
    assert answers[2][0]["person"] == 2  # the face jumped 400 pixels: someone new
    first, second = answers[0][0], answers[1][0]
    classes = list(first["probabilities"])
    expected = (np.array([first["probabilities"][name] for name in classes])
                + np.array([second["probabilities"][name] for name in classes])) / 2
    np.testing.assert_allclose([second["smoothed"][name] for name in classes], expected, atol=2e-6)
    assert second["smoothed_emotion"] == classes[int(np.argmax(expected))]
    other = client.post("/predict?session=s2&time=0", files={"image": photo}).json()["faces"][0]
    assert other["person"] == 1  # sessions are followed apart
    assert "person" not in client.post("/predict", files={"image": photo}).json()["faces"][0]


def test_health_and_the_page_and_the_openapi_page(client):
    assert client.get("/health").json() == {"status": "ok", "model": "test-model", "detector": "mtcnn",
                                            "classes": list(data.FER2013_CLASSES)}
    page = client.get("/")
    assert page.status_code == 200 and 'id="file-input"' in page.text
    assert not any(outside in page.text for outside in ('src="http', "href=\"http", "@import", "url(http"))
    assert client.get("/docs").status_code == 200


def test_concurrent_requests_share_model_calls(classifier):
    batcher = serving.FaceBatcher(classifier, window=0.02)
    crops = [np.random.default_rng(seed).integers(0, 256, (count, 48, 48), dtype=np.uint8)
             for seed, count in enumerate([1, 3, 2, 1, 4, 1])]

    async def all_at_once():
        return await asyncio.gather(*(batcher.probabilities(batch, False) for batch in crops))

    answers = asyncio.run(all_at_once())
    assert batcher.model_calls == 1
    for batch, answer in zip(crops, answers):
        np.testing.assert_allclose(answer, classifier.probabilities(batch), atol=1e-5)


def test_serve_refuses_a_taken_port_before_loading(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_refused(run_script("serve.py", "--port", port), f"--port {port}: cannot listen there")


def test_serve_refuses_a_port_number_out_of_range():
    assert_refused(run_script("serve.py", "--port", 65536), "expected a port number in 1..65535, got '65536'")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fake_camera_video(path, seconds=4, rate=10):
    """A Y4M video of the example photo for Chromium's fake camera."""
    frame = cv2.resize(cv2.imread(EXAMPLE_PHOTO), (640, 480))
    planes = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as handle:
        handle.write(f"YUV4MPEG2 W640 H480 F{rate}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(seconds * rate):
            handle.write(b"FRAME\n" + planes)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_the_page_labels_a_photo_and_the_camera_in_headless_chromium(tmp_path, trained_model):
    playwright_api = pytest.importorskip("playwright.sync_api")
    port = free_port()
    server = subprocess.Popen([sys.executable, os.path.join(REPO, "serve.py"), "--model", str(trained_model),
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "serving" in server.stdout.readline()
        import httpx2 as httpx

        expected = httpx.post(f"http://127.0.0.1:{port}/predict", files={"image": photo_bytes()},
                              timeout=60).json()["faces"][0]["emotion"]
        hostile = tmp_path / "<img src=x onerror=document.title='owned'>.jpg"
        shutil.copy(EXAMPLE_PHOTO, hostile)
        video = tmp_path / "camera.y4m"
        fake_camera_video(video)
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={video}"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.set_input_files("#file-input", [EXAMPLE_PHOTO, str(hostile)])
            page.wait_for_function("document.querySelectorAll('.face-title').length == 2", timeout=60000)
            titles = page.locator(".face-title").all_inner_texts()
            assert titles == [f"Face 1: {expected}"] * 2
            # shown as text, in the order given
            assert page.locator("h2").all_inner_texts() == [os.path.basename(EXAMPLE_PHOTO), hostile.name]
            assert page.title() != "owned" and page.locator("img").count() == 0
            assert page.locator("canvas[role=img]").first.get_attribute("aria-label") == (
                f"{os.path.basename(EXAMPLE_PHOTO)}: face 1 {expected}")
            page.click("#tab-camera")
            page.click("#camera-start")
            page.wait_for_function(f"document.getElementById('live-label').textContent.includes('{expected}')",
                                   timeout=60000)
            page.wait_for_function("document.getElementById('camera-rate').textContent.includes('frames/s')",
                                   timeout=60000)
            assert page.inner_text("#live-label").startswith(f"person 1: {expected}")  # followed, smoothed
            with page.expect_download() as download:
                page.click("#camera-csv")
            with open(download.value.path(), newline="") as handle:
                rows = list(csv.DictReader(handle))
            assert rows and {row["person"] for row in rows} == {"1"} and {row["emotion"] for row in rows} == {expected}
            times = [float(row["time"]) for row in rows]
            assert times == sorted(times) and list(rows[0])[-2:] == ["time", "person"]
            # the video shows a mirror, so the box goes over the face's mirrored place: right of the
            # middle, where the face is left of it in the frames sent
            green_centre, overlay_width = page.evaluate("""() => {
                const canvas = document.getElementById('overlay');
                const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                let sum = 0, count = 0;
                for (let index = 0; index < pixels.length; index += 4) {
                    if (pixels[index + 1] > 200 && pixels[index] < 60) {
                        sum += (index / 4) % canvas.width;
                        count++;
                    }
                }
                return [sum / count, canvas.width];
            }""")
            assert green_centre > overlay_width / 2
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
