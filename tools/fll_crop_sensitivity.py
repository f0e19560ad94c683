r"""How far FLL's points follow its crop: FLL on the 25 bootstrap val photos with the crop's box
moved sideways and rescaled around the true landmark box.

    python tools/fll_crop_sensitivity.py [--weights DIR]

Per shift (a fraction of the face's larger side) and scale: the mean sideways offset of FLL's
box from the true box (same unit), its size over the true size, and the mean NME (box
diagonal). A FLL that ignored its crop would print offset 0 whatever the shift.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHIFTS = (-0.10, -0.05, 0.0, 0.05, 0.10)
SCALES = (0.9, 1.0, 1.1)


def sensitivity(steps, examples, shift, scale):
    """(mean offset, mean size ratio, mean NME) of FLL on boxes moved by `shift`, sized by `scale`."""
    import numpy as np

    from crct_tf.evaluation import metrics
    from crct_tf.geometry.landmarks import box_from_landmarks
    offsets, sizes, errors = [], [], []
    for example in examples:
        truth = example["landmarks"].astype(np.float32)
        box = box_from_landmarks(truth)
        side = max(box[2] - box[0], box[3] - box[1])
        centre = (box[:2] + box[2:]) / 2 + np.array([shift * side, 0.0])
        half = (box[2:] - box[:2]) / 2 * scale
        out = steps.fll_step(example["image"],
                             np.concatenate([centre - half, centre + half])[None].astype(np.float32))
        found, points = np.asarray(out["box"])[0], np.asarray(out["landmarks"])[0]
        offsets.append(((found[0] + found[2]) / 2 - (box[0] + box[2]) / 2) / side)
        sizes.append(max(found[2] - found[0], found[3] - found[1]) / side)
        errors.append(metrics.nme_box_diagonal(points, truth))
    return float(np.mean(offsets)), float(np.mean(sizes)), float(np.mean(errors))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="bundle (default: the bundled weights)")
    args = parser.parse_args(argv)
    from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    try:
        steps = load_runtime(args.weights).steps
    except RuntimeLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    examples = load_bootstrap_examples("val")
    print("| crop shift | crop scale | FLL box offset | FLL box size | NME |\n|---|---|---|---|---|")
    for shift in SHIFTS:
        for scale in SCALES:
            offset, size, nme = sensitivity(steps, examples, shift, scale)
            print(f"| {shift:+.2f} | {scale:.1f} | {offset:+.4f} | {size:.4f} | {nme:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
