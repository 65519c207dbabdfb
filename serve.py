"""Serves the face pipeline over HTTP: an API for programs and a page for people.

Usage:
    python serve.py                                   # the shipped model on http://127.0.0.1:8000
    python serve.py --model model_list.txt --tta --port 8080
    python serve.py --host 0.0.0.0 --cors https://example.org

POST /predict takes an image (the multipart field `image`, or the raw bytes with an image/* content
type; ?tta=true for 10-view averaging) and answers with every face's box, detector score, emotion
and probabilities, the same numbers as predict.py on the same file. GET / is a page to drop photos
on or point a camera at; GET /health says the server is up; GET /docs is the OpenAPI page. The
model and the detector load once, at start; nothing a request sends can name a file or a model,
and nothing is written to disk. Ctrl-C stops it.
"""

import os
import socket

from common import cli, faces, files, model_lists


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--model", type=cli.model_or_shipped, default=files.DEFAULT_SHIPPED_MODEL,
                        help="a .h5 or .keras model, or a model list (soft voting), "
                             f"{cli.SHIPPED_MODEL_WORDS} (default: the model in pretrained/)")
    cli.add_face_options(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every one)")
    parser.add_argument("--port", type=cli.port_number, default=8000, help="port to listen on")
    parser.add_argument("--max-upload-mb", type=cli.positive_float, default=10.0,
                        help="largest upload accepted, in megabytes (larger: 413)")
    parser.add_argument("--cors", metavar="ORIGIN", help="let pages from this origin call the API")
    cli.add_prediction_options(parser)
    options = parser.parse_args()

    model_path = options.model
    model_lists.check_model_source(model_path)
    _check_port_free(options.host, options.port)

    from common import prediction, serving  # TensorFlow loads only after the input checked out
    import uvicorn

    detector = faces.make_detector(options.detector, options.min_face)
    classifier = prediction.load_classifier(model_path, options.precision, options.pixel_scale)
    app = serving.create_app(classifier, detector, os.path.basename(model_path), options.detector,
                             max_upload_bytes=int(options.max_upload_mb * (1 << 20)), align=options.align,
                             cors_origin=options.cors, default_tta=options.tta, batch_cap=options.batch_size)
    print(f"serving {model_path} with the {options.detector} detector on "
          f"http://{options.host}:{options.port} (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning")


def _check_port_free(host, port):
    """Refuses a port that is taken before anything loads."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise cli.UsageError(f"--host {host} --port {port}: cannot listen there ({error.strerror})") from None


if __name__ == "__main__":
    cli.run(main)
