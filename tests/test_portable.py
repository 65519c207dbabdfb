"""Model files any Keras opens, deployable exports, and models from elsewhere."""

import csv
import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import data, model_files, models, prediction, synthetic
from helpers import run_script

PLAIN_KERAS_LABELS = """
import sys
import keras, numpy as np
model = keras.models.load_model(sys.argv[1], compile=False)
images = np.load(sys.argv[2])
print(" ".join(map(str, model.predict(images[..., None].astype("float32"), verbose=0).argmax(1))))
"""


def test_a_trained_model_opens_in_plain_keras_with_test_py_labels(tmp_path, test_csv, trained_model):
    images = synthetic.generate_faces(40, seed=1)[0]  # the faces of test_csv
    np.save(tmp_path / "faces.npy", images)
    script = tmp_path / "plain.py"
    script.write_text(PLAIN_KERAS_LABELS)
    process = subprocess.run([sys.executable, str(script), trained_model, str(tmp_path / "faces.npy")],
                             capture_output=True, text=True, cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": ""})  # the toolkit is not importable
    assert process.returncode == 0, process.stderr[-2000:]
    plain_labels = process.stdout.split()
    assert run_script("test.py", test_csv, tmp_path / "result.csv", trained_model).exit_code == 0
    with open(tmp_path / "result.csv", newline="") as handle:
        assert [row["label"] for row in csv.DictReader(handle)] == plain_labels


def test_files_hold_keras_batch_normalization_and_training_the_fused_one():
    model = models.build_vgg_cnn()
    portable = model_files.with_batch_norm(model, fused=False)
    kinds = {type(layer).__name__ for layer in portable.layers}
    assert "BatchNormalization" in kinds and "FusedBatchNormalization" not in kinds
    back = model_files.with_batch_norm(portable, fused=True)
    assert "FusedBatchNormalization" in {type(layer).__name__ for layer in back.layers}
    faces = synthetic.generate_faces(8, seed=2)[0][..., None].astype("float32")
    np.testing.assert_allclose(portable(faces).numpy(), model(faces).numpy(), atol=1e-5)


def test_old_files_with_the_fused_layer_still_load(tmp_path):
    model = models.build_seed_cnn()  # FusedBatchNormalization, saved as older versions did
    path = str(tmp_path / "old.h5")
    model.save(path)
    loaded = model_files.load_model(path)
    faces = synthetic.generate_faces(8, seed=2)[0]
    np.testing.assert_allclose(prediction.predict_probabilities(loaded, faces),
                               prediction.predict_probabilities(model, faces), atol=1e-6)


def build_foreign_model(path):
    """A stand-in for mini-Xception's interface: 64x64x3 input in -1..1, 7-way softmax."""
    inputs = keras.Input(shape=(64, 64, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.save(path)
    return model


def test_a_foreign_model_gets_faces_resized_to_its_input_and_scaled(tmp_path):
    model = build_foreign_model(str(tmp_path / "foreign.h5"))
    faces = synthetic.generate_faces(16, seed=5)[0]
    ours = prediction.predict_probabilities(model_files.load_model(str(tmp_path / "foreign.h5")), faces,
                                            pixel_scale="symmetric")
    resized = tf.image.resize(faces[..., None].astype("float32"), (64, 64), method="bilinear")
    expected = model.predict(tf.tile(resized, (1, 1, 1, 3)) * (2 / 255) - 1, verbose=0)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    unscaled = prediction.predict_probabilities(model, faces, pixel_scale="raw")
    assert not np.allclose(unscaled, expected, atol=1e-3)  # the scale really is applied


def read_labels(path):
    with open(path, newline="") as handle:
        return [int(row["label"]) for row in csv.DictReader(handle)]


def test_a_foreign_model_works_in_test_py_and_in_a_model_list(tmp_path, test_csv, trained_model):
    foreign = build_foreign_model(str(tmp_path / "foreign.h5"))
    faces = synthetic.generate_faces(40, seed=1)[0]  # the faces of test_csv
    resized = tf.image.resize(faces[..., None].astype("float32"), (64, 64), method="bilinear")
    foreign_probabilities = foreign.predict(tf.tile(resized, (1, 1, 1, 3)) * (2 / 255) - 1, verbose=0)
    result = run_script("test.py", test_csv, tmp_path / "one.csv", tmp_path / "foreign.h5",
                        "--pixel-scale", "symmetric")
    assert result.exit_code == 0, result.stderr
    assert read_labels(tmp_path / "one.csv") == foreign_probabilities.argmax(axis=1).tolist()
    (tmp_path / "list.txt").write_text(f"1 {trained_model}\n3 foreign.h5 pixel-scale=symmetric\n")
    result = run_script("test_by_vote.py", test_csv, tmp_path / "vote.csv", tmp_path / "list.txt", "--soft")
    assert result.exit_code == 0, result.stderr
    ours = prediction.predict_probabilities(model_files.load_model(trained_model), faces)
    expected = (ours + 3 * foreign_probabilities) / 4  # the weighted average, each model's own pixel scale
    assert read_labels(tmp_path / "vote.csv") == expected.argmax(axis=1).tolist()


@pytest.mark.slow
@pytest.mark.parametrize("export_format", ["h5", "saved_model", "tflite", "onnx"])
def test_exports_agree_with_test_py(tmp_path, trained_model, export_format):
    if export_format == "onnx" and importlib.util.find_spec("tf2onnx") is None:
        pytest.skip("tf2onnx is not installed (requirements-dev.txt)")
    output = tmp_path / {"h5": "copy.h5", "saved_model": "served", "tflite": "m.tflite", "onnx": "m.onnx"}[
        export_format]
    result = run_script("export.py", trained_model, "--format", export_format, "-o", output)
    assert result.exit_code == 0, result.stderr
    assert "agree with test.py's: 100.00% with --precision fp32" in result.stdout
    assert result.last_line == str(output) and output.exists()
    again = run_script("export.py", trained_model, "--format", export_format, "-o", output)  # named: replaced
    assert again.exit_code == 0 and f"replaced {output}" in again.stderr
    beside = [output.name + ".classes.txt"] if export_format in ("tflite", "onnx") else []
    assert sorted(os.listdir(tmp_path)) == sorted([output.name, *beside])  # no -1 copy, no leftovers
    if beside:
        assert (tmp_path / beside[0]).read_text().split() == list(data.FER2013_CLASSES)


def test_portable_save_keeps_the_optimizer_state_for_retraining(tmp_path):
    model = models.build_seed_cnn()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    faces, labels = synthetic.generate_faces(16, seed=6)
    model.fit(faces[..., None].astype("float32"), keras.utils.to_categorical(labels, 7), verbose=0)
    path = str(tmp_path / "m.h5")
    model_files.save_portable_model(model, path)
    fresh = model_files.with_batch_norm(model_files.load_model(path), fused=True)
    fresh.compile(optimizer="adam", loss="categorical_crossentropy")
    assert model_files.restore_optimizer_state(fresh, path)
    assert int(fresh.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())


def test_the_last_epochs_weights_travel_beside_the_kept_ones(tmp_path):
    model = models.build_seed_cnn()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    faces, labels = synthetic.generate_faces(16, seed=6)
    model.fit(faces[..., None].astype("float32"), keras.utils.to_categorical(labels, 7), verbose=0)
    last = [weight + 1.0 for weight in model.get_weights()]
    path = str(tmp_path / "m.h5")
    model_files.save_portable_model(model, path, last_weights=last)
    for saved, expected in zip(model_files.read_last_epoch_weights(path), last):
        np.testing.assert_array_equal(saved, expected)
    for loaded, kept in zip(keras.models.load_model(path).get_weights(), model.get_weights()):
        np.testing.assert_array_equal(loaded, kept)  # plain Keras sees the kept weights


def test_an_unwritable_export_path_is_refused_before_loading(tmp_path, trained_model):
    from helpers import assert_refused

    (tmp_path / "taken").write_text("a file")
    result = run_script("export.py", trained_model, "--format", "tflite", "-o", tmp_path / "taken" / "m.tflite")
    assert_refused(result, "cannot be made", "is a file")
    assert "labels of the" not in result.stdout


def test_an_export_onto_the_model_itself_is_refused(trained_model):
    from helpers import assert_refused

    before = os.path.getmtime(trained_model)
    result = run_script("export.py", trained_model, "--format", "h5", "-o", trained_model)
    assert_refused(result, f"-o {trained_model}: is also an input of this command")
    assert os.path.getmtime(trained_model) == before


@pytest.mark.slow
def test_the_saved_model_serving_signature_takes_tensorflow_servings_rest_request(tmp_path, trained_model):
    import json

    output = tmp_path / "fer" / "1"  # TensorFlow Serving's model_base_path/<version>
    assert run_script("export.py", trained_model, "--format", "saved_model", "-o", output).exit_code == 0
    faces, _ = synthetic.generate_faces(2, seed=9)
    request = json.loads(json.dumps({"signature_name": "serving_default",
                                     "instances": faces[..., None].astype(float).tolist()}))  # what README sends
    signature = tf.saved_model.load(str(output)).signatures[request["signature_name"]]
    answer = signature(face=tf.constant(np.array(request["instances"], np.float32)))["output_0"].numpy()
    expected = prediction.predict_probabilities(model_files.with_precision(model_files.load_model(trained_model),
                                                                          "fp32"), faces)
    np.testing.assert_allclose(answer, expected, atol=1e-4)
