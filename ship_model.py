"""Ships a trained model with the toolkit: a plain-Keras float32 copy in pretrained/ (the default
model) or pretrained/vgg/ (the second, VGG-style one: `--model pretrained-vgg`) with its training
records, its test-split predictions in results/, and a model card whose every figure is measured
now, on the shipped file.

Usage:
    python ship_model.py data/fer2013.npz data/fer2013.npz models/long_s0/0.712083.h5
    python ship_model.py train.csv test.csv models/0.691667.h5 --name fer_vgg
    python ship_model.py data/fer2013.npz data/fer2013.npz models/strong/0.695000.h5 --out-dir pretrained/vgg

TRAIN_DATA is the labelled file the model was trained on: the validation rows its _settings.json
names (the first rows, or a fold) are scored single view and with --tta, on every row and on the
rows without an exact copy among the training rows, and per class. TEST_DATA's faces (the test part
of an .npz) are predicted into <results>/pretrained_<stem>.csv and _tta.csv. The copy is
<out-dir>/<name>_<val_acc>.h5 (--name default: fer_<arch>), refused like export.py's copies when
under 99.5% of its test labels agree with the toolkit's float32 prediction. Only once everything is
measured are files written: the copy, its _settings.json and _history.csv, MODEL_CARD.md (replaced),
the predictions; then the models shipped before it in <out-dir> are removed, so that the folder holds
the one model its name stands for. Prints the shipped file's path.
"""

import os
import shlex
import sys

from common import classes, cli, data, files, shipping


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("train_data", help="the labelled data the model was trained on (.csv, .csv.gz, .npz)")
    parser.add_argument("test_data", help="the faces to write test-split predictions for (course test CSV, "
                                          "or the test part of an .npz)")
    parser.add_argument("model", help="a .h5 model written by train.py, with its _settings.json beside it")
    parser.add_argument("--name", help="file name before the accuracy (default: fer_<arch>, e.g. fer_vgg)")
    parser.add_argument("--out-dir", type=cli.output_folder, default=files.PRETRAINED_FOLDER,
                        help="the folder of the shipped model: pretrained (the default model) or "
                             "pretrained/vgg (the second shipped model, 'pretrained-vgg')")
    parser.add_argument("--results", type=cli.output_folder, default="results",
                        help="the folder of test-split predictions")
    options = parser.parse_args()

    settings = shipping.read_training_settings(options.model)
    for path in (options.train_data, options.test_data):
        if not os.path.exists(path):
            raise cli.UsageError(f"{path}: no such file or folder")
    stem = files.model_stem(settings["kept_val_accuracy"], prefix=f"{options.name or 'fer_' + settings['arch']}_")
    class_names = classes.saved_class_names(options.model)
    labelled = data.load_dataset(options.train_data, require_labels=True, class_names=class_names)
    test_set = data.load_dataset(options.test_data, part="test", class_names=class_names)
    with cli.naming(f"{options.model}: its validation rows"):
        train_part, val_set = data.split_validation(labelled, settings.get("val_size"), for_training=False,
                                                    folds=settings.get("folds"), fold=settings.get("fold"))
    copied, relabelled = data.exact_copies(val_set, train_part)
    with cli.naming(f"{settings.get('command')}: its --teacher"):
        origins = shipping.model_origins(settings)
    command = shlex.join(["python", os.path.basename(sys.argv[0]), *sys.argv[1:]])

    shipped = shipping.ship(options.model, settings, val_set, test_set, copied, relabelled, options.out_dir,
                            stem, command, origins)
    from common import prediction

    for suffix, labels in shipped.test_labels.items():
        result_path = os.path.join(options.results, f"pretrained_{stem}{suffix}.csv")
        print(f"test-split predictions: {prediction.write_predictions(result_path, test_set.ids, labels)}")
    measured = shipped.measured
    print(f"validation ({measured.validation_rows} rows): {measured.single_view.all_rows:.2%} single view, "
          f"{measured.tta.all_rows:.2%} with --tta; unseen ({measured.unseen_rows} rows): "
          f"{measured.single_view.unseen_rows:.2%}, {measured.tta.unseen_rows:.2%}")
    print(shipped.path)


if __name__ == "__main__":
    cli.run(main)
