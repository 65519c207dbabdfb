"""train.py --init: fine-tuning starts from a trained model's weights, keeps frozen layers as they
were, can draw a new last layer, and refuses options that do not fit."""

import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from common import files, finetuning, model_files, prediction
from common.cli import BadValue
from helpers import assert_refused, run_script


def weights_by_layer(model):
    return {layer.name: [np.array(weight) for weight in layer.get_weights()]
            for layer in finetuning.weighted_layers(model)}


def test_freezing_counts_weighted_layers_or_stops_at_a_named_one(trained_model):
    model = model_files.load_model(trained_model)
    names = [layer.name for layer in finetuning.weighted_layers(model)]
    assert finetuning.freeze_layers(model, freeze=3) == 3
    assert [layer.trainable for layer in finetuning.weighted_layers(model)][:4] == [False, False, False, True]
    model = model_files.load_model(trained_model)
    finetuning.freeze_layers(model, freeze_until=names[1])
    assert not any(layer.trainable for layer in model.layers[:model.layers.index(model.get_layer(names[1])) + 1])
    with pytest.raises(BadValue, match="has no layer 'nowhere'"):
        finetuning.freeze_layers(model_files.load_model(trained_model), freeze_until="nowhere")
    with pytest.raises(BadValue, match="freeze fewer"):
        finetuning.freeze_layers(model_files.load_model(trained_model), freeze=len(names))


def test_a_new_head_changes_the_last_layer_only(trained_model):
    model = model_files.load_model(trained_model)
    before = weights_by_layer(model)
    finetuning.new_head(model, seed=1)
    after = weights_by_layer(model)
    last = finetuning.weighted_layers(model)[-1].name
    assert not np.allclose(before[last][0], after[last][0]) and not after[last][1].any()
    assert all(np.array_equal(b, a) for name in before if name != last for b, a in zip(before[name], after[name]))


def test_fine_tuning_starts_from_the_model_and_keeps_frozen_layers(tmp_path, train_csv, trained_model):
    result = run_script("train.py", train_csv, "--recipe", "finetune", "--init", trained_model, "--freeze", 2,
                        "--epochs", 2, "--val-size", 64, "--batch-size", 64, "--precision", "fp32",
                        "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "2 layers frozen" in result.stdout
    start, tuned = (weights_by_layer(model_files.load_model(path)) for path in (trained_model, result.last_line))
    names = list(start)
    for name in names[:2]:
        assert all(np.array_equal(a, b) for a, b in zip(start[name], tuned[name])), name
    assert not all(np.array_equal(a, b) for a, b in zip(start[names[-1]], tuned[names[-1]]))
    assert files.read_json(files.settings_path(result.last_line))["init"] == str(trained_model)


@pytest.mark.parametrize("arguments, message", [
    (["--freeze", 2], "need --init MODEL"),
    (["--init", "missing.h5"], "--init missing.h5: no such model file"),
    (["--init", "{model}", "--freeze", 2, "--freeze-until", "x"], "give one of them"),
    (["--init", "{model}", "--freeze", 999], "--freeze: the model has"),
], ids=["freeze alone", "missing model", "both freezes", "too many frozen"])
def test_options_that_do_not_fit_are_refused(tmp_path, train_csv, trained_model, arguments, message):
    arguments = [str(part).format(model=trained_model) for part in arguments]
    result = run_script("train.py", train_csv, *arguments, "--val-size", 64, "--out-dir", tmp_path)
    assert_refused(result, message)


@pytest.mark.parametrize("class_count", [2, 3])
def test_a_fitted_head_predicts_as_the_logistic_regression_on_the_models_features(trained_model, faces,
                                                                                   class_count):
    images, fer_labels = faces
    labels = fer_labels % class_count
    model = finetuning.replace_head(model_files.with_precision(model_files.load_model(trained_model), "fp32"),
                                    class_count)
    finetuning.fit_head(model, images, labels)
    head = finetuning.weighted_layers(model)[-1]
    features = keras.Model(model.inputs, head.input).predict(images[..., None].astype(np.float32), verbose=0)
    features = np.asarray(features, np.float32)
    regression = LogisticRegression(C=1.0, max_iter=2000).fit(features, labels)
    probabilities = prediction.predict_probabilities(model, images)
    np.testing.assert_allclose(probabilities, regression.predict_proba(features), atol=1e-4)
    assert model.output_shape[-1] == class_count
