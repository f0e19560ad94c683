r"""Landmarks against HUMAN 68-point labels: the bundled tracker's first frame and dlib's, on the
five 300-W test photos of the `human_300w` asset (fetched by pip, sha256-checked).

    python tools/human_label_check.py [--weights DIR] [--runtime tf|litert] [--fll_flip on|off]
        [--fll_upright on|off] [--fll_turn on|off]

Every other landmark figure of the project is measured against dlib's points (the teacher); this
is the one check against people's annotation. Per photo and method: NME normalised by the box
diagonal (300-VW's, the project's default) and by the outer-eye-corner distance (300-W's).
Methods: `fll_mt` (MTCNN, the box map, FLL: Algorithm 1's detection path), `crct` (the full
step from the mapped MTCNN box: BT, FV, FLL) and `dlib` (HOG detector + 68-point predictor,
when the `teacher` extra is installed). Five faces: an indication, not a benchmark.
"""

import argparse
import sys

import numpy as np

from crct_tf import assets
from crct_tf.datasets.human_300w import load_human_300w_examples
from crct_tf.datasets.manual_dir import DatasetError
from crct_tf.evaluation import metrics
from crct_tf.geometry import landmarks as lm


def load_photos():
    """[(name, rgb, human points [68, 2] 0-based)] of the asset, sorted by name."""
    return [(e["image/filename"], e["image"], e["landmarks"]) for e in load_human_300w_examples()]


def track_first_frame(runtime, rgb, mode, detect=None):
    """The tracker's landmarks on one photo as the first frame of a video, or None. `detect`:
    the tracker's detector, built once by the caller (None: the tracker builds its own)."""
    from crct_tf.tracking.tracker import Tracker
    tracker = Tracker.from_constants(runtime.steps, runtime.constants, detect=detect, mode=mode)
    result = tracker.track(rgb)
    return None if result.landmarks is None else np.asarray(result.landmarks, np.float32)


def dlib_points(models, rgb, truth):
    """dlib's 68 points on its detection nearest the true face, or None (no detection).
    `models`: `robustness.dlib_models()`."""
    detector, predictor = models
    rects = detector(rgb, 1)
    if not rects:
        return None
    centre = truth.mean(0)
    rect = min(rects, key=lambda r: np.hypot((r.left() + r.right()) / 2 - centre[0],
                                             (r.top() + r.bottom()) / 2 - centre[1]))
    return np.array([(p.x, p.y) for p in predictor(rgb, rect).parts()], np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="a weights bundle (default: the bundled weights)")
    parser.add_argument("--runtime", default="tf", choices=["tf", "litert"])
    parser.add_argument("--fll_flip", choices=["on", "off"],
                        help="FLL on the mirrored crop too, averaged (default: the weights' own)")
    parser.add_argument("--fll_upright", choices=["on", "off"],
                        help="FLL's crop turned upright by BT's roll (default: the weights' own)")
    parser.add_argument("--fll_turn", choices=["on", "off"],
                        help="FLL also on its crop turned by BT's roll, averaged (default: the "
                             "weights' own)")
    args = parser.parse_args(argv)
    from crct_tf.evaluation import robustness
    from crct_tf.tracking.runtime import RuntimeLoadError, flag_on_off, load_runtime
    from crct_tf.tracking.tracker import default_detector
    try:
        runtime = load_runtime(args.weights, runtime=args.runtime,
                               fll_flip=flag_on_off(args.fll_flip),
                               fll_upright=flag_on_off(args.fll_upright),
                               fll_turn=flag_on_off(args.fll_turn))
        photos = load_photos()
    except (assets.AssetError, lm.PtsError, DatasetError, OSError, ValueError,
            RuntimeLoadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    detect = default_detector()
    dlib = robustness.dlib_models() if robustness.dlib_available() else None
    methods = ["fll_mt", "crct"] + (["dlib"] if dlib else [])
    rows = {m: [] for m in methods}
    print("| photo | face (px) | " + " | ".join(f"{m} NME box / eyes" for m in methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for name, rgb, truth in photos:
        cells = []
        for method in methods:
            points = dlib_points(dlib, rgb, truth) if method == "dlib" else \
                track_first_frame(runtime, rgb, method, detect)
            if points is None:
                rows[method].append((np.inf, np.inf))
                cells.append("no face")
                continue
            box = float(metrics.nme_box_diagonal(points, truth))
            eyes = float(metrics.nme_inter_ocular(points, truth))
            rows[method].append((box, eyes))
            cells.append(f"{box:.4f} / {eyes:.4f}")
        side = float(np.max(truth.max(0) - truth.min(0)))
        print(f"| {name} | {side:.0f} | " + " | ".join(cells) + " |")
    print("| **mean** | | " + " | ".join(
        "{:.4f} / {:.4f}".format(*np.mean(np.array(rows[m]), axis=0)) for m in methods) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
