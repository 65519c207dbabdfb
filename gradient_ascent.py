"""Shows what the filters of a convolution layer respond to, by gradient ascent on the input image.

Usage:
    python gradient_ascent.py models/0.643750.h5                       # first conv layer, 32 filters
    python gradient_ascent.py models/0.643750.h5 --layer block2_conv1 --filters 64 --steps 200
    python gradient_ascent.py models/0.643750.h5 --layer block1_conv2 --images train.csv --rows 0,7

Starting from a grey image with small noise, each filter's mean activation is maximised by
gradient ascent with the gradient normalised to unit RMS (all filters at once, as one batch).
Writes <model>_<layer>.png beside the model (or in --out-dir): one image per filter, captioned
with its final mean activation. With --images, also writes <model>_<layer>_activations.png: the
selected faces of that file and their activation maps for the layer. An unknown --layer lists the
model's convolution layers.
"""

import os
import time

from common import cli, data, files, model_lists

MAX_ACTIVATION_MAPS = 16  # filters drawn per face with --images


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("model", type=cli.model_or_shipped,
                        help=f"a .h5 CNN model written by this toolkit, {cli.SHIPPED_MODEL_WORDS}")
    parser.add_argument("--layer", help="convolution layer name (default: the model's first)")
    parser.add_argument("--filters", type=cli.positive_int, default=32, help="how many filters to show")
    parser.add_argument("--steps", type=cli.positive_int, default=100, help="gradient ascent steps")
    parser.add_argument("--step-size", type=cli.positive_float, default=2.0,
                        help="grey levels per step (the gradient is normalised to unit RMS)")
    parser.add_argument("--images", metavar="DATA_CSV", help="also show activation maps of faces from this file")
    parser.add_argument("--rows", type=cli.row_numbers, default=[0], help="rows of --images to show")
    parser.add_argument("--out-dir", type=cli.output_folder, help="folder for the plots (default: the model's folder)")
    options = parser.parse_args()

    model_lists.check_model_file(options.model)
    faces = None
    if options.images:
        dataset = data.load_dataset(options.images, part="train")
        with cli.naming("--rows"):
            faces = data.select_rows(dataset, options.rows).images
    stem = files.plot_stem(options.model, options.out_dir)

    from common import explain, model_files, plots  # TensorFlow loads only after the input checked out

    model = model_files.with_precision(model_files.load_model(options.model), "fp32")
    layer_name = options.layer or explain.conv_layer_names(model)[0]
    with cli.naming("--layer", layer_name):
        explain.conv_layer(model, layer_name)  # an unknown name lists the model's convolution layers

    started = time.perf_counter()
    images, final, start = explain.filter_ascent(model, layer_name, options.filters, options.steps,
                                                 options.step_size)
    captions = [f"filter {index}: {value:.2f}" for index, value in enumerate(final)]
    title = (f"{os.path.basename(options.model)} {layer_name}: inputs that maximise each filter "
             f"(mean activation after {options.steps} steps)")
    path = plots.image_grid(images, captions, f"{stem}_{layer_name}.png", title)
    print(f"mean activation of {len(final)} filters: {start.mean():.3f} at the start, "
          f"{final.mean():.3f} after {options.steps} steps [{time.perf_counter() - started:.1f} s]")
    print(path)

    if faces is not None:
        maps = explain.activation_maps(model, layer_name, faces)  # (faces, h, w, filters)
        shown = min(options.filters, maps.shape[-1], MAX_ACTIVATION_MAPS)
        tiles, captions, cmaps = [], [], []
        for face_index, row in enumerate(options.rows):  # one figure row per face
            tiles += [faces[face_index]] + [maps[face_index, :, :, index] for index in range(shown)]
            captions += [f"row {row}"] + [f"filter {index}" for index in range(shown)]
            cmaps += ["gray"] + ["viridis"] * shown
        path = plots.image_grid(tiles, captions, f"{stem}_{layer_name}_activations.png",
                                f"{layer_name}: activation maps of the first {shown} filters",
                                columns=shown + 1, cmaps=cmaps)
        print(path)


if __name__ == "__main__":
    cli.run(main)
