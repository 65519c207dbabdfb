"""The model card of a shipped model, written from its training settings and from figures measured on
its validation rows when it is shipped (`ship_model.py`), so every number in it can be made again.
"""

import dataclasses
import os
import re
import textwrap

import numpy as np

from common import config, explain, files

STANDARDIZED_WORDS = "; each face is shifted and scaled to mean 0 and deviation 1 inside the model"
OPTIMIZER_WORDS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD with Nesterov momentum 0.9"}


@dataclasses.dataclass(frozen=True)
class Scores:
    """Accuracies of one way of predicting (single view or --tta) on the validation rows."""
    all_rows: float
    unseen_rows: float


@dataclasses.dataclass(frozen=True)
class Measurements:
    """What `ship_model.py` measured on the validation rows with the shipped file itself."""
    validation_rows: int
    unseen_rows: int
    relabelled_copies: int
    single_view: Scores
    tta: Scores
    confusion: np.ndarray  # (classes, classes) counts, single view; rows true, columns predicted
    class_names: tuple
    export_agreement: float  # labels of the float32 file against the trained file's, test faces
    test_faces: int
    calibration: dict  # {"": explain.Calibration single view, "_tta": with --tta}


@dataclasses.dataclass(frozen=True)
class Origins:
    """What a model came from beyond its own settings, read when it is shipped."""
    starting_command: str | None = None  # the command that trained the model it started from (--init)
    teachers: tuple = ()  # (weight, path as users name it) of each teacher of a distilled model


def scores(predicted, labels, unseen):
    """Accuracy on every validation row and on the unseen ones."""
    correct = predicted == labels
    return Scores(float(correct.mean()), float(correct[unseen].mean()) if unseen.any() else float("nan"))


def recipe_sentence(settings, teachers=()):
    """The training recipe in words, from the run's settings and the (weight, path) of its teachers."""
    cosine = settings.get("schedule") == "cosine"
    words = [OPTIMIZER_WORDS.get(settings["optimizer"], settings["optimizer"]),
             f"{'peak' if cosine else 'constant'} learning rate {settings['learning_rate']:g}"]
    if settings.get("weight_decay"):
        words.append(f"weight decay {settings['weight_decay']:g}")
    if cosine:
        warmup = settings.get("warmup_epochs") or 0
        words.append((f"{warmup} warm-up epochs then " if warmup else "") + "cosine decay to zero")
    if settings.get("label_smoothing"):
        words.append(f"label smoothing {settings['label_smoothing']:g}")
    words.append(augmentation_words(settings["augment"]))
    words.append(f"batch {settings['batch_size']}")
    if settings.get("precision") == "bf16":
        words.append("mixed bfloat16")
    if settings.get("teacher"):
        words.append(distillation_words(settings, teachers))
    return ", ".join(words)


def distillation_words(settings, teachers=()):
    """`distilled from LIST (the averaged probabilities of A and B, ten views of each face)`."""
    views = "ten views of each face" if settings.get("teacher_tta") else "each face and its mirror"
    faces = (f", on the training rows and the unlabelled faces of {settings['unlabelled']}"
             if settings.get("unlabelled") else "")
    if len(teachers) < 2:
        return f"distilled from {settings['teacher']} ({views}){faces}"
    equal = len({weight for weight, _ in teachers}) == 1
    names = [f"`{path}`" if equal else f"`{path}` (weight {weight:g})" for weight, path in teachers]
    members = ", ".join(names[:-1]) + " and " + names[-1]
    return f"distilled from {settings['teacher']} (the averaged probabilities of {members}, {views}){faces}"


def augmentation_words(augment):
    """An augmentation of `config.AUGMENTATIONS` in words."""
    kind, reach = config.AUGMENTATIONS[augment]
    if kind == "shift_flip":
        return f"random shifts within {reach:.0%} and horizontal flips"
    if kind == "warp_erase":
        return f"affine warps (shift and zoom within {reach:.0%}, 10-degree turns, flips) and random erasing"
    return "no augmentation"


def validation_sentence(settings):
    """Which rows validated the run, and which trained it."""
    labelled_by_model = settings.get("model_labelled_rows") or 0
    training = f"the other {settings['training_rows'] - labelled_by_model:,}"
    if labelled_by_model:
        training += f" and {labelled_by_model:,} faces labelled by a model"
    if settings.get("folds"):
        return (f"block {settings['fold']} of {settings['folds']} equal blocks of its rows "
                f"({settings['validation_rows']:,} rows); training: {training}")
    return f"its first {settings['validation_rows']:,} rows; training: {training}"


def per_class_table(counts, class_names):
    """Markdown rows: class, rows, recall, precision."""
    recall, precision = explain.recall_and_precision(counts)
    lines = ["| class | rows | recall | precision |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {counts[index].sum()} | {recall[index]:.1%} | {precision[index]:.1%} |"
              for index, name in enumerate(class_names)]
    return "\n".join(lines)


def confused_sentence(counts, class_names):
    pairs = explain.most_confused_pairs(counts)
    return ", ".join(f"{class_names[true]} -> {class_names[predicted]}" for true, predicted, _ in pairs)


def model_card(shipped_path, shipped_as, settings, measured, shipping_command, megabytes, origins=Origins()):
    """The card's Markdown text, its prose wrapped at 100 characters. `shipped_path`: the shipped file
    as a user names it (relative to the repository); `shipped_as`: its name in
    `files.SHIPPED_MODEL_FOLDERS`, or None for a folder of no shipped model; `origins`: the model's
    start and teachers, where known."""
    return reflow(_card_text(shipped_path, shipped_as, settings, measured, shipping_command, megabytes, origins))


def role_sentence(shipped_as, shipped_path):
    """What the model is to the toolkit's scripts."""
    if shipped_as == files.DEFAULT_SHIPPED_MODEL:
        return ("the model `predict.py`, `serve.py`, `test.py` and `dnn_test.py` use when no model is given "
                f"(`--model {shipped_as}` names it).")
    if shipped_as:
        return (f"shipped beside the default model: `--model {shipped_as}` picks it in `predict.py`, "
                f"`serve.py`, `test.py` and `export.py`, and `train.py --init {shipped_as}` fine-tunes it.")
    return f"kept in `{os.path.dirname(shipped_path)}`."


def reflow(markdown, width=100):
    """Wraps every prose paragraph and list item of `markdown` at `width`; headings, tables and code
    blocks stay as they are."""
    blocks = []
    for block in markdown.split("\n\n"):
        if block.startswith(("#", "|", "```")):
            blocks.append(block)
            continue
        items = re.split(r"\n(?=- )", block)
        blocks.append("\n".join(
            textwrap.fill(" ".join(item.split()), width, subsequent_indent="  " if item.startswith("- ") else "",
                          break_on_hyphens=False, break_long_words=False)
            for item in items))
    return "\n\n".join(blocks)


def _card_text(shipped_path, shipped_as, settings, measured, shipping_command, megabytes, origins):
    """The card's text before wrapping."""
    file_name = os.path.basename(shipped_path)
    stem = file_name[:-len(".h5")]
    architecture = config.ARCHITECTURES[settings["arch"]]
    names = ", ".join(f"{index} {name}" for index, name in enumerate(measured.class_names))
    single, tta = measured.single_view, measured.tta
    training_commands = "\n".join(f"python {command}" for command in (origins.starting_command, settings["command"])
                                  if command)
    return f"""# Model card: `{file_name}`

A facial-expression classifier for 48x48 greyscale faces, {role_sentence(shipped_as, shipped_path)}

## What it is

- Architecture: {architecture.description} (`--arch {settings['arch']}`), {settings['trainable_parameters']:,}
  trainable parameters{STANDARDIZED_WORDS if settings.get('inputs') == 'standardized' else ''}.
- Input: raw grey levels 0..255 shaped as its input layer declares (the model rescales them itself).
  Output: the probabilities of {names}.
- File: Keras HDF5, float32, no optimizer state, {megabytes:.1f} MB; only Keras's own layers, so plain
  Keras opens it: `keras.models.load_model("{shipped_path}")`. `export.py` turns it into a
  SavedModel, TensorFlow Lite or ONNX file.
- `{stem}_settings.json` and `_history.csv` beside it are the training run's own records.

## How it was made

Data: `{settings.get('train_data') or settings.get('train_csv')}`. Validation: {validation_sentence(settings)}.
{_start_sentence(settings, origins.starting_command)}Seed {settings['seed']}, {_recipe(settings, origins.teachers)}, {_count(settings['epochs'], 'epoch')},
the {settings['keep']} epoch kept (epoch {settings['kept_epoch']}). {training_time(settings)} on the machine that trained it
({settings['training_images_per_second']:.0f} training images/s).

```bash
{training_commands}
{shipping_command}
```

The shipped copy computes in float32; its labels agree with the trained file's (in the precision it
was trained in) on {measured.export_agreement:.2%} of the {measured.test_faces:,} test faces.

## How well it does

Measured with the shipped file on the {measured.validation_rows:,} validation rows:

| | all {measured.validation_rows:,} rows | "unseen": the {measured.unseen_rows:,} rows without an exact copy among the training rows |
| --- | --- | --- |
| single view | {single.all_rows:.2%} | {single.unseen_rows:.2%} |
| `--tta` (10 zoomed and mirrored views) | {tta.all_rows:.2%} | {tta.unseen_rows:.2%} |

{_selection_sentence(settings)} {measured.validation_rows - measured.unseen_rows} validation rows have an
exact pixel copy among the training rows ({measured.relabelled_copies} of them labelled differently
there); the "unseen" column leaves them out. One standard error of an accuracy near {single.all_rows:.0%} on
{measured.validation_rows:,} rows is {_standard_error(single.all_rows, measured.validation_rows):.1f} points. The
withheld test split is scored outside the project: its predictions are
`results/pretrained_{stem}.csv` and `_tta.csv`.

Its probabilities on the same rows, single view: {explain.calibration_sentence(measured.calibration[""])}; with
`--tta`: {explain.calibration_sentence(measured.calibration["_tta"])}. `plot_model.py` draws the single view's
reliability diagram.

Per class on the validation rows, single view:

{per_class_table(measured.confusion, measured.class_names)}

Most confused (true -> predicted): {confused_sentence(measured.confusion, measured.class_names)}.

On photos: `python benchmarks/photos.py {shipped_path} --data data/fer2013.npz --rows 0:1000`
puts validation faces into generated photos, finds them with the detector and scores them (RESULTS.md).

## Limits

- It sees a 48x48 greyscale crop: colour, fine texture and context are lost, and a crop that is
  framed differently from FER2013's faces lowers accuracy.
- Faces in photos are found by MTCNN (`--detector mtcnn`), which misses some tight crops, profiles
  and faces covered by hands; the photo path scores 1-3 points below the same faces given as 48x48
  rows.
- FER2013's labels are noisy (human agreement on it is estimated near 65-70%), Disgust has 1.5% of
  the rows and is the least reliable class, and Fear is often taken for Sad or Angry.
- FER2013 was collected by web image search; its people are not a balanced sample of ages,
  ethnicities or genders, and accuracy on under-represented groups is not measured here.
- An expression is not an emotion: the model labels how a face looks, not what a person feels. Do
  not use it to make decisions about people (hiring, policing, grading, health).

## Data terms

FER2013 (Goodfellow et al., 2013, "Challenges in Representation Learning: A report on three machine
learning contests") was released for the ICML 2013 workshop challenge through Kaggle, under that
competition's rules; it carries no open licence. This model is shared for research and teaching;
check the dataset's terms before any other use.
"""


def _recipe(settings, teachers):
    """`the `long` recipe (SGD ..., batch 64)`, or the settings alone for a script without recipes."""
    if settings.get("recipe"):
        return f"the `{settings['recipe']}` recipe ({recipe_sentence(settings, teachers)})"
    return recipe_sentence(settings, teachers)


def _selection_sentence(settings):
    """How much the figures were chosen on the rows that report them."""
    if settings["keep"] == "last" or settings["kept_epoch"] == settings["epochs"]:
        return ("No epoch was chosen on these rows (the last one is kept), but the recipe was developed "
                "on the same rows in earlier runs, so the figures may flatter it slightly.")
    return (f"The kept epoch ({settings['kept_epoch']}) was chosen as the best on these same rows, so the "
            f"figures flatter it (its last epoch scored {settings['last_val_accuracy']:.2%} in training).")


def _start_sentence(settings, starting_command):
    """Where a model trained with --init started, or nothing for one trained from fresh weights."""
    if not settings.get("init"):
        return ""
    made = " (made by the first command below)" if starting_command else ""
    return f"Started from `{os.path.basename(settings['init'])}`{made}, then: "


def _count(number, noun):
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def training_time(settings):
    """`95 minutes`, or `33 minutes for 36 of its 160 epochs` when the run's records time only some
    of its epochs (a continued model's own; a run resumed from a backup that kept no epoch times)."""
    timed = settings.get("timed_epochs")
    if timed is None and settings.get("resumed_after_epoch"):
        timed = settings["epochs"] - settings["resumed_after_epoch"]
    duration = _duration(settings["wall_seconds"])
    if timed and timed < settings["epochs"]:
        return f"{duration} for {timed} of its {settings['epochs']} epochs"
    return duration


def _duration(seconds):
    """`45 seconds`, `76 minutes` or `3.4 hours`."""
    if seconds < 120:
        return _count(round(seconds), "second")
    return f"{round(seconds / 60)} minutes" if seconds < 2 * 3600 else f"{seconds / 3600:.1f} hours"


def _standard_error(accuracy, rows):
    """One standard error of an accuracy on `rows` rows, in points."""
    return 100 * float(np.sqrt(accuracy * (1 - accuracy) / rows))
