"""`python -m crct_tf.benchmark` (the default run): its clips, its bad input, one small run.

No test here asserts a time: the figures are in docs/speed.md.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import save_untrained_bundle

from crct_tf import benchmark

REPO = Path(__file__).resolve().parents[1]


def test_no_face_clip_moves_and_holds_no_face(mtcnn_detector):
    from crct_tf.tracking.detection import detect_faces
    frames = benchmark.no_face_clip((320, 180), count=12)
    assert len(frames) == 12 and frames[0].shape == (180, 320, 3) and frames[0].dtype == np.uint8
    assert np.abs(frames[0].astype(float) - frames[6]).mean() > 5      # it moves
    assert frames[0].std() > 20                                         # textured
    for frame in frames[::4]:
        assert len(detect_faces(mtcnn_detector, frame)[0]) == 0


def test_clips_are_the_demo_clip_its_640x360_version_and_no_face(demo_clip):
    clips = benchmark.benchmark_clips(count=6)
    assert list(clips) == ["demo", "640x360", "noface"]
    assert clips["demo"][1][0].shape == (144, 176, 3)
    assert clips["640x360"][1][0].shape == clips["noface"][1][0].shape == (360, 640, 3)


@pytest.mark.parametrize("argv, message", [
    (["--variants", "default,onnx"], "unknown --variants/--clips onnx"),
    (["--clips", "webcam"], "unknown --variants/--clips webcam"),
    (["--frames", "3"], "--frames must exceed --warmup"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--weights", "/nonexistent/weights"], "not a weights bundle"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "crct_tf.benchmark", *argv], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("benchmark:")]
    assert len(lines) == 1 and message in lines[0], result.stderr[-1000:]


@pytest.mark.slow
def test_a_small_default_run(tmp_path, monkeypatch, demo_clip):
    """Every section of the report on a tiny bundle (fp32 LiteRT and TF), in a fresh cache."""
    from crct_tf.tracking import litert_cache
    monkeypatch.setattr(litert_cache, "cache_root", lambda: str(tmp_path / "litert"))
    weights = str(save_untrained_bundle(tmp_path / "weights", "tiny"))
    report = benchmark.run_all(weights, frames=8, warmup=2, variants=("none", "tf"),
                               clip_names=("demo", "noface"), threads=1)
    for heading in ("First-run costs", "Steady state", "CPU ms per frame", "MTCNN: ms per call"):
        assert heading in report
    assert "conversion into the cache (measured now)" in report
    assert "| litert none |" in report and "| tf |" in report
    assert "reference" in report
