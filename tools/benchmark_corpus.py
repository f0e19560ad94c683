"""Corpus tracking throughput: videos per minute of `python -m crct_tf.track_corpus` with 1, 2,
... local workers on the same corpus.

    python tools/benchmark_corpus.py                       # 8 clips, 1 and 2 workers
    python tools/benchmark_corpus.py --clips 16 --frames 480 --workers 1,2,4 -- --runtime tf

Builds a corpus of `--clips` clips of `--frames` frames each from the demo clip (played forwards
and backwards, each clip starting at another frame), warms the networks' caches with one
untimed run, then runs the command once per worker count into a fresh output folder and
reads its corpus_summary.json. Figures per run: videos/min over the pipeline's time (the
summary's `seconds`: worker start-up, tracking and shutdown) and over the command's wall time,
the speed-up over the first worker count, the CPU seconds of the run's processes and the cores
they had on average, the cores other work used meanwhile (from /proc/stat), and the load
average before and after: on a machine shared with other work the figures are only as good as
the cores the run got. Flags
after `--` go to track_corpus (tracking flags such as --runtime or --mode). Writes the figures
as JSON with --json.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_corpus(folder, clips, frames):
    import cv2

    from crct_tf import assets
    capture = cv2.VideoCapture(assets.path("demo_clip"))
    source = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        source.append(image)
    capture.release()
    loop = source + source[-2:0:-1]                   # forwards, then backwards
    height, width = source[0].shape[:2]
    for n in range(clips):
        path = os.path.join(folder, f"group{n % 2}", f"clip{n:02d}.mp4")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (width, height))
        start = (n * 17) % len(loop)
        for t in range(frames):
            writer.write(loop[(start + t) % len(loop)])
        writer.release()


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_times():
    """(busy, total) jiffies of the whole machine since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]                     # idle + iowait
    return sum(values) - idle, sum(values)


def run(corpus, out, workers, extra):
    command = [sys.executable, "-m", "crct_tf.track_corpus", "--input", corpus,
               "--output_dir", out, "--num_workers", str(workers), *extra]
    load_before = os.getloadavg()[0]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, total0 = cpu_times()
    start = time.monotonic()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - start
    busy1, total1 = cpu_times()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    if result.returncode != 0:
        raise SystemExit(f"track_corpus with {workers} workers failed:\n{result.stderr[-3000:]}")
    with open(os.path.join(out, "corpus_summary.json")) as f:
        summary = json.load(f)
    if summary["failed"] or summary["tracked"] != summary["videos"]:
        raise SystemExit(f"not every clip was tracked: {summary}")
    cores = os.cpu_count() or 1
    return {"workers": workers, "videos": summary["videos"], "frames": summary["frames"],
            "pipeline_s": summary["seconds"], "wall_s": round(wall, 1),
            "video_s": summary.get("video_seconds"),
            # CPU seconds of this run's processes, and the cores they had on average
            "cpu_s": round(own_cpu, 1), "own_cores": round(own_cpu / wall, 2),
            # how busy the whole machine was meanwhile (this run and everything else)
            "machine_busy": round((busy1 - busy0) / max(1, total1 - total0), 2),
            "other_cores": round(max(0.0, (busy1 - busy0) / max(1, total1 - total0) * cores
                                     - own_cpu / wall), 2),
            "videos_per_min": round(60.0 * summary["videos"] / summary["seconds"], 2),
            "videos_per_min_wall": round(60.0 * summary["videos"] / wall, 2),
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=480, help="frames per clip")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("extra", nargs="*", help="track_corpus flags (after --)")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    folder = tempfile.mkdtemp(prefix="crct_corpus_benchmark_")
    try:
        corpus = os.path.join(folder, "videos")
        build_corpus(corpus, args.clips, args.frames)
        warm = os.path.join(folder, "warm")
        os.makedirs(os.path.join(warm, "in"))
        first = sorted(os.listdir(os.path.join(corpus, "group0")))[0]
        shutil.copy(os.path.join(corpus, "group0", first), os.path.join(warm, "in", first))
        run(os.path.join(warm, "in"), os.path.join(warm, "out"), 1, args.extra)  # caches, untimed
        rows = [run(corpus, os.path.join(folder, f"out{w}"), w, args.extra) for w in counts]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
               "clips": args.clips, "frames_per_clip": args.frames, "flags": args.extra}
    print(f"{machine['cpu']}, {machine['cores']} cores; {args.clips} clips x {args.frames} "
          f"frames; flags {' '.join(args.extra) or '(defaults)'}")
    print("| workers | pipeline s | videos/min | speed-up | wall s | videos/min (wall) | "
          "CPU s | cores used by the run | cores used by other work | load before / after |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        speedup = row["videos_per_min"] / rows[0]["videos_per_min"]
        row["speedup"] = round(speedup, 2)
        print(f"| {row['workers']} | {row['pipeline_s']:.1f} | {row['videos_per_min']:.2f} | "
              f"{speedup:.2f}x | {row['wall_s']:.1f} | {row['videos_per_min_wall']:.2f} | "
              f"{row['cpu_s']:.0f} | {row['own_cores']:.2f} | {row['other_cores']:.2f} | "
              f"{row['load_before']:.1f} / {row['load_after']:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "runs": rows}, f, indent=2)


if __name__ == "__main__":
    main()
