r"""The validator on held-out faces: ROC AUC, false rejects of hidden / dim / blurred / turned faces,
false accepts of misaligned shapes, and the choice of T_C.

    python -m crct_tf.evaluation.robustness_fv                       # the bundled FV
    python -m crct_tf.evaluation.robustness_fv --model_dir runs/robust_fv
    python -m crct_tf.evaluation.robustness_fv --model_dir runs/robust_fv \
        --write_bundle outputs/bundle_robust_fv     # the bundled weights with this run's FV

Held-out data: the 25 bootstrap `val` photos (never trained on), each seen in every group below
with 4 fixed seeds (`fv_pipeline` and `augment` functions, no other augmentation):

  positives (true points):  clean, occluded (`augment.face_occluder`: eye bar, lip strip,
                            hand-like blob, strip), dim (gain 0.4-0.6), motion-blurred,
                            turned 20-45 degrees (image and points), jittered like BT's output
  negatives:                shifted 0.3-1 face width, scaled 0.5x / 2x, turned 60-180 degrees
                            (the shape on the face), distorted point by point, on background,
                            below the face (neck and clothes: 1 face side down, 0.8x)

T_C: the table shows the rates at 0.3, 0.5 and 0.7, the threshold where false rejects of
occluded faces equal false accepts, and the calibrated T_C (`calibrated_t_c`: the lowest balanced
error over the groups on a 0.05 grid, ties to the paper's 0.5), which
`python -m crct_tf.export --format bundle --t_c ...` saves with the weights.
"""

import math

import numpy as np

GROUPS_POSITIVE = ("clean", "occluded", "dim", "blurred", "turned", "jittered")
GROUPS_NEGATIVE = ("far_shift", "scaled", "turned_shape", "distorted", "background", "below")
SEEDS_PER_PHOTO = 4
THRESHOLDS = (0.3, 0.5, 0.7, 0.8)          # table rows; 0.8: the bundled T_C
PAPER_T_C = 0.5                                      # paper IV-A
T_C_GRID = tuple(np.round(np.arange(0.30, 0.901, 0.05), 2))


def _example(group, image, points, seed):
    """(image, shown points) of one held-out example of `group`."""
    import tensorflow as tf

    from crct_tf.data import augment, fv_pipeline
    ex = {"image": tf.constant(image), "landmarks": tf.constant(points, tf.float32)}
    ex["box"] = augment.landmark_box(ex["landmarks"])
    s = tf.constant(seed, tf.int64)
    u = np.random.default_rng(seed).uniform(size=4)
    if group == "occluded":
        ex = augment.face_occluder(ex, s)
    elif group == "dim":
        ex = augment.light_gain(ex, s, (0.4, 0.6))
    elif group == "blurred":
        ex = augment.motion_blur(ex, s)
    elif group == "turned":
        angle = math.radians(20 + 25 * u[0]) * (1 if u[1] < 0.5 else -1)
        ex = augment.rotate(ex, angle)
    shown = ex["landmarks"]
    if group == "jittered":
        direction = 2 * math.pi * u[0]
        side = float(tf.reduce_max(ex["box"][2:] - ex["box"][:2]))
        shift = 0.08 * side * np.array([math.cos(direction), math.sin(direction)], np.float32)
        shown = fv_pipeline.similarity_about_centre(shown, 0.92 + 0.16 * u[1],
                                                    math.radians(16 * u[2] - 8), shift)
    elif group == "far_shift":
        shown = fv_pipeline.shift_landmarks(shown, s, fv_pipeline.FAR_SHIFT)
    elif group == "scaled":
        shown = fv_pipeline.similarity_about_centre(shown, 0.5 if u[0] < 0.5 else 2.0, 0.0)
    elif group == "turned_shape":
        shown = fv_pipeline.similarity_about_centre(
            shown, 1.0, math.radians(60 + 120 * u[0]) * (1 if u[1] < 0.5 else -1))
    elif group == "distorted":
        shown = fv_pipeline.shift_landmarks(shown, s, fv_pipeline.DISTORT_SHIFT, True)
    elif group == "background":
        shown = fv_pipeline.random_position(shown, tf.shape(ex["image"]), s,
                                            fv_pipeline.FAR_SHIFT[0])
    elif group == "below":
        side = float(tf.reduce_max(ex["box"][2:] - ex["box"][:2]))
        shown = fv_pipeline.similarity_about_centre(
            shown, 0.8, 0.0, np.array([0.3 * side * (2 * u[0] - 1), side], np.float32))
    return ex["image"], shown


def heldout_scores(fv, examples=None, seeds=SEEDS_PER_PHOTO):
    """{group: p(face) [N]} of the FV model on the held-out groups of the val photos."""
    import tensorflow as tf

    from crct_tf.data import augment
    from crct_tf.geometry import tf_cropping
    if examples is None:
        from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples
        examples = load_bootstrap_examples("val")
    scores = {}
    for group in GROUPS_POSITIVE + GROUPS_NEGATIVE:
        patches = []
        for i, example in enumerate(examples):
            for k in range(seeds):
                image, shown = _example(group, example["image"], example["landmarks"],
                                        [1000 + i, 17 * k + len(group)])
                patches.append(tf_cropping.tf_landmark_patches(
                    tf.cast(image, tf.float32)[None], shown[None],
                    augment.landmark_box(shown)[None])[0])
        scores[group] = np.asarray(fv(tf.stack(patches))).reshape(-1)
    return scores


def roc_auc(positives, negatives):
    """Probability that a positive scores above a negative (ties count half)."""
    pos, neg = np.asarray(positives)[:, None], np.asarray(negatives)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def calibrated_t_c(scores, grid=T_C_GRID, paper=PAPER_T_C):
    """The T_C of `grid` with the lowest balanced error on held-out faces: the mean false-reject
    rate over the positive groups plus the mean false-accept rate over the negative groups (each
    group weighs the same, however many examples it has). Ties go to the value nearest the
    paper's 0.5."""
    def error(t):
        return (np.mean([np.mean(scores[g] < t) for g in GROUPS_POSITIVE]) +
                np.mean([np.mean(scores[g] >= t) for g in GROUPS_NEGATIVE]))
    errors = np.array([error(t) for t in grid])
    best = np.flatnonzero(errors <= errors.min() + 1e-12)
    return float(grid[best[np.argmin(np.abs(np.asarray(grid)[best] - paper))]])


def summarize(scores, thresholds=THRESHOLDS):
    """ROC AUC, per-group reject/accept rates at each threshold, and the equal-error T_C."""
    positives = np.concatenate([scores[g] for g in GROUPS_POSITIVE])
    negatives = np.concatenate([scores[g] for g in GROUPS_NEGATIVE])
    grid = np.linspace(0.01, 0.99, 99)
    occluded = scores["occluded"]
    gaps = [abs(np.mean(occluded < t) - np.mean(negatives >= t)) for t in grid]
    return {
        "roc_auc": roc_auc(positives, negatives),
        "roc_auc_occluded": roc_auc(occluded, negatives),
        "equal_error_t_c": float(grid[int(np.argmin(gaps))]),
        "calibrated_t_c": calibrated_t_c(scores),
        "false_reject": {f"{t:.1f}": {g: float(np.mean(scores[g] < t)) for g in GROUPS_POSITIVE}
                         for t in thresholds},
        "false_accept": {f"{t:.1f}": {g: float(np.mean(scores[g] >= t))
                                      for g in GROUPS_NEGATIVE} for t in thresholds},
    }


def format_summary(summary, label):
    lines = [f"FV: {label}", f"ROC AUC (all positives vs all negatives): "
             f"{summary['roc_auc']:.4f}; occluded faces vs negatives: "
             f"{summary['roc_auc_occluded']:.4f}; T_C where occluded false rejects = false "
             f"accepts: {summary['equal_error_t_c']:.2f}; calibrated T_C (lowest balanced error): "
             f"{summary['calibrated_t_c']:.2f}", "",
             "| T_C | " + " | ".join(f"reject {g}" for g in GROUPS_POSITIVE) + " | " +
             " | ".join(f"accept {g}" for g in GROUPS_NEGATIVE) + " |",
             "|" + "---|" * (1 + len(GROUPS_POSITIVE) + len(GROUPS_NEGATIVE))]
    for t in summary["false_reject"]:
        lines.append(f"| {t} | " + " | ".join(f"{summary['false_reject'][t][g]:.0%}"
                                              for g in GROUPS_POSITIVE) + " | " +
                     " | ".join(f"{summary['false_accept'][t][g]:.0%}"
                                for g in GROUPS_NEGATIVE) + " |")
    return "\n".join(lines)


def fv_of_run(model_dir):
    from crct_tf.training import run_setup
    task, run, _ = run_setup.restore_run(model_dir)
    if run["model"] != "fv":
        raise ValueError(f"{model_dir}: a {run['model']} run, not an fv run")
    return task.model


def bundle_with_fv(fv_model, export_dir, weights=None, fv_run=None, overwrite=False):
    """Writes a copy of a bundle (default: the bundled weights) whose FV is `fv_model`."""
    from crct_tf.tracking.runtime import load_weights
    from crct_tf.weights import bundle as bundle_lib
    source = load_weights(weights)
    manifest = source.manifest
    training = dict(manifest.get("training") or {})
    training.setdefault("runs", {})
    training["runs"] = dict(training["runs"], fv=fv_run or "replaced")
    training["checkpoints"] = dict(training.get("checkpoints") or {}, fv=fv_run or "replaced")
    return bundle_lib.save_bundle(
        export_dir, source.bt, fv_model, source.fll, source.settings, source.tracker,
        source.mtcnn_box_map, training=training, dtype=manifest.get("dtype", "float32"),
        overwrite=overwrite, backbone=manifest.get("backbone", "inception_resnet_v1"))


def main(argv=None):
    import argparse
    import json
    import sys
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", default=None, help="an fv training run")
    parser.add_argument("--weights", default=None, help="a weights bundle (default: bundled)")
    parser.add_argument("--write_bundle", default=None,
                        help="write the bundle (--weights or bundled) with --model_dir's FV here")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--json", default=None, help="write the summary here")
    args = parser.parse_args(argv)
    try:
        if args.write_bundle and not args.model_dir:
            raise ValueError("--write_bundle needs --model_dir (the fv run)")
        if args.model_dir:
            fv, label = fv_of_run(args.model_dir), args.model_dir
        else:
            from crct_tf.tracking.runtime import load_weights
            fv, label = load_weights(args.weights).fv, args.weights or "bundled weights"
        summary = summarize(heldout_scores(fv))
        print(format_summary(summary, label))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(summary, f, indent=1)
        if args.write_bundle:
            bundle_with_fv(fv, args.write_bundle, args.weights, args.model_dir, args.overwrite)
            print(f"bundle written to {args.write_bundle}")
    except (ValueError, RuntimeError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
