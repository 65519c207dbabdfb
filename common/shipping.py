"""Shipping a trained model (`ship_model.py`): a plain-Keras float32 copy in a shipped-model folder,
its training records beside it, and a model card whose every figure is measured on that copy.

Nothing is written until everything is measured; then the copy moves into place with its records and
card, and the models shipped before it in that folder are removed, so that the folder holds the one
model its name stands for. TensorFlow loads only inside `ship`.
"""

import os
import shutil
import sys
import typing

from common import files, model_lists
from common.errors import RunFailed, UsageError

CARD_NAME = "MODEL_CARD.md"
NEEDED_SETTINGS = ("arch", "command", "kept_val_accuracy", "kept_epoch", "keep", "epochs", "seed", "optimizer",
                   "learning_rate", "augment", "batch_size", "training_rows", "validation_rows", "wall_seconds",
                   "training_images_per_second", "trainable_parameters")


class Shipped(typing.NamedTuple):
    """What `ship` made: the shipped file, its measured figures (`model_card.Measurements`) and its
    labels of the test faces ({"": single view, "_tta": with --tta})."""
    path: str
    measured: object  # model_card.Measurements
    test_labels: dict


def read_training_settings(model_path):
    """The model's _settings.json, which the card is written from; a model without one is refused."""
    model_lists.check_model_file(model_path)
    settings = files.read_json(files.settings_path(model_path))
    if settings is None:
        raise UsageError(f"{model_path}: no {files.settings_path(model_path)} beside it; ship_model.py "
                         f"ships models trained by this toolkit (their settings make the model card)")
    missing = [key for key in NEEDED_SETTINGS if key not in settings]
    if missing:
        raise UsageError(f"{files.settings_path(model_path)}: lacks {', '.join(missing)}; expected the "
                         f"settings train.py writes")
    return settings


def model_origins(settings):
    """What the card says the model came from (`model_card.Origins`'s fields): the command that
    trained the model a fine-tuned model started from (`--init`, from that model's settings), and the
    (weight, path) of each member of a distilled model's teacher list (read now; a list no longer
    there is named alone). A teacher list that cannot be read raises BadValue."""
    start = settings.get("init")
    start_settings = files.read_json(files.settings_path(start)) if start else None
    teacher = settings.get("teacher")
    teachers = ()
    if teacher and os.path.isfile(teacher) and not model_lists.has_model_file_name(teacher):
        teachers = tuple((listed.weight, files.repository_relative_path(os.path.normpath(listed.path)))
                         for listed in model_lists.read_model_list(teacher))
    return (start_settings.get("command") if start_settings else None), teachers


def ship(model_path, settings, val_set, test_set, copied, relabelled, out_dir, stem, command, origins):
    """Ships `model_path` as `<out_dir>/<stem>.h5`: measures the float32 copy on `val_set` (`copied`:
    its rows with an exact copy among the training rows, `relabelled`: those copies with another
    label) and `test_set`, refuses it when under `exporting.MIN_AGREEMENT` of its test labels agree
    with the toolkit's float32 prediction, then writes the copy, its records and the card (`command`:
    how it was shipped, `origins`: `model_origins`) and removes the models shipped before it."""
    from common import classes, exporting, model_card, model_files  # TensorFlow loads here

    model = model_files.load_model(model_path)
    class_names = classes.model_class_names(model_path, model.output_shape[-1])
    val_set, test_set = (classes.relabel(dataset, class_names, model_path) for dataset in (val_set, test_set))
    shipped_path = os.path.join(out_dir, stem + files.MODEL_SUFFIX)
    earlier = [name for name in os.listdir(out_dir) if name.endswith(files.MODEL_SUFFIX)
               and not name.startswith(".")] if os.path.isdir(out_dir) else []
    written = files.temporary_sibling(shipped_path)
    try:
        exporting.export_model(model, "h5", written, class_names)
        val_probabilities, test_labels = predict_both_ways(written, val_set, test_set)
        fp32_agreement, saved_agreement = exporting.export_agreement(model, test_labels[""], test_set.images)
        if fp32_agreement < exporting.MIN_AGREEMENT:
            raise RunFailed(f"the float32 copy's labels agree with test.py's on {fp32_agreement:.2%} of "
                            f"the test faces, below {exporting.MIN_AGREEMENT:.1%}; nothing was shipped")
        measured = measurements(val_probabilities, val_set, ~copied, relabelled.sum(), len(test_set), class_names,
                                saved_agreement)
        card = model_card.model_card(files.repository_relative_path(shipped_path), files.shipped_model_name(out_dir),
                                     settings, measured, command, os.path.getsize(written) / 1e6,
                                     model_card.Origins(*origins))
        files.move_into_place(written, shipped_path)
    finally:
        exporting.remove_export(written)  # whatever was not moved into place
    write_records(model_path, shipped_path, card, out_dir)
    remove_earlier_models(out_dir, earlier, shipped_path)
    return Shipped(shipped_path, measured, test_labels)


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
