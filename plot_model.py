"""Draws what a trained model is and does: its structure, its confusion matrix and the calibration of
its probabilities on the validation rows, its training curves, and saliency maps of selected faces.

Usage:
    python plot_model.py train.csv models/0.643750.h5
    python plot_model.py train.csv models/0.643750.h5 --saliency perturb --images 12928,25419
    python plot_model.py data.npz models/0.643750.h5 --saliency gradcam --out-dir plots

Writes, beside the model unless --out-dir is given:
    <model>_struct.png  the layer graph with shapes (a rendered text summary without Graphviz)
    <model>_cm.png      the row-normalised confusion matrix on the model's validation rows
    <model>_rel.png     the reliability diagram on those rows: how often a face is labelled right
                        against the model's top probability for it
    <model>_his.png     loss and accuracy per epoch, from the history saved at training
    <model>_sm.png      each selected face, its saliency map, and the face masked by the map
and prints per-class recognition (recall) and prediction (precision), the overall accuracy, the
most confused pairs and how well the probabilities are calibrated. --images are row numbers (from
0) of the data file. Saliency methods:
'gradient' (|d loss / d pixel|), 'perturb' (the report's: squared loss change when each pixel is
raised by one grey level) and 'gradcam' (Grad-CAM on the last convolution layer; CNNs only).
"""

import os
import time

from common import classes, cli, data, files, model_lists

REPORT_IMAGES = "12928,25419,7824,27865,18872,16237,1206"


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("train_data", help="the labelled data the model was trained on")
    parser.add_argument("model", type=cli.model_or_shipped,
                        help=f"a .h5 model written by this toolkit, {cli.SHIPPED_MODEL_WORDS}")
    parser.add_argument("--val-size", type=cli.validation_size, default=None,
                        help="validation rows (from the start of the file) for the confusion matrix "
                             "(default: the rows the model validated on, from its settings; for a model "
                             "of other data, the PublicTest rows of Kaggle's fer2013.csv, 10%% of a "
                             "folder's images, else 2400, or every row of a smaller file)")
    parser.add_argument("--images", type=cli.row_numbers,
                        help=f"rows of the data file to draw saliency maps for (default: the report's "
                             f"{REPORT_IMAGES}, or the first 7 rows of a file without them)")
    parser.add_argument("--saliency", choices=("gradient", "perturb", "gradcam"), default="gradient",
                        help="saliency method")
    parser.add_argument("--out-dir", type=cli.output_folder, help="folder for the plots (default: the model's folder)")
    options = parser.parse_args()

    model_lists.check_model_file(options.model)
    dataset = data.load_dataset(options.train_data, require_labels=True,
                                class_names=classes.saved_class_names(options.model))
    if options.images is None:
        report_rows = cli.row_numbers(REPORT_IMAGES)
        options.images = report_rows if max(report_rows) < len(dataset) else list(range(min(7, len(dataset))))
    with cli.naming("--val-size", options.val_size):
        _, val_set = data.models_validation_split(dataset, options.val_size, [options.model])
    print(f"scored on {len(val_set)} validation rows of {options.train_data}")
    with cli.naming("--images"):
        chosen = data.select_rows(dataset, options.images)
    stem = files.plot_stem(options.model, options.out_dir)

    from common import explain, model_files  # TensorFlow loads only after the input checked out

    model = model_files.with_precision(model_files.load_model(options.model), "fp32")
    class_names = classes.model_class_names(options.model, model.output_shape[-1])
    val_set, chosen = (classes.relabel(dataset, class_names, options.model) for dataset in (val_set, chosen))
    if options.saliency == "gradcam":
        explain.last_conv_layer_name(model)  # refuses a DNN before any plot is drawn
    draw_plots(model, options.model, val_set, chosen, options.images, options.saliency, stem)


def draw_plots(model, model_path, val_set, chosen, chosen_rows, saliency, stem):
    """The five figures, each announced with its path and time."""
    from common import explain, plots, prediction

    started = time.perf_counter()
    path, used_graphviz = plots.structure(model, stem + "_struct.png")
    note = "" if used_graphviz else " (Graphviz's 'dot' is not installed: a text summary instead)"
    print(f"structure: {path}{note} [{time.perf_counter() - started:.1f} s]")

    started = time.perf_counter()
    probabilities = prediction.predict_probabilities(model, val_set.images)  # (rows, classes)
    counts = explain.confusion_matrix(val_set.labels, probabilities.argmax(axis=1), len(val_set.class_names))
    print(explain.confusion_report(counts, val_set.class_names))
    title = f"{os.path.basename(model_path)}: {len(val_set)} validation rows"
    path = plots.confusion(counts, val_set.class_names, stem + "_cm.png", title)
    print(f"confusion matrix: {path} [{time.perf_counter() - started:.1f} s]")

    started = time.perf_counter()
    found = explain.calibration(probabilities, val_set.labels)
    path = plots.reliability(found, stem + "_rel.png", title)
    print(f"probabilities: {explain.calibration_sentence(found)}")
    print(f"reliability diagram: {path} [{time.perf_counter() - started:.1f} s]")

    started = time.perf_counter()
    history = files.read_history(model_path)
    if history:
        path = plots.history(history, stem + "_his.png", f"{os.path.basename(model_path)}: training",
                             plots.validation_loss_name(files.read_json(files.settings_path(model_path)) or {}))
        print(f"training curves: {path} [{time.perf_counter() - started:.1f} s]")
    else:
        print(f"training curves: skipped, no history file {files.history_path(model_path)}")

    started = time.perf_counter()
    maps = explain.saliency(model, chosen.images, chosen.labels, saliency)
    predicted = prediction.predict_probabilities(model, chosen.images).argmax(axis=1)
    path = plots.saliency_grid(chosen.images, maps, chosen.labels, predicted, chosen.class_names, chosen_rows,
                               stem + "_sm.png", saliency)
    print(f"saliency maps: {path} [{time.perf_counter() - started:.1f} s]")


if __name__ == "__main__":
    cli.run(main)
