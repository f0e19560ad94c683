"""Converts a weights bundle into TensorFlow Lite models of the per-frame network work.

  python -m crct_tf.export --format tflite --export_dir exported/tflite \
      [--quantize none|fp16|dynamic|int8] [--overwrite]

writes into the export folder:

  bt.tflite    BT, one step: previous_crop, current_crop [1, S, S, 3], state [1, 4, 512]
               -> landmarks [1, 68, 2] (crop pixels), state [1, 4, 512]
  fv.tflite    FV: patches [1, 68, P, P, 3] -> p_face [1]
  fll.tflite   FLL: crops [1, S, S, 3] -> landmarks [1, 68, 2] (crop pixels)
  crct_tflite.json  the constants the runtime needs (crop settings, tracker constants, MTCNN box
               map, state shape, quantisation, tensor names).

The crops stay outside the models (`CropAndResize` is a Flex op in TFLite): the runtime
(`crct_tf.tracking.tflite_steps`) cuts them with `cropping.crop_image`, which samples exactly
like the TF path's `tf_crop_images`. facenet's per-crop prewhitening also stays outside (in
float, `tflite_steps.prewhiten`): int8 cannot represent the per-image variance. Variables are
frozen into constants (`convert_variables_to_constants_v2`) before conversion; BT's LSTMs are
one-step `unroll=True` layers, so no WHILE loop reaches the converter (int8 included).

Quantisation (`--quantize`): `none` (fp32), `fp16` (fp16 weights, fp32 compute on CPU),
`dynamic` (int8 weights, float activations), `int8` (int8 weights and activations for BT and
FLL, float input/output; FV stays float32, faster so). int8 is calibrated on real face crops:
the bootstrap photos and the demo clip's frames, cut by the TF tracker's own crops (BT and FLL
crops on the boxes it tracks), never on random data. FV's per-patch layers run on the 68
patches as one batch (`_fv_batched`), not as 68 copies.
"""

import contextlib
import json
import os

import numpy as np
from absl import logging

from crct_tf.weights.staged_folder import staged_folder
from crct_tf.tracking import tflite_steps
from crct_tf.tracking.tflite_steps import CONSTANTS_FILE, TFLITE_FORMAT, TFLITE_VERSION

QUANTIZATIONS = ("none", "fp16", "dynamic", "int8")
MODEL_FILES = {"bt": "bt.tflite", "fv": "fv.tflite", "fll": "fll.tflite"}


def _prewhiten_layers(bundle):
    """The backbone's `Prewhiten` layers inside BT and FLL (none for the tiny stand-in)."""
    found = {}
    for model in (bundle.bt, bundle.fll):
        for layer in model.layers:
            for inner in getattr(layer, "layers", [layer]):
                if type(inner).__name__ == "Prewhiten":
                    found[id(inner)] = inner
    return list(found.values())


@contextlib.contextmanager
def _without_prewhitening(layers):
    """Traces the models with facenet's prewhitening left out (the runtime does it in numpy).

    In int8 the per-image variance and its square root lose almost all their precision (and
    a low-contrast crop can quantise the divisor to zero: a DIV failure at run time), so the
    standardisation stays in float outside every TFLite model, quantised or not.
    """
    for layer in layers:
        layer.call = lambda images: images
    try:
        yield
    finally:
        for layer in layers:
            del layer.call


def _fv_batched(fv, patches):
    """FV with its per-patch layers run once on the 68 patches as a batch.

    Keras' `TimeDistributed` converts into 68 copies of each per-patch layer (430 TFLite ops,
    most of FV's time); folding the patches into the batch gives the same values with one
    convolution per layer. Any FV that is not the `models.fv` layout runs as it is.
    """
    import tensorflow as tf
    try:
        stack, prewhiten = fv.get_layer("fv_patch_stack"), fv.get_layer("fv_prewhiten")
        per_patch = [fv.get_layer(n).layer for n in ("fv_conv1", "fv_conv2", "fv_pool")]
        head = [fv.get_layer(n) for n in ("fv_bottleneck", "fv_logit", "fv_probability")]
    except (ValueError, AttributeError):
        return fv(patches, training=False)
    count, size = patches.shape[1], patches.shape[2]
    x = prewhiten(stack(patches))                       # per example, over all its patches
    x = tf.reshape(x, [-1, size, size, 3])              # [B * 68, P, P, 3]
    for layer in per_patch:
        x = layer(x)
    x = tf.reshape(x, [-1, count * x.shape[1] * x.shape[2] * x.shape[3]])   # fv_flatten
    for layer in head:
        x = layer(x)
    return tf.reshape(x, [-1])


def _frozen_functions(bundle):
    """Concrete functions of BT, FV and FLL at batch 1 with variables frozen into constants."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    s = bundle.settings
    size, patch = s.input_size, s.fv_patch_size
    state_shape = tuple(int(d) for d in bundle.bt.input["state"].shape[1:])
    crop = tf.TensorSpec([1, size, size, 3], tf.float32)
    fll_crop = tf.TensorSpec([1, s.fll_size, s.fll_size, 3], tf.float32)

    @tf.function(input_signature=[crop, crop, tf.TensorSpec([1, *state_shape], tf.float32)])
    def bt(previous_crop, current_crop, state):
        out = bundle.bt({"previous_crop": previous_crop, "current_crop": current_crop,
                         "state": state}, training=False)
        return {"landmarks": out["landmarks"], "state": out["state"]}

    @tf.function(input_signature=[tf.TensorSpec([1, 68, patch, patch, 3], tf.float32)])
    def fv(patches):
        return {"p_face": tf.reshape(_fv_batched(bundle.fv, patches), [-1])}

    @tf.function(input_signature=[fll_crop])
    def fll(crops):
        return {"landmarks": bundle.fll(crops, training=False)}

    with _without_prewhitening(_prewhiten_layers(bundle)):
        functions = {name: convert_variables_to_constants_v2(fn.get_concrete_function())
                     for name, fn in (("bt", bt), ("fv", fv), ("fll", fll))}
    return functions, state_shape


def calibration_inputs(bundle, max_examples=120):
    """Real inputs of each sub-network for int8 calibration: {name: [list of input arrays]}.

    The TF tracker (same weights) runs over the demo clip, and each bootstrap photo is taken as
    a one-frame stream started from its true landmark box; the crops, patches and state are the
    ones the tracker feeds its networks.
    """
    from crct_tf import assets
    from crct_tf.geometry import cropping
    from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples
    from crct_tf.tracking.frame_step import FrameSteps
    from crct_tf.tracking.video_io import open_source

    s = bundle.settings
    prewhiten = tflite_steps.prewhiten if _prewhiten_layers(bundle) else (lambda x: x)
    steps = FrameSteps(bundle.bt, bundle.fv, bundle.fll, s)
    samples = {"bt": [], "fv": [], "fll": []}

    def add(frame, previous, box, state):
        no_shift = np.zeros([1, 2], np.float32)
        out = {k: np.asarray(v) for k, v in steps.step(frame, previous, box, state,
                                                       no_shift).items()}
        window = cropping.square_context_box(box[0], s.bt_context)
        samples["bt"].append([prewhiten(cropping.crop_image(previous, window, s.input_size)[None]),
                              prewhiten(cropping.crop_image(frame, window, s.input_size)[None]),
                              state.astype(np.float32)])
        boxes = cropping.landmark_patch_boxes(out["bt_landmarks"][0], out["bt_box"][0],
                                              s.fv_patch_size, s.fv_face_context, s.fv_face_size)
        samples["fv"].append([np.stack([cropping.crop_image(frame, b, s.fv_patch_size)
                                        for b in boxes])[None]])
        window = cropping.square_context_box(out["bt_box"][0], s.fll_context)
        samples["fll"].append([prewhiten(cropping.crop_image(frame, window, s.fll_size)[None])])
        return out

    from crct_tf.geometry.landmarks import box_from_landmarks
    state = np.zeros([1, *steps.state_shape], np.float32)
    source = open_source(assets.path("demo_clip"))
    frames = [f.rgb for f in source]
    source.close()
    box = None
    for t, frame in enumerate(frames[: max_examples // 2]):
        if box is None:
            h, w = frame.shape[:2]
            box = np.array([[0.3 * w, 0.2 * h, 0.7 * w, 0.8 * h]], np.float32)
            from crct_tf.tracking import detection
            boxes, _ = detection.detect_faces(detection.make_detector(), frame)
            if len(boxes):
                from crct_tf.tracking.detection import MtcnnBoxMap
                box = MtcnnBoxMap.from_dict(bundle.mtcnn_box_map).apply(boxes[:1])
        out = add(frame, frames[max(t - 1, 0)], box.astype(np.float32), state)
        if np.all(np.isfinite(out["box"])):
            box, state = out["box"], out["state"]
    for example in load_bootstrap_examples("train")[: max_examples // 2]:
        image = np.asarray(example["image"])
        box = np.asarray(box_from_landmarks(np.asarray(example["landmarks"])), np.float32)[None]
        add(image, image, box, np.zeros([1, *steps.state_shape], np.float32))
    return samples


def convert(function, quantize, calibration=None):
    """One frozen concrete function -> TFLite flatbuffer bytes."""
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    if quantize == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        # Weights and activations int8, float input/output (crops stay float 0-255).
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (list(sample) for sample in calibration)
    return converter.convert()


def export_tflite(bundle, export_dir, quantize="none", overwrite=False, weights_dir=None):
    """Writes the three TFLite models and the constants JSON into `export_dir`, atomically."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"unknown quantisation {quantize!r}; expected {', '.join(QUANTIZATIONS)}")
    if os.path.exists(export_dir) and not overwrite:
        raise FileExistsError(f"{export_dir} exists; pass --overwrite to replace it")
    with staged_folder(export_dir, prefix=".tflite.") as staging:
        write_tflite(bundle, staging, quantize, weights_dir)
    logging.info("wrote TFLite models to %s", export_dir)
    return export_dir


def write_tflite(bundle, folder, quantize="none", weights_dir=None):
    """Converts BT, FV and FLL into the existing empty `folder` (what `export_tflite` stages
    and the runtime's LiteRT cache fills). Returns the constants written."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"unknown quantisation {quantize!r}; expected {', '.join(QUANTIZATIONS)}")
    functions, state_shape = _frozen_functions(bundle)
    calibration = calibration_inputs(bundle) if quantize == "int8" else {}
    calibration.pop("fv", None)        # FV stays float32 under int8 (see below)
    inputs, per_model = {}, {}
    for name, function in functions.items():
        # FV is tiny (17 M multiply-adds: two small convolutions on 68 12x12 patches, in one
        # batch): on XNNPACK its float32 model is faster than its quantised ones (the
        # (de)quantisation around such small layers costs more than it saves), so the fastest
        # variant, int8, keeps FV in float32.
        per_model[name] = "none" if (name == "fv" and quantize == "int8") else quantize
        logging.info("converting %s (%s)", name, per_model[name])
        with open(os.path.join(folder, MODEL_FILES[name]), "wb") as f:
            f.write(convert(function, per_model[name], calibration.get(name)))
        inputs[name] = [t.name.split(":")[0] for t in function.inputs]
    manifest = bundle.manifest or {}
    constants = {
        "format": TFLITE_FORMAT, "version": TFLITE_VERSION,
        "models": MODEL_FILES, "inputs": inputs, "quantize": quantize,
        "quantize_per_model": per_model,
        "prewhiten_crops": bool(_prewhiten_layers(bundle)),
        "crop_settings": bundle.settings.to_dict(), "tracker": dict(bundle.tracker),
        "mtcnn_box_map": dict(bundle.mtcnn_box_map), "state_shape": list(state_shape),
        "calibration": ({"examples": len(calibration["bt"]),
                         "source": "demo clip + bootstrap photos, TF tracker crops"}
                        if calibration else None),
        "weights": {"source": os.path.abspath(weights_dir) if weights_dir else None,
                    "created": manifest.get("created"), "dtype": manifest.get("dtype")},
    }
    with open(os.path.join(folder, CONSTANTS_FILE), "w") as f:
        json.dump(constants, f, indent=2)
    return constants
