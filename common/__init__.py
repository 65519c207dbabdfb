"""Shared logic of the FER2013 toolkit: data loading, model builders, training, prediction, plots.

The top-level scripts parse arguments and call into this package. Modules that need TensorFlow
(`models`, `training`, `prediction`, `plots`) import it themselves, so scripts can check their
arguments and data before paying TensorFlow's start-up time.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr
