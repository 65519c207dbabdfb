"""Measures the toolkit's random erasing (`common.augmentation.random_erasing`) beside Keras's
`RandomErasing` layer on the same faces: how often a face is changed, how much of it, with which
fill, and how fast, so the choice between them rests on numbers.

Usage:
    python benchmarks/erasing.py                 # 4096 generated faces, 3 alternating rounds
    python benchmarks/erasing.py --faces 8192

Prints one row per method: share of faces changed, the changed area of a changed face (mean,
10th and 90th percentile, as a share of the 48x48 face), the fill's mean and spread, and
images/s through each in a `tf.data` map of batches of 128.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import cli, synthetic  # noqa: E402  (needs the repo on sys.path)

BATCH_SIZE = 128


def erasers(seed=0):
    """name -> a function of a (batch, 48, 48, 1) float32 batch, drawn anew for every call."""
    import keras
    import tensorflow as tf

    from common import augmentation

    generator = tf.random.Generator.from_seed(seed)
    keras_default = keras.layers.RandomErasing(value_range=(0, 255), seed=seed)
    keras_matched = keras.layers.RandomErasing(scale=(0.02, 0.12), value_range=(0, 255), seed=seed)
    return {
        "toolkit random_erasing (the strong recipe's)":
            lambda batch: augmentation.random_erasing(batch, generator),
        "keras.layers.RandomErasing (defaults)": lambda batch: keras_default(batch, training=True),
        "keras.layers.RandomErasing(scale=(.02, .12))": lambda batch: keras_matched(batch, training=True),
    }


def changed_statistics(faces, erased):
    """Share of faces changed, and the changed area and fill of those faces."""
    import numpy as np

    changed = np.abs(erased - faces) > 0.5  # (rows, 48, 48)
    areas = changed.reshape(len(faces), -1).mean(axis=1)
    touched = areas > 0
    fills = erased[changed]
    return {"changed": touched.mean(), "area_mean": areas[touched].mean(),
            "area_p10": np.percentile(areas[touched], 10), "area_p90": np.percentile(areas[touched], 90),
            "fill_mean": fills.mean(), "fill_std": fills.std()}


def images_per_second(erase, faces, rounds):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(faces[..., None]).batch(BATCH_SIZE).map(erase)
    speeds = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in dataset:
            pass
        speeds.append(len(faces) / (time.perf_counter() - started))
    return statistics.median(speeds)


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("--faces", type=cli.positive_int, default=4096, help="generated faces to erase")
    parser.add_argument("--rounds", type=cli.positive_int, default=3, help="timed rounds per method")
    options = parser.parse_args()

    from common import backend  # noqa: F401  (TensorFlow loads quietly)
    import numpy as np

    faces = synthetic.generate_faces(options.faces, seed=0)[0].astype(np.float32)
    print(f"{'method':<46}{'changed':>9}{'area':>8}{'p10':>7}{'p90':>7}{'fill':>7}{'spread':>8}{'img/s':>9}")
    for name, erase in erasers().items():
        erased = np.concatenate([erase(faces[start:start + BATCH_SIZE, :, :, None]).numpy()[..., 0]
                                 for start in range(0, len(faces), BATCH_SIZE)])
        figures = changed_statistics(faces, erased)
        speed = images_per_second(erase, faces, options.rounds)
        print(f"{name:<46}{figures['changed']:>9.1%}{figures['area_mean']:>8.1%}{figures['area_p10']:>7.1%}"
              f"{figures['area_p90']:>7.1%}{figures['fill_mean']:>7.0f}{figures['fill_std']:>8.0f}{speed:>9.0f}")


if __name__ == "__main__":
    cli.run(main)
