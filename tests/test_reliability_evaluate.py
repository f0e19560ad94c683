"""`python -m crct_tf.evaluate` on bad .pts, odd paths and a full disk (issue 9, docs/errors.md)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO, one_error_line, read_results, run_evaluate, write_pts_tree


def _pts_text(points, declared=None):
    rows = "\n".join(f"{x} {y}" for x, y in points)
    return f"version: 1\nn_points: {declared or len(points)}\n{{\n{rows}\n}}\n"


@pytest.fixture
def trees(tmp_path):
    return write_pts_tree(tmp_path / "gt", ["114"]), write_pts_tree(tmp_path / "CRCT_2", ["114"])


@pytest.mark.parametrize("case, message", [
    ("nan", "NaN or infinite"), ("inf", "NaN or infinite"), ("67 points", "expected 68 points"),
    ("binary", "")])
def test_bad_pts_is_one_line_naming_the_file(tmp_path, trees, case, message):
    gt, pred = trees
    bad = pred / "114" / "annot" / "000003.pts"
    points = np.full((68, 2), 80.0)
    if case == "nan":
        points[10, 0] = np.nan
        bad.write_text(_pts_text(points))
    elif case == "inf":
        points[3, 1] = np.inf
        bad.write_text(_pts_text(points))
    elif case == "67 points":
        bad.write_text(_pts_text(points[:67]))
    else:
        bad.write_bytes(b"\x00\xff\xfe" * 100)
    out = tmp_path / "out"
    line = one_error_line(run_evaluate("--pred_dir", pred, "--gt_dir", gt, "--output_dir", out))
    assert str(bad) in line and message in line
    assert not (out / "results.json").exists()


def test_paths_with_spaces_and_non_ascii(tmp_path):
    gt = write_pts_tree(tmp_path / "ground truth ü", ["114"])
    pred = write_pts_tree(tmp_path / "préd 名前", ["114"])
    out = tmp_path / "out put é"
    proc = run_evaluate("--pred_dir", pred, "--gt_dir", gt, "--output_dir", out)
    assert proc.returncode == 0, proc.stderr
    assert read_results(out)


_FULL_DISK = """
import errno, os, sys
from absl import app
real = os.replace
def replace(src, dst, *a, **k):
    if str(dst).endswith({suffix!r}):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
    return real(src, dst, *a, **k)
os.replace = replace
from crct_tf import evaluate
sys.argv = ["crct_tf.evaluate"] + sys.argv[1:]
app.run(evaluate.main)
"""


@pytest.mark.parametrize("suffix", [".json", ".png"])
def test_full_disk_is_one_line_and_leaves_no_temp_files(tmp_path, trees, suffix):
    gt, pred = trees
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK.format(suffix=suffix), "--pred_dir",
                           str(pred), "--gt_dir", str(gt), "--output_dir", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    line = one_error_line(proc)
    assert "No space left on device" in line and str(out) in line
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
