r"""FLL alone, as the tracker runs it, on crops of the true landmark box jittered like a tracker's.

    python tools/fll_jittered_crops.py [--weights DIR] [--trials 4] [--seed 0]
    python tools/fll_jittered_crops.py --turn=-30,-15,0,15,30 [--upright]
    python tools/fll_jittered_crops.py --regions      # also the mean point error per region

For each photo of the bootstrap `val` split (25 photos, teacher labels) and of `human_300w`
(5 photos, people's points): `--trials` boxes, each the true landmark box with its centre moved
by up to 5 % of its size and its size scaled by 0.95-1.05 (uniform; the same draws for every
bundle at one seed), then the bundle's FLL step (its crop size, context and `fll_flip`). Prints
the median, mean and 90th percentile of the NME by box diagonal. This measures FLL without BT,
FV or a detector: the FLL figures of docs/training.md come from it.

With `--turn`, each photo is first turned about its face's centre by each of the given angles
(degrees, clockwise in the picture) and the figures are given per angle. With `--upright` as
well, FLL's crop is the one the tracker cuts with `fll_upright`: the true points' turned window
(`cropping.turned_context_window`), its centre and size jittered as the box is, its angle off the
face's roll by up to ROLL_NOISE degrees; without it, the paper's crop of the jittered box.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Fixed here, not read from training's `augment.BOX_SHIFT` / `BOX_SCALE` (0.05 / 0.10), so that
# the measure stays comparable across bundles when training's defaults change.
BOX_SHIFT = 0.05   # largest centre shift, a fraction of the box's size
BOX_SCALE = 0.05   # largest relative change of the box's size
ROLL_NOISE = 3.0   # --upright: largest error of the roll the crop is turned by (degrees)


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


def turned_photo(example, degrees):
    """(image, points) of a photo turned clockwise by `degrees` about its face's centre."""
    import cv2
    import numpy as np
    points = example["landmarks"].astype(np.float32)
    centre = tuple(float(c) for c in points.mean(axis=0))
    matrix = cv2.getRotationMatrix2D(centre, -degrees, 1.0)
    image = cv2.warpAffine(example["image"], matrix, example["image"].shape[1::-1],
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return image, (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def upright_points(steps, image, truth, box, rng):
    """FLL's points on the turned crop `fll_upright` cuts: the true points' turned window with
    the jitter of `box` (its centre's offset and size relative to the true box) and a roll
    error of up to ROLL_NOISE degrees."""
    import math

    import numpy as np

    from crct_tf.geometry import cropping
    from crct_tf.geometry.landmarks import box_from_landmarks
    s = steps.settings
    true_box = box_from_landmarks(truth)
    width = true_box[2] - true_box[0]
    window = cropping.turned_context_window(truth, s.fll_context).copy()
    window[:2] += ((box[:2] + box[2:]) - (true_box[:2] + true_box[2:])) / 2 / width \
        * window[2] / s.fll_context
    window[2] *= (box[2] - box[0]) / width
    window[3] += math.radians(rng.uniform(-ROLL_NOISE, ROLL_NOISE))
    crop = cropping.crop_turned(image, window, s.fll_size)[None]
    return cropping.points_from_turned_crop(np.asarray(steps._fll_points(crop))[0], window,
                                            s.fll_size)


def photo_point_errors(steps, examples, trials, seed, degrees=0.0, upright=False):
    """[boxes, 68]: each of FLL's points' distance to the truth over the truth's box diagonal,
    for every jittered box of every (turned) photo; a row's mean is its NME (box diagonal)."""
    import numpy as np

    from crct_tf.evaluation import metrics
    from crct_tf.geometry import landmarks as lm
    rng = np.random.default_rng(seed)
    errors = []
    for example in examples:
        image, truth = turned_photo(example, degrees) if degrees else \
            (example["image"], example["landmarks"].astype(np.float32))
        for box in jittered_boxes(truth, trials, rng):
            if upright:
                points = upright_points(steps, image, truth, box, rng)
            else:
                points = np.asarray(steps.fll_step(image, box[None])["landmarks"])[0]
            errors.append(metrics.point_errors_box_diagonal(points, truth))
    return np.array(errors).reshape(-1, lm.NUM_LANDMARKS)


def photo_errors(steps, examples, trials, seed, degrees=0.0, upright=False):
    """NME (box diagonal) of FLL's points for every jittered box of every (turned) photo."""
    return photo_point_errors(steps, examples, trials, seed, degrees, upright).mean(axis=1)


def region_means(point_errors):
    """{region of `landmarks.REGIONS`: mean point error} of `photo_point_errors`' output."""
    from crct_tf.geometry import landmarks as lm
    return {name: float(point_errors[:, list(index)].mean())
            for name, index in lm.REGIONS.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="bundle (default: the bundled weights)")
    parser.add_argument("--trials", type=int, default=4, help="jittered boxes per photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--turn", default=None,
                        help="comma-separated angles (degrees) to turn each photo by first")
    parser.add_argument("--upright", action="store_true",
                        help="FLL on the crop turned upright (fll_upright) instead of the paper's")
    parser.add_argument("--regions", action="store_true",
                        help="also the mean point error per facial region")
    args = parser.parse_args(argv)
    try:
        angles = [float(a) for a in args.turn.split(",")] if args.turn else [0.0]
    except ValueError:
        print(f"error: --turn {args.turn}: expected comma-separated angles", file=sys.stderr)
        return 2
    import numpy as np

    from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples
    from crct_tf.datasets.human_300w import load_human_300w_examples
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    try:
        steps = load_runtime(args.weights, runtime="tf").steps
    except RuntimeLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("| photos | turned by | crop | median NME | mean | p90 |\n|---|---|---|---|---|---|")
    by_region = []
    for name, examples in (("bootstrap val (teacher)", load_bootstrap_examples("val")),
                           ("human_300w (people's points)", load_human_300w_examples())):
        for degrees in angles:
            point_errors = photo_point_errors(steps, examples, args.trials, args.seed, degrees,
                                              args.upright)
            errors = point_errors.mean(axis=1)
            row = f"| {name} | {degrees:g}° | {'upright' if args.upright else 'paper'} |"
            print(f"{row} {np.median(errors):.4f} | {errors.mean():.4f} | "
                  f"{np.percentile(errors, 90):.4f} |", flush=True)
            by_region.append((row, region_means(point_errors)))
    if args.regions:
        names = list(by_region[0][1])
        print(f"\nMean point error by region (box diagonal)\n\n| photos | turned by | crop | "
              f"{' | '.join(names)} |\n|{'---|' * (3 + len(names))}")
        for row, means in by_region:
            print(f"{row} {' | '.join(f'{means[n]:.4f}' for n in names)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
