r"""FLL alone, as the tracker runs it, on crops of the true landmark box jittered like a tracker's.

    python tools/fll_jittered_crops.py [--weights DIR] [--trials 4] [--seed 0]

For each photo of the bootstrap `val` split (25 photos, teacher labels) and of `human_300w`
(5 photos, people's points): `--trials` boxes, each the true landmark box with its centre moved
by up to 5 % of its size and its size scaled by 0.95-1.05 (uniform; the same draws for every
bundle at one seed), then the bundle's FLL step (its crop size, context and `fll_flip`). Prints
the median, mean and 90th percentile of the NME by box diagonal. This measures FLL without BT,
FV or a detector: the FLL figures of docs/training.md come from it.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Fixed here, not read from training's `augment.BOX_SHIFT` / `BOX_SCALE` (0.05 / 0.10), so that
# the measure stays comparable across bundles when training's defaults change.
BOX_SHIFT = 0.05   # largest centre shift, a fraction of the box's size
BOX_SCALE = 0.05   # largest relative change of the box's size


def jittered_boxes(truth, trials, rng):
    """`trials` boxes [x0, y0, x1, y1] around the true landmark box (see the module's doc)."""
    import numpy as np

    from crct_tf.geometry.landmarks import box_from_landmarks
    box = box_from_landmarks(truth).astype(np.float64)
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2
    boxes = []
    for _ in range(trials):
        shift = rng.uniform(-BOX_SHIFT, BOX_SHIFT, 2) * 2 * half[0]
        scale = rng.uniform(1 - BOX_SCALE, 1 + BOX_SCALE)
        boxes.append(np.concatenate([centre + shift - half * scale, centre + shift + half * scale]))
    return np.array(boxes, np.float32)


def photo_errors(steps, examples, trials, seed):
    """NME (box diagonal) of FLL's points for every jittered box of every photo."""
    import numpy as np

    from crct_tf.evaluation import metrics
    rng = np.random.default_rng(seed)
    errors = []
    for example in examples:
        truth = example["landmarks"].astype(np.float32)
        for box in jittered_boxes(truth, trials, rng):
            points = np.asarray(steps.fll_step(example["image"], box[None])["landmarks"])[0]
            errors.append(float(metrics.nme_box_diagonal(points, truth)))
    return np.array(errors)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="bundle (default: the bundled weights)")
    parser.add_argument("--trials", type=int, default=4, help="jittered boxes per photo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import numpy as np

    from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples
    from crct_tf.datasets.human_300w import load_human_300w_examples
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    try:
        steps = load_runtime(args.weights, runtime="tf").steps
    except RuntimeLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("| photos | median NME | mean | p90 |\n|---|---|---|---|")
    for name, examples in (("bootstrap val (teacher)", load_bootstrap_examples("val")),
                           ("human_300w (people's points)", load_human_300w_examples())):
        errors = photo_errors(steps, examples, args.trials, args.seed)
        print(f"| {name} | {np.median(errors):.4f} | {errors.mean():.4f} | "
              f"{np.percentile(errors, 90):.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
