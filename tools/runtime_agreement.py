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


def as_results(frames):
    """`robustness.run_mode`'s per-frame dicts as objects with `landmarks` and `box`, the form
    `benchmark.median_nme` takes."""
    from types import SimpleNamespace
    return [SimpleNamespace(**frame) for frame in frames]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="a weights bundle (default: bundled)")
    parser.add_argument("--quantize", default=None, choices=["int8", "dynamic", "fp16", "none"])
    args = parser.parse_args(argv)
    from crct_tf.benchmark import median_nme
    from crct_tf.evaluation import robustness
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    try:
        reference = load_runtime(args.weights, runtime="tf")
        other = load_runtime(args.weights, runtime="litert", quantize=args.quantize)
    except RuntimeLoadError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    detect = robustness.CachedDetector()
    all_tf, all_other = [], []
    print("| sequence | frames both track | median NME vs tf | same status |\n|---|---|---|---|")
    for sequence in robustness.build_sequences():
        tf_run = as_results(robustness.run_mode(reference, sequence, "crct", detect))
        other_run = as_results(robustness.run_mode(other, sequence, "crct", detect))
        value, count = median_nme(other_run, tf_run)
        same = sum(a.status == b.status for a, b in zip(tf_run, other_run))
        print(f"| {sequence.name} | {count} | {value:.4f} | {same}/{len(tf_run)} |")
        all_tf += tf_run
        all_other += other_run
    value, count = median_nme(all_other, all_tf)
    print(f"| all | {count} | {value:.4f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
