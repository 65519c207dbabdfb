"""Predicts the class of every face in a test file with a DNN model and writes `id,label` rows: the
report's name for test.py, with the same arguments and the same prediction path.

Usage:
    python dnn_test.py test.csv result.csv models/dnn_0.384200.h5
    python dnn_test.py data.npz result.csv models/dnn_0.384200.h5 --tta

The flat 2,304-pixel input of a DNN (or the 48x48x1 input of a CNN) is taken from the model's input
layer. The result has the header `id,label` and one row per test id, in id order; an existing result
file is replaced (stderr says so). Prints the result's path.
"""

import importlib.util
import os

from common import cli


def test_py_main():
    """test.py's `main`, loaded from the file beside this one."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test.py")
    spec = importlib.util.spec_from_file_location("test_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script.main


if __name__ == "__main__":
    cli.run(lambda: test_py_main()(__doc__))
