"""Deployable copies of a model through Keras's and TensorFlow's own exporters, each checked after
writing against the toolkit's prediction path.

Every copy computes in float32 (a bfloat16-trained model is cast; the weights are float32 already)
and takes what the model takes: raw pixel values 0..255 shaped as its input layer declares
((batch, 48, 48, 1) for the CNNs), and returns one probability per class. The class names go with
every copy: inside the h5 file (as the toolkit's own files), as `class_names.txt` inside the
SavedModel folder, and beside a tflite or onnx file as `<file>.classes.txt` (one name a line, in
output order).

- `h5`: Keras's HDF5 file without optimizer state, which any Keras 3 opens (`keras.models.load_model`);
- `saved_model`: a TensorFlow SavedModel folder (`model.export`) with a `serve` endpoint, for
  TensorFlow Serving and `tf.saved_model.load`;
- `tflite`: a TensorFlow Lite flat buffer (converted from that SavedModel), for phones and small boards;
- `onnx`: an ONNX graph (`model.export(format="onnx")`, through tf2onnx), for ONNX Runtime.
"""

import os
import shutil
import tempfile

from common import backend  # noqa: F401  (TensorFlow loads quietly, before Keras)
import numpy as np
import tensorflow as tf

from common import config, files, model_files, prediction

CLASS_NAMES_FILE = "class_names.txt"
MIN_AGREEMENT = 0.995  # a copy whose labels agree less with test.py's float32 labels is refused


def default_export_path(model_path, export_format):
    """`models/0.69.h5` -> `models/0.69.tflite` (or `_saved_model`, `.onnx`, `_portable.h5`)."""
    return files.free_path(os.path.splitext(model_path)[0] + config.EXPORT_FORMATS[export_format][1])


def export_model(model, export_format, path, class_names):
    """Writes a float32 copy of `model` in `export_format` (a name in `config.EXPORT_FORMATS`, whose
    writer is the function of this module it names) to `path` (a folder for saved_model), with its
    class names inside where the format has room (h5, saved_model); nothing appears at `path` unless
    the export succeeds."""
    portable = model_files.with_batch_norm(model_files.with_precision(model, "fp32"), fused=False)
    portable(np.zeros((1, *portable.input_shape[1:]), np.float32))  # the exporters want a called model
    writer = globals()[config.EXPORT_FORMATS[export_format][0]]
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as workspace:
        writer(portable, path, class_names, workspace)


def export_h5(portable, path, class_names, workspace):
    """Keras's HDF5 file without optimizer state, its class names inside."""
    model_files.save_portable_model(portable, path, include_optimizer=False, class_names=class_names)


def export_saved_model(portable, path, class_names, workspace):
    """A SavedModel folder (`model.export`, a `serve` endpoint) with `class_names.txt` inside."""
    saved_model = os.path.join(workspace, "saved_model")
    portable.export(saved_model, format="tf_saved_model", verbose=False)
    write_class_names(os.path.join(saved_model, CLASS_NAMES_FILE), class_names)
    os.rename(saved_model, path)


def export_tflite(portable, path, class_names, workspace):
    """A TensorFlow Lite flat buffer, converted from a SavedModel."""
    saved_model = os.path.join(workspace, "saved_model")
    portable.export(saved_model, format="tf_saved_model", verbose=False)
    flat_buffer = tf.lite.TFLiteConverter.from_saved_model(saved_model).convert()
    with files.atomic_output(path) as temporary_path, open(temporary_path, "wb") as handle:
        handle.write(flat_buffer)


def export_onnx(portable, path, class_names, workspace):
    """An ONNX graph (`model.export(format="onnx")`, through tf2onnx)."""
    onnx_path = os.path.join(workspace, "model.onnx")
    portable.export(onnx_path, format="onnx", verbose=False)
    shutil.move(onnx_path, path)


def class_names_path(export_format, path):
    """Where a copy's class names go beside it (tflite, onnx), or None when they are inside it."""
    return path + ".classes.txt" if export_format in ("tflite", "onnx") else None


def write_class_names(path, class_names):
    """One class name a line, in output order, written atomically (an existing file replaced)."""
    with files.atomic_output(path, replace=True) as temporary_path, \
            open(temporary_path, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{name}\n" for name in class_names))


def exported_probabilities(export_format, path, model_inputs):
    """Runs an exported copy on `model_inputs` (already shaped for the model, float32) with the
    runtime it is made for (`run_<format>` of this module); returns (rows, classes) probabilities."""
    return globals()[f"run_{export_format}"](path, model_inputs)


def run_h5(path, model_inputs):
    import keras

    return keras.models.load_model(path, compile=False).predict(model_inputs, verbose=0)


def run_saved_model(path, model_inputs):
    loaded = tf.saved_model.load(path)  # held: its functions use the variables it owns
    return loaded.serve(tf.constant(model_inputs)).numpy()


def run_tflite(path, model_inputs):
    try:
        from ai_edge_litert.interpreter import Interpreter  # LiteRT, TensorFlow Lite's successor
    except ImportError:  # not built for every platform: TensorFlow's own, deprecated interpreter
        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=path)
    input_index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(input_index, model_inputs.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(input_index, model_inputs)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def run_onnx(path, model_inputs):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return session.run(None, {input_name: model_inputs})[0]


def check_export(model, export_format, path, images):
    """Labels of the export against the toolkit's float32 prediction path on `images` (rows, 48, 48):
    returns (agreement with float32, agreement with the model's saved precision)."""
    model_inputs = images.astype(np.float32).reshape(-1, *model.input_shape[1:])
    exported_labels = np.argmax(exported_probabilities(export_format, path, model_inputs), axis=1)
    return export_agreement(model, exported_labels, images)


def export_agreement(model, exported_labels, images):
    """How often `exported_labels` (a copy's labels of `images`) agree with `model`'s labels in float32
    and in its saved precision: (float32 agreement, saved-precision agreement); a float32 model is
    run once for both."""
    fp32_model = model_files.with_precision(model, "fp32")
    fp32_labels = prediction.predict_probabilities(fp32_model, images).argmax(axis=1)
    saved_labels = fp32_labels if fp32_model is model else prediction.predict_probabilities(model, images).argmax(axis=1)
    return float(np.mean(exported_labels == fp32_labels)), float(np.mean(exported_labels == saved_labels))


def remove_export(path):
    """Removes an export that failed its check (a file or, for saved_model, a folder)."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)
