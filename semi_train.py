"""Semi-supervised training: a trained model labels unlabelled faces, and a new CNN trains on the
labelled rows plus the confidently self-labelled ones.

Usage:
    python semi_train.py train.csv test.csv models/0.643750.h5                 # all labels kept
    python semi_train.py train.csv test.csv models/0.612083.h5 --labeled-ratio 0.5 --threshold 0.5
    python semi_train.py train.csv test.csv models/strong/0.690417.h5 --recipe strong

Steps: split off the first --val-size rows for validation (as train.py); keep the labels of a
--labeled-ratio share of the remaining rows (stratified, seeded by --seed); label the other training
rows and every test row with PREDICTOR.h5 and keep those whose highest probability is >= --threshold;
train a new CNN with train.py's options (--recipe, --arch and the rest). Writes <out-dir>/semi_<val_acc>.h5 with its history and
settings, prints the self-label counts per class and their accuracy on the hidden-label rows, and
the model's path as its last line.
"""

from common import cli, self_training


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("train_data", help="labelled data (.csv, .csv.gz or .npz)")
    parser.add_argument("test_data", help="unlabelled faces: a folder of images, .csv, .csv.gz or the test "
                                          "part of an .npz (copies of validation faces are left out)")
    parser.add_argument("predictor", help="the .h5 model that labels the unlabelled faces")
    cli.add_self_training_options(parser)
    cli.add_training_options(parser, recipes=True)
    options = cli.parse_training_options(parser)

    train_set, val_set = cli.load_training_data(options)
    cli.check_learned_from([options.predictor], "predictor", train_set, val_set, options, "predictor")
    combined = self_training.self_labelled_training_set(train_set, **cli.self_training_arguments(options, val_set))
    training_config, run_options = cli.training_run(options)
    cli.lock_run(training_config, run_options)  # a second live run of this command stops here
    from common import models, training

    model_path = training.train_new_model(models.builder(options.arch), combined, val_set, training_config,
                                          run_options, prefix="semi_")
    cli.print_model_path(model_path)


if __name__ == "__main__":
    cli.run(main)
