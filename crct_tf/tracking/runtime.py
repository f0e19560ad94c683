"""Builds the per-frame network steps of the tracker from what a user has: a weights bundle, a
SavedModel, or a TFLite / LiteRT export folder.

    runtime = load_runtime()                              # the bundled weights, TF
    runtime = load_runtime(weights="runs/my_bundle")
    runtime = load_runtime(saved_model="exported/crct")   # no model-building code imported
    runtime = load_runtime(tflite_dir="exported/tflite", threads=2)
    tracker = Tracker.from_constants(runtime.steps, runtime.constants)

Every failure (a missing folder, a file whose sha256 differs, a folder that is not an export) is
a `RuntimeLoadError` with a one-line message naming the path; the commands print it and exit 2.
`check_source` does the cheap part of those checks before anything slow is imported.
"""

import dataclasses
import os

from crct_tf.weights.packaged import bundled_weights_dir

RUNTIMES = ("tf", "tflite")
MANIFEST = "manifest.json"                  # a weights bundle's manifest
SAVED_MODEL_PB = "saved_model.pb"
TFLITE_CONSTANTS = "crct_tflite.json"       # a TFLite export's constants


class RuntimeLoadError(RuntimeError):
    """Weights or an export that cannot be used; the message is one line naming the path."""


@dataclasses.dataclass
class Runtime:
    """Per-frame steps and the constants the tracker needs.

    Attributes:
      steps: an object with `step`, `bt_step`, `fv_step`, `fll_step` and `state_shape`.
      constants: {"tracker": {seq_bt, t_b, t_c}, "mtcnn_box_map": {dx, dy, sx, sy}, ...}.
      label: where the networks came from (an absolute path), for summaries.
      kind: `tf` (a bundle or a SavedModel) or `tflite`.
    """
    steps: object
    constants: dict
    label: str
    kind: str


def check_source(weights=None, saved_model=None, tflite_dir=None):
    """Cheap check that the named source exists and has the expected form (no TF import)."""
    if sum(x is not None for x in (weights, saved_model, tflite_dir)) > 1:
        raise RuntimeLoadError("give one of weights, saved_model and tflite_dir")
    if tflite_dir is not None:
        if not os.path.isdir(tflite_dir):
            raise RuntimeLoadError(f"{tflite_dir}: no such TFLite export folder")
        if not os.path.isfile(os.path.join(tflite_dir, TFLITE_CONSTANTS)):
            raise RuntimeLoadError(f"{tflite_dir}: not a TFLite export (no {TFLITE_CONSTANTS}; "
                                   f"python -m crct_tf.export --format tflite)")
        return
    if saved_model is not None:
        if not os.path.isfile(os.path.join(saved_model, SAVED_MODEL_PB)):
            raise RuntimeLoadError(f"{saved_model}: not a SavedModel folder (no {SAVED_MODEL_PB})")
        return
    folder = weights or bundled_weights_dir()
    if not os.path.isfile(os.path.join(folder, MANIFEST)):
        if weights is None:
            raise RuntimeLoadError(f"{folder}: the bundled weights are missing from this "
                                   f"installation (no {MANIFEST}); pass a weights folder")
        raise RuntimeLoadError(f"{folder}: not a weights bundle (no {MANIFEST})")


def load_runtime(weights=None, saved_model=None, tflite_dir=None, threads=None,
                 jit_compile=False):
    """The per-frame steps from one source (default: the bundled weights on TensorFlow).

    Args:
      weights: a weights bundle folder; None with no other source: the bundled weights.
      saved_model: a SavedModel folder from `python -m crct_tf.export`.
      tflite_dir: a TFLite folder from `python -m crct_tf.export --format tflite`.
      threads: TFLite interpreter threads (default: all cores).
      jit_compile: run a bundle's networks under XLA (costs a compilation on the first call).

    Raises:
      RuntimeLoadError: with a one-line message.
    """
    check_source(weights, saved_model, tflite_dir)
    if tflite_dir is not None:
        from crct_tf.tracking import tflite_steps
        try:
            steps = tflite_steps.load_tflite_steps(tflite_dir, threads)
        except tflite_steps.TfliteError as e:
            raise RuntimeLoadError(str(e)) from None
        return Runtime(steps, steps.constants, os.path.abspath(tflite_dir), "tflite")
    from crct_tf.tracking import frame_step
    if saved_model is not None:
        try:
            steps = frame_step.load_saved_model(saved_model)
        except frame_step.SavedModelError as e:
            raise RuntimeLoadError(str(e)) from None
        return Runtime(steps, steps.constants, os.path.abspath(saved_model), "tf")
    bundle = load_weights(weights)
    steps = frame_step.FrameSteps(bundle.bt, bundle.fv, bundle.fll, bundle.settings,
                                  jit_compile=jit_compile)
    constants = {"tracker": bundle.tracker, "mtcnn_box_map": bundle.mtcnn_box_map}
    return Runtime(steps, constants, os.path.abspath(weights or bundled_weights_dir()), "tf")


def load_weights(weights=None):
    """The `Bundle` (Keras models and constants) of a weights folder, default the bundled one."""
    check_source(weights)
    from crct_tf.weights.bundle import BundleError, load_bundle   # builds the Keras models
    try:
        return load_bundle(weights or bundled_weights_dir())
    except BundleError as e:
        raise RuntimeLoadError(str(e)) from None
