"""Training throughput of each sub-network on this machine: steps/s, examples/s, peak memory.

    python tools/benchmark_training.py [--steps 40] [--models fll,fv,bt]

Runs `python -m crct_tf.train` for each sub-network (facenet backbone, crct_bootstrap data, the
bootstrap configs' batch sizes) in a temporary run folder, reads the rate of its last log line
(after tracing) and the child's peak RSS, and prints a markdown table.
"""

import argparse
import re
import subprocess
import sys
import tempfile

CONFIGS = {"fll": "configs/bootstrap_fll.cfg", "fv": "configs/bootstrap_fv.cfg",
           "bt": "configs/bootstrap_bt_seq2.cfg"}
RATE = re.compile(r"([\d.]+) steps/s ([\d.]+) examples/s")


def run_one(model, steps):
    with tempfile.TemporaryDirectory() as model_dir:
        # BT here starts from facenet (no FLL run needed) with its backbone frozen as bundled.
        extra = ["--init_from="] if model == "bt" else []
        cmd = [sys.executable, "-m", "crct_tf.train", f"--flagfile={CONFIGS[model]}",
               f"--model_dir={model_dir}", f"--steps={steps}", "--steps_per_stage=0",
               f"--log_every={steps // 2}", f"--checkpoint_every={10 * steps}", *extra]
        # A fresh intermediate process per run, so that its RUSAGE_CHILDREN is this run's alone.
        wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                   "sys.stdout.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss));"
                   " sys.exit(r.returncode)")
        result = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True,
                                text=True)
        peak_mib = int(result.stdout.strip() or 0) / 1024
        rates = RATE.findall(result.stderr)
        if result.returncode != 0 or not rates:
            raise SystemExit(f"{model}: training failed:\n{result.stderr[-2000:]}")
        steps_s, examples_s = (float(v) for v in rates[-1])
        return steps_s, examples_s, peak_mib


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--models", default="fll,fv,bt")
    args = parser.parse_args()
    print("| sub-network | batch | steps/s | examples/s | peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    for model in args.models.split(","):
        batch = re.search(r"--batch_size=(\d+)", open(CONFIGS[model]).read()).group(1)
        steps_s, examples_s, peak = run_one(model, args.steps)
        print(f"| {model} | {batch} | {steps_s:.2f} | {examples_s:.1f} | {peak:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
