"""Builds the per-frame network steps of the tracker from what a user has: a weights bundle, a
SavedModel, or a TFLite / LiteRT export folder.

    runtime = load_runtime(runtime="litert")              # the bundled weights on LiteRT (int8)
    runtime = load_runtime()                              # the bundled weights, TF
    runtime = load_runtime(weights="runs/my_bundle", runtime="litert")
    runtime = load_runtime(saved_model="exported/crct")   # no model-building code imported
    runtime = load_runtime(tflite_dir="exported/tflite", threads=2)
    tracker = Tracker.from_constants(runtime.steps, runtime.constants)

Runtimes:
  litert  (`tflite` is its former name; the default of `python -m crct_tf.track` and
          `load_tracker`) BT, FV and FLL as LiteRT models with XNNPACK, crops in OpenCV. From a
          weights bundle, the models are converted on the first run (`LITERT_QUANTIZE`; one
          progress line, a few minutes) and cached under `$CRCT_HOME/litert/`, keyed by the
          sha256 of the bundle's manifest (which holds the sha256 of every weights file); later
          runs check the bundle's files and every cached file against their sha256 and load in
          well under a second. A cache entry that fails its check is rebuilt, never used. From
          `tflite_dir`, an export of `python -m crct_tf.export --format tflite` is run as is.
  tf      the TF step (`frame_step.FrameSteps`; optional XLA) on a bundle, or a SavedModel.

Every failure (a missing folder, a file whose sha256 differs, a folder that is not an export) is
a `RuntimeLoadError` with a one-line message naming the path; the commands print it and exit 2.
`check_source` does the cheap part of those checks before anything slow is imported.
"""

import dataclasses
import json
import os
import sys

from crct_tf.weights.packaged import bundled_weights_dir

RUNTIMES = ("litert", "tf", "tflite")       # tflite: the former name of litert
DEFAULT_RUNTIME = "litert"                  # the commands' and load_tracker's default
# The quantisation of the cached LiteRT models: the fastest whose landmarks stay within 0.003
# median NME of the TF runtime on the demo clip and the robustness sequences (docs/speed.md;
# tests/test_litert_runtime.py).
LITERT_QUANTIZE = "int8"
CALIBRATION_ASSETS = ("demo_clip", "facenet_photos")   # what int8 calibration reads
LITERT_EXPORT_VERSION = 2                   # bump when deploy.tflite writes different models
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
      kind: `tf` (a bundle or a SavedModel) or `litert`.
      models_dir: the LiteRT models' folder (the cache entry, or `tflite_dir`); None for tf.
      built: this call converted the models (the first run of a bundle on LiteRT).
    """
    steps: object
    constants: dict
    label: str
    kind: str
    models_dir: str = None
    built: bool = False


def resolve_runtime(runtime=None, saved_model=None, tflite_dir=None, default="tf"):
    """The runtime a combination of arguments means: `litert` or `tf` (RuntimeLoadError).

    `tflite` is read as `litert`; a `saved_model` implies tf and a `tflite_dir` litert; with
    neither, `runtime` or else `default`.
    """
    if runtime is not None and runtime not in RUNTIMES:
        raise RuntimeLoadError(f"unknown runtime {runtime!r}; expected one of "
                               f"{', '.join(RUNTIMES)}")
    runtime = "litert" if runtime == "tflite" else runtime
    if saved_model is not None:
        if runtime == "litert":
            raise RuntimeLoadError("a SavedModel runs on the tf runtime (litert reads a weights "
                                   "bundle or a TFLite export folder)")
        return "tf"
    if tflite_dir is not None:
        if runtime == "tf":
            raise RuntimeLoadError("a TFLite export folder runs on the litert runtime, not tf")
        return "litert"
    return runtime or ("litert" if default == "tflite" else default)


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
                 jit_compile=False, runtime=None, quantize=None, progress=None, fll_box=None,
                 fll_flip=None, fll_upright=None, fll_turn=None):
    """The per-frame steps from one source.

    Args:
      weights: a weights bundle folder; None with no other source: the bundled weights.
      saved_model: a SavedModel folder from `python -m crct_tf.export` (tf).
      tflite_dir: a TFLite folder from `python -m crct_tf.export --format tflite` (litert).
      threads: LiteRT interpreter threads (default: all cores).
      jit_compile: run a bundle's networks under XLA on tf (costs a compilation on the first
        call).
      runtime: `litert` (`tflite`) or `tf`; None: litert with `tflite_dir`, else tf (the
        commands and `load_tracker` pass `DEFAULT_RUNTIME`).
      quantize: the cached LiteRT models' quantisation (default `LITERT_QUANTIZE`).
      progress: `progress(line)` for the one line printed before a first-run conversion
        (default: to stderr).
      fll_box: where FLL's crop goes (`CropSettings.fll_box`: bt, bt_centre,
        bt_centre_corrected or bt_capped); None: the weights' own. A SavedModel has its own
        baked in: a different one is an error.
      fll_flip: True / False: FLL on its crop and the crop's mirror, averaged
        (`CropSettings.fll_flip`); None: the weights' own. As fll_box for a SavedModel.
      fll_upright: True / False: FLL's crop turned upright by BT's roll
        (`CropSettings.fll_upright`); None: the weights' own. As fll_box for a SavedModel.
      fll_turn: True / False: FLL also on its crop turned by BT's roll, averaged
        (`CropSettings.fll_turn`); None: the weights' own. As fll_box for a SavedModel.

    Raises:
      RuntimeLoadError: with a one-line message.
    """
    check_source(weights, saved_model, tflite_dir)
    kind = resolve_runtime(runtime, saved_model, tflite_dir)
    if kind == "litert":
        built = False
        folder = tflite_dir
        if folder is None:
            folder, built = ensure_litert_models(weights, quantize, progress)
        from crct_tf.tracking import tflite_steps
        try:
            steps = tflite_steps.load_tflite_steps(folder, threads)
        except tflite_steps.TfliteError as e:
            raise RuntimeLoadError(str(e)) from None
        steps.settings = _with_choices(steps.settings, fll_box, fll_flip, fll_upright, fll_turn)
        label = os.path.abspath(tflite_dir or weights or bundled_weights_dir())
        return Runtime(steps, steps.constants, label, "litert", os.path.abspath(folder), built)
    from crct_tf.tracking import frame_step
    if saved_model is not None:
        try:
            steps = frame_step.load_saved_model(saved_model)
        except frame_step.SavedModelError as e:
            raise RuntimeLoadError(str(e)) from None
        asked = _with_choices(steps.settings, fll_box, fll_flip, fll_upright, fll_turn)
        for name in ("fll_box", "fll_flip", "fll_upright", "fll_turn"):
            saved, wanted = getattr(steps.settings, name), getattr(asked, name)
            if saved != wanted:
                raise RuntimeLoadError(f"{saved_model}: exported with {name} "
                                       f"{on_off(saved)}; export it again with "
                                       f"--{name} {on_off(wanted)}")
        return Runtime(steps, steps.constants, os.path.abspath(saved_model), "tf")
    bundle = load_weights(weights)
    steps = frame_step.FrameSteps(bundle.bt, bundle.fv, bundle.fll,
                                  _with_choices(bundle.settings, fll_box, fll_flip, fll_upright,
                                                fll_turn),
                                  jit_compile=jit_compile)
    constants = {"tracker": bundle.tracker, "mtcnn_box_map": bundle.mtcnn_box_map}
    return Runtime(steps, constants, os.path.abspath(weights or bundled_weights_dir()), "tf")


def _with_choices(settings, fll_box, fll_flip, fll_upright=None, fll_turn=None):
    """`settings` with the tracker's FLL choices that are not None; RuntimeLoadError if unknown."""
    try:
        return settings.with_tracker_choices(fll_box, fll_flip, fll_upright, fll_turn)
    except ValueError as e:
        raise RuntimeLoadError(str(e)) from None


def on_off(value):
    """A setting as the commands spell it: a boolean as on / off, anything else as it is."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


def flag_on_off(value):
    """A command's `--fll_flip on|off` (or another on / off flag; None: not given) as True /
    False / None."""
    return None if value is None else value == "on"


def load_weights(weights=None):
    """The `Bundle` (Keras models and constants) of a weights folder, default the bundled one."""
    check_source(weights)
    from crct_tf.weights.bundle import BundleError, load_bundle   # builds the Keras models
    try:
        return load_bundle(weights or bundled_weights_dir())
    except BundleError as e:
        raise RuntimeLoadError(str(e)) from None


# -- the LiteRT cache of a weights bundle ---------------------------------------------------------


def verified_manifest(weights=None):
    """A bundle's manifest (dict) and its raw bytes, after checking every file's sha256.

    The same check as loading the bundle (`weights.bundle.verify_files`), without building any
    model: the LiteRT cache is used only for the exact files the manifest names.
    """
    from crct_tf.tracking.litert_cache import sha256_of
    folder = weights or bundled_weights_dir()
    path = os.path.join(folder, MANIFEST)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        manifest = json.loads(raw)
        parts = manifest["parts"]
        entries = [(part, entry["file"], entry["sha256"]) for part, entry in parts.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise RuntimeLoadError(f"{path}: unreadable weights manifest "
                               f"({e.__class__.__name__})") from None
    for part, name, digest in entries:
        file_path = os.path.join(folder, name)
        if not os.path.isfile(file_path):
            raise RuntimeLoadError(f"{file_path}: missing from the bundle ({part})")
        if sha256_of(file_path) != digest:
            raise RuntimeLoadError(f"{file_path}: sha256 differs from the manifest (altered or "
                                   f"truncated)")
    return manifest, raw


def litert_cache_dir(weights=None, quantize=None, manifest_bytes=None):
    """The cache entry of a bundle's LiteRT models: `$CRCT_HOME/litert/crct-<key>-<q>-v<N>`,
    where key is the sha256 of the bundle's manifest.json."""
    from crct_tf.tracking.litert_cache import cache_root, sha256_of_bytes
    if manifest_bytes is None:
        manifest_bytes = verified_manifest(weights)[1]
    key = sha256_of_bytes(manifest_bytes)
    return os.path.join(cache_root(), f"crct-{key[:16]}-{quantize or LITERT_QUANTIZE}"
                                      f"-v{LITERT_EXPORT_VERSION}")


def ensure_litert_models(weights=None, quantize=None, progress=None):
    """(folder, built): a bundle's LiteRT models from the cache, converted first if needed.

    The conversion (TensorFlow, the Keras models, int8 calibration on the demo clip and the
    bootstrap photos) runs with its console chatter hidden (shown if it fails); `progress` gets
    one line before it starts. It also converts the fast MTCNN's networks when they are not
    cached yet, so a first run prints one line. int8 calibrates on the `demo_clip` and
    `facenet_photos` assets: when they are neither cached nor can be fetched (offline), the
    models are converted to `dynamic` instead (no calibration; a line says so).
    """
    from crct_tf.tracking import litert_cache
    quantize = quantize or LITERT_QUANTIZE
    folder = weights or bundled_weights_dir()
    manifest, raw = verified_manifest(weights)
    entry = litert_cache_dir(weights, quantize, raw)
    say = progress or _stderr_line
    if litert_cache.read_record(entry) is not None:
        litert_cache.touch(entry)
        return entry, False
    if quantize == "int8" and not _calibration_cached():
        # Offline before (the dynamic fallback is cached): use it without trying to fetch;
        # `python -m crct_tf.assets fetch` makes the next run convert to int8.
        fallback = litert_cache_dir(weights, "dynamic", raw)
        if litert_cache.read_record(fallback) is not None:
            litert_cache.touch(fallback)
            return fallback, False
        if not _fetch_calibration(say):
            quantize, entry = "dynamic", fallback

    def announce(reason):
        what = "the first run of these weights" if reason == "missing" else \
            "the cached models failed their sha256 check"
        say(f"{what}: converting BT, FV and FLL to LiteRT {quantize} once (a few minutes) "
            f"into {entry}")

    def build(staging):
        with litert_cache.quiet_console():
            bundle = load_weights(weights)
            from crct_tf.deploy.tflite import write_tflite
            write_tflite(bundle, staging, quantize, weights_dir=folder)
            try:
                from crct_tf.tracking import fast_mtcnn
                fast_mtcnn.ensure_models()
            except Exception:        # noqa: BLE001 - the detector converts on its own later
                pass
            import tensorflow as tf
        return {"tensorflow": tf.__version__}

    info = {"weights": os.path.abspath(folder), "quantize": quantize,
            "created": manifest.get("created"), "export_version": LITERT_EXPORT_VERSION}
    try:
        return litert_cache.cached_models(entry, build, info=info, on_build=announce)
    except RuntimeLoadError:
        raise
    except OSError as e:
        raise RuntimeLoadError(f"cannot write the LiteRT cache {entry}: "
                               f"{e.strerror or e}") from None
    except ImportError as e:
        raise RuntimeLoadError(f"the LiteRT conversion needs TensorFlow ({e})") from None


def _calibration_cached():
    from crct_tf import assets
    return all(assets.is_cached(name) for name in CALIBRATION_ASSETS)


def _fetch_calibration(say):
    """Fetches the int8 calibration's assets; False (with a line) when that fails."""
    from crct_tf import assets
    missing = [name for name in CALIBRATION_ASSETS if not assets.is_cached(name)]
    say(f"fetching the int8 calibration data first ({', '.join(missing)}; about 90 MB, once)")
    try:
        for name in missing:
            assets.fetch(name)
    except (assets.AssetError, OSError) as e:
        say(f"the int8 calibration data is unavailable ({' '.join(str(e).split())[:160]}); "
            f"converting to dynamic-range models instead (no calibration needed)")
        return False
    return True


def _stderr_line(line):
    sys.stderr.write(f"crct_tf: {line}\n")
    sys.stderr.flush()
