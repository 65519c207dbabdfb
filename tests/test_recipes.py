"""Recipe options: the strong augmentation, schedules, class weights, --recipe and what gets saved."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from common import augmentation, cli, data, files, model_files, model_lists, prediction, training
from helpers import assert_refused, run_script


def test_random_affine_is_the_identity_when_every_range_is_zero():
    images = np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 1)).astype("float32")
    generator = tf.random.Generator.from_seed(0)
    warped = augmentation.random_affine(tf.constant(images), generator, shift=0.0, zoom=0.0, degrees=0.0)
    flipped = np.any(np.abs(warped.numpy() - images) > 1e-3, axis=(1, 2, 3))
    for index, was_flipped in enumerate(flipped):  # only the random mirror remains
        expected = images[index, :, ::-1] if was_flipped else images[index]
        np.testing.assert_allclose(warped[index], expected, atol=1e-3)


def test_random_erasing_paints_one_grey_rectangle_on_about_half_the_faces():
    images = tf.fill((400, 48, 48, 1), -1.0)  # a value the grey level (0..255) never takes
    erased = augmentation.random_erasing(images, tf.random.Generator.from_seed(1)).numpy()
    painted = erased[..., 0] != -1.0
    share_painted = painted.any(axis=(1, 2)).mean()
    assert 0.4 < share_painted < 0.6
    for face, mask in zip(erased[..., 0], painted):
        if mask.any():
            rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            assert mask.sum() == len(rows) * len(columns)  # a filled rectangle
            assert len(np.unique(face[mask])) == 1  # of one grey level
            assert mask.mean() <= 0.13


def test_mixup_blends_each_face_with_its_mirror_position_and_the_targets_alike():
    faces = np.repeat(np.arange(0, 160, 20, dtype=np.uint8), 48 * 48).reshape(8, 48, 48)  # face i: 20 i
    labels = np.arange(8) % 7
    teacher = np.random.default_rng(0).dirichlet(np.ones(7), 8).astype("float32")
    batches = [training.make_dataset(faces, labels, (48, 48, 1), 7, 8, soft_targets=teacher, mixup=mixup)
               for mixup in (0.0, 0.4)]
    plain_images, plain_targets = (tensor.numpy() for tensor in next(iter(batches[0])))
    mixed_images, mixed_targets = (tensor.numpy() for tensor in next(iter(batches[1])))
    np.testing.assert_array_equal(plain_images[..., 0], faces)  # mixup 0: the batch as it is
    weights = []
    for index in range(8):
        partner = 7 - index
        image = mixed_images[index, ..., 0]
        assert np.ptp(image) < 1e-3  # a blend of two flat faces is flat
        if faces[index, 0, 0] == faces[partner, 0, 0]:
            continue
        weight = (image[0, 0] - faces[partner, 0, 0]) / (float(faces[index, 0, 0]) - faces[partner, 0, 0])
        assert 0.0 <= weight <= 1.0
        expected = weight * plain_targets[index] + (1 - weight) * plain_targets[partner]
        np.testing.assert_allclose(mixed_targets[index], expected, atol=1e-4)  # labels and teacher alike
        weights.append(weight)
    np.testing.assert_allclose(mixed_targets[:, :7].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(mixed_targets[:, 7:].sum(axis=1), 1.0, atol=1e-5)
    assert len(set(np.round(weights, 4))) == len(weights)  # a weight drawn for every face


def test_balanced_class_weights_equalise_the_classes():
    labels = np.array([0] * 60 + [1] * 6 + [3] * 134)
    weights = training.balanced_class_weights(labels, 7)
    counts = np.bincount(labels, minlength=7)
    assert weights[1] == 200 / (7 * 6) and weights[2] == 1.0  # an absent class keeps weight 1
    totals = [weights[label] * counts[label] for label in (0, 1, 3)]
    np.testing.assert_allclose(totals, 200 / 7)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    schedule = training.learning_rate_schedule("cosine", 0.01, warmup_epochs=2, epochs=10, steps_per_epoch=5)
    rates = [float(schedule(step)) for step in (0, 10, 30, 50)]
    np.testing.assert_allclose(rates, [1e-4, 0.01, 0.005, 0.0], atol=1e-6)
    assert training.learning_rate_schedule("constant", 0.01, 2, 10, 5) == 0.01


def test_continuing_a_cosine_run_restarts_warm_at_the_saved_step():
    # retrain.py stretches the decay to LAST_EPOCH and resumes at the saved step: 20 -> 40 epochs
    schedule = training.learning_rate_schedule("cosine", 0.01, warmup_epochs=2, epochs=40, steps_per_epoch=5)
    resumed, final = float(schedule(20 * 5)), float(schedule(40 * 5))
    np.testing.assert_allclose(resumed, 0.01 * 0.5 * (1 + np.cos(np.pi * 18 / 38)), rtol=1e-5)
    assert 0.5 < resumed / 0.01 < 0.6 and final == 0.0


def parse_training_command(tmp_path, *argv):
    parser = cli.ArgumentParser("test")
    cli.add_training_options(parser, recipes=True)
    return cli.parse_training_options(parser, [*argv, "--out-dir", str(tmp_path)])


def test_a_recipe_sets_the_defaults_and_explicit_flags_win(tmp_path):
    strong = parse_training_command(tmp_path, "--recipe", "strong", "--epochs", "3", "--class-weight", "balanced")
    assert (strong.arch, strong.epochs, strong.optimizer, strong.augment) == ("vgg", 3, "adamw", "strong")
    assert strong.class_weight == "balanced" and strong.label_smoothing == 0.1 and strong.keep == "last"
    report = parse_training_command(tmp_path)  # the report's own recipe, written out
    assert vars(report) == dict(arch="seed", epochs=20, batch_size=128, seed=0, optimizer="adam", learning_rate=1e-3,
                                schedule="constant", warmup_epochs=0, label_smoothing=0.0, weight_decay=0.0,
                                augment="report", mixup=0.0, class_weight="none", ema=0.0, keep="best", precision="bf16",
                                val_size=None, folds=None, fold=None, recipe="report", out_dir=str(tmp_path),
                                strategy="default", restart=False, deterministic=False, classes=None)


def test_a_recipe_file_changes_a_named_recipe_and_flags_still_win(tmp_path):
    recipe = tmp_path / "longer_strong.json"
    recipe.write_text(json.dumps({"recipe": "strong", "epochs": 60, "learning_rate": 0.001, "val_size": 0.1}))
    options = parse_training_command(tmp_path, "--recipe", str(recipe), "--seed", "3")
    assert (options.arch, options.optimizer, options.epochs, options.learning_rate) == ("vgg", "adamw", 60, 0.001)
    assert options.val_size == 0.1 and options.seed == 3 and options.keep == "last"
    assert parse_training_command(tmp_path, "--recipe", str(recipe), "--epochs", "5").epochs == 5
    help_text = " ".join(run_script("train.py", "--recipe", recipe, "--help").stdout.split())
    assert "training epochs (default: 60)" in help_text and "(default: adamw)" in help_text


def test_a_model_s_settings_as_the_recipe_train_as_it_was_trained(tmp_path, trained_model):
    settings = files.read_json(files.settings_path(trained_model))
    options = parse_training_command(tmp_path, "--recipe", files.settings_path(trained_model))
    for name in ("arch", "epochs", "batch_size", "seed", "optimizer", "learning_rate", "augment", "keep"):
        assert getattr(options, name) == settings[name]
    assert options.val_size == 64 == settings["val_size"]
    fold_member = tmp_path / "fold_member_settings.json"  # a fold's settings count its rows as val_size too
    fold_member.write_text(json.dumps({**settings, "folds": 4, "fold": 1, "val_size": 80}))
    options = parse_training_command(tmp_path, "--recipe", str(fold_member))
    assert (options.folds, options.fold, options.val_size) == (4, 1, None)


@pytest.mark.parametrize("content, message", [
    ('{"epoch": 60}', "'epoch' is not a recipe option; a recipe file sets arch, epochs"),
    ('{"epochs": 0}', 'epochs 0: expected a positive integer'),
    ('{"optimizer": "lion"}', 'optimizer "lion": expected one of adam, adamw, sgd'),
    ('{"learning_rate": null}', "learning_rate null: expected a value"),
    ('{"recipe": "strongest"}', 'recipe "strongest": expected one of report, strong, long, finetune'),
    ('[60]', "expected a JSON object of options"),
    ('epochs = 60', "not a JSON file"),
])
def test_a_bad_recipe_file_is_refused_by_name(tmp_path, train_csv, content, message):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(content)
    assert_refused(run_script("train.py", train_csv, "--recipe", recipe, "--out-dir", tmp_path),
                   f"--recipe {recipe}: {message}")
    assert not list(tmp_path.glob("*.h5"))


def test_a_recipe_that_is_neither_a_name_nor_a_file_is_refused(train_csv):
    assert_refused(run_script("train.py", train_csv, "--recipe", "strongest"), "argument --recipe: 'strongest' is "
                   "neither a recipe (report, strong, long, finetune) nor a JSON file")


def test_help_shows_the_chosen_recipes_defaults():
    result = run_script("train.py", "--recipe", "strong", "--help")
    assert result.exit_code == 0
    help_text = " ".join(result.stdout.split())
    assert "training epochs (default: 40)" in help_text and "(default: adamw)" in help_text
    assert "training epochs (default: 20)" in " ".join(run_script("train.py", "--help").stdout.split())


def test_strong_recipe_trains_and_records_how_the_model_was_made(tmp_path, train_csv):
    result = run_script("train.py", train_csv, "--recipe", "strong", "--epochs", 2, "--warmup-epochs", 1,
                        "--val-size", 64, "--class-weight", "balanced", "--keep", "last", "--mixup", 0.2,
                        "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    settings = json.load(open(files.settings_path(result.last_line)))
    assert settings["architecture"] == "vgg_cnn" and settings["recipe"] == "strong"
    assert (settings["optimizer"], settings["schedule"], settings["augment"]) == ("adamw", "cosine", "strong")
    assert settings["label_smoothing"] == 0.1 and settings["weight_decay"] == 0.05
    assert settings["class_weight"] == "balanced" and settings["kept_epoch"] == 2
    assert settings["warmup_epochs"] == 1 and settings["mixup"] == 0.2
    assert result.last_line.endswith(files.model_stem(settings["last_val_accuracy"]) + ".h5")


def test_keep_best_saves_the_weights_of_the_best_validation_epoch(tmp_path, train_csv):
    from common import data, prediction

    result = run_script("train.py", train_csv, "--epochs", 4, "--val-size", 64, "--batch-size", 64,
                        "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    history = np.loadtxt(files.history_path(result.last_line), delimiter=",", skiprows=1)
    best_row = int(np.argmax(history[:, 4]))
    settings = json.load(open(files.settings_path(result.last_line)))
    assert settings["keep"] == "best" and settings["kept_epoch"] == best_row + 1
    assert result.last_line.endswith(files.model_stem(history[best_row, 4]) + ".h5")
    val_set = data.split_validation(data.load_dataset(str(train_csv)), 64)[1]
    model = model_files.load_model(result.last_line)
    predicted = prediction.predict_probabilities(model, val_set.images).argmax(axis=1)
    assert abs((predicted == val_set.labels).mean() - history[best_row, 4]) <= 1 / 64


def test_ema_saves_the_averaged_weights_scored_after_the_last_epoch(tmp_path, train_csv):
    result = run_script("train.py", train_csv, "--epochs", 2, "--val-size", 64, "--batch-size", 64,
                        "--ema", 0.9, "--keep", "last", "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "averaged weights (decay 0.9): val accuracy" in result.stdout
    settings = json.load(open(files.settings_path(result.last_line)))
    assert settings["ema"] == 0.9 and settings["kept_epoch"] == 2
    model = model_files.load_model(result.last_line)
    dataset = data.load_dataset(str(train_csv))
    val_set = data.split_validation(dataset, 64)[1]
    predicted = prediction.predict_probabilities(model, val_set.images).argmax(axis=1)
    assert abs((predicted == val_set.labels).mean() - settings["kept_val_accuracy"]) <= 1 / 64
    assert settings["val_unseen_rows"] + settings["val_rows_copied_in_training"] == 64


def test_ema_with_the_best_epoch_is_refused(train_csv, tmp_path):
    result = run_script("train.py", train_csv, "--ema", 0.99, "--keep", "best", "--out-dir", tmp_path)
    assert result.exit_code == 2 and "--ema saves the averaged weights" in result.stderr


def test_a_students_teacher_targets_are_the_mirror_averaged_probabilities_computed_once(tmp_path, train_csv, trained_model):
    arguments = ["train.py", train_csv, "--epochs", 1, "--val-size", 64, "--batch-size", 64,
                 "--teacher", trained_model, "--out-dir", tmp_path]
    first = run_script(*arguments)
    assert first.exit_code == 0, first.stderr
    settings = json.load(open(files.settings_path(first.last_line)))
    assert settings["teacher"] == str(trained_model) and settings["distill_weight"] == 0.7
    assert len([name for name in os.listdir(tmp_path) if name.startswith(".teacher-")]) == 2
    images = data.load_dataset(str(train_csv)).images
    val_images, train_images = images[:64], images[64:]  # the validation rows, then the training rows
    teacher_model = model_files.load_model(trained_model)
    for faces in (train_images, val_images):
        teacher = np.load(tmp_path / f".teacher-{distillation_cache_key(trained_model, faces)}.npy")
        mirrored = (prediction.predict_probabilities(teacher_model, faces)
                    + prediction.predict_probabilities(teacher_model, faces[:, :, ::-1])) / 2
        np.testing.assert_allclose(teacher, mirrored, atol=2e-3)  # each face and its mirror, averaged
    val_teacher = np.load(tmp_path / f".teacher-{distillation_cache_key(trained_model, val_images)}.npy")
    accuracy = (val_teacher.argmax(axis=1) == data.load_dataset(str(train_csv)).labels[:64]).mean()
    assert f"the teachers on the 64 validation rows: accuracy {accuracy:.4f}" in first.stdout
    assert settings["teachers_val_accuracy"] == accuracy
    second = run_script(*arguments)
    assert second.stdout.count("teacher probabilities from") == 2  # labelled once


def test_a_students_validation_loss_is_its_training_loss_on_the_validation_faces(tmp_path, train_csv, trained_model):
    from common import distillation

    result = run_script("train.py", train_csv, "--epochs", 1, "--val-size", 64, "--batch-size", 64,
                        "--teacher", trained_model, "--precision", "fp32", "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    val_set = data.split_validation(data.load_dataset(str(train_csv)), 64)[1]
    teacher = np.load(tmp_path / f".teacher-{distillation_cache_key(trained_model, val_set.images)}.npy")
    student = prediction.predict_probabilities(model_files.load_model(result.last_line), val_set.images)
    labels = np.eye(7, dtype=np.float32)[val_set.labels]
    loss = distillation.DistillationLoss(0.7, 2.0)
    with_teachers = float(loss(np.concatenate([labels, teacher], axis=1), student))
    with_labels_as_teachers = float(loss(np.concatenate([labels, labels], axis=1), student))
    history_loss = files.read_history(result.last_line)[-1][files.HISTORY_COLUMNS.index("val_loss")]
    assert abs(history_loss - with_teachers) < 0.02 * with_teachers
    assert abs(history_loss - with_labels_as_teachers) > 0.1 * with_teachers


def test_unlabelled_faces_join_a_student_labelled_by_its_teacher(tmp_path, train_csv, test_csv, trained_model):
    result = run_script("train.py", train_csv, "--epochs", 1, "--val-size", 64, "--batch-size", 64,
                        "--teacher", trained_model, "--unlabelled", test_csv, "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert f"40 unlabelled faces of {test_csv} join the 256 training rows, labelled by the teachers" in result.stdout
    settings = json.load(open(files.settings_path(result.last_line)))
    assert settings["unlabelled"] == str(test_csv)
    assert (settings["training_rows"], settings["model_labelled_rows"], settings["data_rows"]) == (296, 40, 320)
    # its validation rows are still those of the 320-row file: it may teach or join runs validated on them
    assert data.held_out_rows(result.last_line) == data.HeldOutRows(64, 320)
    faces_key = distillation_cache_key(trained_model, data.load_dataset(str(test_csv), part="test").images)
    teacher = np.load(tmp_path / f".teacher-{faces_key}.npy")  # the teacher's answers for the new faces, kept
    assert teacher.shape == (40, 7) and np.allclose(teacher.sum(axis=1), 1, atol=1e-3)


def test_unlabelled_copies_of_validation_faces_are_left_out(tmp_path, train_csv, test_csv, capsys):
    train_set, val_set = data.split_validation(data.load_dataset(str(train_csv)), 64)
    test_images = data.load_dataset(str(test_csv)).images
    mixed = tmp_path / "mixed.csv"
    data.write_csv_dataset(str(mixed), np.concatenate([test_images[:10], val_set.images[:3]]))
    faces = cli.load_unlabelled_faces(str(mixed), val_set, "--unlabelled")
    assert len(faces) == 10 and faces.labels is None
    assert f"3 of the faces of {mixed} are exact copies of validation faces" in capsys.readouterr().err
    copies_only = tmp_path / "copies.csv"
    data.write_csv_dataset(str(copies_only), val_set.images[:3])
    with pytest.raises(cli.UsageError, match="every face is a copy of a validation face"):
        cli.load_unlabelled_faces(str(copies_only), val_set, "--unlabelled")


def distillation_cache_key(model_path, images):
    from common import distillation

    return distillation.cache_key([str(model_path)], images, False)


def test_each_teacher_of_a_list_is_kept_so_an_interrupted_labelling_resumes_after_it(tmp_path, trained_model):
    from common import distillation

    teachers = [model_lists.ListedModel(1.0, str(trained_model), 1),
                model_lists.ListedModel(3.0, files.pretrained_model_path("pretrained-vgg"), 2)]
    images = np.random.default_rng(0).integers(0, 256, (20, 48, 48), dtype=np.uint8)
    average = distillation.teacher_probabilities(teachers, data.FER2013_CLASSES, images, False, str(tmp_path))
    member_paths = [tmp_path / f".teacher-{distillation.cache_key([listed.path], images, False)}.npy"
                    for listed in teachers]
    members = [np.load(path) for path in member_paths]
    np.testing.assert_allclose(average, (members[0] + 3 * members[1]) / 4, atol=1e-6)
    assert len([name for name in os.listdir(tmp_path) if name.startswith(".teacher-")]) == 3

    # interrupted before the average was kept: the finished teacher's file is used, not recomputed
    os.remove(tmp_path / f".teacher-{distillation.cache_key([t.path for t in teachers], images, False)}.npy")
    uniform = np.full_like(members[0], 1 / 7)
    np.save(member_paths[0], uniform)
    resumed = distillation.teacher_probabilities(teachers, data.FER2013_CLASSES, images, False, str(tmp_path))
    np.testing.assert_allclose(resumed, (uniform + 3 * members[1]) / 4, atol=1e-6)


def test_a_teacher_validated_on_other_rows_is_refused(tmp_path, train_csv, trained_model):
    result = run_script("train.py", train_csv, "--epochs", 1, "--val-size", 32, "--teacher", trained_model,
                        "--out-dir", tmp_path)
    assert_refused(result, f"--teacher {trained_model}: {trained_model} was validated on the first 64 of 320 "
                           f"rows, this run on the first 32 of 320",
                   "a teacher must not have trained on the rows the run is scored on")


def test_a_teacher_of_another_fold_is_refused(tmp_path):
    teacher = str(tmp_path / "teacher.h5")
    files.write_json(files.settings_path(teacher), {"validation_rows": 160, "training_rows": 160, "folds": 2, "fold": 0})
    data.check_not_trained_on([teacher], "teacher", data.HeldOutRows(160, 320, 2, 0))  # the same rows
    with pytest.raises(cli.BadValue, match="on fold 0 of 2 .160 of 320 rows., this run on fold 1 of 2"):
        data.check_not_trained_on([teacher], "teacher", data.HeldOutRows(160, 320, 2, 1))
    with pytest.raises(cli.BadValue, match="no settings file beside it"):
        data.check_not_trained_on([str(tmp_path / "bare.h5")], "teacher", data.HeldOutRows(160, 320, 2, 0))


def test_a_teacher_of_other_data_is_named_not_refused(tmp_path, capsys):
    teacher = str(tmp_path / "fer2013_teacher.h5")  # e.g. the shipped model, for a student of one's own faces
    files.write_json(files.settings_path(teacher), {"validation_rows": 2400, "training_rows": 26309})
    data.check_not_trained_on([teacher], "teacher", data.HeldOutRows(50, 500))
    note = capsys.readouterr().err
    assert f"note: the teacher {teacher} trained on other data (28709 rows, this run's 500)" in note


def test_the_distillation_loss_mixes_the_label_and_the_teacher():
    from common import distillation

    student = tf.constant([[0.7, 0.1, 0.1, 0.05, 0.05, 0.0, 0.0]])
    label = tf.one_hot([0], 7)
    teacher = tf.constant([[0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]])
    targets = tf.concat([label, teacher], axis=1)
    hard_only = distillation.DistillationLoss(0.0, 1.0)(targets, student)
    assert float(hard_only) == pytest.approx(-np.log(0.7), rel=1e-4)
    soft_only = distillation.DistillationLoss(1.0, 1.0)(targets, student)
    expected_kl = 0.5 * np.log(0.5 / 0.7) + 0.5 * np.log(0.5 / 0.1)
    assert float(soft_only) == pytest.approx(expected_kl, rel=1e-3)


def test_val_size_zero_trains_on_every_row_and_keeps_the_last_epoch(tmp_path, train_csv, test_csv):
    result = run_script("train.py", train_csv, "--epochs", 2, "--val-size", 0, "--batch-size", 64,
                        "--out-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert os.path.basename(result.last_line) == "all_rows.h5"
    settings = json.load(open(files.settings_path(result.last_line)))
    assert (settings["training_rows"], settings["validation_rows"]) == (320, 0)
    assert (settings["keep"], settings["kept_epoch"], settings["kept_val_accuracy"]) == ("last", 2, None)
    (tmp_path / "list.txt").write_text("1 all_rows.h5\n")
    scored = run_script("test_by_vote.py", test_csv, tmp_path / "r.csv", tmp_path / "list.txt",
                        "--eval", train_csv, "--val-size", 0)
    assert scored.exit_code == 2 and "scoring needs validation rows" in scored.stderr
