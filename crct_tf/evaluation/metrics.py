"""The paper's landmark and box-tracking metrics, in plain numpy.

Landmarks (CRCT Table II, following Chrysos et al., IJCV 2018, reference [3] of the paper):
  * NME of a frame: mean 68-point Euclidean error divided by the diagonal of the ground-truth
    landmark box (`nme_box_diagonal`); 300-W users may prefer `nme_inter_ocular`.
  * CED: fraction of frames whose NME is <= t, for t = 0, 1e-4, ..., 0.08 (801 thresholds).
  * AUC: area under the CED on [0, 0.08] by the trapezoid rule, divided by 0.08 (1.0 is perfect).
  * FR: percentage of frames whose NME is > 0.08.
  A frame without a prediction (None / NaN error) counts as a failure: its error is +inf.

Box tracking (CRCT Table I / Fig. 3, the OPE protocol of OTB, Wu et al. CVPR 2013):
  * IoU per frame of [x0, y0, x1, y1] boxes; a missing prediction has IoU 0.
  * Success curve: fraction of frames with IoU > t for t = 0, 0.05, ..., 1; its AUC is its mean.
"""

import numpy as np

from crct_tf.geometry import landmarks as lm

# The landmark protocol of Chrysos et al., "A Comprehensive Performance Evaluation of Deformable
# Face Tracking In-the-Wild", IJCV 2018, used unchanged by the CRCT paper's Table II: the CED is
# cut at an NME of 0.08 and sampled every 1e-4; frames above 0.08 are failures.
NME_FAILURE_THRESHOLD = 0.08
CED_STEP = 1e-4

# OTB's one-pass evaluation (Wu et al., CVPR 2013): 21 overlap thresholds 0:0.05:1.
IOU_THRESHOLDS = np.linspace(0.0, 1.0, 21)


# --------------------------------------------------------------------------------------------
# Per-frame errors.
# --------------------------------------------------------------------------------------------

def _point_errors(pred, gt):
    """Each point's distance [P] or [N, P], and `gt` as float64."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.shape[-1] != 2 or pred.ndim not in (2, 3):
        raise ValueError(f"landmarks must both be [P, 2] or [N, P, 2]; got {pred.shape} and "
                         f"{gt.shape}")
    return np.linalg.norm(pred - gt, axis=-1), gt


def point_errors_box_diagonal(pred, gt):
    """Each point's error over the diagonal of the ground-truth landmark box: [P] or [N, P]
    float64; its mean over the points is `nme_box_diagonal` (per-region figures average it over
    a region's points instead)."""
    errors, gt = _point_errors(pred, gt)
    return errors / lm.box_diagonal(lm.box_from_landmarks(gt))[..., None]


def _as_output(values):
    return float(values) if np.ndim(values) == 0 else values


def nme_box_diagonal(pred, gt):
    """NME normalised by the diagonal of the ground-truth landmark box (300-VW, Chrysos et al.).

    Args:
      pred: [68, 2] or [N, 68, 2] predicted landmarks (any consistent pixel convention).
      gt: ground-truth landmarks of the same shape.

    Returns:
      A float for one frame, a float64 [N] array for a batch. NaN in `pred` gives NaN, which the
      CED/FR functions count as a failure.
    """
    return _as_output(point_errors_box_diagonal(pred, gt).mean(axis=-1))


def nme_inter_ocular(pred, gt):
    """NME normalised by the outer-eye-corner distance (points 36 and 45), as in 300-W.

    Args and Returns as `nme_box_diagonal`; needs the 68-point iBUG scheme.
    """
    errors, gt = _point_errors(pred, gt)
    mean_error = errors.mean(axis=-1)
    if gt.shape[-2] != lm.NUM_LANDMARKS:
        raise ValueError(f"inter-ocular NME needs {lm.NUM_LANDMARKS} points, got {gt.shape[-2]}")
    ocular = np.linalg.norm(gt[..., lm.LEFT_EYE_OUTER, :] - gt[..., lm.RIGHT_EYE_OUTER, :],
                            axis=-1)
    return _as_output(mean_error / ocular)


def as_errors(errors):
    """Per-frame errors as a float64 [N] array where a missing frame (None or NaN) is +inf."""
    values = np.array(errors, dtype=np.float64).ravel()   # None becomes NaN
    values[np.isnan(values)] = np.inf
    if np.any(values < 0):
        raise ValueError("errors must be non-negative")
    return values


# --------------------------------------------------------------------------------------------
# CED, AUC and failure rate.
# --------------------------------------------------------------------------------------------

def ced_thresholds(max_error=NME_FAILURE_THRESHOLD, step=CED_STEP):
    """The CED's error axis 0, step, ..., max_error (801 values by default, both ends included)."""
    return np.linspace(0.0, max_error, int(round(max_error / step)) + 1)


def ced_curve(errors, thresholds=None):
    """Cumulative error distribution: the fraction of frames with error <= each threshold.

    Args:
      errors: per-frame errors; None / NaN are missing frames (never counted as below).
      thresholds: the error axis; default `ced_thresholds()`.

    Returns:
      (thresholds, fractions), two float64 arrays of the same length.
    """
    values = np.sort(as_errors(errors))
    if values.size == 0:
        raise ValueError("the CED of an empty error list is undefined")
    thresholds = ced_thresholds() if thresholds is None else np.asarray(thresholds, np.float64)
    counts = np.searchsorted(values, thresholds, side="right")   # number of errors <= t
    return thresholds, counts / values.size


def ced_auc(errors, max_error=NME_FAILURE_THRESHOLD, step=CED_STEP):
    """Area under the CED on [0, max_error], divided by max_error (1.0 is perfect).

    The exact rule: the CED is sampled at t = 0, step, ..., max_error with the inclusive count
    `error <= t` and integrated with the trapezoid rule. This reproduces the CRCT paper's Table II
    row ME_CFSS from the per-frame errors released by Chrysos et al. (AUC within 3e-4; see
    tests/test_evaluation_metrics.py). menpofit's `area_under_curve_and_failure_rate`, used by that
    study, integrates the same samples with Simpson's rule; both agree to 1e-6 on those files,
    whereas a left-rectangle sum is biased low by up to step / (2 * max_error) = 6.25e-4.
    """
    thresholds, fractions = ced_curve(errors, ced_thresholds(max_error, step))
    area = np.sum((fractions[1:] + fractions[:-1]) * np.diff(thresholds)) / 2.0
    return float(area / max_error)


def failure_rate(errors, threshold=NME_FAILURE_THRESHOLD):
    """Percentage of frames whose error is > threshold (missing frames are failures)."""
    values = as_errors(errors)
    if values.size == 0:
        raise ValueError("the failure rate of an empty error list is undefined")
    return float(100.0 * np.count_nonzero(values > threshold) / values.size)


def summarize_errors(errors):
    """The figures of a Table II cell for one set of frames.

    Returns:
      {"auc": fraction, "fr": percent, "nme_mean": mean NME over the frames that have a prediction
      (None if none has), "frames": number of frames, "missing": frames without a prediction}.
    """
    values = as_errors(errors)
    finite = values[np.isfinite(values)]
    return {
        "auc": ced_auc(values),
        "fr": failure_rate(values),
        "nme_mean": float(finite.mean()) if finite.size else None,
        "frames": int(values.size),
        "missing": int(values.size - finite.size),
    }


# A paired comparison of two trackers on the same frames: a moving-block bootstrap (Kuensch,
# Annals of Statistics 1989). Frames are resampled in runs of BOOTSTRAP_BLOCK, because a tracker's
# errors on neighbouring frames are alike; both trackers get the same resampled frames.
BOOTSTRAP_BLOCK = 10
BOOTSTRAP_RESAMPLES = 1000


def paired_auc_difference(errors_a, errors_b, block=BOOTSTRAP_BLOCK,
                          resamples=BOOTSTRAP_RESAMPLES, level=0.95, seed=0):
    """AUC(a) - AUC(b) on the same frames, with its `level` moving-block bootstrap interval.

    Args:
      errors_a, errors_b: per-frame errors of two trackers on the same frames (same length;
        None / NaN are failures, as everywhere here).

    Returns:
      (difference, low, high). An interval that holds 0 means that these frames cannot tell the
      two apart: the sign of the difference is then within the variation between runs of frames.
    """
    a, b = as_errors(errors_a), as_errors(errors_b)
    if a.size != b.size or a.size == 0:
        raise ValueError(f"paired errors must be two non-empty lists of one length, got "
                         f"{a.size} and {b.size}")
    block = max(1, min(int(block), a.size))
    starts = np.random.default_rng(seed).integers(0, a.size - block + 1,
                                                  (resamples, -(-a.size // block)))
    frames = (starts[..., None] + np.arange(block)).reshape(resamples, -1)[:, :a.size]
    differences = np.array([ced_auc(a[i]) - ced_auc(b[i]) for i in frames])
    low, high = np.percentile(differences, [50 * (1 - level), 50 * (1 + level)])
    return ced_auc(a) - ced_auc(b), float(low), float(high)


# --------------------------------------------------------------------------------------------
# Boxes: IoU and the OPE success curve.
# --------------------------------------------------------------------------------------------

def box_iou(pred, gt):
    """Intersection over union of [x0, y0, x1, y1] boxes, per frame.

    Args:
      pred: [4] or [N, 4] predicted boxes; a row holding NaN (or a None row) is a missing
        prediction and gets IoU 0.
      gt: ground-truth boxes of the same shape.

    Returns:
      A float for one box pair, a float64 [N] array for a batch. Boxes are continuous
      coordinates (area = width * height); an empty union gives 0.
    """
    single = np.ndim(gt) == 1
    gt = np.atleast_2d(np.asarray(gt, dtype=np.float64))
    rows = [pred] if single else list(pred)
    pred = np.array([[np.nan] * 4 if p is None else p for p in rows], dtype=np.float64)
    if pred.shape != gt.shape or gt.shape[-1] != 4:
        raise ValueError(f"boxes must both be [4] or [N, 4]; got {pred.shape} and {gt.shape}")
    iw = np.minimum(pred[:, 2], gt[:, 2]) - np.maximum(pred[:, 0], gt[:, 0])
    ih = np.minimum(pred[:, 3], gt[:, 3]) - np.maximum(pred[:, 1], gt[:, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area = lambda b: np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area(pred) + area(gt) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    iou = np.nan_to_num(iou, nan=0.0)
    return float(iou[0]) if single else iou


def as_ious(ious):
    """Per-frame IoUs as a float64 [N] array where a missing frame (None or NaN) is 0."""
    return np.nan_to_num(np.array(ious, dtype=np.float64).ravel(), nan=0.0)  # None -> NaN -> 0


def success_curve(ious, thresholds=IOU_THRESHOLDS):
    """OPE success curve: the fraction of frames with IoU > each threshold (strict, as OTB).

    Returns:
      (thresholds, fractions), two float64 arrays.
    """
    values = as_ious(ious)
    if values.size == 0:
        raise ValueError("the success curve of an empty IoU list is undefined")
    thresholds = np.asarray(thresholds, dtype=np.float64)
    return thresholds, (values[None, :] > thresholds[:, None]).mean(axis=1)


def success_auc(ious, thresholds=IOU_THRESHOLDS):
    """AUC of the OPE success plot: the mean of the success curve (OTB's definition)."""
    return float(success_curve(ious, thresholds)[1].mean())


def summarize_ious(ious):
    """{"success_auc", "iou_mean", "frames", "missing"} for one set of frames (missing IoU = 0)."""
    raw = np.array(ious, dtype=np.float64).ravel()
    values = as_ious(raw)
    return {
        "success_auc": success_auc(values),
        "iou_mean": float(values.mean()),
        "frames": int(values.size),
        "missing": int(np.count_nonzero(np.isnan(raw))),
    }
