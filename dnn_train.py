"""Trains the report's DNN (Dense 512-512-512-256-7 on the 2,304 raw pixels, 1,838,599 parameters).

Usage:
    python dnn_train.py train.csv                     # 20 epochs, batch 128, first 10% validation
    python dnn_train.py data.npz --val-size 2400 --augment report
    python dnn_train.py data.npz --inputs standardized  # each face to mean 0, deviation 1 first

Writes <out-dir>/dnn_<val_acc>.h5 (e.g. models/dnn_0.384200.h5) with its _history.csv and
_settings.json beside it, and prints the model's path as its last line.
"""

import functools

from common import cli


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("train_data", help="labelled data: course CSV, Kaggle fer2013.csv, .csv.gz or .npz")
    cli.add_training_options(parser, default_val_size=0.1, default_augment="none")
    parser.add_argument("--inputs", choices=("scaled", "standardized"), default="scaled",
                        help="'scaled': pixels divided by 255, as in the report; 'standardized': each face "
                             "shifted and scaled to mean 0 and standard deviation 1 (no extra weights)")
    parser.set_defaults(arch="dnn")
    options = parser.parse_args()
    cli.check_training_options(options)

    train_set, val_set = cli.load_training_data(options, fallback=0.1)
    training_config, run_options = cli.training_run(options)
    cli.lock_run(training_config, run_options)  # a second live run of this command stops here
    cli.start_strategy(options)  # TensorFlow loads only after the input checked out
    from common import models, training

    build_dnn = functools.partial(models.builder("dnn"), standardize_faces=options.inputs == "standardized")
    model_path = training.train_new_model(build_dnn, train_set, val_set, training_config, run_options,
                                          prefix="dnn_")
    cli.print_model_path(model_path)


if __name__ == "__main__":
    cli.run(main)
