"""Ships a trained model with the toolkit: a plain-Keras float32 copy in pretrained/ (the default
model) or pretrained/small/ (the second, small one: `--model pretrained-small`) with its training
records, its test-split predictions in results/, and a model card whose every figure is measured
now, on the shipped file.

Usage:
    python ship_model.py data/fer2013.npz data/fer2013.npz models/long_s0/0.712083.h5
    python ship_model.py train.csv test.csv models/0.691667.h5 --name fer_vgg
    python ship_model.py data/fer2013.npz data/fer2013.npz models/small/0.695000.h5 --out-dir pretrained/small

TRAIN_DATA is the labelled file the model was trained on: the validation rows its _settings.json
names (the first rows, or a fold) are scored single view and with --tta, on every row and on the
rows without an exact copy among the training rows, and per class. TEST_DATA's faces (the test part
of an .npz) are predicted into <results>/pretrained_<stem>.csv and _tta.csv. The copy is
<out-dir>/<name>_<val_acc>.h5 (--name default: fer_<arch>), refused like export.py's copies when
under 99.5% of its test labels agree with the toolkit's float32 prediction. Only once everything is
measured are files written: the copy, its _settings.json and _history.csv, MODEL_CARD.md (replaced),
the predictions; then the models shipped before it in <out-dir> are removed, so that the folder holds
the one model its name stands for. Prints the shipped file's path.
"""

import os
import shlex
import shutil
import sys

from common import classes, cli, data, files, model_lists

CARD_NAME = "MODEL_CARD.md"


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("train_data", help="the labelled data the model was trained on (.csv, .csv.gz, .npz)")
    parser.add_argument("test_data", help="the faces to write test-split predictions for (course test CSV, "
                                          "or the test part of an .npz)")
    parser.add_argument("model", help="a .h5 model written by train.py, with its _settings.json beside it")
    parser.add_argument("--name", help="file name before the accuracy (default: fer_<arch>, e.g. fer_vgg)")
    parser.add_argument("--out-dir", type=cli.output_folder, default=files.PRETRAINED_FOLDER,
                        help="the folder of the shipped model: pretrained (the default model) or "
                             "pretrained/small (the second shipped model, 'pretrained-small')")
    parser.add_argument("--results", type=cli.output_folder, default="results",
                        help="the folder of test-split predictions")
    options = parser.parse_args()

    settings = read_training_settings(options.model)
    for path in (options.train_data, options.test_data):
        if not os.path.exists(path):
            raise cli.UsageError(f"{path}: no such file or folder")
    stem = files.model_stem(settings["kept_val_accuracy"], prefix=f"{options.name or 'fer_' + settings['arch']}_")
    class_names = classes.saved_class_names(options.model)
    labelled = data.load_dataset(options.train_data, require_labels=True, class_names=class_names)
    test_set = data.load_dataset(options.test_data, part="test", class_names=class_names)
    with cli.naming(f"{options.model}: its validation rows"):
        train_part, val_set = data.split_validation(labelled, settings.get("val_size"), for_training=False,
                                                    folds=settings.get("folds"), fold=settings.get("fold"))
    copied, relabelled = data.exact_copies(val_set, train_part)
    starting_command, teachers = model_origins(settings)

    from common import exporting, model_card, model_files, prediction  # TensorFlow loads only after the input checked out

    model = model_files.load_model(options.model)
    class_names = classes.model_class_names(options.model, model.output_shape[-1])
    val_set, test_set = (classes.relabel(dataset, class_names, options.model) for dataset in (val_set, test_set))
    shipped_path = os.path.join(options.out_dir, stem + files.MODEL_SUFFIX)
    earlier = [name for name in os.listdir(options.out_dir) if name.endswith(files.MODEL_SUFFIX)
               and not name.startswith(".")] if os.path.isdir(options.out_dir) else []
    written = files.temporary_sibling(shipped_path)
    try:
        exporting.export_model(model, "h5", written, class_names)
        val_probabilities, test_labels = predict_both_ways(written, val_set, test_set)
        fp32_agreement, saved_agreement = exporting.export_agreement(model, test_labels[""], test_set.images)
        if fp32_agreement < exporting.MIN_AGREEMENT:
            raise cli.RunFailed(f"the float32 copy's labels agree with test.py's on {fp32_agreement:.2%} of "
                                f"the test faces, below {exporting.MIN_AGREEMENT:.1%}; nothing was shipped")
        measured = measurements(val_probabilities, val_set, ~copied, relabelled.sum(), len(test_set), class_names,
                                saved_agreement)
        command = shlex.join(["python", os.path.basename(sys.argv[0]), *sys.argv[1:]])
        card = model_card.model_card(files.repository_relative_path(shipped_path),
                                     files.shipped_model_name(options.out_dir), settings, measured, command,
                                     os.path.getsize(written) / 1e6,
                                     model_card.Origins(starting_command, teachers))
        files.move_into_place(written, shipped_path)
    finally:
        exporting.remove_export(written)  # whatever was not moved into place
    write_records(options.model, shipped_path, card, options.out_dir)
    for suffix, labels in test_labels.items():
        result_path = os.path.join(options.results, f"pretrained_{stem}{suffix}.csv")
        print(f"test-split predictions: {prediction.write_predictions(result_path, test_set.ids, labels)}")
    remove_earlier_models(options.out_dir, earlier, shipped_path)
    print(f"validation ({measured.validation_rows} rows): {measured.single_view.all_rows:.2%} single view, "
          f"{measured.tta.all_rows:.2%} with --tta; unseen ({measured.unseen_rows} rows): "
          f"{measured.single_view.unseen_rows:.2%}, {measured.tta.unseen_rows:.2%}")
    print(shipped_path)


def read_training_settings(model_path):
    """The model's _settings.json, which the card is written from; a model without one is refused."""
    model_lists.check_model_file(model_path)
    settings = files.read_json(files.settings_path(model_path))
    needed = ("arch", "command", "kept_val_accuracy", "kept_epoch", "keep", "epochs", "seed", "optimizer",
              "learning_rate", "augment", "batch_size", "training_rows", "validation_rows", "wall_seconds",
              "training_images_per_second", "trainable_parameters")
    if settings is None:
        raise cli.UsageError(f"{model_path}: no {files.settings_path(model_path)} beside it; ship_model.py "
                             f"ships models trained by this toolkit (their settings make the model card)")
    missing = [key for key in needed if key not in settings]
    if missing:
        raise cli.UsageError(f"{files.settings_path(model_path)}: lacks {', '.join(missing)}; expected the "
                             f"settings train.py writes")
    return settings


def model_origins(settings):
    """What the card says the model came from (the fields of `model_card.Origins`): the command that
    trained the model a fine-tuned model started from (`--init`, from that model's settings), and the
    (weight, path) of each member of a distilled model's teacher list (read now; a list no longer
    there is named alone)."""
    start = settings.get("init")
    start_settings = files.read_json(files.settings_path(start)) if start else None
    teacher = settings.get("teacher")
    teachers = ()
    if teacher and os.path.isfile(teacher) and not model_lists.has_model_file_name(teacher):
        with cli.naming(f"{settings.get('command')}: its --teacher"):
            teachers = tuple((listed.weight, files.repository_relative_path(os.path.normpath(listed.path)))
                             for listed in model_lists.read_model_list(teacher))
    return (start_settings.get("command") if start_settings else None), teachers


def predict_both_ways(shipped_file, val_set, test_set):
    """The shipped file's probabilities of the validation rows and labels of the test faces, single
    view and with --tta, as plain Keras opens it: ({"": probabilities, "_tta": probabilities} for the
    validation rows, {"": labels, "_tta": labels} for the test faces)."""
    from common import model_files, prediction

    shipped = model_files.load_model(shipped_file)
    val_probabilities, test_labels = {}, {}
    for suffix, tta in (("", False), ("_tta", True)):
        val_probabilities[suffix] = prediction.predict_probabilities(shipped, val_set.images, tta=tta)
        test_labels[suffix] = prediction.predict_probabilities(shipped, test_set.images, tta=tta).argmax(axis=1)
    return val_probabilities, test_labels


def measurements(val_probabilities, val_set, unseen, relabelled_copies, test_faces, class_names,
                 export_agreement):
    """The model card's figures from the shipped file's validation probabilities (`predict_both_ways`)."""
    from common import explain, model_card

    val_labels = {suffix: probabilities.argmax(axis=1) for suffix, probabilities in val_probabilities.items()}
    return model_card.Measurements(
        validation_rows=len(val_set), unseen_rows=int(unseen.sum()), relabelled_copies=int(relabelled_copies),
        single_view=model_card.scores(val_labels[""], val_set.labels, unseen),
        tta=model_card.scores(val_labels["_tta"], val_set.labels, unseen),
        confusion=explain.confusion_matrix(val_set.labels, val_labels[""], len(class_names)),
        class_names=tuple(class_names), export_agreement=export_agreement, test_faces=test_faces,
        calibration={suffix: explain.calibration(probabilities, val_set.labels)
                     for suffix, probabilities in val_probabilities.items()})


def write_records(model_path, shipped_path, card, out_dir):
    """The training run's settings and history beside the shipped file, and the model card."""
    for source, target in ((files.settings_path(model_path), files.settings_path(shipped_path)),
                           (files.history_path(model_path), files.history_path(shipped_path))):
        if os.path.exists(source):
            with files.named_output(target) as temporary_path:
                shutil.copyfile(source, temporary_path)
    with files.named_output(os.path.join(out_dir, CARD_NAME)) as temporary_path:
        with open(temporary_path, "w") as card_file:
            card_file.write(card)


def remove_earlier_models(out_dir, earlier, shipped_path):
    """Removes the models shipped before (their .h5, settings and history): one default remains."""
    for name in earlier:
        path = os.path.join(out_dir, name)
        if os.path.abspath(path) == os.path.abspath(shipped_path):
            continue
        for record in (path, files.settings_path(path), files.history_path(path)):
            if os.path.exists(record):
                os.unlink(record)
        print(f"removed the model shipped before: {path}", file=sys.stderr)


if __name__ == "__main__":
    cli.run(main)
