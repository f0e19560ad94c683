"""`python -m crct_tf.evaluate` on tiny generated 300-VW trees (no TensorFlow needed)."""

import subprocess
import sys

import numpy as np
import pytest

from crct_tf.evaluation import metrics, report
from crct_tf.geometry.landmarks import box_from_landmarks

from helpers import (EVAL_FRAMES, REPO, one_error_line, random_landmarks, read_results,
                     run_evaluate, write_pts_tree)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

@pytest.fixture
def gt_dir(tmp_path):
    return write_pts_tree(tmp_path / "gt", ["114", "203"])      # categories 1 and 2


def test_perfect_prediction(tmp_path, gt_dir):
    pred = write_pts_tree(tmp_path / "CRCT_2", ["114", "203"])
    out = tmp_path / "out"
    proc = run_evaluate("--pred_dir", pred, "--gt_dir", gt_dir, "--output_dir", out)
    assert proc.returncode == 0, proc.stderr
    assert "300-VW category 1" in proc.stdout and "300-VW category 2" in proc.stdout
    assert "category 3" not in proc.stdout and "== all (2 videos) ==" in proc.stdout
    results = read_results(out)
    assert set(results["methods"]) == {"CRCT_2"}
    assert set(results["methods"]["CRCT_2"]) == {"all", "cat1", "cat2"}
    for cell in results["methods"]["CRCT_2"].values():
        assert cell["auc"] == pytest.approx(1.0) and cell["fr"] == 0.0
        assert cell["nme_mean"] == pytest.approx(0.0, abs=1e-4)    # pts hold 3 decimals
    assert results["methods"]["CRCT_2"]["all"]["frames"] == 2 * EVAL_FRAMES
    assert results["methods"]["CRCT_2"]["cat1"]["frames"] == EVAL_FRAMES
    for name in ("ced.png", "ced_cat1.png", "ced_cat2.png"):
        assert (out / name).read_bytes()[:8] == PNG_SIGNATURE
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_missing_video_missing_frame_and_extra_frame(tmp_path, gt_dir):
    pred = write_pts_tree(tmp_path / "FLL_MT", ["114"], frames=[1, 2, 3, 4, 99])  # 5 missing, 99 extra
    out = tmp_path / "out"
    proc = run_evaluate("--pred_dir", pred, "--gt_dir", gt_dir, "--output_dir", out)
    assert proc.returncode == 0, proc.stderr
    assert "video 203 has ground truth but no predictions" in proc.stderr
    assert "1 of 5 ground-truth frames have no prediction" in proc.stderr
    assert "1 predicted frames have no ground truth" in proc.stderr
    assert str(pred / "114" / "annot" / "000099.pts") in proc.stderr
    results = read_results(out)
    cells = results["methods"]["FLL_MT"]
    assert cells["cat1"]["fr"] == pytest.approx(20.0) and cells["cat1"]["missing"] == 1
    assert cells["cat2"]["fr"] == pytest.approx(100.0) and cells["cat2"]["auc"] == 0.0
    assert cells["all"]["fr"] == pytest.approx(60.0) and cells["all"]["frames"] == 10
    assert results["mismatches"]["FLL_MT"] == {
        "extra_frames": 1, "missing_frames": 1, "videos_without_predictions": ["203"],
        "videos_without_ground_truth": []}


def test_errors_txt_beside_a_prediction_folder(tmp_path, gt_dir):
    pred = write_pts_tree(tmp_path / "noisy", ["114", "203"], shift=2.0)
    errors = tmp_path / "ME_CFSS.txt"
    errors.write_text("0.0\n0.04\nnan\n\n0.1\n")
    out = tmp_path / "out"
    proc = run_evaluate("--pred_dir", pred, "--errors_txt", errors, "--gt_dir", gt_dir,
                "--output_dir", out)
    assert proc.returncode == 0, proc.stderr
    methods = read_results(out)["methods"]
    assert set(methods["ME_CFSS"]) == {"all"}
    assert methods["ME_CFSS"]["all"]["frames"] == 4
    assert methods["ME_CFSS"]["all"]["fr"] == pytest.approx(50.0)
    assert methods["ME_CFSS"]["all"]["nme_mean"] == pytest.approx((0.0 + 0.04 + 0.1) / 3)
    expected = [metrics.nme_box_diagonal(random_landmarks(v, f) + [2.0, 0.0], random_landmarks(v, f))
                for v in ("114", "203") for f in range(1, EVAL_FRAMES + 1)]
    assert methods["noisy"]["all"]["nme_mean"] == pytest.approx(np.mean(expected), rel=1e-3)
    assert "ME_CFSS" in proc.stdout and "noisy" in proc.stdout


def test_boxes_from_track_csv(tmp_path, gt_dir):
    pred = tmp_path / "BT_seq2"
    pred.mkdir()
    header = ["frame", "time_s", "status", "face_score", "x0", "y0", "x1", "y1"]
    header += [f"{a}{i}" for i in range(68) for a in ("lx", "ly")]
    rows = [",".join(header)]
    expected = []
    for frame in range(EVAL_FRAMES):                      # csv frame f <-> ground truth f + 1
        x0, y0, x1, y1 = box_from_landmarks(random_landmarks("114", frame + 1))
        if frame == 3:
            box, iou = ["", "", "", ""], 0.0                              # no box: failure
        elif frame == 4:
            box, iou = [x0 + (x1 - x0) / 2, y0, x1 + (x1 - x0) / 2, y1], 1.0 / 3.0
        else:
            box, iou = [x0, y0, x1, y1], 1.0
        expected.append(iou)
        rows.append(",".join([str(frame), "0.1", "tracked", ""] + [str(v) for v in box]
                             + [""] * 136))
    (pred / "114.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    proc = run_evaluate("--boxes", "--pred_dir", pred, "--gt_dir", gt_dir, "--categories", "1",
                "--output_dir", out)
    assert proc.returncode == 0, proc.stderr
    cells = read_results(out)["methods"]["BT_seq2"]
    assert set(cells) == {"all", "cat1"}
    assert cells["cat1"]["success_auc"] == pytest.approx(metrics.success_auc(expected))
    assert cells["cat1"]["iou_mean"] == pytest.approx(np.mean(expected), abs=1e-4)
    assert cells["cat1"]["missing"] == 1
    assert (out / "success.png").read_bytes()[:8] == PNG_SIGNATURE
    assert not (out / "ced.png").exists()


def test_categories_restrict_the_videos(tmp_path, gt_dir):
    pred = write_pts_tree(tmp_path / "CRCT_2", ["114"])
    evaluation = report.evaluate([pred], gt_dir, categories=[1])
    assert evaluation.groups == {"cat1": ["114"], "all": ["114"]}
    assert report.summarize(evaluation)["methods"]["CRCT_2"]["all"]["fr"] == 0.0


def test_missing_gt_dir(tmp_path):
    pred = write_pts_tree(tmp_path / "CRCT_2", ["114"])
    out = tmp_path / "out"
    line = one_error_line(run_evaluate("--pred_dir", pred, "--gt_dir", tmp_path / "nope",
                                "--output_dir", out))
    assert str(tmp_path / "nope") in line and "no such folder" in line
    assert not (out / "results.json").exists()


@pytest.mark.parametrize("side", ["gt", "pred"])
def test_malformed_pts(tmp_path, gt_dir, side):
    pred = write_pts_tree(tmp_path / "CRCT_2", ["114", "203"])
    bad = (gt_dir if side == "gt" else pred) / "203" / "annot" / "000002.pts"
    bad.write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    out = tmp_path / "out"
    line = one_error_line(run_evaluate("--pred_dir", pred, "--gt_dir", gt_dir, "--output_dir", out))
    assert str(bad) in line
    assert not (out / "results.json").exists()


def test_empty_pred_dir_and_unwritable_output(tmp_path, gt_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_error_line(run_evaluate("--pred_dir", empty, "--gt_dir", gt_dir,
                                "--output_dir", tmp_path / "out"))
    assert str(empty) in line and "no video folder" in line
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    line = one_error_line(run_evaluate("--errors_txt", blocker, "--output_dir", blocker / "out"))
    assert "--output_dir" in line and str(blocker / "out") in line


def test_evaluate_does_not_import_tensorflow():
    code = "import sys, crct_tf.evaluate; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
