"""Continues training an existing model on labelled plus confidently self-labelled faces.

Usage:
    python semi_retrain.py train.csv test.csv models/0.643750.h5 models/semi_0.642500.h5 20 30
    python semi_retrain.py train.csv test.csv PREDICTOR.h5 EXISTING.h5 20 25 --labeled-ratio 0.5

The training set is built as in semi_train.py (PREDICTOR.h5 labels the unlabelled rows); EXISTING.h5
trains from epoch FINISHED_EPOCHS to LAST_EPOCH with its optimizer state restored and history appended, and is
written as <val_acc>_<EXISTING basename> beside it unless --out-dir is given. Training options
default to those saved with EXISTING.h5.
"""

from common import cli, self_training


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("train_data", help="labelled data (.csv, .csv.gz or .npz)")
    parser.add_argument("test_data", help="the unlabelled faces the model was trained with (as semi_train.py)")
    parser.add_argument("predictor", metavar="PREDICTOR.h5", help="the .h5 model that labels the unlabelled faces")
    parser.add_argument("model", metavar="MODEL.h5", help="the .h5 model to continue")
    parser.add_argument("finished_epochs", metavar="FINISHED_EPOCHS", type=cli.non_negative_int,
                        help="epochs the model has already trained")
    parser.add_argument("last_epoch", metavar="LAST_EPOCH", type=cli.positive_int, help="epoch to stop after")
    cli.add_self_training_options(parser, from_model=True)
    cli.add_training_options(parser, from_model=True)
    options = cli.parse_continuation(parser)

    train_set, val_set = cli.load_training_data(options)
    cli.check_learned_from([options.predictor], "predictor", train_set, val_set, options, "predictor")
    cli.check_same_validation_rows(options, train_set, val_set)
    combined = self_training.self_labelled_training_set(train_set, **cli.self_training_arguments(options, val_set))
    training_config, run_options = cli.training_run(options)
    cli.lock_run(training_config, run_options)  # a second live run of this command stops here
    from common import training

    model_path = training.continue_training(options.model, combined, val_set, training_config, run_options,
                                            options.finished_epochs, options.last_epoch)
    cli.print_model_path(model_path)


if __name__ == "__main__":
    cli.run(main)
