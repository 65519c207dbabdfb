"""Continues training a saved model for more epochs, on the same validation rows.

Usage:
    python retrain.py train.csv models/0.643750.h5 20 30    # epochs 21..30
    python retrain.py data.npz models/0.643750.h5 20 25 --out-dir models/continued

Writes <val_acc>_<MODEL basename> (e.g. models/0.654167_0.643750.h5) beside MODEL.h5 unless
--out-dir is given, with the model's history followed by the new epochs and the run's settings.
The validation size, batch size, seed, augmentation and learning rate default to those saved with
the model (its _settings.json); options given here override them. The model keeps the precision
(bf16 or fp32) it was built with.
"""

from common import classes, cli, config, data, ensemble


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("train_csv", help="the labelled data the model was trained on (.csv, .csv.gz or .npz)")
    parser.add_argument("model", metavar="MODEL.h5", help="the .h5 model to continue")
    parser.add_argument("prev_epoch", metavar="PREV_EPOCH", type=cli.non_negative_int, help="epochs the model has already trained")
    parser.add_argument("last_epoch", metavar="LAST_EPOCH", type=cli.positive_int, help="epoch to stop after")
    cli.add_training_options(parser, from_model=True)
    options = cli.parse_continuation(parser)

    ensemble.check_model_file(options.model, "the .h5 model to continue")
    saved_classes = classes.saved_class_names(options.model)
    dataset = data.load_dataset(options.train_csv, require_labels=True, class_names=saved_classes)
    if saved_classes:
        classes.check_same(saved_classes, dataset.class_names, options.train_csv, options.model)
    with cli.naming("--val-size", options.val_size):
        train_set, val_set = data.split_validation(dataset, options.val_size, folds=options.folds,
                                                   fold=options.fold)

    cli.lock_run(options)  # a second live run of this command stops here
    from common import training  # TensorFlow loads only after the input checked out

    cli.print_model_path(training.continue_training(
        options.model, train_set, val_set, config.TrainingConfig.from_options(options), options.prev_epoch,
        options.last_epoch))


if __name__ == "__main__":
    cli.run(main)
