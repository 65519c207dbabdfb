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


def test_standardized_dnn_sees_past_brightness_and_contrast(tmp_path):
    """Each face is standardised inside the model: a darker, flatter copy of a face gets the same
    probabilities, without a weight more; the report's scaled DNN tells the two apart."""
    import keras

    keras.utils.set_random_seed(0)
    standardized = models.build_dnn(standardize_faces=True)
    scaled = models.build_dnn()
    assert standardized.count_params() == scaled.count_params() == 1_838_599
    faces = np.random.default_rng(0).integers(40, 200, size=(4, 2304)).astype("float32")
    dimmer = 0.5 * faces + 20  # pixels stay in 0..255
    for model, same in ((standardized, True), (scaled, False)):
        first, second = np.asarray(model(faces)), np.asarray(model(dimmer))
        assert np.allclose(first, second, atol=1e-4) == same
    path = str(tmp_path / "dnn.h5")
    standardized.save(path)  # plain Keras layers: the file opens without this project
    np.testing.assert_allclose(keras.models.load_model(path)(faces), standardized(faces), atol=1e-6)


def test_models_output_probabilities_from_raw_pixels():
    model = models.build_seed_cnn()
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 48, 48, 1)).astype("float32")
    probabilities = np.asarray(model(pixels, training=False))
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_vgg_cnn_shape_and_parameter_count():
    model = models.build_vgg_cnn()
    assert models.trainable_parameter_count(model) == 1_978_279
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)


def test_small_cnn_stays_under_half_a_million_parameters_and_a_third_of_the_vgg_work():
    small, vgg = models.build_small_cnn(), models.build_vgg_cnn()
    assert models.trainable_parameter_count(small) == 495_831 <= 500_000
    assert small.input_shape == (None, 48, 48, 1) and small.output_shape == (None, 7)

    def multiply_adds(model):
        return sum(layer.output.shape[1] * layer.output.shape[2] * layer.kernel.shape.num_elements()
                   for layer in model.layers if layer.name.endswith(tuple(f"_conv{n}" for n in (1, 2, 3))))
    assert multiply_adds(small) * 3 < multiply_adds(vgg)


def test_resnet_cnn_parameter_count_and_residual_stages():
    model = models.build_resnet_cnn()
    assert models.trainable_parameter_count(model) == 2_694_439
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    # each residual block adds its input back; the stages work on 24, 12 and 6 pixel maps
    add_shapes = [layer.output.shape[1:] for layer in model.layers if layer.name.endswith("_add")]
    assert add_shapes == [(24, 24, 64), (12, 12, 128), (12, 12, 128), (6, 6, 256), (6, 6, 256)]


def test_every_registered_architecture_builds_with_the_parameter_count_help_shows():
    from common import cli, config

    for name, architecture in config.ARCHITECTURES.items():
        model = models.builder(name)()
        assert models.trainable_parameter_count(model) == architecture.trainable_parameters, name
        assert (len(model.input_shape) == 4) == architecture.takes_images
        assert models.builder(name)(num_classes=3).output_shape == (None, 3)
        if architecture.takes_images:
            assert f"({architecture.trainable_parameters:,} trainable parameters)" in cli.ARCH_HELP
    assert {recipe.arch for recipe in config.RECIPES.values()} <= set(config.CNN_ARCHITECTURES)


def test_fused_batch_normalization_matches_keras_batch_normalization():
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    maps = rng.normal(2.0, 3.0, size=(32, 6, 6, 5)).astype("float32")
    keras_layer, fused_layer = keras.layers.BatchNormalization(), models.FusedBatchNormalization()
    keras_layer.build(maps.shape)
    fused_layer.build(maps.shape)
    weights = [rng.uniform(0.5, 1.5, 5).astype("float32") for _ in range(4)]
    keras_layer.set_weights(weights)
    fused_layer.set_weights(weights)
    for training in (False, True):  # inference first, while the moving statistics still agree
        np.testing.assert_allclose(fused_layer(maps, training=training),
                                   keras_layer(maps, training=training), atol=1e-4)
    # moving averages after one step: equal means, variances within Bessel's factor n/(n-1)
    for fused_weight, keras_weight in zip(fused_layer.get_weights(), keras_layer.get_weights()):
        np.testing.assert_allclose(fused_weight, keras_weight, rtol=1e-3)
    gradients = []
    for layer in (fused_layer, keras_layer):  # the same loss through each layer
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(maps, training=True) ** 2 * np.arange(5))
        gradients.append(tape.gradient(loss, layer.trainable_variables))
    for fused_gradient, keras_gradient in zip(*gradients):  # gamma's and beta's
        np.testing.assert_allclose(fused_gradient, keras_gradient, rtol=1e-3, atol=1e-3)
        assert float(tf.norm(fused_gradient)) > 0
