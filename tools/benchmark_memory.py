r"""Peak memory of python -m crct_tf.track on a long clip: it must not grow with the frame count.

    python tools/benchmark_memory.py                        # 1 000 and 10 000 frames, 640x480
    python tools/benchmark_memory.py --frames 1000,10000 --width 640 --height 480 --no_video

Runs the real tool (its frame loop, CSV rows written as they come, the drawn S.mp4 written with
OpenCV, the tracker's state) on a synthetic clip generated on the fly: a face-like bright oval
drifting over a textured background, served through the same frame-source interface as a video
file (`video_io.open_source` is replaced, nothing else). The networks are the tiny stand-in
backbone's untrained BT, FV and FLL (`crct_tf.weights.bundle.untrained_bundle(backbone="tiny")`,
T_C = 0 so FV accepts every frame), and the detector is a stand-in that returns the oval's box:
memory, not accuracy, is measured, and MTCNN on a synthetic oval would only slow it down.

Each length runs in a fresh process; it reports the peak resident memory (ru_maxrss) and the
resident memory at the 100th and the last frame. Figures are in docs/errors.md ("Memory").
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rss_mib():
    """Current resident memory (MiB) from /proc/self/statm; None where there is none."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KiB on Linux


class SyntheticSource:
    """`frames` frames of a drifting oval, made one at a time (the `video_io` source interface)."""

    def __init__(self, frames, width, height, marks):
        import numpy as np
        self.description = f"synthetic {width}x{height} x {frames}"
        self.fps, self.frame_count = 30.0, frames
        self.width, self.height, self.marks = width, height, marks
        rng = np.random.default_rng(0)
        self._background = rng.integers(20, 90, size=(height, width, 3), dtype=np.uint8)

    def box(self, t):
        import numpy as np
        cx = self.width * (0.5 + 0.25 * np.sin(t / 90.0))
        cy = self.height * (0.5 + 0.15 * np.cos(t / 70.0))
        half = 0.18 * min(self.width, self.height)
        return [cx - half, cy - 1.2 * half, cx + half, cy + 1.2 * half]

    def __iter__(self):
        import cv2
        from crct_tf.tracking.video_io import Frame
        for t in range(self.frame_count):
            image = self._background.copy()
            x0, y0, x1, y1 = self.box(t)
            center = (int((x0 + x1) / 2), int((y0 + y1) / 2))
            axes = (int((x1 - x0) / 2), int((y1 - y0) / 2))
            cv2.ellipse(image, center, axes, 0, 0, 360, (205, 170, 150), -1)
            for dx in (-0.35, 0.35):                                    # eyes
                cv2.circle(image, (int(center[0] + dx * axes[0]), int(center[1] - 0.25 * axes[1])),
                           max(2, axes[0] // 8), (40, 30, 30), -1)
            cv2.ellipse(image, (center[0], int(center[1] + 0.45 * axes[1])),
                        (axes[0] // 3, max(2, axes[1] // 12)), 0, 0, 360, (120, 40, 50), -1)
            if t + 1 in self.marks:
                self.marks[t + 1] = _rss_mib()
            yield Frame(t, t / self.fps, image)

    def close(self):
        pass


def measure(frames, width, height, video, output_dir):
    """Runs track_video on `frames` synthetic frames in this process; returns the figures."""
    import importlib.util

    import numpy as np
    sys.path.insert(0, REPO)
    spec = importlib.util.spec_from_file_location("track_video",
                                                  os.path.join(REPO, "tools", "track_video.py"))
    track_video = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(track_video)
    from crct_tf.weights.bundle import untrained_bundle
    from crct_tf.tracking import frame_step, video_io

    marks = {100: None, frames: None}
    source = SyntheticSource(frames, width, height, marks)
    bundle = untrained_bundle(tracker={"seq_bt": 2, "t_b": 1.0, "t_c": 0.0}, backbone="tiny")
    steps = frame_step.FrameSteps(bundle.bt, bundle.fv, bundle.fll, bundle.settings,
                                  jit_compile=False)
    constants = {"tracker": bundle.tracker, "mtcnn_box_map": bundle.mtcnn_box_map}
    calls = {"t": 0}

    def detect(rgb):
        calls["t"] += 1
        return np.array([source.box(0)], np.float32), np.array([0.99], np.float32)

    track_video.check_weights = lambda args: None
    track_video.load_networks = lambda args, frames=None: (steps, constants, "tiny, untrained")
    track_video.make_detector = lambda: detect
    video_io.open_source = lambda spec: source
    argv = ["--input", "synthetic.avi", "--output_dir", output_dir, "--overwrite",
            "--mode", "crct"] + ([] if video else ["--no_video"])
    start = time.perf_counter()
    code = track_video.main(argv)
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"track_video exited {code}")
    with open(os.path.join(output_dir, "synthetic.csv")) as f:
        rows = sum(1 for _ in f) - 1
    return {"frames": frames, "rows": rows, "seconds": round(seconds, 1),
            "peak_rss_mib": round(_peak_mib(), 1),
            "rss_at_100_mib": round(marks[100], 1) if marks[100] else None,
            "rss_at_last_mib": round(marks[frames], 1) if marks[frames] else None,
            "video": video, "size": f"{width}x{height}"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", default="1000,10000", help="comma-separated clip lengths")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--no_video", action="store_true", help="do not write the drawn S.mp4")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)      # the child process
    p.add_argument("--output_dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.one:
        result = measure(args.one, args.width, args.height, not args.no_video, args.output_dir)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    lengths = [int(v) for v in args.frames.split(",")]
    results = []
    for frames in lengths:
        with tempfile.TemporaryDirectory(prefix="crct_memory.") as out:
            cmd = [sys.executable, os.path.abspath(__file__), "--one", str(frames),
                   "--width", str(args.width), "--height", str(args.height),
                   "--output_dir", out] + (["--no_video"] if args.no_video else [])
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                sys.stderr.write(proc.stderr[-3000:])
                return 1
            results.append(json.loads(lines[-1][len("RESULT "):]))
    print("| frames | rows | peak RSS (MiB) | RSS at frame 100 | RSS at last frame | s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['frames']} | {r['rows']} | {r['peak_rss_mib']} | {r['rss_at_100_mib']} | "
              f"{r['rss_at_last_mib']} | {r['seconds']} |")
    peaks = [r["peak_rss_mib"] for r in results]
    print(f"\n{results[0]['size']}, video {'on' if results[0]['video'] else 'off'}; "
          f"peak RSS spread {max(peaks) - min(peaks):.1f} MiB "
          f"({100 * (max(peaks) - min(peaks)) / min(peaks):.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
