r"""FLL with the best crop a tracker could give it: on every frame of the robustness benchmark,
FLL on the crop of the TRUE landmark box (an oracle no tracker has), scored like the modes.

    python tools/fll_oracle_crop.py [--labels teacher|human] [--sequences a,b] [--weights DIR]

Per sequence: the AUC@0.08 and median NME of FLL's points on the true box's crop, and the size
of FLL's box over the true one (mean over the frames). Set beside the benchmark's `crct` and
`fll_mt` rows, it says how much of a gap is the crop's (the tracker's or the detector's) and
how much is FLL's own: a tracker whose crop were perfect would score this.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def oracle_scores(steps, sequence):
    """(AUC@0.08, median NME, mean size ratio) of FLL on the true box's crop of every frame."""
    import numpy as np

    from crct_tf.evaluation import metrics
    from crct_tf.geometry.landmarks import box_from_landmarks
    errors, sizes = [], []
    for image, truth in zip(sequence.frames, sequence.landmarks):
        box = box_from_landmarks(truth).astype(np.float32)
        out = steps.fll_step(image, box[None])
        found, points = np.asarray(out["box"])[0], np.asarray(out["landmarks"])[0]
        errors.append(float(metrics.nme_box_diagonal(points, truth)))
        sizes.append(max(found[2] - found[0], found[3] - found[1])
                     / max(box[2] - box[0], box[3] - box[1]))
    summary = metrics.summarize_errors(np.array(errors))
    return summary["auc"], float(np.median(errors)), float(np.mean(sizes))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="bundle (default: the bundled weights)")
    parser.add_argument("--labels", default="teacher", choices=("teacher", "human"))
    parser.add_argument("--sequences", default=None, help="comma-separated names (default: all)")
    args = parser.parse_args(argv)
    from crct_tf.evaluation import robustness
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    try:
        steps = load_runtime(args.weights, runtime="tf").steps
        names = args.sequences.split(",") if args.sequences else None
        sequences = robustness.build_sequences(names, labels=args.labels)
    except (RuntimeLoadError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("| sequence | FLL on the true box's crop: AUC / median NME | FLL box size ÷ true |\n"
          "|---|---|---|")
    for sequence in sequences:
        auc, median, size = oracle_scores(steps, sequence)
        print(f"| {sequence.name} | {auc:.3f} / {median:.4f} | {size:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
