"""Figures: model structure, confusion matrix, reliability diagram, training curves, saliency maps,
filter grids, each person's emotions over a video's time.

matplotlib runs on the non-interactive Agg backend: nothing opens a window. Every figure is saved
atomically at 120 dpi and never replaces an existing file (a -1, -2, ... suffix is added).
"""

import shutil

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)
import numpy as np  # noqa: E402

from common import files  # noqa: E402

DPI = 120


def save_figure(figure, path):
    """Saves and closes a figure; returns the path written (suffixed if `path` existed)."""
    path = files.free_path(path)
    with files.atomic_output(path) as temporary_path:
        figure.savefig(temporary_path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def structure(model, path):
    """The layer graph with shapes through Keras's plot_model (needs pydot and Graphviz's `dot`);
    without Graphviz, the model summary rendered as text. Returns (path, used_graphviz)."""
    if shutil.which("dot"):
        import keras

        path = files.free_path(path)
        with files.atomic_output(path) as temporary_path:
            keras.utils.plot_model(model, to_file=temporary_path, show_shapes=True,
                                   show_layer_names=True, dpi=80)
        return path, True
    lines = [f"{'layer (type)':<44}{'output shape':<22}{'parameters':>12}", "-" * 78]
    for layer in model.layers:
        shape = str(tuple(layer.output.shape)).replace("None", "batch")
        lines.append(f"{layer.name + ' (' + type(layer).__name__ + ')':<44}{shape:<22}"
                     f"{layer.count_params():>12,}")
    from common import models  # needs TensorFlow, which a caller with a model has loaded

    trainable = models.trainable_parameter_count(model)
    lines += ["-" * 78, f"total parameters {model.count_params():,}; trainable {trainable:,}"]
    figure = plt.figure(figsize=(8, 0.2 * len(lines) + 0.8))
    figure.text(0.01, 0.98, f"{model.name}: layers, output shapes, parameters", fontsize=11,
                weight="bold", va="top")
    figure.text(0.01, 0.98 - 0.45 / figure.get_figheight(), "\n".join(lines), family="monospace",
                fontsize=8, va="top")
    return save_figure(figure, path), False


def confusion(counts, class_names, path, title):
    """The row-normalised confusion matrix with counts and percentages in the cells."""
    recall = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(8, 7))
    image = axes.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for true in range(len(counts)):
        for predicted in range(len(counts)):
            colour = "white" if recall[true, predicted] > 0.55 else "black"
            axes.text(predicted, true, f"{recall[true, predicted]:.0%}\n({counts[true, predicted]})",
                      ha="center", va="center", fontsize=8, color=colour)
    axes.set_xticks(range(len(counts)), class_names, rotation=45, ha="right")
    axes.set_yticks(range(len(counts)), class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    return save_figure(figure, path)


def reliability(found, path, title):
    """A reliability diagram of an `explain.Calibration`: accuracy against the mean top probability
    of each bin (on the diagonal when calibrated), over how many faces fall in each bin."""
    figure, (accuracy_axes, count_axes) = plt.subplots(2, 1, figsize=(6, 7), sharex=True,
                                                       gridspec_kw={"height_ratios": [3, 1]})
    centres = (found.bin_edges[:-1] + found.bin_edges[1:]) / 2
    width = found.bin_edges[1] - found.bin_edges[0]
    filled = found.counts > 0
    accuracy_axes.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    accuracy_axes.bar(centres[filled], found.accuracy[filled], width=width * 0.9, color="#4878a8",
                      label="accuracy of the faces in the bin")
    accuracy_axes.plot(found.confidence[filled], found.accuracy[filled], marker="o", color="#c44e52",
                       label="at their mean top probability")
    accuracy_axes.set_ylabel("accuracy")
    accuracy_axes.set_ylim(0, 1)
    accuracy_axes.grid(alpha=0.3)
    accuracy_axes.legend(loc="upper left")
    accuracy_axes.set_title(f"{title}\nexpected calibration error {100 * found.expected_error:.1f} points")
    count_axes.bar(centres, found.counts, width=width * 0.9, color="#8c8c8c")
    count_axes.set_xlabel("top probability")
    count_axes.set_ylabel("faces")
    count_axes.set_xlim(0, 1)
    return save_figure(figure, path)


def history(rows, path, title, validation_loss_name="validation loss"):
    """Loss and accuracy per epoch, training and validation, side by side; the validation loss's
    line is named `validation_loss_name`."""
    table = np.asarray(rows, dtype=np.float64)
    epochs = table[:, 0]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4))
    for axes, column, name in ((loss_axes, 1, "loss"), (accuracy_axes, 2, "accuracy")):
        axes.plot(epochs, table[:, column], marker="o", markersize=3, label=f"training {name}")
        axes.plot(epochs, table[:, column + 2], marker="o", markersize=3,
                  label=validation_loss_name if name == "loss" else f"validation {name}")
        axes.set_xlabel("epoch")
        axes.set_ylabel(name)
        axes.grid(alpha=0.3)
        axes.legend()
    best = int(np.argmax(table[:, 4]))
    accuracy_axes.annotate(f"best {table[best, 4]:.4f}", (epochs[best], table[best, 4]),
                           textcoords="offset points", xytext=(-30, 10))
    figure.suptitle(title)
    return save_figure(figure, path)


def validation_loss_name(settings):
    """The name of a history's validation loss, by its run's `settings`: a student whose settings
    lack its teachers' validation accuracy measured it with the labels in the teachers' place, a
    loss not comparable with its training loss."""
    if settings.get("teacher") and "teachers_val_accuracy" not in settings:
        return "validation loss (labels in the teachers' place)"
    return "validation loss"


def people_timelines(people, class_names, path, title, max_people=12):
    """Each person's class probabilities over a video's time: a panel per person (the
    `max_people` seen longest, in order of first appearance), one line a class, gaps where the
    person was not seen. `people`: (person id, seconds (points,), probabilities (points, classes)
    with NaN rows for gaps, their dominant class) each."""
    shown = people[:max_people]
    figure, panels = plt.subplots(len(shown), 1, figsize=(11, 1.2 + 1.9 * len(shown)), sharex=True,
                                  squeeze=False)
    colours = plt.get_cmap("tab10")
    for axes, (person, seconds, probabilities, dominant) in zip(panels[:, 0], shown):
        for index, name in enumerate(class_names):
            axes.plot(seconds, probabilities[:, index], marker="." if len(seconds) < 60 else None,
                      color=colours(index % 10), label=name, linewidth=1.2)
        axes.set_ylim(0, 1)
        axes.set_ylabel(f"person {person}\n({dominant})")
        axes.grid(alpha=0.3)
    panels[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    panels[-1, 0].set_xlabel("seconds from the video's start")
    more = len(people) - len(shown)
    panels[0, 0].set_title(title + (f" ({more} more people seen briefly not shown)" if more > 0 else ""))
    return save_figure(figure, path)


def saliency_grid(images, maps, true_labels, predicted_labels, class_names, row_numbers, path, method):
    """Per face: the face, its saliency heat map, and the face masked by the normalised map."""
    figure, axes = plt.subplots(len(images), 3, figsize=(7.5, 2.4 * len(images)), squeeze=False)
    for row, (image, heat) in enumerate(zip(images, maps)):
        scaled = heat / max(float(heat.max()), 1e-12)
        axes[row, 0].imshow(image, cmap="gray", vmin=0, vmax=255)
        axes[row, 0].set_title(f"row {row_numbers[row]}: true {class_names[true_labels[row]]}",
                               fontsize=9)
        shown = axes[row, 1].imshow(scaled, cmap="jet", vmin=0, vmax=1)
        axes[row, 1].set_title(f"{method} saliency", fontsize=9)
        figure.colorbar(shown, ax=axes[row, 1], fraction=0.046, pad=0.04)
        axes[row, 2].imshow(image * scaled, cmap="gray", vmin=0, vmax=255)
        axes[row, 2].set_title(f"predicted {class_names[predicted_labels[row]]}", fontsize=9)
        for column in range(3):
            axes[row, column].axis("off")
    figure.suptitle(f"Where the model looks ({method})", y=1.0)
    figure.tight_layout()
    return save_figure(figure, path)


def image_grid(images, captions, path, title, columns=8, cmaps="gray"):
    """Small images in a grid, each with a caption; `cmaps` is one colour map or one per image."""
    cmaps = [cmaps] * len(images) if isinstance(cmaps, str) else cmaps
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    for index, axis in enumerate(axes.ravel()):
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index], cmap=cmaps[index])
            axis.set_title(captions[index], fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)
