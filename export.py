"""Writes a deployable copy of a model and checks it against the toolkit's own prediction.

Usage:
    python export.py models/0.694167.h5 --format tflite          # -> models/0.694167.tflite
    python export.py models/0.694167.h5 --format saved_model -o serving/fer/1
    python export.py models/0.694167.h5 --format onnx --faces data.npz
    python export.py models/0.694167.h5 --format h5               # a plain-Keras file, no optimizer state

Formats: 'h5' (Keras's HDF5 file without optimizer state, for any Keras 3), 'saved_model' (a
TensorFlow SavedModel folder with a `serve` endpoint), 'tflite' (TensorFlow Lite), 'onnx' (ONNX,
through tf2onnx; needs `pip install tf2onnx onnxruntime`). Every copy computes in float32 and takes
raw pixel values 0..255 shaped as the model's input ((batch, 48, 48, 1) for the CNNs), returning
one probability per class; the class names go inside the h5 file and the SavedModel folder
(class_names.txt), and beside a tflite or onnx file (<file>.classes.txt). After writing, the copy is run on --faces (default: 512 generated
faces) with its own runtime and its labels are compared with test.py's float32 labels: the export is
refused (exit 1, nothing left) below 99.5% agreement. An -o path that exists is replaced once the
new copy has passed its check (with a note on stderr); without -o the copy goes beside the model,
with a -1, -2, ... suffix if that name is taken.
"""

import importlib.util
import os

from common import classes, cli, config, data, files, model_lists, synthetic

CHECK_FACES = 512


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("model", type=cli.model_or_shipped,
                        help=f"a .h5 or .keras model written by this toolkit, {cli.SHIPPED_MODEL_WORDS}")
    parser.add_argument("--format", required=True, choices=tuple(config.EXPORT_FORMATS),
                        help="what to write")
    parser.add_argument("-o", "--output", help="where to write it, replaced if it exists (default: beside "
                                               "the model)")
    parser.add_argument("--faces", help="faces to check the copy on: a data file (.csv, .csv.gz, the "
                                        "test part of an .npz) (default: 512 generated faces)")
    options = parser.parse_args()

    model_lists.check_model_file(options.model)
    if options.format == "onnx" and not all(map(importlib.util.find_spec, ("tf2onnx", "onnxruntime"))):
        raise cli.UsageError("--format onnx needs tf2onnx and onnxruntime: pip install tf2onnx onnxruntime")
    if options.format == "h5" and options.output and not options.output.endswith(".h5"):
        raise cli.UsageError(f"-o {options.output}: an h5 export must be named *.h5")
    if options.output:
        files.check_writable_folder(os.path.dirname(os.path.abspath(options.output)))
        cli.check_output_is_no_input(options.output, f"-o {options.output}", options.model)
    images = (data.load_dataset(options.faces, part="test").images if options.faces
              else synthetic.generate_faces(CHECK_FACES, seed=0)[0])

    from common import exporting, model_files  # TensorFlow loads only after the input checked out

    model = model_files.load_model(options.model)
    class_names = classes.model_class_names(options.model, model.output_shape[-1])
    if tuple(model.input_shape[1:]) not in ((config.IMAGE_SIZE, config.IMAGE_SIZE, 1), (config.NUM_PIXELS,)):
        raise cli.UsageError(f"{options.model}: takes input {model.input_shape[1:]}; export.py writes "
                             f"models of this toolkit (48x48 faces or 2,304 pixels)")
    path = options.output or exporting.default_export_path(options.model, options.format)
    written = files.temporary_sibling(path)  # moved onto `path` once it passed its check
    try:
        exporting.export_model(model, options.format, written, class_names)
        fp32_agreement, saved_agreement = exporting.check_export(model, options.format, written, images)
        print(f"labels of the {options.format} copy on {len(images)} faces agree with test.py's: "
              f"{fp32_agreement:.2%} with --precision fp32, {saved_agreement:.2%} with the saved precision")
        if fp32_agreement < exporting.MIN_AGREEMENT:
            raise cli.RunFailed(f"agreement below {exporting.MIN_AGREEMENT:.1%}; the copy was removed")
        files.move_into_place(written, path)
    finally:
        exporting.remove_export(written)  # whatever was not moved into place
    names_path = exporting.class_names_path(options.format, path)
    if names_path:
        exporting.write_class_names(names_path, class_names)
        print(f"class names: {names_path}")
    print(path)


if __name__ == "__main__":
    cli.run(main)
