"""Loads TensorFlow (Keras's backend here) once, keeping its start-up notices off stderr.

TensorFlow's C++ runtime writes oneDNN and CPU-feature notices straight to file descriptor 2 while
it is imported, before any log level applies; errors of the toolkit must be the only line there.
Modules that use TensorFlow or Keras import this module first.
"""

import os


def _import_tensorflow_quietly():
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow
        import keras  # noqa: F401  (loads with TensorFlow, under the same redirection)
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)
    return tensorflow


tensorflow = _import_tensorflow_quietly()
