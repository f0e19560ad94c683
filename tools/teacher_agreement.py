"""How closely tracked landmarks follow a teacher's, frame by frame: NME quantiles and jitter.

    python tools/label_with_teacher.py --video CLIP --out_dir outputs/eval_demo/gt/NAME
    python -m crct_tf.track --input CLIP --save_pts --no_video --output_dir outputs/eval_demo/CRCT
    python tools/teacher_agreement.py --gt_dir outputs/eval_demo/gt --pred_dir outputs/eval_demo/CRCT

Both folders in 300-VW layout (`NAME/annot/000001.pts`). Prints, per method: frames with a
prediction, median and 90th-percentile NME (box diagonal; frames without a prediction left out
of the quantiles and counted apart), and jitter: the mean frame-to-frame motion of the 68 points
over consecutive predicted frames, divided by the teacher's on the same frames (1.0 = as steady
as the teacher; the teacher labels each frame independently).
"""

import argparse
import os

import numpy as np

from crct_tf.geometry import landmarks as lm
from crct_tf.evaluation import vw300_results


def agreement(pred_dir, truth):
    """Figures of one method against `truth` ({video: {frame: [68, 2]}})."""
    errors, _ = vw300_results.landmark_errors(os.path.basename(pred_dir), pred_dir, truth)
    all_errors = np.concatenate(list(errors.values()))
    found = all_errors[np.isfinite(all_errors)]
    ratios = []
    for video, gt_frames in truth.items():
        folder = os.path.join(pred_dir, video, "annot")
        path = lambda k: os.path.join(folder, f"{k:06d}.pts")  # noqa: E731
        keys = [k for k in gt_frames if isinstance(k, int) and os.path.exists(path(k))]
        consecutive = [(a, b) for a, b in zip(keys, keys[1:]) if b == a + 1]
        if not consecutive:
            continue
        pred = {k: lm.read_pts(path(k)) for k in keys}
        for a, b in consecutive:
            teacher = np.linalg.norm(gt_frames[b] - gt_frames[a], axis=-1).mean()
            ours = np.linalg.norm(pred[b] - pred[a], axis=-1).mean()
            ratios.append((ours, teacher))
    ours, teacher = (np.array(v) for v in zip(*ratios)) if ratios else (np.zeros(1), np.ones(1))
    return {"frames": int(all_errors.size), "predicted": int(found.size),
            "nme_median": float(np.median(found)), "nme_p90": float(np.percentile(found, 90)),
            "jitter_px": float(ours.mean()), "teacher_jitter_px": float(teacher.mean()),
            "jitter_ratio": float(ours.mean() / max(teacher.mean(), 1e-9))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt_dir", required=True)
    parser.add_argument("--pred_dir", action="append", required=True)
    args = parser.parse_args()
    truth = vw300_results.read_ground_truth(args.gt_dir)
    print("| method | frames | predicted | NME median | NME p90 | jitter (px) | teacher's (px) |")
    print("|---|---|---|---|---|---|---|")
    for pred_dir in args.pred_dir:
        r = agreement(pred_dir.rstrip("/"), truth)
        print(f"| {os.path.basename(pred_dir.rstrip('/'))} | {r['frames']} | {r['predicted']} | "
              f"{r['nme_median']:.4f} | {r['nme_p90']:.4f} | {r['jitter_px']:.2f} | "
              f"{r['teacher_jitter_px']:.2f} |")


if __name__ == "__main__":
    main()
