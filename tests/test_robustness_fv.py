"""The validator's held-out summary: ROC AUC and the calibrated T_C (synthetic scores)."""

import numpy as np

from crct_tf.evaluation import robustness_fv


def scores(positive, negative):
    """Every positive group gets `positive`, every negative group `negative`."""
    out = {g: np.asarray(positive, float) for g in robustness_fv.GROUPS_POSITIVE}
    out.update({g: np.asarray(negative, float) for g in robustness_fv.GROUPS_NEGATIVE})
    return out


def test_calibrated_t_c_moves_above_wrong_shapes_that_score_over_one_half():
    # Faces score 0.8-0.95; a fifth of the wrong shapes score 0.55-0.65: 0.5 accepts them,
    # 0.7 rejects them and still accepts every face.
    s = scores(np.linspace(0.8, 0.95, 20), np.r_[np.linspace(0.55, 0.65, 4), np.zeros(16)])
    t_c = robustness_fv.calibrated_t_c(s)
    assert 0.65 < t_c <= 0.8
    summary = robustness_fv.summarize(s)
    assert summary["calibrated_t_c"] == t_c
    assert summary["false_accept"]["0.5"]["far_shift"] == 0.2
    assert summary["false_accept"]["0.7"]["far_shift"] == 0.0


def test_calibrated_t_c_keeps_the_paper_value_when_the_data_do_not_choose():
    # Perfectly separated at any threshold of the grid between 0.3 and 0.9: ties go to 0.5.
    s = scores(np.full(10, 0.99), np.full(10, 0.01))
    assert robustness_fv.calibrated_t_c(s) == robustness_fv.PAPER_T_C
    assert robustness_fv.roc_auc(s["clean"], s["background"]) == 1.0


def test_calibrated_t_c_goes_down_for_faces_that_score_low():
    # A quarter of the faces score 0.35-0.45 and no wrong shape scores above 0.2.
    s = scores(np.r_[np.linspace(0.35, 0.45, 5), np.full(15, 0.9)], np.linspace(0.0, 0.2, 20))
    assert robustness_fv.calibrated_t_c(s) <= 0.35
