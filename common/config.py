"""Names and defaults, in one TensorFlow-free place: the face format, every list of choices the
scripts offer, the recipes, and the settings of one training run.

Each list of choices is a registry: its keys are what the command line accepts, its values say
where the implementation is (a function or class name in the module that implements the list) or
hold the values themselves. A new architecture, detector, augmentation or export format is one
function (or class) in its module plus one line here.

A training run's settings are two frozen dataclasses built once from a script's parsed arguments:
`TrainingConfig` (what is trained: it names the run) and `RunOptions` (where and how it runs), so
nothing in the library changes what the command line said. A recipe is a `TrainingConfig`; its values
become the parser's defaults (`--help` shows them), and flags given on the command line win.
"""

import dataclasses
import hashlib
import json
import os
import types
from typing import Mapping, Optional

IMAGE_SIZE = 48  # FER2013's faces: 48x48 grey levels
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE


@dataclasses.dataclass(frozen=True)
class Architecture:
    builder: str  # the function of common.models that builds it
    trainable_parameters: int  # with FER2013's seven classes (tests/test_models.py checks)
    description: str
    takes_images: bool = True  # False: flat pixels (the DNN)


ARCHITECTURES = {
    "seed": Architecture("build_seed_cnn", 1_703_047, "the report's CNN"),
    "vgg": Architecture("build_vgg_cnn", 1_978_279, "a VGG-style CNN"),
    "small": Architecture("build_small_cnn", 495_831, "the VGG-style layout at half width (about 4x faster)"),
    "wide": Architecture("build_wide_vgg_cnn", 7_903_047, "the VGG-style CNN at twice the width (4x the multiply-adds)"),
    "resnet": Architecture("build_resnet_cnn", 2_694_439, "a ResNet-style CNN"),
    "dnn": Architecture("build_dnn", 1_838_599, "the report's DNN", takes_images=False),
}
CNN_ARCHITECTURES = tuple(name for name, architecture in ARCHITECTURES.items() if architecture.takes_images)

# augmentation: (kind, reach) - "shift_flip": Keras's random shift within `reach` and flip;
# "warp_erase": an affine warp (shift and zoom within `reach`, 10 degrees, flip) then random erasing
AUGMENTATIONS = {
    "report": ("shift_flip", 0.1),
    "strong": ("warp_erase", 0.1),
    "long": ("warp_erase", 0.2),
    "none": (None, 0.0),
}
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")
PRECISION_POLICIES = {"bf16": "mixed_bfloat16", "fp32": "float32"}  # precision -> Keras dtype policy
PREDICTION_PRECISIONS = ("saved", *PRECISION_POLICIES)  # "saved": as the model file holds it
KEEP_CHOICES = ("best", "last")
CLASS_WEIGHTS = ("none", "balanced")
STRATEGIES = ("default", "mirrored", "multiworker")

# pixel values a model expects: multiplier and offset applied to grey levels 0..255
PIXEL_SCALES = {"raw": (1.0, 0.0), "unit": (1.0 / 255, 0.0), "symmetric": (2.0 / 255, -1.0)}
MODEL_SUFFIXES = (".h5", ".keras")  # what a model file is named; anything else is a model list

# face detectors: the class of common.faces that implements each
DETECTORS = {"mtcnn": "MtcnnDetector", "haar": "HaarDetector", "none": "WholeImage"}
DEFAULT_DETECTOR = "mtcnn"
DEFAULT_SMOOTHING = 1.0  # seconds each person's probabilities are averaged over in a video (benchmarks/video.py)
DEFAULT_MIN_FACE = 40  # pixels: FER2013's faces are 48 wide; smaller ones carry too little to read

# export formats: (the function of common.exporting that writes one, the default suffix); the
# function run_<format> there runs a copy with its own runtime
EXPORT_FORMATS = {
    "h5": ("export_h5", "_portable.h5"),
    "saved_model": ("export_saved_model", "_saved_model"),
    "tflite": ("export_tflite", ".tflite"),
    "onnx": ("export_onnx", ".onnx"),
}


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """What a run trains: the architecture, the data split, the optimisation and the data options of
    its script (`script_options`: paths and the like, every parsed option that is neither a field
    here nor a `RunOptions` field). Two runs with equal configs are the same run."""

    arch: str = "seed"
    epochs: int = 20
    batch_size: int = 128
    seed: int = 0
    optimizer: str = "adam"              # OPTIMIZERS
    learning_rate: float = 1e-3          # the peak, with a schedule
    schedule: str = "constant"           # SCHEDULES
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    augment: str = "report"              # AUGMENTATIONS
    mixup: float = 0.0                   # mixup's Beta(alpha, alpha) blending of face pairs; 0: off
    class_weight: str = "none"           # CLASS_WEIGHTS
    ema: float = 0.0                     # decay of the weights' moving average; 0: off
    keep: str = "best"                   # KEEP_CHOICES
    precision: str = "bf16"              # PRECISION_POLICIES
    deterministic: bool = False
    val_size: Optional[float] = None     # a row count or a fraction; None: the file's own, else 2400
    folds: Optional[int] = None          # cross-validation: validate on block `fold` of `folds`
    fold: Optional[int] = None
    teacher: Optional[str] = None        # distillation: a model or model list
    temperature: float = 2.0
    distill_weight: float = 0.7
    script_options: Mapping = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))

    @classmethod
    def from_options(cls, options):
        """The configuration of a script's parsed arguments (an argparse Namespace)."""
        given = dict(vars(options))
        names = {field.name for field in dataclasses.fields(cls)} - {"script_options"}
        run_names = {field.name for field in dataclasses.fields(RunOptions)}
        rest = {name: value for name, value in given.items() if name not in names | run_names}
        return cls(**{name: given[name] for name in names if name in given},
                   script_options=types.MappingProxyType(rest))

    def until_epoch(self, last_epoch):
        """The same run stretched (or cut) to end at `last_epoch`: a continued run's schedule."""
        return dataclasses.replace(self, epochs=last_epoch)

    def as_settings(self):
        """Every setting as a plain dictionary (fields, then the script's options)."""
        fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                  if field.name != "script_options"}
        return {**fields, **self.script_options}

    def digest(self, *also):
        """A sha256 hash object of the settings that are on and of the plain values `also`: the same
        command gives the same digest, also under a later version of the toolkit with more options,
        as long as those are off (`settings_that_are_on`)."""
        return hashlib.sha256(json.dumps([*also, self.settings_that_are_on()], sort_keys=True,
                                         default=str).encode())

    def settings_that_are_on(self):
        """The settings less the fields at their defaults and the script's options that are None or
        False: what names a run. An option added later, left off, leaves a run's name as it was, so
        an interrupted run still continues by the same command."""
        fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                  if field.name != "script_options" and getattr(self, field.name) != field.default}
        options = {name: value for name, value in self.script_options.items()
                   if value is not None and value is not False}
        return {**fields, **options}


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Where and how a run goes, which does not change what it trains."""

    out_dir: str = "models"
    restart: bool = False
    strategy: str = "default"            # STRATEGIES
    script: str = "train.py"             # the script's file name: names the run's state folder
    command: str = ""                    # the command line as typed, for the settings file

    @classmethod
    def from_options(cls, options, argv):
        """The run options of a script's parsed arguments and its command line (`sys.argv`)."""
        script = os.path.basename(argv[0])
        return cls(out_dir=options.out_dir, restart=getattr(options, "restart", False),
                   strategy=getattr(options, "strategy", "default"), script=script,
                   command=" ".join([script, *argv[1:]]))

    def run_folder(self, config):
        """The hidden folder in `out_dir` that keeps the state of this script's run of `config`: the
        same command gives the same folder."""
        digest = config.digest(self.script).hexdigest()[:12]
        return os.path.join(self.out_dir, f".run-{os.path.splitext(self.script)[0]}-{digest}")


RECIPES = {
    # the report's recipe: its CNN, Adam at a constant 1e-3, shift + flip augmentation, 20 epochs
    "report": TrainingConfig(),
    # the stronger recipe: a VGG-style net, AdamW with warm-up and cosine decay, label smoothing,
    # affine warps and random erasing, 40 epochs; it keeps the last epoch, since its schedule ends
    # at zero: no epoch is chosen on the validation rows that report the result
    "strong": TrainingConfig(arch="vgg", epochs=40, optimizer="adamw", learning_rate=2e-3, schedule="cosine",
                             warmup_epochs=2, label_smoothing=0.1, weight_decay=0.05, augment="strong",
                             keep="last"),
    # the published long from-scratch recipe: SGD with Nesterov momentum at 0.01, batch 64, wider
    # warps (shift and zoom within 20%), 150 epochs; cosine decay in place of the published
    # reduce-on-plateau, which would pick its steps on the validation rows. Decoupled weight decay
    # 1e-3 x learning rate per step is what coupled L2 of 1e-4 with momentum 0.9 amounts to.
    "long": TrainingConfig(arch="vgg", epochs=150, batch_size=64, optimizer="sgd", learning_rate=0.01,
                           schedule="cosine", warmup_epochs=3, label_smoothing=0.1, weight_decay=1e-3,
                           augment="long", keep="last"),
    # fine-tuning a trained model (train.py --init): Adam at a tenth of the report's rate with cosine
    # decay, the strong augmentation, 15 epochs, the last one kept
    "finetune": TrainingConfig(arch="vgg", epochs=15, learning_rate=1e-4, schedule="cosine", warmup_epochs=1,
                               label_smoothing=0.1, augment="strong", keep="last"),
}
RECIPE_OPTIONS = ("arch", "epochs", "batch_size", "seed", "optimizer", "learning_rate", "schedule",
                  "warmup_epochs", "label_smoothing", "weight_decay", "augment", "mixup", "class_weight", "ema",
                  "keep", "precision", "val_size", "folds", "fold")  # the fields a recipe sets


def recipe_defaults(name):
    """A recipe's values as parser defaults."""
    return {option: getattr(RECIPES[name], option) for option in RECIPE_OPTIONS}
