"""Temporal smoothing of tracked faces: the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012).

    smoother = FaceSmoother(OneEuroParams())           # one filter per face id
    points = smoother.smooth(face_id, time_s, landmarks)   # [68, 2] -> [68, 2]
    smoother.keep(ids_tracked_this_frame)              # the others start afresh next time

The One-Euro filter is a first-order low-pass filter whose cut-off frequency rises with the speed
of the signal: a still face is smoothed hard (little jitter), a moving one lightly (little lag).
Per coordinate, with dt the time since the previous sample (from the frames' time stamps):

    alpha(fc)  = 1 / (1 + 1 / (2 pi fc dt))
    speed      = low-pass at d_cutoff of (x_t - xhat_{t-1}) / dt
    fc         = min_cutoff + beta * |speed| / scale
    xhat_t     = alpha(fc) x_t + (1 - alpha(fc)) xhat_{t-1}

`scale` is the face's size (the diagonal of its landmark box), so that `beta` does not depend on
how large the face is in the picture: the speed is in face diagonals per second. The filter works
on pixel coordinates; only its adaptation is normalised. A face that was not tracked in the
previous frame (lost, new, re-detected) starts afresh: no lag carried over a gap.

The box of a smoothed face is the box of its smoothed landmarks, as the tracker's raw box is the
box of its raw landmarks (eq. 4).
"""

import dataclasses
import math

import numpy as np

from crct_tf.geometry.landmarks import box_from_landmarks


@dataclasses.dataclass(frozen=True)
class OneEuroParams:
    """The filter's three parameters.

    Defaults chosen by measurement (docs/multi_face.md, "Smoothing"): on a still face with fresh
    sensor noise in every frame they cut the frame-to-frame landmark motion by more than half,
    and on the moving faces of the multi-face sequence they cost less than 0.003 median NME.

    Attributes:
      min_cutoff: cut-off frequency (Hz) of a still face: lower is smoother, and slower.
      beta: how fast the cut-off rises with speed (Hz per face diagonal per second): higher
        follows fast motion with less lag.
      d_cutoff: cut-off frequency (Hz) of the speed estimate.
    """
    min_cutoff: float = 1.0
    beta: float = 8.0
    d_cutoff: float = 1.0

    def __post_init__(self):
        if not (self.min_cutoff > 0 and self.d_cutoff > 0 and self.beta >= 0) or not all(
                math.isfinite(v) for v in (self.min_cutoff, self.beta, self.d_cutoff)):
            raise ValueError(f"One-Euro parameters need min_cutoff > 0, d_cutoff > 0, beta >= 0; "
                             f"got {self.min_cutoff}, {self.beta}, {self.d_cutoff}")


def smoothing_factor(cutoff, dt):
    """alpha of a first-order low-pass filter at `cutoff` Hz for a step of `dt` seconds."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64) * dt))


class OneEuroFilter:
    """The One-Euro filter on an array of any shape (each element filtered on its own)."""

    def __init__(self, params=OneEuroParams()):
        self.params = params
        self.reset()

    def reset(self):
        self._value = self._speed = self._time = None

    def __call__(self, value, time_s, scale=1.0):
        """Filters one sample taken at `time_s` seconds; returns the filtered array (float64)."""
        value = np.asarray(value, np.float64)
        p = self.params
        if self._value is None or value.shape != self._value.shape:
            self._value, self._speed, self._time = value.copy(), np.zeros_like(value), time_s
            return value.copy()
        dt = time_s - self._time
        if not dt > 0:                      # the same or an earlier time stamp: 1/30 s assumed
            dt = 1.0 / 30.0
        speed = (value - self._value) / dt
        self._speed = self._speed + smoothing_factor(p.d_cutoff, dt) * (speed - self._speed)
        cutoff = p.min_cutoff + p.beta * np.abs(self._speed) / max(float(scale), 1e-6)
        self._value = self._value + smoothing_factor(cutoff, dt) * (value - self._value)
        self._time = time_s
        return self._value.copy()


class FaceSmoother:
    """One One-Euro filter per face id, on its landmarks (and so its box)."""

    def __init__(self, params=OneEuroParams()):
        self.params = params
        self._filters = {}

    def smooth(self, face_id, time_s, landmarks):
        """The smoothed [68, 2] landmarks (float32) of `face_id` at `time_s`."""
        points = np.asarray(landmarks, np.float64)
        box = box_from_landmarks(points)
        scale = math.hypot(box[2] - box[0], box[3] - box[1])
        filt = self._filters.setdefault(face_id, OneEuroFilter(self.params))
        return filt(points, time_s, scale).astype(np.float32)

    def keep(self, face_ids):
        """Forgets the faces not in `face_ids` (not tracked this frame): they restart afresh."""
        keep = set(face_ids)
        for face_id in [f for f in self._filters if f not in keep]:
            del self._filters[face_id]

    def reset(self):
        self._filters.clear()


def smooth_track(landmarks, times, params=OneEuroParams()):
    """Smooths one face's landmark sequence offline, as the tracker does online.

    Args:
      landmarks: [T, 68, 2], NaN on frames without landmarks (the filter restarts after them).
      times: [T] time stamps in seconds.

    Returns:
      float32 [T, 68, 2], NaN where the input is.
    """
    landmarks = np.asarray(landmarks, np.float64)
    out = np.full(landmarks.shape, np.nan, np.float32)
    smoother = FaceSmoother(params)
    for t, (points, time_s) in enumerate(zip(landmarks, times)):
        if np.all(np.isfinite(points)):
            out[t] = smoother.smooth(0, float(time_s), points)
        else:
            smoother.reset()
    return out


def jitter(landmarks):
    """Mean frame-to-frame motion of the points (pixels): mean over points and frame pairs."""
    landmarks = np.asarray(landmarks, np.float64)
    steps = np.linalg.norm(np.diff(landmarks, axis=0), axis=-1).mean(axis=-1)
    return float(np.nanmean(steps)) if np.isfinite(steps).any() else float("nan")
