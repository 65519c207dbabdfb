"""ship_model.py: the shipped copy, its records, its predictions and a model card measured on it."""

import os
import re
import shutil

import numpy as np
import pandas as pd

from common import data, files
from helpers import assert_refused, run_script


def ship_over_an_earlier_model(tmp_path, train_csv, test_csv, model_path):
    """Ships `model_path` into a folder that holds an earlier model; returns (result, folder)."""
    shipped_folder = tmp_path / "pretrained"
    shipped_folder.mkdir()
    earlier = shipped_folder / "fer_old_0.500000.h5"
    shutil.copyfile(model_path, earlier)
    shutil.copyfile(files.settings_path(model_path), files.settings_path(str(earlier)))
    result = run_script("ship_model.py", train_csv, test_csv, model_path, "--out-dir", shipped_folder,
                        "--results", tmp_path / "results")
    return result, shipped_folder


def test_shipped_model_card_states_what_the_shipped_file_scores(tmp_path, train_csv, test_csv, trained_model):
    result, shipped_folder = ship_over_an_earlier_model(tmp_path, train_csv, test_csv, trained_model)
    assert result.exit_code == 0, result.stderr
    shipped = result.last_line
    # one model remains, with its records and a card
    assert sorted(os.listdir(shipped_folder)) == sorted(
        ["MODEL_CARD.md", os.path.basename(shipped), os.path.basename(files.settings_path(shipped)),
         os.path.basename(files.history_path(shipped))])
    assert re.fullmatch(r"fer_seed_0\.\d{6}\.h5", os.path.basename(shipped))

    import keras

    plain = keras.models.load_model(shipped)  # plain Keras opens the copy
    validation = data.load_dataset(str(train_csv), require_labels=True).subset(slice(0, 64))
    predicted = plain.predict(validation.images[..., None].astype("float32"), verbose=0).argmax(axis=1)
    card = (shipped_folder / "MODEL_CARD.md").read_text()
    assert f"| single view | {np.mean(predicted == validation.labels):.2%} |" in card
    for class_index, name in enumerate(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]):
        rows = int(np.sum(validation.labels == class_index))
        assert f"| {name} | {rows} |" in card
    assert "python train.py" in card and "python ship_model.py" in card
    probabilities = plain.predict(validation.images[..., None].astype("float32"), verbose=0)
    from common import explain

    assert explain.calibration_sentence(explain.calibration(probabilities, validation.labels)) in " ".join(
        card.split())

    test_faces = data.load_dataset(str(test_csv), part="test")
    written = pd.read_csv(tmp_path / "results" / f"pretrained_{os.path.basename(shipped)[:-3]}.csv")
    expected = plain.predict(test_faces.images[..., None].astype("float32"), verbose=0).argmax(axis=1)
    assert written["id"].tolist() == sorted(test_faces.ids.tolist())
    assert written["label"].tolist() == expected[np.argsort(test_faces.ids, kind="stable")].tolist()
    assert (tmp_path / "results" / f"pretrained_{os.path.basename(shipped)[:-3]}_tta.csv").exists()


def test_a_model_without_its_settings_is_refused_before_anything_is_written(tmp_path, train_csv, test_csv,
                                                                            trained_model):
    bare = tmp_path / "bare.h5"
    shutil.copyfile(trained_model, bare)
    result = run_script("ship_model.py", train_csv, test_csv, bare, "--out-dir", tmp_path / "pretrained",
                        "--results", tmp_path / "results")
    assert_refused(result, "_settings.json beside it")
    assert not (tmp_path / "pretrained").exists() and not (tmp_path / "results").exists()


def test_a_fine_tuned_second_model_ships_under_its_name(tmp_path, monkeypatch, train_csv, test_csv, trained_model):
    second_folder = tmp_path / "pretrained" / "vgg"
    monkeypatch.setitem(files.SHIPPED_MODEL_FOLDERS, "pretrained-vgg", str(second_folder))
    # before anything is shipped there, the name is refused in one line that names the folder
    assert_refused(run_script("test.py", test_csv, tmp_path / "before.csv", "pretrained-vgg"),
                   str(second_folder), "pretrained-vgg")

    tuned = run_script("train.py", train_csv, "--recipe", "finetune", "--init", trained_model, "--epochs", 2,
                       "--val-size", 64, "--batch-size", 64, "--out-dir", tmp_path / "tuned")
    assert tuned.exit_code == 0, tuned.stderr
    shipped = run_script("ship_model.py", train_csv, test_csv, tuned.last_line, "--out-dir", second_folder,
                         "--results", tmp_path / "results")
    assert shipped.exit_code == 0, shipped.stderr

    card = (second_folder / "MODEL_CARD.md").read_text()
    prose = " ".join(card.split())
    assert "`--model pretrained-vgg` picks it" in prose
    assert f"Started from `{os.path.basename(trained_model)}`" in prose
    assert re.fullmatch(r"fer_seed_0\.\d{6}\.h5", os.path.basename(shipped.last_line))  # the model's own arch
    first_command = files.read_json(files.settings_path(trained_model))["command"]
    tuning_command = files.read_json(files.settings_path(tuned.last_line))["command"]
    assert card.index(f"python {first_command}\n") < card.index(f"python {tuning_command}\n")

    # the name now stands for the shipped file: the same predictions as the file named explicitly
    by_name = run_script("test.py", test_csv, tmp_path / "by_name.csv", "pretrained-vgg")
    by_path = run_script("test.py", test_csv, tmp_path / "by_path.csv", shipped.last_line)
    assert by_name.exit_code == 0 and by_path.exit_code == 0, by_name.stderr + by_path.stderr
    assert f"with {shipped.last_line}" in by_name.stdout
    assert (tmp_path / "by_name.csv").read_text() == (tmp_path / "by_path.csv").read_text()


def test_the_card_says_which_epochs_its_training_time_covers():
    from common import model_card

    assert model_card.training_time({"wall_seconds": 5700, "epochs": 160, "timed_epochs": 160}) == "95 minutes"
    # continued by retrain.py: its own epochs only
    assert (model_card.training_time({"wall_seconds": 600, "epochs": 40, "timed_epochs": 20})
            == "10 minutes for 20 of its 40 epochs")
    # resumed from a backup that kept no epoch times: the settings say where the timed attempt began
    assert (model_card.training_time({"wall_seconds": 1971, "epochs": 160, "resumed_after_epoch": 124})
            == "33 minutes for 36 of its 160 epochs")


def test_the_card_names_the_members_of_a_distilled_model_s_teacher_list(tmp_path, trained_model):
    from common import model_card, shipping

    teacher_list = tmp_path / "teachers.txt"
    teacher_list.write_text(f"1 {trained_model}\n2 pretrained\n")
    _, teachers = shipping.model_origins({"teacher": str(teacher_list), "command": "train.py data.npz"})
    shipped = files.repository_relative_path(files.pretrained_model_path())
    assert teachers == ((1.0, os.path.abspath(trained_model)), (2.0, shipped))
    words = model_card.distillation_words({"teacher": str(teacher_list), "teacher_tta": True}, teachers)
    assert words == (f"distilled from {teacher_list} (the averaged probabilities of `{os.path.abspath(trained_model)}` "
                     f"(weight 1) and `{shipped}` (weight 2), ten views of each face)")
    # one teacher model: named alone
    _, teachers = shipping.model_origins({"teacher": "models/a.h5"})
    assert model_card.distillation_words({"teacher": "models/a.h5"}, teachers) == (
        "distilled from models/a.h5 (each face and its mirror)")
    # with unlabelled faces labelled by the teacher: the card says which, and counts them apart
    settings = {"teacher": "models/a.h5", "unlabelled": "data/test.csv", "validation_rows": 2400,
                "training_rows": 33487, "model_labelled_rows": 7178}
    assert model_card.distillation_words(settings, teachers) == (
        "distilled from models/a.h5 (each face and its mirror), on the training rows and the unlabelled faces "
        "of data/test.csv")
    assert model_card.validation_sentence(settings) == (
        "its first 2,400 rows; training: the other 26,309 and 7,178 faces labelled by a model")
