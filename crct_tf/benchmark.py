r"""Times the tracker as a user runs it, and its parts.

  python -m crct_tf.benchmark [--weights DIR] [--frames 120] [--variants default,tf,...]
      [--clips demo,640x360,noface] [--fresh_cache] [--threads N]
  python -m crct_tf.benchmark --runtime tf [--frames 60] [--warmup 5] [--nojit_compile]
      (the TF step and each of its stages, with and without XLA)
  python -m crct_tf.benchmark --runtime tflite --tflite_dir DIR [--tflite_dir DIR2] [--threads N]
      (TF against TFLite exports: ms per stage and NME vs TF)
  python -m crct_tf.benchmark --faces 1,2,4
      (ms/frame tracking 1, 2 and 4 faces: crct_tf.evaluation.multi_face.time_faces)
  python -m crct_tf.benchmark --robustness [--robustness_labels human]   (accuracy)

The default run times, in one process, every runtime on three clips: the demo clip (176x144),
a 640x360 version of it (the 16:9 band around the face, upscaled) and a generated 640x360 clip
with no face (a moving texture: the detector runs on every frame). Runtimes (`--variants`):
`default` (what `python -m crct_tf.track` runs: LiteRT, the cached int8 models), `tf` (the TF
step without XLA), `tf_xla` (with XLA), and the cached LiteRT models of each quantisation
(`none`, `fp16`, `dynamic`, `int8`). Each tracks each clip with the `crct` tracker and the
tracking command's detector (the fast MTCNN); it reports, apart:

- the first-run cost: the LiteRT conversion (measured now with --fresh_cache, which converts
  into a temporary cache; otherwise the duration recorded in the cache when it was made), the
  load of cached models, the TF model build, the first frame (tracing; XLA compilation);
- the steady state: ms/frame of `tracker.track` (median and 90th percentile after the warm-up
  frames), of the step alone, and of MTCNN per frame (all its calls over the frames);
- the landmarks' median NME against the `tf` runtime's on the same frames;
- for the default runtime, where the step's time goes (crops, prewhitening, BT, FV, FLL, the
  rest in Python) against its floor, its passes of the int8 backbone at FLL's speed (BT's two,
  FLL's one, or two with `fll_flip`);
- MTCNN per call: the `mtcnn` package, the fast MTCNN with the package's pyramid and with the
  tracker's search policy;
- MediaPipe's FaceMesh on the same frames when `mediapipe` with its legacy face models is
  installed (docs/speed.md says why it is not here).

Prints markdown (docs/speed.md shows a run). The machine is named with its load average: on a
shared machine compare the rows of one run, not runs.
"""

import importlib
import os
import platform
import resource
import sys
import time

import numpy as np
from absl import app, flags, logging

from crct_tf import absl_command

FLAGS = flags.FLAGS


def define_flags():
    """The CLI's flags; defined only when run as a program, so importing this module is free."""
    if "frames" in FLAGS:
        return
    flags.DEFINE_string("weights", None, "Weights bundle (default: the bundled weights).")
    flags.DEFINE_integer("frames", None, "Frames per clip (default: 120 for the default run, "
                         "60 for --runtime tf).")
    flags.DEFINE_integer("warmup", 5, "Frames run before timing.")
    flags.DEFINE_bool("jit_compile", True, "Run the networks under XLA.")
    flags.DEFINE_enum("runtime", "all", ["all", "tf", "tflite"], "all: every runtime as a user "
                      "runs it; tf: the TF step and its stages; tflite: TF against each "
                      "--tflite_dir (ms per stage, NME vs TF).")
    flags.DEFINE_list("variants", list(VARIANTS), "The default run's runtimes.")
    flags.DEFINE_list("clips", list(CLIPS), "The default run's clips.")
    flags.DEFINE_bool("fresh_cache", False, "Convert the LiteRT models into a temporary cache, "
                      "to time the first run (minutes per quantisation).")
    flags.DEFINE_multi_string("tflite_dir", [], "--runtime tflite: TFLite export folder(s) "
                              "(python -m crct_tf.export --format tflite).")
    flags.DEFINE_integer("threads", None, "LiteRT interpreter threads (default: all cores).")
    flags.DEFINE_bool("robustness", False, "Accuracy, not speed: the robustness benchmark "
                      "(crct_tf.evaluation.robustness): crct, fll_mt, bt and dlib on generated "
                      "sequences with motion, blur, light and occluders.")
    flags.DEFINE_string("robustness_out", None, "--robustness: folder for robustness.json/.md.")
    flags.DEFINE_enum("robustness_labels", "teacher", ["teacher", "human"],
                      "--robustness: the ground truth, the teacher's points on the bootstrap val "
                      "photos or people's on the human_300w photos.")
    flags.DEFINE_list("faces", None, "ms/frame with this many faces in view, e.g. 1,2,4 "
                      "(crct_tf.evaluation.multi_face; docs/multi_face.md).")

LARGE_SIZE = (640, 480)
VARIANTS = ("default", "tf", "tf_xla", "none", "fp16", "dynamic", "int8")
CLIPS = ("demo", "640x360", "noface")
WIDE_SIZE = (640, 360)


def _load(weights):
    from crct_tf.tracking.runtime import load_weights
    from crct_tf.weights.packaged import bundled_weights_dir
    return load_weights(weights), os.path.abspath(weights or bundled_weights_dir())


def _demo_frames(count):
    import cv2

    from crct_tf import assets
    from crct_tf.tracking.video_io import open_source
    source = open_source(assets.path("demo_clip"))
    frames = [f.rgb for _, f in zip(range(count), source)]
    source.close()
    while len(frames) < count:                       # the clip has 120 frames: play it back
        frames += frames[::-1][:count - len(frames)]
    large = [cv2.resize(f, LARGE_SIZE, interpolation=cv2.INTER_LINEAR) for f in frames]
    return {"%dx%d" % (frames[0].shape[1], frames[0].shape[0]): frames,
            "%dx%d" % LARGE_SIZE: large}


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    if isinstance(out, dict):
        for value in out.values():
            np.asarray(value)                          # wait for the result
    return out, time.perf_counter() - start


def _time_loop(fn, calls, warmup):
    """Seconds per call of fn over `calls` (argument tuples), the first `warmup` not counted."""
    times = []
    for i, args in enumerate(calls):
        _, seconds = _timed(fn, *args)
        if i >= warmup:
            times.append(seconds)
    return times


def _time_stages(steps, detect, box_map, frames, warmup):
    """Per-call times (s) of the step, each stage alone and MTCNN, each in its own loop.

    The step follows the face (box and state fed back) and its inputs and outputs are
    recorded; each stage is then timed on the same inputs, so every function runs at its own
    steady state, as it does when tracking.
    """
    boxes, _ = detect(frames[0])
    height, width = frames[0].shape[:2]
    box = box_map.apply(boxes[:1]) if len(boxes) else np.array(
        [[0.3 * width, 0.3 * height, 0.7 * width, 0.7 * height]], np.float32)
    state = np.zeros([1, *steps.state_shape], np.float32)
    step_calls, outputs, step_times = [], [], []
    for t in range(1, len(frames)):
        args = (frames[t], frames[t - 1], box, state)
        out, seconds = _timed(steps.step, *args)
        step_calls.append(args)
        outputs.append({k: np.asarray(v) for k, v in out.items()})
        if t > warmup:
            step_times.append(seconds)
        if np.all(np.isfinite(outputs[-1]["box"])):
            box, state = outputs[-1]["box"], outputs[-1]["state"]
    return {
        "step": step_times,
        "bt": _time_loop(steps.bt_step, step_calls, warmup),
        "fv": _time_loop(steps.fv_step, [(c[0], o["bt_landmarks"], o["bt_box"])
                                         for c, o in zip(step_calls, outputs)], warmup),
        "fll": _time_loop(steps.fll_step, [(c[0], o["bt_box"])
                                           for c, o in zip(step_calls, outputs)], warmup),
        "mtcnn": _time_loop(detect, [(f,) for f in frames[1:]], warmup),
    }


def _time_tracker(steps, detect, box_map, tracker_constants, frames, warmup, mode):
    from crct_tf.tracking import Tracker, TrackerConfig
    config = TrackerConfig.from_constants(tracker_constants, mode=mode)
    tracker = Tracker(steps, config, detect=detect, box_map=box_map)
    times = []
    for t, frame in enumerate(frames):
        start = time.perf_counter()
        tracker.track(frame)
        if t >= warmup:
            times.append(time.perf_counter() - start)
    return times, tracker.counts


def _row(clip, what, seconds):
    ms = 1000.0 * np.asarray(seconds)
    median = float(np.median(ms))
    return f"| {clip} | {what} | {median:.1f} | {np.percentile(ms, 90):.1f} | {1000 / median:.1f} |"


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run(weights=None, frames=60, warmup=5, jit_compile=True):
    """Runs the benchmark; returns the markdown report."""
    import tensorflow as tf

    from crct_tf.tracking.detection import MtcnnBoxMap
    from crct_tf.tracking.frame_step import FrameSteps
    from crct_tf.tracking.tracker import default_detector

    bundle, label = _load(weights)
    steps = FrameSteps(bundle.bt, bundle.fv, bundle.fll, bundle.settings, jit_compile=jit_compile)
    plain_steps = FrameSteps(bundle.bt, bundle.fv, bundle.fll, bundle.settings)
    detect = default_detector()
    box_map = MtcnnBoxMap.from_dict(bundle.mtcnn_box_map)
    lines = ["| clip | what | median ms | p90 ms | frames/s |", "|---|---|---|---|---|"]
    for clip, clip_frames in _demo_frames(frames + warmup + 1).items():
        logging.info("timing %s", clip)
        times = _time_stages(steps, detect, box_map, clip_frames, warmup)
        lines.append(_row(clip, "**crct step** (BT + FV + FLL, one tf.function)", times["step"]))
        if jit_compile:
            plain = _time_stages(plain_steps, detect, box_map, clip_frames, warmup)["step"]
            lines.append(_row(clip, "crct step without XLA", plain))
        lines.append(_row(clip, "BT stage (2 crops, backbone batch of 2, LSTMs)", times["bt"]))
        lines.append(_row(clip, "FV stage (68 patches)", times["fv"]))
        lines.append(_row(clip, "FLL stage (1 crop)", times["fll"]))
        lines.append(_row(clip, "MTCNN", times["mtcnn"]))
        for mode in ("crct", "fll_mt"):
            seconds, counts = _time_tracker(steps, detect, box_map, bundle.tracker, clip_frames,
                                            warmup, mode)
            note = f"MTCNN on {counts['detector_calls']} of {len(clip_frames)} frames"
            lines.append(_row(clip, f"tracker `{mode}` end to end ({note})", seconds))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    header = [f"weights: {label}; jit_compile={jit_compile}; {frames} frames after {warmup} "
              f"warm-up frames",
              f"machine: {_cpu_name()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}; "
              f"peak RSS {peak_mb:.0f} MB", ""]
    return "\n".join(header + lines)


# -- TF against TFLite exports (--runtime tflite) ----------------------------------------------


class _Timed:
    """Wraps a steps object: records the seconds of each `step` call (and its network split)."""

    def __init__(self, steps):
        self.steps, self.state_shape = steps, steps.state_shape
        self.records = []

    def step(self, *args):
        networks = getattr(self.steps, "network_seconds", dict)()
        start = time.perf_counter()
        out = {k: np.asarray(v) for k, v in self.steps.step(*args).items()}
        seconds = time.perf_counter() - start
        after = getattr(self.steps, "network_seconds", dict)()
        self.records.append((seconds, {k: after[k] - networks[k] for k in after}))
        return out

    def bt_step(self, *args):
        return self.steps.bt_step(*args)

    def fll_step(self, *args):
        return self.steps.fll_step(*args)


def _track(steps, constants, frames, detector):
    from crct_tf.tracking.detection import MtcnnBoxMap, detect_faces
    from crct_tf.tracking import Tracker, TrackerConfig
    detector_times = []

    def detect(rgb):
        start = time.perf_counter()
        out = detect_faces(detector, rgb)
        detector_times.append(time.perf_counter() - start)
        return out

    timed = _Timed(steps)
    tracker = Tracker(timed, TrackerConfig.from_constants(constants["tracker"]), detect=detect,
                      box_map=MtcnnBoxMap.from_dict(constants["mtcnn_box_map"]))
    results = [tracker.track(f) for f in frames]
    return results, timed.records, detector_times, tracker.counts


def median_nme(results, reference):
    """Median NME of `results` against `reference` FrameResults on frames both tracked."""
    errors = [np.linalg.norm(r.landmarks - ref.landmarks, axis=-1).mean()
              / np.linalg.norm(ref.box[2:] - ref.box[:2])
              for r, ref in zip(results, reference)
              if r.landmarks is not None and ref.landmarks is not None]
    return (float(np.median(errors)) if errors else float("nan")), len(errors)


def _ms(values):
    return f"{1000.0 * float(np.median(values)):.1f}" if len(values) else "–"


def run_tflite(bundle, tflite_dirs, frames=115, warmup=5, threads=None, jit_compile=False):
    """Markdown table: one row per runtime. `bundle`: the loaded weights (the TF reference)."""
    from crct_tf import assets
    from crct_tf.tracking.detection import make_detector
    from crct_tf.tracking.frame_step import FrameSteps
    from crct_tf.tracking.tflite_steps import TfliteSteps
    from crct_tf.tracking.video_io import open_source

    source = open_source(assets.path("demo_clip"))
    clip = [f.rgb for _, f in zip(range(frames + warmup), source)]
    source.close()
    detector = make_detector()
    constants = {"tracker": bundle.tracker, "mtcnn_box_map": bundle.mtcnn_box_map}
    variants = [("tf" + (" (XLA)" if jit_compile else ""),
                 FrameSteps(bundle.bt, bundle.fv, bundle.fll, bundle.settings,
                            jit_compile=jit_compile), constants)]
    for folder in tflite_dirs:
        steps = TfliteSteps(folder, num_threads=threads)
        variants.append((f"tflite {steps.quantize}", steps, steps.constants))
    lines = ["| runtime | step ms | crops ms | BT ms | FV ms | FLL ms | frames/s (step) | "
             "MTCNN ms (calls) | tracked | median NME vs TF |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    reference = None
    for label, steps, variant_constants in variants:
        results, records, detector_times, counts = _track(steps, variant_constants, clip,
                                                          detector)
        records = records[warmup:]
        total = [r[0] for r in records]
        split = {k: [r[1][k] for r in records] for k in ("bt", "fv", "fll")
                 if records and k in records[0][1]}
        crops = [r[0] - sum(r[1].values()) for r in records] if split else []
        if reference is None:
            reference, nme = results, "reference"
        else:
            value, count = median_nme(results[warmup:], reference[warmup:])
            nme = f"{value:.4f} ({count} frames)"
        lines.append(
            f"| {label} | {_ms(total)} | {_ms(crops)} | {_ms(split.get('bt', []))} | "
            f"{_ms(split.get('fv', []))} | {_ms(split.get('fll', []))} | "
            f"{1.0 / float(np.median(total)):.1f} | {_ms(detector_times)} "
            f"({counts['detector_calls']}) | {counts['tracked']}/{len(clip)} | {nme} |")
    header = [f"demo clip 176x144, {frames} frames timed after {warmup}; TFLite threads: "
              f"{threads or os.cpu_count()}; MTCNN apart (median of its calls)", ""]
    return "\n".join(header + lines)


# -- the default run: every runtime as a user runs it ---------------------------------------------


def no_face_clip(size=WIDE_SIZE, count=120, seed=0):
    """A clip with no face: a smooth random texture (several octaves of noise) drifting and
    slowly changing brightness, RGB uint8 frames of `size` (W, H)."""
    import cv2
    width, height = size
    rng = np.random.default_rng(seed)
    big_w, big_h = width + 4 * count, height + 2 * count
    texture = np.zeros((big_h, big_w, 3), np.float32)
    for octave, weight in zip(range(1, 7), (0.5, 0.8, 1.0, 1.0, 0.8, 0.5)):
        cells = rng.uniform(0, 255, (big_h // 2 ** octave + 2, big_w // 2 ** octave + 2, 3))
        texture += weight * cv2.resize(cells.astype(np.float32), (big_w, big_h),
                                       interpolation=cv2.INTER_CUBIC)
    texture = (texture - texture.min()) / (texture.max() - texture.min()) * 255.0
    frames = []
    for t in range(count):
        gain = 0.85 + 0.15 * np.sin(t / 15.0)
        frame = texture[2 * t:2 * t + height, 4 * t:4 * t + width] * gain
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def benchmark_clips(count=120, names=CLIPS):
    """{name: (description, frames)}: the demo clip, its 640x360 version, the no-face clip."""
    import cv2

    from crct_tf import assets
    from crct_tf.tracking.video_io import open_source
    source = open_source(assets.path("demo_clip"))
    demo = [f.rgb for _, f in zip(range(count), source)]
    source.close()
    while len(demo) < count:                         # the clip has 120 frames: play it back
        demo += demo[::-1][:count - len(demo)]
    height, width = demo[0].shape[:2]
    band = int(round(width * WIDE_SIZE[1] / WIDE_SIZE[0]))          # 16:9 rows around the face
    top = min(max(0, int(0.06 * height)), height - band)
    wide = [cv2.resize(f[top:top + band], WIDE_SIZE, interpolation=cv2.INTER_LINEAR)
            for f in demo]
    clips = {"demo": (f"demo clip {width}x{height}", demo),
             "640x360": ("demo clip at 640x360", wide),
             "noface": ("no face, 640x360 (generated)", no_face_clip(WIDE_SIZE, count))}
    return {name: clips[name] for name in names}


class _TimedDetector:
    """The tracker's detector, timed: seconds per call."""

    def __init__(self, detect):
        self.detect, self.seconds = detect, []

    def __call__(self, rgb):
        start = time.perf_counter()
        out = self.detect(rgb)
        self.seconds.append(time.perf_counter() - start)
        return out


def _track_clip(steps, constants, frames, detect, warmup):
    """Tracks `frames` with a fresh `crct` tracker: per-frame seconds (track, step), the
    detector's seconds, results, the first frame's seconds and the stage split of the step."""
    from crct_tf.tracking import Tracker
    timed_steps = _Timed(steps)
    detector = _TimedDetector(detect)
    tracker = Tracker.from_constants(timed_steps, constants, detect=detector)
    stages_before = getattr(steps, "stage_seconds", dict)()
    frame_seconds, cpu_seconds, results, detector_marks = [], [], [], []
    for frame in frames:
        start, cpu = time.perf_counter(), time.process_time()
        results.append(tracker.track(frame))
        frame_seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu)
        detector_marks.append(len(detector.seconds))
    stages_after = getattr(steps, "stage_seconds", dict)()
    timed = slice(warmup, None)
    detector_time = sum(detector.seconds[detector_marks[warmup - 1] if warmup else 0:])
    step_seconds = [r[0] for r in timed_steps.records]
    return {"frames": frame_seconds[timed], "first": frame_seconds[0],
            "cpu": float(np.mean(cpu_seconds[timed])),
            "step": step_seconds[1:] if len(step_seconds) > 1 else step_seconds,
            "mtcnn_per_frame": detector_time / max(len(frames) - warmup, 1),
            "detector_calls": len(detector.seconds), "results": results,
            "tracked": sum(r.landmarks is not None for r in results),
            "stages": {k: stages_after[k] - stages_before.get(k, 0.0) for k in stages_after},
            "steps_run": len(step_seconds),
            "fll_passes": 2 if steps.settings.fll_flip else 1}


def _nme_text(results, reference):
    if reference is None:
        return "–"
    value, count = median_nme(results, reference)
    return "reference" if results is reference else \
        ("–" if count == 0 else f"{value:.4f}")


def _load_average():
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def _load_variant(name, bundle_holder, weights, threads, first_run):
    """(steps, constants, label) of one runtime; records its first-run costs in `first_run`."""
    from crct_tf.tracking import litert_cache, runtime as runtimes
    if name in ("tf", "tf_xla"):
        from crct_tf.tracking.frame_step import FrameSteps
        if "bundle" not in bundle_holder:
            start = time.perf_counter()
            bundle_holder["bundle"] = runtimes.load_weights(weights)
            first_run.append(("tf", "build the Keras models and read the weights",
                              time.perf_counter() - start))
        bundle = bundle_holder["bundle"]
        steps = FrameSteps(bundle.bt, bundle.fv, bundle.fll, bundle.settings,
                           jit_compile=name == "tf_xla")
        return steps, {"tracker": bundle.tracker, "mtcnn_box_map": bundle.mtcnn_box_map}
    from crct_tf.tracking.tflite_steps import TfliteSteps
    quantize = runtimes.LITERT_QUANTIZE if name == "default" else name
    start = time.perf_counter()
    folder, built = runtimes.ensure_litert_models(weights, quantize, progress=lambda line: None)
    converted = time.perf_counter() - start
    record = litert_cache.read_record(folder) or {}
    label = f"litert {quantize}" + (" (default)" if name == "default" else "")
    if built:
        first_run.append((label, "conversion into the cache (measured now)", converted))
    elif record.get("build_seconds") is not None:
        first_run.append((label, "conversion into the cache (recorded when it ran)",
                          record["build_seconds"]))
    start = time.perf_counter()
    steps = TfliteSteps(folder, num_threads=threads)
    loaded = time.perf_counter() - start
    if not built:
        first_run.append((label, "later runs: check the cache and load the models",
                          converted + loaded))
    return steps, steps.constants


def _detector_rows(clips, threads, calls=10):
    """ms per call of each MTCNN on each clip (median over `calls` frames after one warm-up)."""
    from crct_tf.tracking import detection, fast_mtcnn
    detectors = [("`mtcnn` package (the former default)",
                  lambda rgb, d=detection.make_detector(): detection.detect_faces(d, rgb)),
                 ("fast MTCNN, the package's pyramid", fast_mtcnn.FastMtcnn(num_threads=threads)),
                 ("fast MTCNN, the tracker's search policy (default)",
                  fast_mtcnn.default_detector(num_threads=threads))]
    rows = []
    for label, detect in detectors:
        cells = []
        for _, frames in clips.values():
            picks = frames[:: max(1, len(frames) // calls)][:calls]
            detect(picks[0])
            seconds = []
            for frame in picks:
                start = time.perf_counter()
                detect(frame)
                seconds.append(time.perf_counter() - start)
            cells.append(f"{1000 * np.median(seconds):.1f}")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return rows


def _mediapipe():
    """A `track(rgb)` of MediaPipe's FaceMesh (legacy solution), or (None, why)."""
    try:
        import mediapipe as mp
        face_mesh = mp.solutions.face_mesh
    except ImportError:
        return None, "not installed"
    except AttributeError:
        return None, "installed without the legacy face models (mediapipe >= 0.10.30)"
    mesh = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1)
    return (lambda rgb: mesh.process(rgb)), None


def run_all(weights=None, frames=120, warmup=5, variants=VARIANTS, clip_names=CLIPS,
            threads=None, fresh_cache=False):
    """The default run; returns the markdown report."""
    import tempfile

    from crct_tf.tracking import fast_mtcnn, litert_cache, runtime as runtimes
    threads = threads or os.cpu_count()
    load_start = _load_average()
    started = time.strftime("%Y-%m-%d %H:%M")
    clips = benchmark_clips(frames, clip_names)
    first_run = []
    restore = None
    if fresh_cache:
        temporary = tempfile.mkdtemp(prefix="crct_bench_cache.")
        restore = litert_cache.cache_root
        litert_cache.cache_root = lambda: temporary
    try:
        if {"tf", "tf_xla"} & set(variants) and "tensorflow" not in sys.modules:
            with litert_cache.quiet_console():           # TensorFlow's start-up chatter
                importlib.import_module("tensorflow")
        cached = litert_cache.read_record(fast_mtcnn.cache_folder()) is not None
        start = time.perf_counter()
        models = fast_mtcnn.ensure_models()
        seconds = time.perf_counter() - start
        record = litert_cache.read_record(models) or {}
        detect = fast_mtcnn.default_detector(num_threads=threads)
        if not cached:
            first_run.append(("fast MTCNN", "conversion of P/R/O-Net into the cache (measured "
                              "now; once per installation)", seconds))
        else:
            if record.get("build_seconds") is not None:
                first_run.append(("fast MTCNN", "conversion of P/R/O-Net into the cache "
                                  "(recorded when it ran; once per installation)",
                                  record["build_seconds"]))
            first_run.append(("fast MTCNN", "later runs: check the cache", seconds))
        holder, results = {}, {}
        for name in variants:
            logging.info("timing %s", name)
            steps, constants = _load_variant(name, holder, weights, threads, first_run)
            label = {"default": f"**default** (litert {runtimes.LITERT_QUANTIZE})",
                     "tf": "tf", "tf_xla": "tf, XLA"}.get(name, f"litert {name}")
            for clip, (_, clip_frames) in clips.items():
                results[name, clip] = _track_clip(steps, constants, clip_frames, detect, warmup)
                if clip == "demo" or (clip == "640x360" and "demo" not in clips):
                    first_run.append((label, "first frame (tracing / XLA compilation, "
                                      "interpreter warm-up; detector included)",
                                      results[name, clip]["first"]))
            results[name] = label
    finally:
        if restore is not None:
            litert_cache.cache_root = restore
    mediapipe, why = _mediapipe()
    mp_cells = {}
    if mediapipe is not None:
        for clip, (_, clip_frames) in clips.items():
            seconds = []
            for t, frame in enumerate(clip_frames):
                start = time.perf_counter()
                mediapipe(frame)
                if t >= warmup:
                    seconds.append(time.perf_counter() - start)
            mp_cells[clip] = float(np.median(seconds)) * 1000

    lines = [f"run {started}; machine: {_cpu_name()}, {os.cpu_count()} cores, load average "
             f"{load_start} at the start and {_load_average()} at the end (1/5/15 min); "
             f"LiteRT threads {threads}; {frames} frames per clip, the first {warmup} not "
             f"timed", ""]
    lines += ["### First-run costs", "", "| runtime | what | s |", "|---|---|---|"]
    lines += [f"| {who} | {what} | {seconds:.2f} |" for who, what, seconds in first_run]
    names = list(clips)
    lines += ["", "### Steady state: ms per frame of `tracker.track` (median; p90)", "",
              "| runtime | " + " | ".join(clips[c][0] for c in names) +
              " | step alone (" + names[0] + ") | MTCNN per frame (" +
              ", ".join(names) + ") | CPU ms per frame, all threads (" + ", ".join(names) +
              ") | landmarks: median NME vs tf (" +
              ", ".join(n for n in names if n != "noface") + ") |",
              "|---" * (len(names) + 5) + "|"]
    reference = {c: results.get(("tf", c), {}).get("results") for c in names}
    for name in variants:
        cells = []
        for clip in names:
            r = results[name, clip]
            ms = 1000 * np.asarray(r["frames"])
            cells.append(f"{np.median(ms):.1f}; {np.percentile(ms, 90):.1f}")
        step = results[name, names[0]]["step"]
        step_cell = f"{1000 * np.median(step):.1f}" if len(step) else "–"
        mtcnn = ", ".join(f"{1000 * results[name, c]['mtcnn_per_frame']:.1f}" for c in names)
        nme = ", ".join(_nme_text(results[name, c]["results"], reference[c])
                        for c in names if c != "noface")
        cpu = ", ".join(f"{1000 * results[name, c]['cpu']:.1f}" for c in names)
        lines.append(f"| {results[name]} | " + " | ".join(cells) +
                     f" | {step_cell} | {mtcnn} | {cpu} | {nme} |")
    if mp_cells:
        lines.append("| MediaPipe FaceMesh | " + " | ".join(f"{mp_cells[c]:.1f}" for c in names)
                     + " | – | – | – | – |")
    else:
        lines += ["", f"MediaPipe: {why}; no MediaPipe column in this run."]
    counts = ", ".join(f"{c}: {results[variants[0], c]['tracked']}/{len(clips[c][1])} tracked, "
                       f"MTCNN on {results[variants[0], c]['detector_calls']} frames"
                       for c in names)
    lines += ["", f"{results[variants[0]]}: {counts}."]
    if "default" in variants:
        lines += _split_rows(results, names)
    lines += ["", "### MTCNN: ms per call (median of 10 frames)", "",
              "| detector | " + " | ".join(clips[c][0] for c in names) + " |",
              "|---" * (len(names) + 1) + "|"]
    lines += _detector_rows(clips, threads)
    return "\n".join(lines)


def _split_rows(results, names):
    """Where the default runtime's step goes, per frame, against its int8 backbone passes (BT's
    two and FLL's one, or two with `fll_flip`) at FLL's speed."""
    lines = ["", "### The default runtime's step: where the time goes (ms per step)", "",
             "| clip | crops | prewhitening | BT (2 backbone passes + LSTMs) | FV | "
             "FLL (1 backbone pass; 2 with fll_flip) | rest (Python) | step | "
             "floor: the backbone passes at FLL's speed | step / floor |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for clip in names:
        r = results["default", clip]
        count = r["steps_run"]
        if not count or not r["stages"]:
            continue
        per = {k: 1000 * v / count for k, v in r["stages"].items()}
        step = 1000 * float(np.mean(r["step"])) if len(r["step"]) else float("nan")
        rest = step - sum(per.values())
        passes = r["fll_passes"]
        floor = (2 + passes) * per["fll"] / passes
        lines.append(f"| {clip} | {per['crops']:.2f} | {per['prewhiten']:.2f} | {per['bt']:.2f} | "
                     f"{per['fv']:.2f} | {per['fll']:.2f} | {rest:.2f} | {step:.2f} | "
                     f"{floor:.2f} | {step / floor:.2f} |")
    return lines


def _bad_input(message):
    """Bad input: one line on stderr, exit code 2."""
    sys.stderr.write(f"benchmark: error: {' '.join(str(message).split())}\n")
    raise SystemExit(2)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.robustness:
        from crct_tf.evaluation import robustness
        args = ["--weights", FLAGS.weights] if FLAGS.weights else []
        args += ["--out", FLAGS.robustness_out] if FLAGS.robustness_out else []
        args += ["--labels", FLAGS.robustness_labels]
        raise SystemExit(robustness.main(args))
    if FLAGS.faces:
        from crct_tf.evaluation import multi_face
        args = ["--parts", "speed", "--faces", ",".join(FLAGS.faces)]
        raise SystemExit(multi_face.main(args + (["--weights", FLAGS.weights]
                                                 if FLAGS.weights else [])))
    if FLAGS.runtime == "tflite":
        # TF (the reference, without XLA) against each TFLite export.
        bundle, label = _load(FLAGS.weights)
        print(f"weights: {label}; machine: {_cpu_name()}, {os.cpu_count()} cores\n", flush=True)
        print(run_tflite(bundle, FLAGS.tflite_dir, FLAGS.frames or 115, FLAGS.warmup,
                         FLAGS.threads), flush=True)
        return
    if FLAGS.runtime == "tf":
        print(run(FLAGS.weights, FLAGS.frames or 60, FLAGS.warmup, FLAGS.jit_compile),
              flush=True)
        return
    unknown = sorted(set(FLAGS.variants) - set(VARIANTS)) + sorted(set(FLAGS.clips) - set(CLIPS))
    if unknown:
        _bad_input(f"unknown --variants/--clips {', '.join(unknown)}; expected "
                   f"{', '.join(VARIANTS)} and {', '.join(CLIPS)}")
    if (FLAGS.frames or 120) <= FLAGS.warmup:
        _bad_input(f"--frames must exceed --warmup ({FLAGS.warmup})")
    if FLAGS.threads is not None and FLAGS.threads < 1:
        _bad_input(f"--threads must be at least 1, got {FLAGS.threads}")
    from crct_tf.tracking import runtime as runtimes
    try:
        runtimes.check_source(FLAGS.weights)
    except runtimes.RuntimeLoadError as e:
        _bad_input(str(e))
    print(run_all(FLAGS.weights, FLAGS.frames or 120, FLAGS.warmup, FLAGS.variants, FLAGS.clips,
                  FLAGS.threads, FLAGS.fresh_cache), flush=True)


if __name__ == "__main__":
    define_flags()
    absl_command.run(main, "benchmark")
