r"""Times the tracker: ms/frame of the whole step and of each stage, frames/s, peak memory.

  python -m crct_tf.benchmark [--weights DIR] [--frames 60] [--warmup 5] [--nojit_compile]
  python -m crct_tf.benchmark --runtime tflite --tflite_dir DIR [--tflite_dir DIR2] [--threads N]
      (TF against TFLite exports: ms per stage and NME vs TF)
  python -m crct_tf.benchmark --faces 1,2,4
      (ms/frame tracking 1, 2 and 4 faces: crct_tf.evaluation.multi_face.time_faces)

On the demo clip (176x144) and on the same frames upscaled to 640x480, after warm-up:
the crct step (BT + FV + FLL, one tf.function), each stage alone (BT with both crops, FV with
its patches, FLL with its crop), MTCNN, and the trackers `crct` and `fll_mt` end to end
(Python loop, detector calls and all); with XLA (the default) also the step without it.
Prints a markdown table (median and 90th percentile
ms, frames/s from the median) and the peak resident memory.

Without --weights it times the bundled weights.

With --runtime tflite it tracks the demo clip in `crct` mode with TF (the reference, without
XLA) and with each TFLite export given: per frame, ms in the whole step (no MTCNN), in each
network and, for TFLite, in the crops (numpy/OpenCV: everything in the step that is not a
network); MTCNN calls are timed apart. Accuracy: the median NME of each variant's landmarks
against the TF tracker's on the frames both track (mean point distance / the TF box diagonal).
"""

import os
import platform
import resource
import sys
import time

import numpy as np
from absl import app, flags, logging

FLAGS = flags.FLAGS


def define_flags():
    """The CLI's flags; defined only when run as a program, so importing this module is free."""
    if "frames" in FLAGS:
        return
    flags.DEFINE_string("weights", None, "Weights bundle (default: the bundled weights).")
    flags.DEFINE_integer("frames", 60, "Frames timed per clip (after the warm-up).")
    flags.DEFINE_integer("warmup", 5, "Frames run before timing.")
    flags.DEFINE_bool("jit_compile", True, "Run the networks under XLA.")
    flags.DEFINE_enum("runtime", "tf", ["tf", "tflite"], "tf: the TF step and its stages; "
                      "tflite: TF against each --tflite_dir (ms per stage, NME vs TF).")
    flags.DEFINE_multi_string("tflite_dir", [], "--runtime tflite: TFLite export folder(s) "
                              "(python -m crct_tf.export --format tflite).")
    flags.DEFINE_integer("threads", None, "--runtime tflite: interpreter threads (default: all).")
    flags.DEFINE_bool("robustness", False, "Accuracy, not speed: the robustness benchmark "
                      "(crct_tf.evaluation.robustness): crct, fll_mt, bt and dlib on generated "
                      "sequences with motion, blur, light and occluders.")
    flags.DEFINE_string("robustness_out", None, "--robustness: folder for robustness.json/.md.")
    flags.DEFINE_list("faces", None, "ms/frame with this many faces in view, e.g. 1,2,4 "
                      "(crct_tf.evaluation.multi_face; docs/multi_face.md).")

LARGE_SIZE = (640, 480)


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


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.robustness:
        from crct_tf.evaluation import robustness
        args = ["--weights", FLAGS.weights] if FLAGS.weights else []
        args += ["--out", FLAGS.robustness_out] if FLAGS.robustness_out else []
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
        print(run_tflite(bundle, FLAGS.tflite_dir, FLAGS.frames, FLAGS.warmup,
                                   FLAGS.threads), flush=True)
        return
    print(run(FLAGS.weights, FLAGS.frames, FLAGS.warmup, FLAGS.jit_compile), flush=True)


if __name__ == "__main__":
    define_flags()
    try:
        app.run(main)
    except SystemExit as e:  # absl exits 1 after printing --help: asking for help is no error
        asked_for_help = {"--help", "--helpshort", "--helpfull", "-?"} & set(sys.argv[1:])
        sys.exit(0 if e.code == 1 and asked_for_help else e.code)
