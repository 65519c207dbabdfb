"""Predicts the class of every face in a test file with a trained model and writes `id,label` rows.

Usage:
    python test.py test.csv result.csv models/0.643750.h5
    python test.py data.npz result.csv models/0.643750.h5 --tta   # average 10 shifted and mirrored views

Any model this toolkit writes works here (CNN or DNN): the input is shaped to what the model's input
layer declares. The result has the header `id,label` and one row per test id, in id order; an
existing result file is replaced (atomically; stderr says so); a name ending in .gz is gzipped.
Without MODEL the shipped model in pretrained/ is used. Prints the result's path.
"""

from common import cli, file_prediction

if __name__ == "__main__":
    cli.run(lambda: file_prediction.main(__doc__))
