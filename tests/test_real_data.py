"""The real FER2013 files, when they lie beside the project in ../shared/fer2013; skipped otherwise."""

import os

import numpy as np
import pytest

from common import data
from helpers import REPO

FER2013 = os.path.join(os.path.dirname(REPO), "shared", "fer2013")
pytestmark = pytest.mark.skipif(not os.path.isdir(FER2013), reason="../shared/fer2013 is not here")


def test_real_train_and_test_files_load_completely():
    train = data.load_dataset(os.path.join(FER2013, "train.csv.gz"), require_labels=True)
    assert train.images.shape == (28_709, 48, 48)
    assert np.bincount(train.labels).tolist()[1] == 436  # the rare Disgust class
    test = data.load_dataset(os.path.join(FER2013, "test.csv.gz"), part="test")
    assert test.labels is None
    np.testing.assert_array_equal(test.ids, np.arange(7_178))
