"""Continues training a saved model for more epochs, on the same validation rows.

Usage:
    python retrain.py train.csv models/0.643750.h5 20 30    # epochs 21..30
    python retrain.py data.npz models/0.643750.h5 20 25 --out-dir models/continued

Writes <val_acc>_<MODEL basename> (e.g. models/0.654167_0.643750.h5) beside MODEL.h5 unless
--out-dir is given, with the model's history followed by the new epochs and the run's settings.
It validates on the model's own rows (a --val-size, --folds or --fold naming others is refused);
the batch size, seed, augmentation and learning rate default to those saved with the model (its
_settings.json), and options given here override them. The model keeps the precision
(bf16 or fp32) it was built with.
"""

from common import classes, cli, model_lists


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("train_data", help="the labelled data the model was trained on (.csv, .csv.gz or .npz)")
    parser.add_argument("model", metavar="MODEL.h5", help="the .h5 model to continue")
    parser.add_argument("finished_epochs", metavar="FINISHED_EPOCHS", type=cli.non_negative_int,
                        help="epochs the model has already trained")
    parser.add_argument("last_epoch", metavar="LAST_EPOCH", type=cli.positive_int, help="epoch to stop after")
    cli.add_training_options(parser, from_model=True)
    options = cli.parse_continuation(parser)

    model_lists.check_model_file(options.model, "the .h5 model to continue")
    saved_classes = classes.saved_class_names(options.model)
    train_set, val_set = cli.load_training_data(options, class_names=saved_classes)
    cli.check_same_validation_rows(options, train_set, val_set)
    if saved_classes:
        classes.check_same(saved_classes, train_set.class_names, options.train_data, options.model)
    training_config, run_options = cli.training_run(options)
    cli.lock_run(training_config, run_options)  # a second live run of this command stops here
    cli.start_strategy(options)  # TensorFlow loads only after the input checked out
    from common import training

    cli.print_model_path(training.continue_training(options.model, train_set, val_set, training_config, run_options,
                                                    options.finished_epochs, options.last_epoch))


if __name__ == "__main__":
    cli.run(main)
