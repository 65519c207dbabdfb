"""Which rows score a model: the rows it validated on, read from its settings, unless told otherwise -
a model scored on rows it trained on is flattered."""

import json

import numpy as np
import pytest

from common import data, files
from common.errors import BadValue
from helpers import assert_refused, run_script


def dataset_of(rows, default_validation_rows=None):
    images = np.zeros((rows, 48, 48), np.uint8)
    return data.Dataset(images, np.arange(rows) % 7, np.arange(rows), "faces.csv",
                        default_validation_rows=default_validation_rows)


def scored_ids(dataset, val_size, model_paths):
    """The ids of the rows `data.models_validation_split` scores the models on."""
    _, val_set = data.models_validation_split(dataset, val_size, model_paths)
    return val_set.ids.tolist()


def model_with_settings(folder, name, **settings):
    path = folder / f"{name}.h5"
    path.write_bytes(b"")
    with open(files.settings_path(str(path)), "w") as handle:
        json.dump(settings, handle)
    return str(path)


def test_a_model_of_this_data_is_scored_on_its_own_validation_rows(tmp_path):
    model = model_with_settings(tmp_path, "a", validation_rows=40, training_rows=260)
    assert scored_ids(dataset_of(300), None, [model]) == list(range(40))
    fold_member = model_with_settings(tmp_path, "b", validation_rows=75, training_rows=225, folds=4, fold=1)
    assert scored_ids(dataset_of(300), None, [fold_member]) == list(range(75, 150))


def test_models_of_other_data_or_without_settings_get_the_file_s_default_rows(tmp_path):
    other_data = model_with_settings(tmp_path, "a", validation_rows=40, training_rows=100)
    bare = str(tmp_path / "bare.h5")
    assert scored_ids(dataset_of(300), None, [other_data, bare]) == list(range(300))
    assert scored_ids(dataset_of(3000), None, [other_data]) == list(range(2400))
    assert scored_ids(dataset_of(3000, default_validation_rows=500), None, [bare]) == list(range(500))


def test_a_model_trained_on_every_row_has_no_rows_of_its_own_to_score(tmp_path):
    model = model_with_settings(tmp_path, "all_rows", validation_rows=0, training_rows=300)
    with pytest.raises(BadValue, match="trained on every row of faces.csv, so no rows are its own"):
        scored_ids(dataset_of(300), None, [model])


def test_models_that_held_out_different_rows_are_refused_together(tmp_path):
    first = model_with_settings(tmp_path, "a", validation_rows=40, training_rows=260)
    second = model_with_settings(tmp_path, "b", validation_rows=30, training_rows=270)
    with pytest.raises(BadValue, match="held out different rows of faces.csv .*the first 40 of .* rows.*the first 30 of"):
        scored_ids(dataset_of(300), None, [first, second])
    assert scored_ids(dataset_of(300), 30, [first, second]) == list(range(30))


def test_rows_asked_for_beyond_a_model_s_own_are_named_as_flattering(tmp_path, capsys):
    model = model_with_settings(tmp_path, "a", validation_rows=40, training_rows=260)
    assert scored_ids(dataset_of(300), 0.5, [model]) == list(range(150))
    assert f"note: {model} held out the first 40 of 300 rows of faces.csv and trained on the others" in capsys.readouterr().err
    scored_ids(dataset_of(300), 40, [model])
    assert capsys.readouterr().err == ""


def test_test_by_vote_and_plot_model_score_a_model_on_its_own_rows(tmp_path, train_csv, test_csv, trained_model):
    # trained_model validated on the first 64 of the 320 rows; the file's default would be every row
    voted = run_script("test_by_vote.py", test_csv, tmp_path / "r.csv", trained_model, "--eval", train_csv)
    assert voted.exit_code == 0, voted.stderr
    assert "the model (single view): validation accuracy" in voted.stdout
    assert " on 64 rows" in voted.stdout and " on 320 rows" not in voted.stdout
    more = run_script("test_by_vote.py", test_csv, tmp_path / "r.csv", trained_model, "--eval", train_csv,
                      "--val-size", 100)
    assert " on 100 rows" in more.stdout and "trained on the others" in more.stderr
    plotted = run_script("plot_model.py", train_csv, trained_model, "--images", "1", "--out-dir", tmp_path)
    assert plotted.exit_code == 0, plotted.stderr
    assert "on 64 validation rows" in plotted.stdout


def test_test_by_vote_refuses_models_of_one_file_with_different_validation_rows(tmp_path, train_csv, test_csv,
                                                                               trained_model):
    other = tmp_path / "other.h5"
    other.write_bytes(open(trained_model, "rb").read())
    settings = files.read_json(files.settings_path(trained_model))
    settings.update(validation_rows=32, training_rows=288)
    with open(files.settings_path(str(other)), "w") as handle:
        json.dump(settings, handle)
    (tmp_path / "list.txt").write_text(f"1 {trained_model}\n1 {other}\n")
    assert_refused(run_script("test_by_vote.py", test_csv, tmp_path / "r.csv", tmp_path / "list.txt", "--eval",
                              train_csv), "--val-size: the models held out different rows", "score them apart")
