r"""Times the tracker on each runtime (TF, TFLite fp32 and quantised) and measures what the
quantisation costs in accuracy; used by `python -m crct_tf.benchmark --runtime tflite`:

  python -m crct_tf.benchmark --runtime tflite --tflite_dir exported/tflite_none \
      --tflite_dir exported/tflite_int8 [--threads 2] [--frames 115] [--warmup 5]

Every variant tracks the demo clip (176x144) in `crct` mode with the weights' constants and
the same MTCNN. Per frame: ms in the whole step (no MTCNN), in each network and, for TFLite,
in the crops (numpy/OpenCV: everything in the step that is not a network); MTCNN calls are
timed apart. Accuracy: the median NME of the variant's landmarks against the TF tracker's on
the frames both track (mean point distance / the TF box diagonal).
"""

import os
import time

import numpy as np


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
    from crct_tf.detection import MtcnnBoxMap, detect_faces
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


def run(bundle, tflite_dirs, frames=115, warmup=5, threads=None, jit_compile=False):
    """Markdown table: one row per runtime. `bundle`: the loaded weights (the TF reference)."""
    from crct_tf import assets
    from crct_tf.detection import make_detector
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
