"""Measures the toolkit's speed against plain baselines, in one run, and writes the table as JSON.

Usage:
    python benchmarks/speed.py                                   # ../shared/fer2013/train.csv.gz
    python benchmarks/speed.py --data path/to/train.csv --quick  # under 3 minutes
    python benchmarks/speed.py --quick --workers 2               # and one vs two local workers

Rows of the table:
- parsing the training CSV: the toolkit's loader against a naive per-row `str.split` parse (plain
  CSV), the loader on the `.csv.gz`, and loading the `.npz` cache;
- training images/s of the report's CNN after warm-up, batch 128: the toolkit's path (default
  bf16 policy, fused batch normalisation, tf.data pipeline with on-the-fly augmentation) against
  plain float32 `model.fit` of the same CNN built from Keras's own layers, on the same NumPy
  arrays, in alternating rounds (the median of each is reported);
- training images/s of the toolkit's path with Keras's own BatchNormalization in place of the fused
  layer, nothing else changed: what the fused layer alone buys;
- inference images/s of test.py's prediction path (a float32 model as files hold it, Keras's
  BatchNormalization; and the same model with `--precision bf16`) against plain `model.predict` of
  the same model, with the share of identical predicted labels (an untrained model: its near ties
  make the bf16 agreement a worst case);
- inference images/s of every CNN of `train.py --arch`, each against the VGG-style CNN;
- photos: predict.py's whole run (read, detect, crop, classify in batches, write predictions.csv
  and the annotated copies) on a folder of generated 640x480 photos with one real face each
  against the detector alone (read, grey, detect) on the same photos, in alternating rounds;
- the whole `train.py` run (the report's recipe: load the file, train 4 epochs on 3,000 rows with 600
  validation rows scored every epoch, save the model) against a plain-Keras script doing the same
  (its CNN from Keras's own layers, float32 `model.fit` with `validation_data`, the same shift and
  flip layers, `model.save`), wall seconds of each process, in alternating rounds;
- with --workers N: training images/s of `train.py` (the report's recipe) on one worker against N
  local workers (`--strategy multiworker`, TF_CONFIG over localhost ports) sharing this machine's
  cores, same rows, epochs and global batch, in alternating rounds: the cost of synchronising.
Without the real data, generated faces stand in (the output says so). Writes
benchmarks/results/speed-<date>.json.
"""

import datetime
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import cli, config, data, files, synthetic  # noqa: E402  (needs the repo on sys.path)

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "shared", "fer2013", "train.csv.gz")
BATCH_SIZE = 128


def timed(function, *arguments):
    started = time.perf_counter()
    result = function(*arguments)
    return result, time.perf_counter() - started


def naive_parse(path):
    """The obvious parse: one `str.split` per row, as a baseline."""
    labels, pixels = [], []
    with open(path) as handle:
        next(handle)
        for line in handle:
            label, feature = line.split(",")
            labels.append(int(label))
            pixels.append([int(value) for value in feature.split()])
    return labels, pixels


def parsing_rows(csv_gz_path, folder, rounds):
    """Seconds to parse the plain CSV (toolkit and naive), the .csv.gz, and to load the .npz."""
    plain_path = os.path.join(folder, "train.csv")
    with gzip.open(csv_gz_path, "rb") as source, open(plain_path, "wb") as target:
        shutil.copyfileobj(source, target)
    toolkit = [timed(data.load_dataset, plain_path)[1] for _ in range(rounds)]
    naive = timed(naive_parse, plain_path)[1]
    gz = [timed(data.load_dataset, csv_gz_path)[1] for _ in range(rounds)]
    dataset = data.load_dataset(plain_path)
    npz_path = os.path.join(folder, "train.npz")
    data.save_npz(npz_path, dataset, dataset.subset(slice(0, 10)))
    npz = [timed(data.load_dataset, npz_path)[1] for _ in range(max(rounds, 3))]
    return dataset, {
        "csv_parse_seconds": statistics.median(toolkit),
        "csv_naive_parse_seconds": naive,
        "csv_parse_speedup": naive / statistics.median(toolkit),
        "csv_gz_parse_seconds": statistics.median(gz),
        "npz_load_seconds": statistics.median(npz),
    }


class BatchTimer:
    """A Keras callback that times the batches after the first `warmup` ones."""

    def __init__(self, keras, warmup):
        timer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if batch == warmup:
                    timer.started = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                timer.finished = time.perf_counter()
                timer.timed_batches = batch + 1 - warmup

        self.callback = Callback()

    def images_per_second(self):
        return self.timed_batches * BATCH_SIZE / (self.finished - self.started)


def training_throughput(dataset, steps, warmup, path):
    """Images/s of one training round: 'toolkit' (training.py's pipeline, default precision),
    'toolkit_keras_bn' (the same with Keras's own BatchNormalization: what the fused layer alone
    buys), 'toolkit_xla' (the same compiled by XLA, `jit_compile=True`) or 'plain' (float32
    model.fit on NumPy arrays)."""
    import keras
    import numpy as np

    from common import models, training

    keras.utils.set_random_seed(0)
    rows = (steps + warmup) * BATCH_SIZE
    images, labels = dataset.images[:rows], dataset.labels[:rows]
    timer = BatchTimer(keras, warmup)
    if path in ("toolkit", "toolkit_keras_bn", "toolkit_xla"):
        training.set_precision(config.TrainingConfig.precision)
        model = models.build_seed_cnn(fused_batch_norm=path != "toolkit_keras_bn")
        training.compile_model(model, config.TrainingConfig())
        model.jit_compile = path == "toolkit_xla"
        pipeline = training.make_dataset(images, labels, model.input_shape[1:], len(data.FER2013_CLASSES), BATCH_SIZE,
                                         augment="report", shuffle=True)
        model.fit(pipeline, epochs=1, steps_per_epoch=steps + warmup, verbose=0, shuffle=False,
                  callbacks=[timer.callback])
    else:
        keras.mixed_precision.set_global_policy("float32")
        model = models.build_seed_cnn(fused_batch_norm=False)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        x = images[..., np.newaxis].astype(np.float32)
        y = keras.utils.to_categorical(labels, len(data.FER2013_CLASSES))
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[timer.callback])
    return timer.images_per_second()


def training_rows(dataset, rounds, steps, warmup):
    """The three training paths in alternating rounds, so machine noise hits all alike."""
    toolkit, keras_bn, plain = [], [], []
    for round_number in range(rounds):  # alternate, so machine noise hits all alike
        toolkit.append(training_throughput(dataset, steps, warmup, "toolkit"))
        keras_bn.append(training_throughput(dataset, steps, warmup, "toolkit_keras_bn"))
        plain.append(training_throughput(dataset, steps, warmup, "plain"))
        print(f"training round {round_number + 1}: toolkit {toolkit[-1]:.0f} images/s, the same with "
              f"Keras's BatchNormalization {keras_bn[-1]:.0f}, plain fp32 fit {plain[-1]:.0f}", flush=True)
    return {
        "training_images_per_second": statistics.median(toolkit),
        "training_keras_batch_norm_images_per_second": statistics.median(keras_bn),
        "training_fused_batch_norm_speedup": statistics.median(toolkit) / statistics.median(keras_bn),
        "training_plain_fp32_images_per_second": statistics.median(plain),
        "training_speedup": statistics.median(toolkit) / statistics.median(plain),
        "training_rounds": rounds, "training_timed_steps": steps, "batch_size": BATCH_SIZE,
        "training_default_precision": config.TrainingConfig.precision,
    }


def training_run_speed(csv_path, workers, folder):
    """Training images/s (from the chief's settings) of `train.py` on `csv_path` run by `workers`
    local worker processes (1: an ordinary run)."""
    from common import distribution

    out_dir = tempfile.mkdtemp(dir=folder)
    command = [sys.executable, os.path.join(files.REPOSITORY, "train.py"), csv_path, "--epochs", "2",
               "--val-size", "256", "--out-dir", out_dir]
    if workers > 1:
        command += ["--strategy", "multiworker"]
    environments = ([dict(os.environ, TF_CONFIG=tf_config) for tf_config in distribution.local_cluster(workers)]
                    if workers > 1 else [dict(os.environ)])
    processes = [subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for environment in environments]
    outputs = [process.communicate() for process in processes]
    if any(process.returncode for process in processes):
        raise cli.RunFailed(f"a training run for the worker rows failed: {outputs[0][1].strip()[-500:]}")
    model_path = outputs[0][0].strip().splitlines()[-1]
    return files.read_json(files.settings_path(model_path))["training_images_per_second"]


PLAIN_KERAS_RUN = """
import sys
import keras, numpy as np
sys.path.insert(0, sys.argv[3])
from common import data, models
dataset = data.load_dataset(sys.argv[1])
images, labels = dataset.images[..., None].astype("float32"), keras.utils.to_categorical(dataset.labels, 7)
model = models.build_seed_cnn(fused_batch_norm=False)
augment = keras.Sequential([keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest"),
                            keras.layers.RandomFlip("horizontal")])
inputs = keras.Input((48, 48, 1))
trained = keras.Model(inputs, model(augment(inputs)))
trained.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
trained.fit(images[600:], labels[600:], validation_data=(images[:600], labels[:600]), epochs=4,
            batch_size=128, verbose=0)
model.save(sys.argv[2])
"""


def run_process(command):
    """Runs a command to its end; a RunFailed with its last error lines when it fails."""
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode:
        raise cli.RunFailed(f"{' '.join(command[:3])} failed: {completed.stderr.strip()[-500:]}")


def whole_run_rows(dataset, rounds, folder):
    """Wall seconds of the whole train.py run against the plain-Keras script, alternating."""
    csv_path = os.path.join(folder, "run.csv")
    data.write_csv_dataset(csv_path, dataset.images[:3600], dataset.labels[:3600])
    script = os.path.join(folder, "plain_keras_run.py")
    with open(script, "w") as handle:
        handle.write(PLAIN_KERAS_RUN)
    toolkit, plain = [], []
    for round_number in range(rounds):
        out_dir = tempfile.mkdtemp(dir=folder)
        toolkit.append(timed(run_process, [sys.executable, os.path.join(files.REPOSITORY, "train.py"), csv_path,
                                           "--epochs", "4", "--val-size", "600", "--out-dir", out_dir])[1])
        plain.append(timed(run_process, [sys.executable, script, csv_path, os.path.join(out_dir, "plain.h5"),
                                         files.REPOSITORY])[1])
        print(f"whole-run round {round_number + 1}: train.py {toolkit[-1]:.1f} s, plain Keras {plain[-1]:.1f} s",
              flush=True)
    return {"whole_train_py_run_seconds": statistics.median(toolkit),
            "whole_plain_keras_run_seconds": statistics.median(plain),
            "whole_run_speedup": statistics.median(plain) / statistics.median(toolkit)}


def worker_rows(dataset, workers, rows, rounds, folder):
    """One worker against `workers` local workers, alternating, on the first `rows` faces."""
    csv_path = os.path.join(folder, "workers.csv")
    data.write_csv_dataset(csv_path, dataset.images[:rows], dataset.labels[:rows])
    one, many = [], []
    for round_number in range(rounds):
        one.append(training_run_speed(csv_path, 1, folder))
        many.append(training_run_speed(csv_path, workers, folder))
        print(f"workers round {round_number + 1}: one worker {one[-1]:.0f} images/s, {workers} local "
              f"workers {many[-1]:.0f}", flush=True)
    return {"training_one_worker_images_per_second": statistics.median(one),
            f"training_{workers}_local_workers_images_per_second": statistics.median(many),
            "training_local_workers_speedup": statistics.median(many) / statistics.median(one),
            "training_workers_rows": rows, "training_workers_epochs": 2}


def inference_rows(dataset, rows, rounds):
    """Images/s of prediction.predict_probabilities (float32, and the same model in bfloat16)
    against model.predict of a float32 model built from Keras's own layers, with the same weights."""
    import keras
    import numpy as np

    from common import model_files, models, prediction

    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    model = models.build_seed_cnn(fused_batch_norm=False)  # as model files hold it
    bf16_model = model_files.with_precision(model, "bf16")
    plain_model = model
    images = dataset.images[:rows]
    ours, bf16, plain = [], [], []
    for _ in range(rounds):  # alternate, so machine noise hits all alike
        ours_probabilities, seconds = timed(prediction.predict_probabilities, model, images)
        ours.append(len(images) / seconds)
        bf16_probabilities, seconds = timed(prediction.predict_probabilities, bf16_model, images)
        bf16.append(len(images) / seconds)
        plain_probabilities, seconds = timed(
            lambda: plain_model.predict(images[..., np.newaxis].astype(np.float32), verbose=0))
        plain.append(len(images) / seconds)
    plain_labels = plain_probabilities.argmax(1)
    return {
        "inference_images_per_second": statistics.median(ours),
        "inference_plain_predict_images_per_second": statistics.median(plain),
        "inference_speedup": statistics.median(ours) / statistics.median(plain),
        "inference_label_agreement": float((ours_probabilities.argmax(1) == plain_labels).mean()),
        "inference_bf16_images_per_second": statistics.median(bf16),
        "inference_bf16_speedup": statistics.median(bf16) / statistics.median(plain),
        "inference_bf16_label_agreement": float((bf16_probabilities.argmax(1) == plain_labels).mean()),
    }


def architecture_rows(dataset, rows, rounds):
    """Images/s of the prediction path (float32, as files hold models) for each CNN of train.py's
    --arch, in alternating rounds; each against the VGG-style CNN's."""
    import keras

    from common import model_files, models, prediction

    keras.mixed_precision.set_global_policy("float32")
    built = {name: model_files.with_batch_norm(models.builder(name)(), fused=False)
             for name in config.CNN_ARCHITECTURES}
    speeds = {name: [] for name in built}
    images = dataset.images[:rows]
    for model in built.values():  # traced once before timing
        prediction.predict_probabilities(model, images[:256])
    for _ in range(rounds):
        for name, model in built.items():
            _, seconds = timed(prediction.predict_probabilities, model, images)
            speeds[name].append(len(images) / seconds)
    results = {}
    for name, values in speeds.items():
        results[f"inference_{name}_images_per_second"] = statistics.median(values)
        if name != "vgg":
            results[f"inference_{name}_vs_vgg"] = statistics.median(values) / statistics.median(speeds["vgg"])
    return results


def generated_photos(dataset, count, folder, seed=0):
    """`count` 640x480 JPEG photos, each with one real face (a FER2013 face, or the example photo's
    face when generated faces stand in) enlarged to 120-200 pixels at a random place on a noisy
    gradient background. Returns their folder."""
    import cv2
    import numpy as np

    from common import faces

    rng = np.random.default_rng(seed)
    photo_folder = os.path.join(folder, "photos")
    os.makedirs(photo_folder, exist_ok=True)
    example = faces.to_grey(faces.read_image(os.path.join(files.REPOSITORY, "examples", "astronaut.jpg")))
    for index in range(count):
        if "generated" not in os.path.basename(dataset.source):
            face = dataset.images[rng.integers(len(dataset))]
        else:
            face = example[40:200, 145:305]
        side = int(rng.integers(120, 201))
        photo = synthetic.photo_with_face(cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC),
                                          rng)
        cv2.imwrite(os.path.join(photo_folder, f"photo{index:04d}.jpg"),
                    cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return photo_folder


def photo_rows(dataset, count, rounds):
    """Images/s of predict.py's run against the detector alone on the same generated photos."""
    import keras

    from common import face_prediction, faces, models, prediction

    keras.mixed_precision.set_global_policy("float32")
    with tempfile.TemporaryDirectory() as folder:
        sources, _ = faces.collect_sources([generated_photos(dataset, count, folder)])
        detector = faces.make_detector()
        classifier = prediction.Classifier([prediction.ModelPredictor(models.build_vgg_cnn())], [1.0], "vgg")

        def detector_alone():
            return sum(len(detector.detect(faces.read_image(source.path)))
                       for source in sources)

        def whole_run(round_number):
            run = face_prediction.FacePredictionRun(classifier, detector,
                                                    os.path.join(folder, f"out{round_number}"))
            for source in sources:
                run.add(source)
            return run.finish().faces

        detected, end_to_end = [], []
        for round_number in range(rounds):  # alternate, so machine noise hits both alike
            found, seconds = timed(detector_alone)
            detected.append(len(sources) / seconds)
            _, seconds = timed(whole_run, round_number)
            end_to_end.append(len(sources) / seconds)
    return {
        "photos": len(sources), "photos_with_a_face_found": found,
        "photos_detector_images_per_second": statistics.median(detected),
        "photos_predict_images_per_second": statistics.median(end_to_end),
        "photos_predict_to_detector_ratio": statistics.median(end_to_end) / statistics.median(detected),
    }


def xla_rows(dataset, rounds, steps, warmup):
    """The toolkit's training step as it runs and compiled by XLA, in alternating rounds."""
    toolkit, xla = [], []
    for round_number in range(rounds):
        toolkit.append(training_throughput(dataset, steps, warmup, "toolkit"))
        xla.append(training_throughput(dataset, steps, warmup, "toolkit_xla"))
        print(f"XLA round {round_number + 1}: toolkit {toolkit[-1]:.0f} images/s, compiled by XLA "
              f"{xla[-1]:.0f}", flush=True)
    return {"training_xla_images_per_second": statistics.median(xla),
            "training_xla_speedup": statistics.median(xla) / statistics.median(toolkit)}


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--data", default=DEFAULT_DATA, help="the training CSV (.csv.gz) to measure on")
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds: under 3 minutes")
    parser.add_argument("--workers", type=cli.positive_int,
                        help="also compare train.py on one worker with this many local workers")
    parser.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                          "results"), help="folder for the JSON")
    parser.add_argument("--only", choices=("training", "inference", "architectures", "photos", "whole-run", "xla"),
                        action="append", help="measure only these rows (repeatable; default: all but "
                                              "whole-run and xla, which --only asks for)")
    options = parser.parse_args()
    wanted = set(options.only or ("training", "inference", "architectures", "photos"))
    rounds, steps, warmup, inference_images = (1, 12, 3, 1024) if options.quick else (3, 40, 5, 7168)

    with tempfile.TemporaryDirectory() as folder:
        source = options.data
        if not os.path.exists(source):
            source = os.path.join(folder, "generated.csv.gz")
            images, labels = synthetic.generate_faces(8000 if options.quick else 28709, seed=0)
            data.write_csv_dataset(source, images, labels)
            print(f"{options.data} not found: generated faces stand in for FER2013")
        dataset, results = parsing_rows(source, folder, 1 if options.quick else 3)

    from common import backend  # noqa: F401  (TensorFlow loads quietly)

    if "training" in wanted:
        results.update(training_rows(dataset, rounds, steps, warmup))
    if "inference" in wanted:
        results.update(inference_rows(dataset, inference_images, rounds))
    if "architectures" in wanted:
        results.update(architecture_rows(dataset, inference_images, rounds))
    if "photos" in wanted:
        results.update(photo_rows(dataset, 40 if options.quick else 200, rounds))
    if "xla" in wanted:
        results.update(xla_rows(dataset, rounds, steps, warmup))
    if "whole-run" in wanted:
        with tempfile.TemporaryDirectory() as folder:
            results.update(whole_run_rows(dataset, rounds, folder))
    if options.workers and options.workers > 1:
        with tempfile.TemporaryDirectory() as folder:
            results.update(worker_rows(dataset, options.workers, 2000 if options.quick else 6000, rounds,
                                       folder))
    results.update({"data": options.data if os.path.exists(options.data) else "generated faces",
                    "quick": options.quick, "date": datetime.datetime.now().isoformat(timespec="seconds"),
                    "cpu_count": os.cpu_count()})

    print(f"\n{'measure':<48}{'value':>12}")
    for name, value in results.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{name:<48}{shown:>12}")
    path = files.free_path(os.path.join(options.out_dir, f"speed-{datetime.date.today()}.json"))
    files.write_json(path, results)
    print(path)


if __name__ == "__main__":
    cli.run(main)
