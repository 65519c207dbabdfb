"""The command behind `test.py` and `dnn_test.py`: one argument set, one prediction path for every model."""

import os

from common import classes, cli, data, ensemble, files
from common.cli import UsageError


def main(description):
    parser = cli.ArgumentParser(description)
    parser.add_argument("test_csv", help="faces to classify: course test CSV (id,feature), any labelled "
                                         "CSV, .csv.gz, the test part of a csv_to_npz.py .npz, or a "
                                         "folder of images by class (its test/ part if it has one)")
    parser.add_argument("result_csv", type=cli.output_file,
                        help="where to write the id,label predictions (replaced if it exists; gzipped "
                             "when named .gz)")
    parser.add_argument("model", nargs="?",
                        help="a .h5 or .keras model: one of this toolkit (CNN or DNN) or a Keras "
                             "classifier from elsewhere, see --pixel-scale (default: the model in "
                             "pretrained/)")
    cli.add_prediction_options(parser)
    options = parser.parse_args()

    if not os.path.exists(options.test_csv):  # every path is checked before anything is read
        raise UsageError(f"{options.test_csv}: no such file or folder")
    model_path = options.model or files.pretrained_model_path()
    ensemble.check_model_source(model_path)
    if ensemble.is_model_list(model_path):
        raise UsageError(f"{model_path}: a model list; test.py takes one model (test_by_vote.py takes lists)")
    dataset = data.load_dataset(options.test_csv, part="test", class_names=classes.saved_class_names(model_path))

    from common import prediction  # TensorFlow loads only after the input checked out

    model = prediction.with_precision(prediction.load_model(model_path), options.precision)
    class_names = classes.model_class_names(model_path, model.output_shape[-1])
    dataset = classes.relabel(dataset, class_names, model_path)
    probabilities = prediction.predict_probabilities(model, dataset.images, options.batch_size, options.tta,
                                                     options.pixel_scale)
    result_path = prediction.write_predictions(options.result_csv, dataset.ids, probabilities.argmax(axis=1))
    print(f"predicted {len(dataset)} faces from {dataset.source} with {model_path}")
    if dataset.labels is not None:  # e.g. fer2013.csv's PrivateTest rows
        from common import explain

        print(explain.labelled_report(dataset.labels, probabilities.argmax(axis=1), class_names))
    print(result_path)
