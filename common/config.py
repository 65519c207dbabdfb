"""The settings of one training run, as the library receives them: a frozen dataclass built once from
a script's parsed arguments (`TrainingConfig.from_options`), so nothing in the library changes what
the command line said. The defaults reproduce the report's recipe.
"""

import dataclasses
import hashlib
import json
import os
import types
from typing import Mapping, Optional


RUN_KEY_EXCLUDED = ("restart", "out_dir", "strategy")  # options that do not change what is trained


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 20
    batch_size: int = 128
    seed: int = 0
    optimizer: str = "adam"              # adam | adamw | sgd
    learning_rate: float = 1e-3          # the peak, with a schedule
    schedule: str = "constant"           # constant | cosine
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    augment: str = "report"              # report | strong | none
    class_weight: str = "none"           # none | balanced
    ema: float = 0.0                     # decay of the weights' moving average; 0: off
    keep: str = "best"                   # best | last
    precision: str = "bf16"              # bf16 | fp32
    strategy: str = "default"            # default | mirrored | multiworker
    out_dir: str = "models"
    restart: bool = False
    deterministic: bool = False
    teacher: Optional[str] = None        # distillation: a model or model list
    temperature: float = 2.0
    distill_weight: float = 0.7
    # every option of the command as parsed: saved in the settings file, and names the run's backup
    command_options: Mapping = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))

    @classmethod
    def from_options(cls, options):
        """The configuration of a script's parsed arguments (an argparse Namespace): the fields it
        has, and all of it as `command_options`."""
        given = dict(vars(options))
        names = {field.name for field in dataclasses.fields(cls)} - {"command_options"}
        return cls(**{name: given[name] for name in names if name in given},
                   command_options=types.MappingProxyType(given))

    def until_epoch(self, last_epoch):
        """The same run stretched (or cut) to end at `last_epoch`: a continued run's schedule."""
        options = types.MappingProxyType({**self.command_options, "epochs": last_epoch})
        return dataclasses.replace(self, epochs=last_epoch, command_options=options)

    def digest(self, *also, excluded=()):
        """A sha256 hash object of the command's options less the names in `excluded`, and of the
        plain values `also`: the same command gives the same digest."""
        described = {name: value for name, value in sorted(self.command_options.items())
                     if name not in excluded and not callable(value)}
        return hashlib.sha256(json.dumps([*also, described], sort_keys=True, default=str).encode())

    def run_folder(self, script):
        """The hidden folder in `out_dir` that keeps the state of the run of `script` (a file name
        such as `train.py`) with these options: the same command gives the same folder."""
        digest = self.digest(script, excluded=RUN_KEY_EXCLUDED).hexdigest()[:12]
        return os.path.join(self.out_dir, f".run-{os.path.splitext(script)[0]}-{digest}")
