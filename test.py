"""Predicts the class of every face in a test file with a trained model and writes `id,label` rows.

Usage:
    python test.py test.csv result.csv models/0.643750.h5
    python test.py data.npz result.csv models/0.643750.h5 --tta   # average 10 zoomed and mirrored views
    python test.py faces/ result.csv models/0.643750.h5           # a folder's test/ part, ids = file paths

Any model this toolkit writes works here (CNN or DNN): the input is shaped to what the model's input
layer declares. The result has the header `id,label` and one row per test id, in id order; an
existing result file is replaced (atomically; stderr says so); a name ending in .gz is gzipped.
Labelled faces (Kaggle's PrivateTest rows, a folder's class folders) are also scored, per class of
the model, with the calibration of its probabilities. Without MODEL the shipped model in pretrained/
is used. Prints the result's path.
"""

import os

from common import classes, cli, data, files, model_lists


def main(description=__doc__):
    parser = cli.ArgumentParser(description)
    parser.add_argument("test_data", help="faces to classify: course test CSV (id,feature), any labelled "
                                          "CSV, .csv.gz, the test part of a csv_to_npz.py .npz, or a "
                                          "folder of images by class (its test/ part if it has one)")
    parser.add_argument("result_csv", type=cli.output_file,
                        help="where to write the id,label predictions (replaced if it exists; gzipped "
                             "when named .gz)")
    parser.add_argument("model", nargs="?", type=cli.model_or_shipped, default=files.DEFAULT_SHIPPED_MODEL,
                        help="a .h5 or .keras model: one of this toolkit (CNN or DNN) or a Keras "
                             f"classifier from elsewhere, see --pixel-scale; {cli.SHIPPED_MODEL_WORDS} "
                             "(default: the model in pretrained/)")
    cli.add_prediction_options(parser)
    options = parser.parse_args()

    if not os.path.exists(options.test_data):  # every path is checked before anything is read
        raise cli.UsageError(f"{options.test_data}: no such file or folder")
    model_path = options.model
    cli.check_output_is_no_input(options.result_csv, options.result_csv, options.test_data, model_path)
    model_lists.check_model_source(model_path)
    if not model_lists.has_model_file_name(model_path):
        raise cli.UsageError(f"{model_path}: a model list; test.py takes one model (test_by_vote.py takes lists)")
    dataset = data.load_dataset(options.test_data, part="test", class_names=classes.saved_class_names(model_path))

    from common import model_files, prediction  # TensorFlow loads only after the input checked out

    model = model_files.with_precision(model_files.load_model(model_path), options.precision)
    class_names = classes.model_class_names(model_path, model.output_shape[-1])
    dataset = classes.relabel(dataset, class_names, model_path)
    probabilities = prediction.predict_probabilities(model, dataset.images, options.batch_size, options.tta,
                                                     options.pixel_scale)
    result_path = prediction.write_predictions(options.result_csv, dataset.ids, probabilities.argmax(axis=1))
    print(f"predicted {len(dataset)} faces from {dataset.source} with {model_path}")
    if dataset.labels is not None:
        from common import explain

        print(explain.labelled_report(dataset.labels, probabilities.argmax(axis=1), class_names))
        print(f"probabilities: {explain.calibration_sentence(explain.calibration(probabilities, dataset.labels))}")
    print(result_path)


if __name__ == "__main__":
    cli.run(main)
