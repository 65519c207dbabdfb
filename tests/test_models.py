"""The builders reproduce the report's architectures exactly."""

import numpy as np

from common import models


def test_seed_cnn_has_the_reports_trainable_parameter_count():
    model = models.build_seed_cnn()
    assert models.trainable_parameter_count(model) == 1_703_047
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, 7)


def test_dnn_has_the_reports_parameter_count():
    model = models.build_dnn()
    assert models.trainable_parameter_count(model) == 1_838_599
    assert model.count_params() == 1_838_599
    assert model.input_shape == (None, 2304)


def test_models_output_probabilities_from_raw_pixels():
    model = models.build_seed_cnn()
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 48, 48, 1)).astype("float32")
    probabilities = np.asarray(model(pixels, training=False))
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
