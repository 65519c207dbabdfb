"""plot_model.py and gradient_ascent.py: the files they write and the numbers behind them."""

import os
import shutil

import keras
import numpy as np

from common import explain, model_files
from helpers import assert_refused, run_script

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_width=300, min_height=200):
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == PNG_SIGNATURE, path
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert width >= min_width and height >= min_height, (path, width, height)


def test_plot_model_writes_all_five_plots(tmp_path, train_csv, trained_model):
    result = run_script("plot_model.py", train_csv, trained_model, "--images", "0,5,9",
                        "--val-size", 64, "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    stem = os.path.splitext(os.path.basename(trained_model))[0]
    for suffix in ("struct", "cm", "rel", "his", "sm"):
        assert_png(tmp_path / f"{stem}_{suffix}.png")
    assert "overall accuracy" in result.stdout and "most confused" in result.stdout
    assert "probabilities: mean top probability " in result.stdout
    assert "recognition" in result.stdout and "prediction" in result.stdout


def test_plot_model_defaults_fit_a_small_file(tmp_path, train_csv, trained_model):
    result = run_script("plot_model.py", train_csv, trained_model, "--out-dir", tmp_path)  # 320 rows
    assert result.exit_code == 0, result.stderr
    assert_png(tmp_path / f"{os.path.splitext(os.path.basename(trained_model))[0]}_sm.png")


def test_missing_history_is_reported_and_skipped(tmp_path, train_csv, trained_model):
    copy = tmp_path / "copy.h5"
    shutil.copy(trained_model, copy)
    result = run_script("plot_model.py", train_csv, copy, "--images", "1", "--val-size", 64,
                        "--saliency", "gradcam")
    assert result.exit_code == 0, result.stderr
    assert f"training curves: skipped, no history file {tmp_path / 'copy_history.csv'}" in result.stdout
    assert not (tmp_path / "copy_his.png").exists()
    assert_png(tmp_path / "copy_sm.png")


def test_a_students_validation_loss_is_named_for_how_it_was_measured():
    from common import plots

    assert plots.validation_loss_name({"teacher": None}) == "validation loss"
    assert plots.validation_loss_name({"teacher": "list.txt", "teachers_val_accuracy": 0.7}) == "validation loss"
    # a student whose teachers did not label its validation faces: its loss is not the training loss
    assert plots.validation_loss_name({"teacher": "list.txt"}) == "validation loss (labels in the teachers' place)"


def test_grad_cam_is_refused_for_a_dnn(train_csv, trained_dnn):
    assert_refused(run_script("plot_model.py", train_csv, trained_dnn, "--images", "1", "--saliency", "gradcam"),
                   "has no convolution layer")


def test_image_rows_out_of_range_are_refused(train_csv, trained_model):
    assert_refused(run_script("plot_model.py", train_csv, trained_model, "--val-size", 64, "--images",
                              "5,12928"), "--images: row 12928 is out of range", "has 320 rows")


def test_confusion_matrix_counts_each_pair_and_keeps_classes_without_rows():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 500)
    predictions = np.where(rng.random(500) < 0.6, labels, rng.integers(0, 7, 500))
    counts = explain.confusion_matrix(labels, predictions, 8)  # class 7 has no rows
    expected = np.zeros((8, 8), dtype=np.int64)
    for true, predicted in zip(labels, predictions):
        expected[true, predicted] += 1
    np.testing.assert_array_equal(counts, expected)
    assert counts[7].sum() == 0 and counts[:, 7].sum() == 0
    pairs = explain.most_confused_pairs(counts)
    off_diagonal = counts - np.diag(np.diag(counts))
    assert pairs[0][2] == off_diagonal.max()
    assert [count for _, _, count in pairs] == sorted((count for _, _, count in pairs), reverse=True)


def test_perturbation_saliency_equals_a_slow_per_pixel_reference():
    keras.utils.set_random_seed(1)
    inputs = keras.Input(shape=(48, 48, 1))
    pixels = keras.layers.Rescaling(1 / 255)(inputs)  # float32: the autouse fixture resets the policy
    outputs = keras.layers.Dense(7, activation="softmax", kernel_initializer="random_normal")(
        keras.layers.Flatten()(pixels))
    model = keras.Model(inputs, outputs)
    image = np.random.default_rng(2).integers(0, 255, size=(48, 48)).astype(np.uint8)
    label = 4
    weights, bias = (w.astype(np.float64) for w in model.layers[-1].get_weights())

    def loss(pixels):
        logits = pixels.ravel() / 255 @ weights + bias
        return -(logits[label] - np.log(np.exp(logits).sum()))

    base = loss(image.astype(np.float64))
    reference = np.empty(2304)
    for pixel in range(2304):
        changed = image.astype(np.float64).ravel()
        changed[pixel] += 1
        reference[pixel] = (loss(changed) - base) ** 2
    fast = explain.saliency(model, image[np.newaxis], np.array([label]), "perturb")[0]
    np.testing.assert_allclose(fast.ravel(), reference, rtol=0.05, atol=1e-9)
    assert np.corrcoef(fast.ravel(), reference)[0, 1] > 0.999


def test_gradient_ascent_raises_each_filters_activation(tmp_path, trained_model):
    model = model_files.with_precision(model_files.load_model(trained_model), "fp32")
    images, final, start = explain.filter_ascent(model, "block1_conv2", filters=6, steps=20)
    assert images.shape == (6, 48, 48)
    assert (final > start).all(), (start, final)
    result = run_script("gradient_ascent.py", trained_model, "--filters", 8, "--steps", 5,
                        "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    stem = os.path.splitext(os.path.basename(trained_model))[0]
    assert result.last_line == str(tmp_path / f"{stem}_block1_conv1.png")
    assert_png(tmp_path / f"{stem}_block1_conv1.png")


def test_activation_maps_of_selected_faces(tmp_path, train_csv, trained_model):
    result = run_script("gradient_ascent.py", trained_model, "--layer", "block2_conv1", "--filters", 4,
                        "--steps", 2, "--images", train_csv, "--rows", "0,3", "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    stem = os.path.splitext(os.path.basename(trained_model))[0]
    assert_png(tmp_path / f"{stem}_block2_conv1_activations.png", min_height=150)


def test_unknown_layer_lists_the_convolution_layers(trained_model):
    result = run_script("gradient_ascent.py", trained_model, "--layer", "conv9")
    assert_refused(result, "--layer conv9: no such convolution layer; this model has block1_conv1, "
                           "block1_conv2, block1_conv3, block2_conv1")


def test_calibration_bins_faces_by_top_probability_and_weighs_each_gap_by_its_faces():
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.92, 0.08], [0.92, 0.08],  # bin 0.9..1
                              [0.42, 0.58], [0.45, 0.55]])  # bin 0.5..0.6
    labels = np.array([0, 0, 0, 1, 1, 0])
    found = explain.calibration(probabilities, labels, bins=10)
    assert found.counts.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 4]
    np.testing.assert_allclose(found.confidence[[5, 9]], [0.565, 0.935])
    np.testing.assert_allclose(found.accuracy[[5, 9]], [0.5, 0.75])
    assert np.isnan(found.accuracy[0])
    assert found.overall_accuracy == 4 / 6 and abs(found.mean_confidence - 4.87 / 6) < 1e-12
    assert abs(found.expected_error - (2 * 0.065 + 4 * 0.185) / 6) < 1e-12
    # labels drawn from the probabilities themselves: calibrated, the error near zero
    rng = np.random.default_rng(0)
    drawn = rng.dirichlet(np.full(7, 0.3), 20000)
    truth = (drawn.cumsum(axis=1) < rng.random((20000, 1))).sum(axis=1)  # one class drawn per row
    assert explain.calibration(drawn, truth).expected_error < 0.015
