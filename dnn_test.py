"""Predicts the class of every face in a test file with a DNN model and writes `id,label` rows.

Usage:
    python dnn_test.py test.csv result.csv models/dnn_0.384200.h5
    python dnn_test.py data.npz result.csv models/dnn_0.384200.h5 --tta

The same prediction path as test.py: the flat 2,304-pixel input of a DNN (or the 48x48x1 input of
a CNN) is taken from the model's input layer. The result has the header `id,label` and one row per
test id, in id order; an existing result file is replaced (stderr says so). Prints the
result's path.
"""

from common import cli, file_prediction

if __name__ == "__main__":
    cli.run(lambda: file_prediction.main(__doc__))
