r"""The demo clip in colour, in grey and as a faded sepia print: what an old photograph or a
black-and-white video does to the tracker.

    python tools/colour_probe.py [--weights DIR] [--runtime litert|tf] [--gt_dir DIR]

Per version: frames tracked, the validator's lowest p(face) and how many frames fall below 0.9,
and, against dlib's points on the colour frames (`--gt_dir`, the model card's
`outputs/eval_demo/gt`, made by `python tools/label_with_teacher.py`), the AUC@0.08 and the
median NME. The grey frames are the colour ones converted (ITU-R 601 luma) and repeated over
three channels; the sepia ones are that grey at 60 % contrast lifted by 60 and tinted.
"""

import argparse
import glob
import os
import sys

import numpy as np


def grey(frame):
    import cv2
    return np.repeat(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=-1)


def faded_sepia(frame):
    tint = np.array([1.07, 0.98, 0.82], np.float32)
    return np.clip((grey(frame) * 0.6 + 60.0) * tint, 0, 255).astype(np.uint8)


VERSIONS = {"colour": lambda frame: frame, "grey": grey, "faded sepia": faded_sepia}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="a weights bundle (default: the bundled weights)")
    parser.add_argument("--runtime", default="litert", choices=["litert", "tf"])
    parser.add_argument("--gt_dir", default="outputs/eval_demo/gt",
                        help="dlib's points for the demo clip (one .pts per frame)")
    args = parser.parse_args(argv)
    from crct_tf import assets, load_tracker
    from crct_tf.evaluation import metrics
    from crct_tf.geometry.landmarks import PtsError, read_pts
    from crct_tf.tracking.runtime import RuntimeLoadError
    from crct_tf.tracking.video_io import open_source
    pts_files = sorted(glob.glob(os.path.join(args.gt_dir, "**", "*.pts"), recursive=True))
    try:
        if not pts_files:
            raise ValueError(f"{args.gt_dir}: no .pts files (see this tool's doc)")
        truth = [read_pts(path) for path in pts_files]
        source = open_source(assets.path("demo_clip"))
        frames = [frame.rgb for frame in source]
        source.close()
        if len(truth) != len(frames):
            raise ValueError(f"{args.gt_dir}: {len(truth)} .pts files for {len(frames)} frames")
        print("| version | tracked | lowest p(face) | frames with p < 0.9 | AUC@0.08 | median NME |")
        print("|---|---|---|---|---|---|")
        for name, convert in VERSIONS.items():
            tracker = load_tracker(weights=args.weights, runtime=args.runtime)
            faces = [tracker.track(convert(frame)) for frame in frames]
            faces = [face[0] if isinstance(face, list) else face for face in faces]
            scores = np.array([np.nan if f.face_score is None else f.face_score for f in faces])
            errors = np.array([np.inf if f.landmarks is None else
                               metrics.nme_box_diagonal(f.landmarks, t)
                               for f, t in zip(faces, truth)])
            tracked = sum(f.status == "tracked" for f in faces)
            print(f"| {name} | {tracked} / {len(frames)} | {np.nanmin(scores):.3f} | "
                  f"{int(np.sum(scores < 0.9))} | {metrics.ced_auc(errors):.3f} | "
                  f"{np.median(errors[np.isfinite(errors)]):.4f} |")
    except (ValueError, OSError, PtsError, RuntimeLoadError, assets.AssetError) as e:
        print(f"colour_probe: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
