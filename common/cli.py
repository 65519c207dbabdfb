"""Command-line plumbing shared by every script: argument parsing, argument types, one-line errors."""

import argparse
import contextlib
import json
import os
import signal
import sys

from common import config, files
from common.errors import BadValue, RunFailed, UsageError  # noqa: F401  (scripts raise them as cli.*)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the docstring's usage examples as written and shows every option's default."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default:" in (action.help or ""):
            return action.help  # an option that is off, or whose help says its default itself
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are a single line on stderr with exit code 2."""

    def __init__(self, description, **kwargs):
        super().__init__(description=description, formatter_class=HelpFormatter, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def training_run(options):
    """The run a training script's final options describe: (`config.TrainingConfig`,
    `config.RunOptions`), the command line taken from `sys.argv`."""
    return config.TrainingConfig.from_options(options), config.RunOptions.from_options(options, sys.argv)


def start_strategy(options):
    """The run's distribution strategy (TensorFlow loads here; a multi-worker one must precede any
    other TensorFlow work), checked against --batch-size; errors name the option."""
    from common import distribution

    with naming("--strategy", options.strategy):
        strategy = distribution.get_strategy(options.strategy)
    with naming("--batch-size", options.batch_size):
        distribution.check_batch_size(strategy, options.batch_size)
    return strategy


def lock_run(training_config, run_options):
    """Holds this script's run of `training_config` until the process ends, so that a second live
    run of the same command into the same --out-dir stops at once (a UsageError naming the first).
    Workers of a multi-worker run share the command and are not locked."""
    if run_options.strategy == "multiworker":
        return
    folder = run_options.run_folder(training_config)
    files.ProcessLock(folder + ".lock", f"{run_options.script} with these options into "
                                        f"{run_options.out_dir}").acquire()


def load_training_data(options, fallback=2400, class_names=None):
    """The labelled data of a training script (its `train_data` option) split into (training rows,
    validation rows) by --val-size or --folds/--fold, image folders labelled by --classes (or by
    `class_names`, a model's); the validation row count it became is kept in `options.val_size`
    (the settings name it)."""
    from common import data

    given_classes = getattr(options, "classes", None)  # retraining scripts have no --classes
    check_classes_option(given_classes, options.train_data)
    dataset = data.load_dataset(options.train_data, require_labels=True, class_names=given_classes or class_names)
    with naming("--val-size", options.val_size):
        train_set, val_set = data.split_validation(dataset, options.val_size, fallback=fallback,
                                                   folds=options.folds, fold=options.fold)
    options.val_size = options.val_size or len(val_set)
    return train_set, val_set


def load_unlabelled_faces(path, val_set, flag):
    """The unlabelled faces of `path` (`data.load_unlabelled_faces`) for a run that validates on
    `val_set`, less those that are exact copies of validation faces (a note says how many): a run
    learns nothing about its validation faces from them."""
    from common import data

    with naming(flag, path):
        faces = data.load_unlabelled_faces(path)
    faces, copies = data.without_copies_of(faces, val_set)
    if copies:
        print(f"note: {copies} of the faces of {path} are exact copies of validation faces; they are "
              f"left out", file=sys.stderr)
    if not len(faces):
        raise UsageError(f"{flag} {path}: every face is a copy of a validation face")
    return faces


def check_learned_from(model_paths, role, train_set, val_set, options, flag, value=None):
    """Refuses models whose answers this run learns from (teachers, a predictor) if they validated on
    other rows of its data than its `val_set` (`data.check_not_trained_on`); the message starts
    with `flag value`."""
    from common import data

    with naming(flag, value):
        data.check_not_trained_on(model_paths, role, run_held_out_rows(train_set, val_set, options))


def run_held_out_rows(train_set, val_set, options):
    """This run's own validation rows as a `data.HeldOutRows`: `val_set` of all the data's rows, the
    first ones or `--fold` of `--folds`."""
    from common import data

    return data.HeldOutRows(len(val_set), len(train_set) + len(val_set), options.folds, options.fold)


def check_same_validation_rows(options, train_set, val_set):
    """Refuses a retraining run whose validation rows are not those the model validated on (another
    --val-size, --folds or --fold): its history's accuracies were measured on those rows, and rows
    that become validation rows now may have been trained on."""
    from common import data

    saved, asked = data.held_out_rows(options.model), run_held_out_rows(train_set, val_set, options)
    if saved is not None and saved.split() != asked.split():
        raise UsageError(f"{options.model} validated on {saved.describe()}, this run asks for "
                         f"{asked.describe()}: a continued run validates on the model's own rows (leave "
                         "--val-size, --folds and --fold out); to train on other rows, fine-tune it with "
                         "train.py --init")


def print_model_path(model_path):
    """A training script's last line: the saved model's path (None: a worker that saves nothing)."""
    print(model_path or "this worker saved nothing: the chief worker writes the model")


@contextlib.contextmanager
def naming(flag, value=None):
    """Turns a BadValue raised inside into a UsageError that starts with `flag value` (or `flag`)."""
    try:
        yield
    except BadValue as error:
        raise UsageError(f"{flag}{'' if value is None else f' {value}'}: {error}") from None


def run(main):
    """Runs `main()`, turning a UsageError into one line on stderr and exit code 2, a RunFailed
    into one line and exit code 1, and Ctrl-C or SIGTERM into "interrupted" and exit code 130."""
    program = sys.argv[0].rsplit("/", 1)[-1]
    signal.signal(signal.SIGTERM, _interrupt)
    if hasattr(sys.stdout, "reconfigure"):  # a log file shows each line as it comes
        sys.stdout.reconfigure(line_buffering=True, errors="backslashreplace")
        sys.stderr.reconfigure(errors="backslashreplace")  # a file name that is not UTF-8 prints too
    try:
        main()
    except (UsageError, BadValue) as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        sys.exit(2)
    except RunFailed as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as error:  # disk full, permissions: the system's words, on one line
        program = sys.argv[0].rsplit("/", 1)[-1]
        print(f"{program}: error: {error}", file=sys.stderr)
        sys.exit(1)
    finally:
        files.release_process_locks()


def _interrupt(signal_number, frame):
    raise KeyboardInterrupt


def _number_where(convert, accepts, expected):
    """An argparse type: `convert` (int or float) the text and check that the value `accepts`;
    `expected` describes the values in the error."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = _number_where(int, lambda value: value >= 1, "a positive integer")
non_negative_int = _number_where(int, lambda value: value >= 0, "an integer >= 0")
fraction = _number_where(float, lambda value: 0.0 <= value <= 1.0, "a number between 0 and 1")
positive_fraction = _number_where(float, lambda value: 0.0 < value <= 1.0,
                                  "a number above 0 and at most 1")
ema_decay = _number_where(float, lambda value: value == 0 or 0.5 <= value < 1,
                          "0 (off) or a decay in 0.5..0.9999")
seed_number = _number_where(int, lambda value: 0 <= value < 2 ** 32, "an integer in 0..4294967295")
port_number = _number_where(int, lambda value: 1 <= value <= 65535, "a port number in 1..65535")
positive_float = _number_where(float, lambda value: 0 < value < float("inf"), "a positive finite number")
non_negative_float = _number_where(float, lambda value: 0 <= value < float("inf"),
                                   "a finite number >= 0")


def output_folder(text):
    """argparse type: a folder to write into (created when missing); refuses an existing file or a
    place that cannot be written."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a file, expected a folder")
    try:
        files.check_writable_folder(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def output_file(text):
    """argparse type: a file to write (replaced if it exists); refuses a folder or a place that
    cannot be written."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder, expected a file name")
    try:
        files.check_writable_folder(os.path.dirname(text) or ".")
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def check_output_is_no_input(output, what, *inputs):
    """A UsageError when the existing file `output` (`what`: how the command line gives it, e.g.
    "-o x.npz") is one of the `inputs`: writing it would destroy that input."""
    if not (output and os.path.isfile(output)):
        return
    for given in inputs:
        if given and os.path.exists(given) and os.path.samefile(output, given):
            raise UsageError(f"{what}: is also an input of this command, which writing there would "
                             f"destroy; name another file")


SHIPPED_MODEL_WORDS = "or the name of a shipped model: " + ", ".join(
    f"'{name}'" for name in files.SHIPPED_MODEL_FOLDERS)


def model_or_shipped(text):
    """argparse type: a model file or list as given, or the name of a shipped model
    (`files.SHIPPED_MODEL_FOLDERS`) turned into its file's path."""
    try:
        return files.model_path_or_shipped(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def row_numbers(text):
    """argparse type: comma-separated row numbers (from 0), e.g. `12928,25419,7824`."""
    try:
        rows = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated row numbers, got {text!r}") from None
    if not rows or min(rows) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated row numbers >= 0, got {text!r}")
    return rows


def class_list(text):
    """argparse type: comma-separated class names, e.g. `happy,sad,neutral` (`classes.parse_class_list`)."""
    from common import classes

    try:
        return classes.parse_class_list(text)
    except (BadValue, UsageError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def validation_size(text):
    """argparse type: a row count (`2400`; `0` for none) or a fraction of the rows below 1 (`0.1`,
    `10%`)."""
    if text.strip().isdigit():
        return int(text)  # 0: no validation rows, train on every row
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"expected a row count like 2400 or a fraction below 1 like 0.1 or 10%, got {text!r}")
    return value


MODEL_BYTES_NEEDED = 100 << 20  # a model with optimizer state, its backup and side files


ARCH_HELP = "architecture: " + "; ".join(
    f"'{name}' {config.ARCHITECTURES[name].description} ({config.ARCHITECTURES[name].trainable_parameters:,} "
    f"trainable parameters)" for name in config.CNN_ARCHITECTURES)
VAL_SIZE_HELP = ("validation rows taken from the start of the file: a count (2400), a fraction (0.1 or "
                 "10%%), or 0 to train on every row and keep the last epoch")

# (flag, argparse keywords, help) of the options every training script shares
TRAINING_OPTIONS = (
    ("--batch-size", dict(type=positive_int), "images per batch"),
    ("--seed", dict(type=seed_number), "fixes weight initialisation, the --labeled-ratio rows, shuffling "
                                       "and augmentation draws; the order of multi-threaded sums is not "
                                       "fixed unless --deterministic"),
    ("--optimizer", dict(choices=config.OPTIMIZERS),
     "'adam' (the report's), 'adamw' (decoupled weight decay) or 'sgd' (Nesterov momentum 0.9)"),
    ("--learning-rate", dict(type=positive_float), "the optimiser's learning rate (the peak, with a "
                                                   "schedule)"),
    ("--schedule", dict(choices=config.SCHEDULES),
     "'constant' learning rate, or 'cosine': linear warm-up over --warmup-epochs, then cosine decay to "
     "zero at the last epoch"),
    ("--warmup-epochs", dict(type=non_negative_int), "warm-up epochs of the cosine schedule"),
    ("--label-smoothing", dict(type=fraction), "share of each one-hot target spread evenly over the "
                                               "classes"),
    ("--weight-decay", dict(type=non_negative_float), "decoupled weight decay of the kernels (0: none)"),
    ("--augment", dict(choices=tuple(config.AUGMENTATIONS)),
     "'report': random shift within 0.1 and horizontal flip; 'strong': shift, zoom and rotation within "
     "10%%/10%%/10 degrees, flip, and random erasing; 'long': the same with shift and zoom within 20%%; "
     "'none'"),
    ("--mixup", dict(type=non_negative_float, metavar="ALPHA"),
     "mixup: blend each training face with another face of its batch, and their targets alike, by a "
     "weight drawn from Beta(ALPHA, ALPHA) for every face (e.g. 0.2); with --teacher the teachers' "
     "probabilities blend too. 0: off"),
    ("--class-weight", dict(choices=config.CLASS_WEIGHTS),
     "'balanced' weighs each class's rows by rows / (classes x class rows), lifting rare classes such as "
     "FER2013's Disgust; "
     "'none': every row weighs 1"),
    ("--ema", dict(type=ema_decay), "keep an exponential moving average of the weights with this decay "
                                    "per step (e.g. 0.999) and save the average, scored after the last "
                                    "epoch; 0: off. Needs --keep last"),
    ("--keep", dict(choices=config.KEEP_CHOICES), "which epoch's weights the saved model holds: 'best' "
                                               "validation accuracy or 'last'"),
)


def add_training_options(parser, default_val_size=2400, default_augment="report", from_model=False,
                         recipes=False):
    """The options every training script shares, with defaults that reproduce the report's recipe.

    `recipes=True` adds `--recipe` and `--arch` (parse with `parse_training_options`, which makes
    the chosen recipe the defaults). `from_model=True` (retraining; parse with `parse_continuation`):
    the defaults are the settings saved with the model.
    """
    defaults = dict(config.recipe_defaults("report"), augment=default_augment)
    saved = " (default: the model's saved setting)" if from_model else ""
    if recipes:
        parser.add_argument("--recipe", type=recipe_name_or_file, default="report", metavar="NAME_OR_FILE",
                            help="a named set of defaults for the options below (shown for the recipe "
                                 "given): 'report' reproduces the report; 'strong' is the stronger recipe; "
                                 "'long' the published 150-epoch SGD recipe; 'finetune' for --init. Or a "
                                 "JSON file of your own ({\"recipe\": \"strong\", \"epochs\": 60}: a named "
                                 "recipe's values, some changed), or a model's _settings.json (train as it "
                                 "was trained)")
        parser.add_argument("--arch", choices=config.CNN_ARCHITECTURES, default=defaults["arch"],
                            help=ARCH_HELP)
    if not from_model:
        add_classes_option(parser)
        parser.add_argument("--epochs", type=positive_int, default=defaults["epochs"], help="training epochs")
        parser.add_argument("--precision", choices=tuple(config.PRECISION_POLICIES), default=defaults["precision"],
                            help="'bf16': mixed bfloat16 compute with float32 weights (faster on CPUs "
                                 "with AVX-512 BF16 and on GPUs); 'fp32': plain float32")
    parser.add_argument("--strategy", choices=config.STRATEGIES, default="default",
                        help="'default': one device (a GPU when TensorFlow sees one, else the CPU); "
                             "'mirrored': data-parallel over all visible GPUs; 'multiworker': "
                             "data-parallel over several machines, every worker running the same "
                             "command (cluster from TF_CONFIG, or Slurm's srun), the first writing the "
                             "results. --batch-size stays the global batch")
    for flag, keywords, help_text in TRAINING_OPTIONS:
        name = flag[2:].replace("-", "_")
        parser.add_argument(flag, default=None if from_model else defaults[name], help=help_text + saved,
                            **keywords)
    parser.add_argument("--val-size", type=validation_size, default=None,
                        help=VAL_SIZE_HELP + (saved or f" (default: the PublicTest rows of Kaggle's "
                                                        f"fer2013.csv, 10%% of a folder's images, else "
                                                        f"{default_val_size})"))
    parser.add_argument("--folds", type=positive_int, default=None,
                        help="cross-validation: split the labelled rows into this many equal blocks "
                             "and validate on block --fold (instead of --val-size); members trained on "
                             "every fold give test_by_vote.py --eval an out-of-fold figure" + saved)
    parser.add_argument("--fold", type=non_negative_int, default=None,
                        help="which block (0..FOLDS-1) validates" + saved)
    parser.add_argument("--out-dir", type=output_folder, default=None if from_model else "models",
                        help="folder for the model, history and settings"
                             + (" (default: the model's folder)" if from_model else ""))
    parser.add_argument("--restart", action="store_true",
                        help="start over instead of continuing an interrupted run of the same command "
                             "(its state is kept after every epoch in a hidden .run-* folder of --out-dir)")
    parser.add_argument("--deterministic", action="store_true",
                        help="TensorFlow's op determinism: the same seed gives the same weights, at some "
                             "cost in speed")


def add_classes_option(parser):
    """`--classes a,b,c`: which class folders of an image-folder dataset are read, in label order."""
    parser.add_argument("--classes", type=class_list, metavar="A,B,C",
                        help="for a folder of images by class: its classes in label order (default: the "
                             "folder names, FER2013's seven in FER2013's order, others sorted)")


def check_classes_option(given_classes, data_path):
    """`--classes` names the classes of image folders only."""
    if given_classes and not os.path.isdir(data_path):
        raise UsageError(f"--classes: {data_path} is a file, whose classes are its own; --classes orders "
                         f"the class folders of a folder of images")


def parse_training_options(parser, argv=None):
    """Parses in two passes, as timm reads its config file: `--recipe` first, whose values become
    the parser's defaults (so `--help` shows them), then everything, flags given explicitly winning.
    Then checks what no single option's type can."""
    first_pass = ArgumentParser(None, add_help=False, prog=parser.prog)
    first_pass.add_argument("--recipe", type=recipe_name_or_file, default="report")
    recipe = first_pass.parse_known_args(argv)[0].recipe
    parser.set_defaults(**(config.recipe_defaults(recipe) if recipe in config.RECIPES
                           else recipe_file_defaults(parser, recipe)))
    options = parser.parse_args(argv)
    check_training_options(options)
    return options


def recipe_name_or_file(text):
    """argparse type of --recipe: a named recipe (`config.RECIPES`) or an existing JSON file."""
    if text in config.RECIPES or os.path.isfile(text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is neither a recipe ({', '.join(config.RECIPES)}) nor a "
                                     f"JSON file of recipe options")


def recipe_file_defaults(parser, path):
    """The defaults a recipe file sets: the named recipe of its "recipe" key ('report' without one)
    with the file's values of `config.RECIPE_OPTIONS` on top, each checked by its option's type and
    choices as if given on the command line. A model's _settings.json (it has a "command") gives its
    values of those options and nothing else; any other file may hold only them and "recipe"."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UsageError(f"--recipe {path}: not a JSON file ({error})") from None
    if not isinstance(values, dict):
        raise UsageError(f"--recipe {path}: expected a JSON object of options, e.g. "
                         f'{{"recipe": "strong", "epochs": 60}}')
    if "command" in values:  # a model's settings: every recipe option, whatever else it records
        values = {name: values[name] for name in config.RECIPE_OPTIONS if name in values}
        if values.get("folds"):
            values.pop("val_size", None)  # the settings count a fold's rows there too
    unknown = sorted(set(values) - {*config.RECIPE_OPTIONS, "recipe"})
    if unknown:
        verb = "is" if len(unknown) == 1 else "are"
        raise UsageError(f"--recipe {path}: {', '.join(map(repr, unknown))} {verb} not a recipe option; a "
                         f"recipe file sets {', '.join(config.RECIPE_OPTIONS)} and 'recipe' (the named "
                         f"recipe it changes)")
    base = values.pop("recipe", "report")
    if base not in config.RECIPES:
        raise UsageError(f"--recipe {path}: recipe {json.dumps(base)}: expected one of {', '.join(config.RECIPES)}")
    defaults = config.recipe_defaults(base)
    actions = {action.dest: action for action in parser._actions}
    for name, value in values.items():
        defaults[name] = _recipe_value(actions[name], value, path) if name in actions else value
    return defaults


def _recipe_value(action, value, path):
    """A recipe file's `value` for `action`'s option, converted and checked as the command line's."""
    described = f"--recipe {path}: {action.dest} {json.dumps(value)}"
    if value is None:
        if action.default is None:
            return None
        raise UsageError(f"{described}: expected a value")
    try:
        converted = action.type(str(value)) if action.type else str(value)
    except (argparse.ArgumentTypeError, ValueError) as error:
        raise UsageError(f"{described}: {error}") from None
    if action.choices is not None and converted not in action.choices:
        raise UsageError(f"{described}: expected one of {', '.join(map(str, action.choices))}")
    return converted


def parse_continuation(parser, argv=None):
    """Parses a retraining command in two passes: the model named, its saved settings become the
    defaults of the options left unset, then everything again; then checks epochs and output."""
    options = parser.parse_args(argv)
    saved_settings = files.read_json(files.settings_path(options.model)) or {}
    parser.set_defaults(**{name: saved_settings.get(name, default) for name, default in
                           {**config.recipe_defaults("report"), **SELF_TRAINING_DEFAULTS}.items()
                           if getattr(options, name, False) is None})
    parser.set_defaults(arch=saved_settings.get("arch", config.TrainingConfig.arch))  # the model's own
    options = parser.parse_args(argv)
    _check_continuation(options)
    return options


def check_training_options(options):
    """Refuses option combinations that no single option's type can catch, and an output folder
    that cannot take the model (checked now, not after the last epoch)."""
    files.check_writable_folder(options.out_dir, needed_bytes=MODEL_BYTES_NEEDED)
    if options.val_size == 0 and options.keep == "best":
        options.keep = "last"  # no validation rows to choose an epoch on
    _check_strategy(options)
    _check_folds(options)
    if options.folds and options.val_size is not None:
        raise UsageError("--val-size and --folds both choose the validation rows; give one of them")
    if options.ema and options.keep == "best":
        raise UsageError("--ema saves the averaged weights after the last epoch; add --keep last")
    if options.schedule == "cosine" and options.warmup_epochs >= options.epochs:
        raise UsageError(f"--warmup-epochs {options.warmup_epochs} leaves no epoch for the cosine "
                         f"decay of --epochs {options.epochs}; use fewer warm-up epochs")


SELF_TRAINING_DEFAULTS = {"labeled_ratio": 1.0, "threshold": 0.5}


def add_self_training_options(parser, from_model=False):
    """Options of the semi-supervised scripts: how many labels to keep, which self-labels to trust.
    `from_model=True` (retraining): unset options take the model's saved settings."""
    saved = " (default: the model's saved setting)" if from_model else ""
    parser.add_argument("--labeled-ratio", type=positive_fraction,
                        default=None if from_model else SELF_TRAINING_DEFAULTS["labeled_ratio"],
                        help="share of the training rows (per class, seeded) whose labels are kept; "
                             "the rest join the test rows as unlabelled data" + saved)
    parser.add_argument("--threshold", type=fraction,
                        default=None if from_model else SELF_TRAINING_DEFAULTS["threshold"],
                        help="keep a self-label when the predictor's highest class probability is "
                             ">= this" + saved)


def self_training_arguments(options, val_set):
    """The keyword arguments of `self_training.self_labelled_training_set` that a semi-supervised script's
    parsed options give; its unlabelled faces are read here, less copies of the `val_set` faces."""
    return dict(unlabelled=load_unlabelled_faces(options.test_data, val_set, "test_data"),
                predictor_path=options.predictor, labeled_ratio=options.labeled_ratio,
                threshold=options.threshold, seed=options.seed, start_strategy=lambda: start_strategy(options))


def add_face_options(parser):
    """Options of the scripts that find faces in photos: detector, smallest face, alignment."""
    parser.add_argument("--detector", choices=tuple(config.DETECTORS), default=config.DEFAULT_DETECTOR,
                        help="'mtcnn': finds turned, small and several faces, with landmarks; 'haar': "
                             "OpenCV's frontal-face cascade (upright faces only); 'none': each image "
                             "is one face")
    parser.add_argument("--min-face", type=positive_int, default=config.DEFAULT_MIN_FACE,
                        help="smallest face width looked for, in pixels (smaller: slower)")
    parser.add_argument("--align", action=argparse.BooleanOptionalAction, default=True,
                        help="turn each face so its eyes are level before cutting it out (detectors "
                             "with landmarks)")


def add_video_options(parser):
    """Options of the scripts that follow people through videos: which frames, smoothing, tracking."""
    parser.add_argument("--every", type=positive_int, default=1,
                        help="analyse every N-th frame of a video (and write its rows)")
    parser.add_argument("--detect-every", type=positive_int, default=1,
                        help="run the face detector's search on every K-th analysed frame only; in between, the "
                             "tracker carries each person's box and MTCNN looks again there (those frames "
                             "are still classified and written)")
    parser.add_argument("--smooth", type=non_negative_float, default=config.DEFAULT_SMOOTHING,
                        metavar="SECONDS",
                        help="average each person's probabilities over this many seconds, the nearer frames "
                             "weighing more (centred on the frame for a file, the past only for a camera); 0: off")
    parser.add_argument("--start", type=non_negative_float, default=0.0, metavar="SECONDS",
                        help="analyse a video from this time on")
    parser.add_argument("--end", type=positive_float, default=None, metavar="SECONDS",
                        help="analyse a video up to this time; a camera stops there (else at Ctrl-C)")


def video_settings(options):
    """The frozen video settings of parsed video options; a UsageError when --start is not before --end."""
    if options.end is not None and options.start >= options.end:
        raise UsageError(f"--start {options.start:g} is not before --end {options.end:g}; give a start "
                         f"before the end")
    from common import video  # OpenCV and scipy, no TensorFlow

    return video.VideoSettings(every=options.every, detect_every=options.detect_every, smoothing=options.smooth,
                               start=options.start, end=options.end)


def add_prediction_options(parser):
    """Options of the scripts that predict: test-time augmentation, batch size, precision."""
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: average the probabilities of 10 views of each face "
                             "(it and its mirror, each at zooms 0.9, 0.95, 1, 1.05 and 1.1 about the centre)")
    parser.add_argument("--batch-size", type=positive_int, default=512, help="faces per prediction batch")
    parser.add_argument("--precision", choices=config.PREDICTION_PRECISIONS, default="saved",
                        help="compute as the model was saved ('saved'; bfloat16 for models trained with "
                             "the default --precision bf16), or in 'bf16' (about twice as fast for a "
                             "float32 model; a few nearly tied labels may change) or 'fp32'")
    parser.add_argument("--pixel-scale", choices=tuple(config.PIXEL_SCALES), default="raw",
                        help="pixel values the model expects: 'raw' 0..255 (every model of this "
                             "toolkit), 'unit' 0..1 or 'symmetric' -1..1 (e.g. mini-Xception); a "
                             "model list can set it per line with pixel-scale=NAME")


def _check_continuation(options):
    """Checks a retraining run's FINISHED_EPOCHS and LAST_EPOCH against each other and against the
    model's saved history, and its output folder."""
    if options.last_epoch <= options.finished_epochs:
        raise UsageError(f"LAST_EPOCH {options.last_epoch} must be larger than FINISHED_EPOCHS "
                         f"{options.finished_epochs}")
    history = files.read_history(options.model)
    if history and history[-1][0] != options.finished_epochs:
        raise UsageError(f"FINISHED_EPOCHS is {options.finished_epochs}, but the history saved with "
                         f"{options.model} ends at epoch {history[-1][0]}")
    if options.out_dir is None:
        options.out_dir = os.path.dirname(options.model) or "."
    files.check_writable_folder(options.out_dir, needed_bytes=MODEL_BYTES_NEEDED)
    _check_strategy(options)
    _check_folds(options)


def _check_folds(options):
    """--folds and --fold come together, the fold one of the folds."""
    if (options.folds is None) != (options.fold is None):
        raise UsageError("--folds and --fold come together: e.g. --folds 8 --fold 0 (then --fold 1..7)")
    if options.folds is not None and not (options.folds >= 2 and options.fold < options.folds):
        raise UsageError(f"--folds {options.folds} --fold {options.fold}: expected at least 2 folds and "
                         f"a fold 0..{options.folds - 1}")


def _check_strategy(options):
    """Options that one or several machines cannot do together."""
    if options.ema and options.strategy == "multiworker":
        raise UsageError("--ema is not available with --strategy multiworker; leave one of them out")
