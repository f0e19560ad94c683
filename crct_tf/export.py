r"""Exports CRCT: a weights bundle as a SavedModel, or training runs packed into a bundle.

SavedModel (what `python -m crct_tf.track --saved_model DIR` runs, with no model-building code):

  python -m crct_tf.export --export_dir exported/crct [--overwrite]

writes a `tf.Module` (`tracking.frame_step.FrameSteps`) holding the variables of BT, FV and FLL
and tf.functions with fixed input signatures: `step` (the whole frame of Algorithm 1, also
`serving_default`), `bt_step`, `fv_step`, `fll_step`, and the bare sub-networks `bt`, `fv`,
`fll` on ready crops. The constants the tracker needs (crop settings, SeqBT, T_B, T_C, the
MTCNN box map, BT's state shape) go in the asset `assets/crct_tracker.json`. The folder is
written under a temporary name, then renamed.

TFLite (what `python -m crct_tf.track --runtime tflite --tflite_dir DIR` runs; see
`crct_tf.deploy.tflite`):

  python -m crct_tf.export --format tflite --export_dir exported/tflite \
      [--quantize none|fp16|dynamic|int8] [--overwrite]

Weights bundle, from one or more training runs of the train CLI:

  python -m crct_tf.export --format bundle --model_dir runs/fll --model_dir runs/fv \
      --model_dir runs/bt_seq2 --export_dir my_weights [--dtype float16] [--share_backbone] \
      [--overwrite]

Bad input: one line on stderr, exit code 2.
"""

import json
import os
import shutil
import sys
import tempfile

# TensorFlow's C++ log level, set before it is imported: without an NVIDIA driver its start-up
# error "failed call to cuInit" (after which it runs on the CPU as intended) is noise; with a
# driver its errors stay visible. TF_CPP_MIN_LOG_LEVEL set by the user wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL",
                      "2" if os.path.exists("/proc/driver/nvidia") else "3")

from absl import app, flags, logging  # noqa: E402

from crct_tf import absl_command  # noqa: E402
from crct_tf.geometry.cropping import FLL_BOX_RULES  # noqa: E402
from crct_tf.tracking.runtime import flag_on_off  # noqa: E402
from crct_tf.weights.staged_folder import staged_folder  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """The CLI's flags; defined only when run as a program, so importing this module is free."""
    if "export_dir" in FLAGS:
        return
    flags.DEFINE_enum("format", "saved_model", ["saved_model", "bundle", "tflite"],
                      "What to write (tflite: see crct_tf.deploy.tflite).")
    flags.DEFINE_enum("quantize", "none", ["none", "fp16", "dynamic", "int8"],
                      "--format tflite: weights/activations quantisation (int8 is calibrated on "
                      "real face crops).")
    flags.DEFINE_string("weights", None, "Weights bundle folder to export (--format saved_model "
                        "or tflite; default: the bundled weights).")
    flags.DEFINE_multi_string("model_dir", [], "Training run folder(s) to pack (--format bundle).")
    flags.DEFINE_string("export_dir", None, "Output folder.")
    flags.DEFINE_bool("overwrite", False, "Replace --export_dir when it exists.")
    flags.DEFINE_enum("dtype", "float32", ["float32", "float16"], "Bundle weights dtype.")
    flags.DEFINE_bool("share_backbone", False, "Bundle: store BT's backbone once for BT and "
                      "FLL (the paper keeps them apart).")
    flags.DEFINE_float("t_c", None, "Bundle: the validator threshold T_C saved with the weights "
                       "(default the paper's 0.5; see `python -m crct_tf.evaluation.robustness_fv`).")
    flags.DEFINE_enum("fll_box", None, list(FLL_BOX_RULES), "Where the tracker puts FLL's "
                      "crop, saved with the export: bt (around BT's box, Algorithm 1), "
                      "bt_centre (BT's centre, the previous box's size), bt_centre_corrected "
                      "(BT's centre less its running offset from FLL's) or bt_capped (BT's box "
                      "no larger than the previous box; docs/robustness.md). "
                      "Default: the weights' own.")
    flags.DEFINE_enum("fll_flip", None, ["on", "off"], "on: the tracker runs FLL on its crop "
                      "and on the mirrored crop and averages the points (one more FLL pass per "
                      "frame; docs/robustness.md), saved with the export. Default: the weights' "
                      "own.")
    flags.DEFINE_enum("fll_upright", None, ["on", "off"], "on: the tracker turns FLL's crop by "
                      "the roll of BT's points, the face upright in it (needs fll_box bt; "
                      "docs/robustness.md), saved with the export. Default: the weights' own.")
    flags.DEFINE_enum("fll_turn", None, ["on", "off"], "on: the tracker also runs FLL on its crop "
                      "turned by the roll of BT's points and averages the point sets (one "
                      "more FLL pass per frame; docs/robustness.md), saved with the export. "
                      "Default: the weights' own.")
    flags.DEFINE_enum("recheck_fll", None, ["on", "off"], "on: when the validator rejects BT's "
                      "estimate of a face, it also checks FLL's landmarks, and the face stays "
                      "tracked if it accepts them (docs/robustness.md), saved with the export. "
                      "Default: the weights' own (none: on with several faces, off with one).")
    flags.DEFINE_bool("jit_compile", True, "Run the networks under XLA inside the exported step.")

class ExportError(RuntimeError):
    """An export that cannot be done; the message is one line."""


def saved_model_constants(bundle, state_shape, jit_compile, weights_dir=None):
    """The constants asset of a SavedModel exported from `bundle`."""
    from crct_tf.tracking import frame_step
    manifest = bundle.manifest or {}
    return {
        "format": frame_step.SAVED_MODEL_FORMAT,
        "version": frame_step.SAVED_MODEL_VERSION,
        "crop_settings": bundle.settings.to_dict(),
        "tracker": dict(bundle.tracker),
        "mtcnn_box_map": dict(bundle.mtcnn_box_map),
        "state_shape": list(state_shape),
        "jit_compile": bool(jit_compile),
        "weights": {"source": os.path.abspath(weights_dir) if weights_dir else None,
                    "created": manifest.get("created"), "dtype": manifest.get("dtype"),
                    "training": manifest.get("training", {})},
    }


def export_saved_model(bundle, export_dir, overwrite=False, jit_compile=True, weights_dir=None):
    """Writes `bundle` (a loaded `crct_tf.weights.bundle.Bundle`) as a SavedModel, atomically.

    Returns the `FrameSteps` module that was saved (the in-memory twin of the export).
    """
    import tensorflow as tf

    from crct_tf.tracking import frame_step

    if os.path.exists(export_dir) and not overwrite:
        raise ExportError(f"{export_dir} exists; pass --overwrite to replace it")
    steps = frame_step.FrameSteps(bundle.bt, bundle.fv, bundle.fll, bundle.settings,
                                  jit_compile=jit_compile)
    constants = saved_model_constants(bundle, steps.state_shape, jit_compile, weights_dir)
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    asset_dir = tempfile.mkdtemp(prefix=".constants.", dir=parent)
    try:
        asset = os.path.join(asset_dir, frame_step.CONSTANTS_FILE)
        with open(asset, "w") as f:
            json.dump(constants, f, indent=2)
        steps.constants_asset = tf.saved_model.Asset(asset)
        with staged_folder(export_dir, prefix=".saved_model.") as staging:
            tf.saved_model.save(steps, staging, signatures=steps.signatures())
    finally:
        shutil.rmtree(asset_dir, ignore_errors=True)
    logging.info("wrote SavedModel %s", export_dir)
    return steps


def run(export_format, export_dir, weights=None, model_dirs=(), overwrite=False,
        dtype="float32", share_backbone=False, jit_compile=True, quantize="none", t_c=None,
        fll_box=None, fll_flip=None, fll_upright=None, recheck_fll=None, fll_turn=None):
    """What the CLI does; returns the written folder.

    Raises:
      ExportError, BundleError: bad input, with a one-line message. The cheap checks come first,
        before TensorFlow is imported.
    """
    if not export_dir:
        raise ExportError("--export_dir is required")
    if os.path.exists(export_dir) and not overwrite:
        raise ExportError(f"{export_dir} exists; pass --overwrite to replace it")
    if t_c is not None and export_format != "bundle":
        raise ExportError("--t_c applies to --format bundle only")
    if export_format == "bundle":
        if not model_dirs:
            raise ExportError("--format bundle needs at least one --model_dir")
        from crct_tf.training.loop import TrainingError   # training code, only for this branch
        from crct_tf.training.pack import T_C, pack_runs
        try:
            return pack_runs(list(model_dirs), export_dir, dtype=dtype, overwrite=overwrite,
                             share_backbone=share_backbone, t_c=T_C if t_c is None else t_c,
                             fll_box=fll_box, fll_flip=fll_flip, fll_upright=fll_upright,
                             recheck_fll=recheck_fll, fll_turn=fll_turn)
        except TrainingError as e:
            raise ExportError(str(e)) from None
    from crct_tf.tracking.runtime import RuntimeLoadError, load_weights
    from crct_tf.weights.packaged import bundled_weights_dir
    try:
        bundle = load_weights(weights)
    except RuntimeLoadError as e:
        raise ExportError(str(e)) from None
    weights = weights or bundled_weights_dir()         # recorded as the export's source
    try:
        bundle.settings = bundle.settings.with_tracker_choices(fll_box, fll_flip, fll_upright,
                                                               fll_turn)
    except ValueError as e:
        raise ExportError(str(e)) from None
    if recheck_fll is not None:
        bundle.tracker = {**bundle.tracker, "recheck_fll": bool(recheck_fll)}
    if export_format == "tflite":
        from crct_tf.deploy import tflite
        return tflite.export_tflite(bundle, export_dir, quantize, overwrite, weights)
    export_saved_model(bundle, export_dir, overwrite, jit_compile, weights)
    return export_dir


def _fail(error):
    sys.stderr.write(f"crct_tf.export: error: {' '.join(str(error).split())}\n")
    sys.exit(2)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)   # TensorFlow's saver is chatty at INFO
    try:
        out = run(FLAGS.format, FLAGS.export_dir, FLAGS.weights, FLAGS.model_dir,
                  FLAGS.overwrite, FLAGS.dtype, FLAGS.share_backbone, FLAGS.jit_compile,
                  FLAGS.quantize, FLAGS.t_c, FLAGS.fll_box,
                  flag_on_off(FLAGS.fll_flip), flag_on_off(FLAGS.fll_upright),
                  flag_on_off(FLAGS.recheck_fll), flag_on_off(FLAGS.fll_turn))
    except ExportError as e:
        _fail(e)
    except (OSError, ValueError) as e:
        _fail(e)
    except RuntimeError as e:
        from crct_tf.weights.bundle import BundleError     # imported only now: it imports TensorFlow
        if not isinstance(e, BundleError):
            raise
        _fail(e)
    print(f"exported {FLAGS.format} to {out}", flush=True)


if __name__ == "__main__":
    define_flags()
    absl_command.run(main, "crct_tf.export")
