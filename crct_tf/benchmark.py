r"""Times the tracker: ms/frame of the whole step and of each stage, frames/s, peak memory.

  python -m crct_tf.benchmark [--weights DIR] [--frames 60] [--warmup 5] [--nojit_compile]
  python -m crct_tf.benchmark --runtime tflite --tflite_dir DIR [--tflite_dir DIR2] [--threads N]
      (TF against TFLite exports: ms per stage and NME vs TF; see crct_tf.tflite_benchmark)

On the demo clip (176x144) and on the same frames upscaled to 640x480, after warm-up:
the crct step (BT + FV + FLL, one tf.function), each stage alone (BT with both crops, FV with
its patches, FLL with its crop), MTCNN, and the trackers `crct` and `fll_mt` end to end
(Python loop, detector calls and all); with XLA (the default) also the step without it.
Prints a markdown table (median and 90th percentile
ms, frames/s from the median) and the peak resident memory.

Without --weights it uses `checkpoints/` when that holds a bundle, else an untrained bundle
built in memory (facenet backbone, fresh heads): the timing does not depend on training. An
untrained FV says ~0.5 at random, so the end-to-end `crct` row runs with T_C = 0 (FV always
accepts: steady-state tracking, MTCNN only at the start); with trained weights it uses theirs.
"""

import os
import platform
import resource
import time

import numpy as np
from absl import app, flags, logging

FLAGS = flags.FLAGS


def define_flags():
    """The CLI's flags; defined only when run as a program, so importing this module is free."""
    if "frames" in FLAGS:
        return
    flags.DEFINE_string("weights", None, "Weights bundle (default: checkpoints/ if it holds "
                        "one, else untrained networks built in memory).")
    flags.DEFINE_integer("frames", 60, "Frames timed per clip (after the warm-up).")
    flags.DEFINE_integer("warmup", 5, "Frames run before timing.")
    flags.DEFINE_bool("jit_compile", True, "Run the networks under XLA.")
    flags.DEFINE_enum("runtime", "tf", ["tf", "tflite"], "tf: the TF step and its stages; "
                      "tflite: TF against each --tflite_dir (ms per stage, NME vs TF).")
    flags.DEFINE_multi_string("tflite_dir", [], "--runtime tflite: TFLite export folder(s) "
                              "(python -m crct_tf.export --format tflite).")
    flags.DEFINE_integer("threads", None, "--runtime tflite: interpreter threads (default: all).")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LARGE_SIZE = (640, 480)


def untrained_bundle(tracker=None, settings=None, backbone="inception_resnet_v1"):
    """A `Bundle` of untrained BT, FV and FLL sharing one backbone, built in memory.

    For timing and for tests. `backbone`: facenet's Inception-ResNet-v1 with facenet's weights,
    or "tiny", the small test stand-in. The MTCNN box map is the bootstrap set's.
    """
    from crct_tf.bundle import Bundle, build_named_backbone
    from crct_tf.crop_settings import CropSettings
    from crct_tf.datasets import crct_bootstrap
    from crct_tf.models.bt import build_bt
    from crct_tf.models.fll import build_fll
    from crct_tf.models.fv import build_fv

    settings = settings or CropSettings()
    shared = build_named_backbone(backbone, settings.input_size, weights="facenet")
    return Bundle(bt=build_bt(shared, settings), fv=build_fv(settings),
                  fll=build_fll(shared, settings), settings=settings,
                  tracker=dict(tracker or {"seq_bt": 2, "t_b": 1.0, "t_c": 0.5}),
                  mtcnn_box_map=crct_bootstrap.mtcnn_box_map().to_dict(),
                  manifest={"backbone": backbone, "training": {"untrained": True}})


def _load(weights):
    from crct_tf.bundle import load_bundle
    if weights is None and os.path.isfile(os.path.join(REPO, "checkpoints", "manifest.json")):
        weights = os.path.join(REPO, "checkpoints")
    if weights is None:
        logging.info("no trained bundle: timing untrained networks")
        return untrained_bundle(), "untrained (facenet backbone, fresh heads)"
    return load_bundle(weights), weights


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


def _time_tracker(steps, detect, box_map, tracker_constants, frames, warmup, mode, t_c):
    from crct_tf.tracking import Tracker, TrackerConfig
    config = TrackerConfig.from_constants(tracker_constants, mode=mode, t_c=t_c)
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

    from crct_tf.detection import MtcnnBoxMap
    from crct_tf.tracking.frame_step import FrameSteps
    from crct_tf.tracking.tracker import default_detector

    bundle, label = _load(weights)
    steps = FrameSteps(bundle.bt, bundle.fv, bundle.fll, bundle.settings, jit_compile=jit_compile)
    plain_steps = FrameSteps(bundle.bt, bundle.fv, bundle.fll, bundle.settings)
    detect = default_detector()
    box_map = MtcnnBoxMap.from_dict(bundle.mtcnn_box_map)
    untrained = bool(bundle.manifest.get("training", {}).get("untrained"))
    t_c = 0.0 if untrained else None
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
                                            warmup, mode, t_c if mode == "crct" else None)
            note = f"MTCNN on {counts['detector_calls']} of {len(clip_frames)} frames"
            lines.append(_row(clip, f"tracker `{mode}` end to end ({note})", seconds))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    header = [f"weights: {label}; jit_compile={jit_compile}; {frames} frames after {warmup} "
              f"warm-up frames",
              f"machine: {_cpu_name()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}; "
              f"peak RSS {peak_mb:.0f} MB", ""]
    return "\n".join(header + lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.runtime == "tflite":
        # TF (the reference, without XLA) against each TFLite export: crct_tf.tflite_benchmark.
        from crct_tf import tflite_benchmark
        bundle, label = _load(FLAGS.weights)
        print(f"weights: {label}; machine: {_cpu_name()}, {os.cpu_count()} cores\n", flush=True)
        print(tflite_benchmark.run(bundle, FLAGS.tflite_dir, FLAGS.frames, FLAGS.warmup,
                                   FLAGS.threads), flush=True)
        return
    print(run(FLAGS.weights, FLAGS.frames, FLAGS.warmup, FLAGS.jit_compile), flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
