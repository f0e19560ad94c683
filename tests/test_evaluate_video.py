"""python -m crct_tf.evaluate_video: track a 300-VW-layout folder and score it in one go."""

import json
import os
import shutil
import subprocess
import sys

import cv2
import pytest

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "demo_teacher")


def _run(*args):
    return subprocess.run([sys.executable, "-m", "crct_tf.evaluate_video", *args],
                          capture_output=True, text=True, timeout=900)


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    result = _run(f"--gt_dir={tmp_path / 'missing'}", f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("crct_tf.evaluate_video: error:")
    result = _run(f"--gt_dir={tmp_path}", "--modes=bt", "--init=mtcnn")
    assert result.returncode == 2 and "--init gt" in result.stderr


@pytest.mark.slow
def test_demo_frames_tracked_and_scored_against_the_teacher(tmp_path, demo_clip):
    """Eight demo frames as a 300-VW video with dlib's labels: crct, fll_mt and bt all run."""
    video_dir = tmp_path / "gt" / "901"
    shutil.copytree(os.path.join(DATA, "annot"), video_dir / "annot")
    capture = cv2.VideoCapture(demo_clip)
    writer = cv2.VideoWriter(str(video_dir / "vid.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25,
                             (176, 144))
    for _ in range(8):
        writer.write(capture.read()[1])
    writer.release()
    out = tmp_path / "out"
    result = _run(f"--gt_dir={tmp_path / 'gt'}", f"--output_dir={out}", "--modes=crct,fll_mt,bt")
    assert result.returncode == 0, result.stderr[-2000:]
    landmarks = json.load(open(out / "landmarks" / "results.json"))["methods"]
    for method in ("CRCT", "FLL_MT"):
        assert landmarks[method]["all"]["frames"] == 8
        assert landmarks[method]["all"]["nme_mean"] < 0.05
    boxes = json.load(open(out / "boxes" / "results.json"))["methods"]
    assert boxes["BT"]["all"]["success_auc"] > 0.5
