"""serve.py under load, on loopback: photos per second and latency at several concurrencies against
predict.py's run on the same photos, and a long mixed run of good and bad uploads.

Usage:
    python benchmarks/serve.py --data data/fer2013.npz          # FER2013 faces in generated photos
    python benchmarks/serve.py --requests 32 --mixed 200         # shorter

Starts `serve.py` (the shipped model, the default detector) on a free loopback port, sends the
benchmark's easy photos (benchmarks/photos.py: one FER2013 face in a 640x480 photo; generated faces
without --data) and stops it. Reports, for concurrency 1, 4 and 16: photos/s and the median and 95th
percentile latency of --requests requests; predict.py's photos/s on the same photos (its whole run,
in this process: read, detect, cut, classify, write); one photo's detector + classifier time in this
process; and a run of --mixed requests, a quarter of them bad (text, truncated, empty), checking that
every good one gets the right faces (the same boxes and labels as the first answer, probabilities
within 1e-4) and every bad one a 4xx, with the server's memory before and
after. Nothing leaves the machine; it stops by itself.
"""

import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from common import cli, data, faces, files, synthetic  # noqa: E402
import photos as photo_benchmark  # noqa: E402  (benchmarks/photos.py)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def benchmark_photos(data_path, count):
    """JPEG bytes of `count` easy benchmark photos (FER2013 validation faces, or generated ones)."""
    if data_path and os.path.exists(data_path):
        images = data.load_dataset(data_path).images[:count]
    else:
        images = synthetic.generate_faces(count, seed=0)[0]
    return [cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            for photo, _ in photo_benchmark.make_easy_photos(images)]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port):
    server = subprocess.Popen([sys.executable, os.path.join(REPO, "serve.py"), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = server.stdout.readline()
    if "serving" not in line:
        server.kill()
        raise cli.RunFailed(f"serve.py did not start: {line.strip()}")
    return server


def memory_megabytes(pid):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load_run(url, bodies, concurrency):
    """Sends every body once with `concurrency` requests in flight; (photos/s, latencies in s, answers)."""
    import httpx2 as httpx

    def send(client, body):
        started = time.perf_counter()
        answer = client.post(url, content=body, headers={"content-type": "image/jpeg"}, timeout=120)
        return time.perf_counter() - started, answer.status_code, answer.json()

    with httpx.Client() as client, concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        results = list(pool.map(lambda body: send(client, body), bodies))
        wall = time.perf_counter() - started
    return len(bodies) / wall, [result[0] for result in results], results


def predict_py_speed(bodies):
    """predict.py's whole run on the photos as files, in this process: photos/s."""
    from common import face_prediction, prediction

    classifier = prediction.load_classifier(files.pretrained_model_path())
    detector = faces.make_detector()
    with tempfile.TemporaryDirectory() as folder:
        for number, body in enumerate(bodies):
            with open(os.path.join(folder, f"photo{number:04d}.jpg"), "wb") as handle:
                handle.write(body)
        sources, _ = faces.collect_sources([folder])
        started = time.perf_counter()
        run = face_prediction.FacePredictionRun(classifier, detector, os.path.join(folder, "out"))
        for source in sources:
            run.add(source)
        run.finish()
        seconds = time.perf_counter() - started
        one_photo = []
        for body in bodies[:20]:  # one photo's detector + classifier time
            image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
            started = time.perf_counter()
            faces.classify(classifier, faces.find_faces(image, detector))
            one_photo.append(time.perf_counter() - started)
    return len(bodies) / seconds, statistics.median(one_photo)


def same_faces(found, expected, tolerance=1e-4):
    """The same boxes and labels, and probabilities within `tolerance` (batches of other sizes may
    move the last digits)."""
    return len(found) == len(expected) and all(
        one["box"] == other["box"] and one["label"] == other["label"] and all(
            abs(one["probabilities"][name] - other["probabilities"][name]) <= tolerance
            for name in one["probabilities"]) for one, other in zip(found, expected))


def mixed_run(url, good, answers, count):
    """`count` requests, every fourth one bad: (good answered right, bad given a 4xx, totals)."""
    import httpx2 as httpx

    bad = [b"plain words, not pixels", good[0][: len(good[0]) // 3], b""]
    right = refused = goods = bads = 0
    with httpx.Client() as client:
        for number in range(count):
            if number % 4 == 3:
                body, bads = bad[number % len(bad)], bads + 1
                status = client.post(url, content=body, headers={"content-type": "image/jpeg"}, timeout=60).status_code
                refused += 400 <= status < 500
            else:
                index = number % len(good)
                goods += 1
                answer = client.post(url, content=good[index], headers={"content-type": "image/jpeg"}, timeout=60)
                right += answer.status_code == 200 and same_faces(answer.json()["faces"], answers[index])
    return right, goods, refused, bads


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--data", default="data/fer2013.npz", help="FER2013 faces to put in the photos")
    parser.add_argument("--requests", type=cli.positive_int, default=64, help="requests per concurrency")
    parser.add_argument("--mixed", type=cli.positive_int, default=1000, help="requests of the mixed run")
    options = parser.parse_args()
    bodies = benchmark_photos(options.data, options.requests)
    predict_rate, one_photo = predict_py_speed(bodies)
    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}/predict"
    report = {"photos": len(bodies), "predict_py_photos_per_second": round(predict_rate, 2),
              "one_photo_detector_and_classifier_ms": round(1000 * one_photo, 1), "concurrency": {}}
    try:
        _, _, first = load_run(url, bodies, 4)  # warm-up; the answers the mixed run must repeat
        answers = [result[2]["faces"] for result in first]
        for concurrency in (1, 4, 16):
            rate, latencies, _ = load_run(url, bodies, concurrency)
            report["concurrency"][concurrency] = {
                "photos_per_second": round(rate, 2), "vs_predict_py": round(rate / predict_rate, 2),
                "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1),
                "p95_ms": round(1000 * float(np.percentile(latencies, 95)), 1)}
        before = memory_megabytes(server.pid)
        right, goods, refused, bads = mixed_run(url, bodies, answers, options.mixed)
        after = memory_megabytes(server.pid)
        report["mixed"] = {"requests": options.mixed, "good_answered_right": f"{right}/{goods}",
                           "bad_refused_4xx": f"{refused}/{bads}", "server_mb_before": round(before, 1),
                           "server_mb_after": round(after, 1)}
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(report, indent=2))
    out_folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_folder, exist_ok=True)
    path = os.path.join(out_folder, f"serve-{time.strftime('%Y%m%d-%H%M%S')}.json")
    files.write_json(path, report)
    print(path)


if __name__ == "__main__":
    cli.run(main)
