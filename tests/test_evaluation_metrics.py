"""The paper's metrics on hand-computed cases, and the external check against CRCT Table II."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crct_tf.evaluation import metrics, vw300_categories
from crct_tf.evaluation.vw300_results import EvaluationError, read_errors_txt

# The per-frame errors Chrysos et al. released (IJCV 2018), gzipped; source and licence in the
# folder's README.md.
IJCV2018_ERRORS = Path(__file__).resolve().parent / "data" / "ijcv2018_errors"


def _face(width=30.0, height=40.0):
    """68 points spread over a width x height box starting at (10, 20)."""
    t = np.linspace(0.0, 1.0, 68)
    return np.stack([10 + width * t, 20 + height * t ** 2], axis=-1)


# --------------------------------------------------------------------------------------------
# NME
# --------------------------------------------------------------------------------------------

def test_nme_box_diagonal_of_a_constant_shift():
    gt = _face()                               # box 30 x 40 -> diagonal 50
    pred = gt + np.array([3.0, 4.0])           # every point off by 5 px
    assert metrics.nme_box_diagonal(pred, gt) == pytest.approx(0.1)
    assert metrics.nme_box_diagonal(gt, gt) == 0.0


def test_nme_box_diagonal_batched():
    gt = np.stack([_face(), _face(60.0, 80.0)])              # diagonals 50 and 100
    pred = gt + np.array([3.0, 4.0])
    np.testing.assert_allclose(metrics.nme_box_diagonal(pred, gt), [0.1, 0.05])


def test_point_errors_box_diagonal_are_each_points_share_of_the_nme():
    gt = np.stack([_face(), _face(60.0, 80.0)])              # diagonals 50 and 100
    pred = gt.copy()
    pred[:, 7] += np.array([3.0, 4.0])                       # only point 7 is off, by 5 px
    errors = metrics.point_errors_box_diagonal(pred, gt)
    assert errors.shape == (2, 68)
    np.testing.assert_allclose(errors[:, 7], [0.1, 0.05])
    assert np.count_nonzero(errors) == 2
    np.testing.assert_allclose(errors.mean(axis=1), metrics.nme_box_diagonal(pred, gt))


def test_nme_inter_ocular():
    gt = _face()
    ocular = np.linalg.norm(gt[36] - gt[45])
    pred = gt + np.array([0.0, 2.0])
    assert metrics.nme_inter_ocular(pred, gt) == pytest.approx(2.0 / ocular)


def test_nme_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        metrics.nme_box_diagonal(np.zeros((68, 2)), np.zeros((67, 2)))


# --------------------------------------------------------------------------------------------
# CED, AUC, FR
# --------------------------------------------------------------------------------------------

def test_ced_thresholds_are_the_protocol_bins():
    thresholds = metrics.ced_thresholds()
    assert len(thresholds) == 801
    assert thresholds[0] == 0.0 and thresholds[-1] == pytest.approx(0.08)
    np.testing.assert_allclose(np.diff(thresholds), 1e-4)


def test_perfect_frames_give_auc_one_and_no_failure():
    summary = metrics.summarize_errors(np.zeros(10))
    assert summary["auc"] == pytest.approx(1.0)
    assert summary["fr"] == 0.0
    assert summary["nme_mean"] == 0.0 and summary["frames"] == 10 and summary["missing"] == 0


def test_constant_error_halfway_gives_auc_one_half():
    # CED is 0 below 0.04 and 1 from 0.04 on; the trapezoid adds half a bin at the step:
    # AUC = (0.08 - 0.04 + 1e-4 / 2) / 0.08.
    assert metrics.ced_auc([0.04] * 7) == pytest.approx((0.04 + 0.5e-4) / 0.08)
    assert metrics.ced_auc([0.04] * 7) == pytest.approx(0.5, abs=1e-3)
    assert metrics.failure_rate([0.04] * 7) == 0.0


def test_missing_frames_are_failures():
    errors = [0.0, None, 0.0, np.nan]
    summary = metrics.summarize_errors(errors)
    assert summary["fr"] == pytest.approx(50.0)
    assert summary["auc"] == pytest.approx(0.5)
    assert summary["nme_mean"] == 0.0          # over the frames that have a prediction
    assert summary["missing"] == 2
    np.testing.assert_array_equal(metrics.as_errors(errors), [0.0, np.inf, 0.0, np.inf])


def test_failure_threshold_is_strict():
    assert metrics.failure_rate([0.08, 0.05]) == 0.0
    assert metrics.failure_rate([0.0800001, 0.05]) == pytest.approx(50.0)
    assert metrics.failure_rate([1.0, 2.0, 0.01, 0.02]) == pytest.approx(50.0)


def test_ced_counts_errors_at_or_below_each_threshold():
    thresholds, fractions = metrics.ced_curve([0.0, 0.01, 0.02, 0.5], [0.0, 0.01, 0.015, 0.08])
    np.testing.assert_allclose(fractions, [0.25, 0.5, 0.5, 0.75])


def test_empty_error_list_is_an_error():
    with pytest.raises(ValueError):
        metrics.ced_auc([])


def test_paired_auc_difference_separates_a_better_tracker_from_a_tie():
    rng = np.random.default_rng(3)
    base = rng.uniform(0.01, 0.04, 120)
    # Better by 0.004 NME on every frame: AUC higher by 0.05, the interval far from 0.
    difference, low, high = metrics.paired_auc_difference(base - 0.004, base)
    assert difference == pytest.approx(0.05, abs=1e-3) and 0.045 < low <= difference <= high
    # The same errors in another order of frames (a tie): the interval holds 0 on both sides.
    difference, low, high = metrics.paired_auc_difference(base, rng.permutation(base))
    assert difference == pytest.approx(0.0, abs=1e-9) and low < 0 < high
    # Four lost frames out of 120 cost 4/120 of (1 - their NME / 0.08) in AUC; resampled runs of
    # frames that miss them tie, so the interval reaches 0 and no further.
    lost = base.copy()
    lost[50:54] = np.nan
    difference, low, high = metrics.paired_auc_difference(lost, base)
    expected = -np.sum(1 - base[50:54] / metrics.NME_FAILURE_THRESHOLD) / 120
    assert difference == pytest.approx(expected, abs=1e-3) and low < difference and high == 0
    with pytest.raises(ValueError, match="one length"):
        metrics.paired_auc_difference(base, base[:-1])


# --------------------------------------------------------------------------------------------
# IoU and OPE success
# --------------------------------------------------------------------------------------------

def test_iou_of_known_boxes():
    assert metrics.box_iou([0, 0, 2, 2], [0, 0, 2, 2]) == pytest.approx(1.0)
    assert metrics.box_iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0
    assert metrics.box_iou([0, 0, 2, 2], [1, 0, 3, 2]) == pytest.approx(1.0 / 3.0)  # half overlap
    assert metrics.box_iou([0, 0, 2, 1], [0, 0, 2, 2]) == pytest.approx(0.5)        # half inside
    assert metrics.box_iou([0, 0, 1, 1], [1, 0, 2, 1]) == 0.0                      # touching


def test_iou_of_missing_predictions_is_zero():
    gt = np.array([[0, 0, 2, 2]] * 3, dtype=float)
    pred = [[0, 0, 2, 2], None, [np.nan] * 4]
    np.testing.assert_allclose(metrics.box_iou(pred, gt), [1.0, 0.0, 0.0])
    assert metrics.box_iou(None, [0, 0, 2, 2]) == 0.0


def test_success_curve_is_strict_over_21_thresholds():
    thresholds, fractions = metrics.success_curve([1.0, 1.0])
    assert len(thresholds) == 21
    np.testing.assert_allclose(fractions[:-1], 1.0)
    assert fractions[-1] == 0.0                       # IoU > 1 never holds
    assert metrics.success_auc([1.0, 1.0]) == pytest.approx(20 / 21)
    # A missing frame never succeeds, not even at threshold 0.
    assert metrics.success_curve([None, 0.5])[1][0] == pytest.approx(0.5)
    # IoU 0.5: successes at t = 0 .. 0.45 (10 thresholds) -> 10/21.
    assert metrics.success_auc([0.5]) == pytest.approx(10 / 21)


def test_summarize_ious():
    summary = metrics.summarize_ious([1.0, None, 0.5])
    assert summary == {"success_auc": pytest.approx((20 + 0 + 10) / 63), "iou_mean": 0.5,
                       "frames": 3, "missing": 1}


# --------------------------------------------------------------------------------------------
# 300-VW categories
# --------------------------------------------------------------------------------------------

def test_vw300_split_sizes_and_disjointness():
    cats = vw300_categories.VW300_TEST_CATEGORIES
    assert [len(cats[c]) for c in (1, 2, 3)] == [31, 19, 14]
    assert len(vw300_categories.VW300_TRAIN_IDS) == 50
    every = list(vw300_categories.VW300_TRAIN_IDS) + list(vw300_categories.VW300_TEST_IDS)
    assert len(set(every)) == len(every) == 114
    assert all(len(v) == 3 and v.isdigit() for v in every)
    assert vw300_categories.category_of(114) == 1
    assert vw300_categories.category_of("562") == 3
    assert vw300_categories.category_of("001") is None


# --------------------------------------------------------------------------------------------
# The external check: CRCT Table II, row ME_CFSS, from the errors released with Chrysos et al.
# --------------------------------------------------------------------------------------------

PAPER_ME_CFSS = {1: (0.758, 3.56), 2: (0.772, 0.38), 3: (0.659, 11.3)}  # (AUC, FR %)


@pytest.mark.parametrize("category", [1, 2, 3])
def test_reproduces_table_ii_me_cfss(category):
    errors = read_errors_txt(IJCV2018_ERRORS / f"tracking_meem_cfss_category{category}.txt.gz")
    auc, fr = PAPER_ME_CFSS[category]
    assert metrics.ced_auc(errors) == pytest.approx(auc, abs=0.002)
    assert metrics.failure_rate(errors) == pytest.approx(fr, abs=0.1)


def test_evaluate_cli_reads_the_gzipped_errors(tmp_path):
    """docs/evaluation.md's dataset-free example, as written: three .txt.gz files in, the
    methods named after the files, Table II's ME_CFSS row out."""
    repo = Path(__file__).resolve().parents[1]
    args = [sys.executable, "-m", "crct_tf.evaluate", "--output_dir", str(tmp_path / "out")]
    for category in (1, 2, 3):
        args += ["--errors_txt",
                 f"tests/data/ijcv2018_errors/tracking_meem_cfss_category{category}.txt.gz"]
    proc = subprocess.run(args, cwd=repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    methods = json.loads((tmp_path / "out" / "results.json").read_text())["methods"]
    for category, (auc, fr) in PAPER_ME_CFSS.items():
        cell = methods[f"tracking_meem_cfss_category{category}"]["all"]
        assert cell["auc"] == pytest.approx(auc, abs=0.002)
        assert cell["fr"] == pytest.approx(fr, abs=0.1)


def test_read_errors_txt_plain_and_gzip_agree(tmp_path):
    plain = tmp_path / "m.txt"
    plain.write_text("0.01\nnan\n0.2\n")
    packed = tmp_path / "m.txt.gz"
    with gzip.open(packed, "wt") as f:
        f.write("0.01\nnan\n0.2\n")
    np.testing.assert_array_equal(read_errors_txt(plain), read_errors_txt(packed))
    (tmp_path / "broken.txt.gz").write_bytes(gzip.compress(b"0.1\n" * 100)[:-10])
    with pytest.raises(EvaluationError, match="broken.txt.gz"):
        read_errors_txt(tmp_path / "broken.txt.gz")
