r"""How far a runtime's landmarks are from the TF runtime's on the robustness benchmark's sequences.

    python tools/runtime_agreement.py [--weights DIR] [--quantize int8|dynamic|fp16|none]

Tracks the seven sequences of `python -m crct_tf.benchmark --robustness` in `crct` mode with the
TF runtime and with LiteRT (the default quantisation unless `--quantize`), the same MTCNN answers
for both, and prints per sequence the median NME between the two runtimes' landmarks (mean point
distance over the TF box diagonal, frames both track) and how many frames got the same status.
docs/speed.md holds the figures. About 5 minutes on a 2-core CPU.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def agreement(tf_frames, other_frames):
    """(per-frame NME between the two runs' landmarks, number of frames with the same status)."""
    import numpy as np
    errors = []
    for a, b in zip(tf_frames, other_frames):
        if a["landmarks"] is None or b["landmarks"] is None:
            continue
        x0, y0, x1, y1 = a["box"]
        errors.append(float(np.linalg.norm(a["landmarks"] - b["landmarks"], axis=1).mean() /
                            np.hypot(x1 - x0, y1 - y0)))
    same = sum(a["status"] == b["status"] for a, b in zip(tf_frames, other_frames))
    return errors, same


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="a weights bundle (default: bundled)")
    parser.add_argument("--quantize", default=None, choices=["int8", "dynamic", "fp16", "none"])
    args = parser.parse_args(argv)
    import numpy as np

    from crct_tf.evaluation import robustness
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    try:
        reference = load_runtime(args.weights, runtime="tf")
        other = load_runtime(args.weights, runtime="litert", quantize=args.quantize)
    except RuntimeLoadError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    detect = robustness.CachedDetector()
    every = []
    print("| sequence | frames both track | median NME vs tf | same status |\n|---|---|---|---|")
    for sequence in robustness.build_sequences():
        errors, same = agreement(robustness.run_mode(reference, sequence, "crct", detect),
                                 robustness.run_mode(other, sequence, "crct", detect))
        every += errors
        print(f"| {sequence.name} | {len(errors)} | {np.median(errors):.4f} | "
              f"{same}/{len(sequence.frames)} |")
    print(f"| all | {len(every)} | {np.median(every):.4f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
