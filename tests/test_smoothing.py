"""The One-Euro smoothing of tracked faces: jitter, lag, restarts, and that it touches only the
output (the tracker's own state stays raw)."""

import numpy as np
import pytest

from helpers import BOX, DARK, frame, make_steps

from crct_tf.tracking import Tracker, TrackerConfig
from crct_tf.tracking.smoothing import (FaceSmoother, OneEuroFilter, OneEuroParams, jitter,
                                        smooth_track)

FPS = 30.0


def still_face(rng, frames=90, noise=1.0):
    """A still 80-px face (a grid of 68 points) with fresh Gaussian noise on every frame."""
    grid = np.stack(np.meshgrid(np.linspace(0, 80, 9), np.linspace(0, 80, 8)), -1)
    base = grid.reshape(-1, 2)[:68] + 100.0
    return base, base + rng.normal(0.0, noise, (frames, 68, 2))


def test_jitter_of_a_still_face_is_at_least_halved():
    rng = np.random.default_rng(0)
    _, noisy = still_face(rng)
    times = np.arange(len(noisy)) / FPS
    smoothed = smooth_track(noisy, times)
    raw, out = jitter(noisy), jitter(smoothed)
    assert out <= 0.5 * raw, (raw, out)
    # and it stays centred on the face: no drift
    assert np.abs(smoothed[30:].mean(0) - noisy[30:].mean(0)).max() < 0.3


def ramp_lag(params, speed_diagonals=1.0, diagonal=100.0, frames=60):
    """Steady lag (pixels) behind a point moving at `speed_diagonals` face diagonals per second."""
    filt = OneEuroFilter(params)
    speed = speed_diagonals * diagonal
    lag = None
    for t in range(frames):
        x = speed * t / FPS
        lag = x - float(filt(np.array([x]), t / FPS, scale=diagonal)[0])
    return lag


def test_lag_on_a_moving_face_is_about_a_frame_and_far_less_than_a_plain_low_pass():
    params = OneEuroParams()
    step = 100.0 / FPS                                     # pixels per frame at 1 diagonal/s
    lag = ramp_lag(params)
    plain = ramp_lag(OneEuroParams(params.min_cutoff, 0.0, params.d_cutoff))
    assert 0 < lag < 1.5 * step                            # about one frame behind
    assert lag < 0.3 * plain                               # the speed term cuts the lag
    # Faster motion: relatively less lag (the cut-off rises with speed).
    assert ramp_lag(params, 3.0) / 3.0 < lag


def test_lag_does_not_depend_on_the_face_size():
    small = ramp_lag(OneEuroParams(), diagonal=40.0)
    large = ramp_lag(OneEuroParams(), diagonal=400.0)
    assert small / 40.0 == pytest.approx(large / 400.0, rel=1e-6)


def test_the_filter_settles_after_the_face_stops():
    filt = OneEuroFilter(OneEuroParams())
    for t in range(30):
        out = filt(np.array([3.0 * t]), t / FPS, scale=100.0)
    for t in range(30, 60):
        out = filt(np.array([87.0]), t / FPS, scale=100.0)
    assert abs(out[0] - 87.0) < 0.05


def test_time_stamps_are_used():
    """The same samples at 15 frames/s are followed more closely (per sample) than at 60."""
    def last_lag(fps):
        filt = OneEuroFilter(OneEuroParams(beta=0.0))
        for t in range(40):
            out = filt(np.array([float(t)]), t / fps)
        return 39.0 - out[0]
    assert last_lag(15.0) < last_lag(60.0)


def test_smoother_restarts_a_face_after_a_gap():
    smoother = FaceSmoother(OneEuroParams())
    face = np.zeros([68, 2]) + np.arange(68)[:, None]
    smoother.smooth(3, 0.0, face)
    smoother.keep([3])
    smoother.keep([])                                     # not tracked in this frame
    moved = face + 50.0
    np.testing.assert_allclose(smoother.smooth(3, 2 / FPS, moved), moved)   # no lag carried
    smoother.keep([3])
    assert not np.allclose(smoother.smooth(3, 3 / FPS, moved + 10.0), moved + 10.0)


def test_bad_parameters():
    for bad in ({"min_cutoff": 0.0}, {"beta": -1.0}, {"d_cutoff": 0.0},
                {"min_cutoff": float("nan")}):
        with pytest.raises(ValueError):
            OneEuroParams(**bad)


def test_tracker_smooths_the_output_only():
    """BT moves the face 10 px a frame (mode bt): the smoothed output lags a little behind the
    raw one, and the raw track (the tracker's own state) is the same with or without smoothing."""
    steps = make_steps(shift=16.0)                        # 10 image px per frame
    frames = [frame(DARK)] * 6
    raw = Tracker(steps, TrackerConfig(mode="bt", seq_bt=100), init_box=BOX)
    smooth = Tracker(steps, TrackerConfig(mode="bt", seq_bt=100, smoothing=OneEuroParams()),
                     init_box=BOX)
    for t, image in enumerate(frames):
        a, b = raw.track(image, t / FPS), smooth.track(image, t / FPS)
        np.testing.assert_allclose(raw.state.box, smooth.state.box)       # state stays raw
        lag = a.box[0] - b.box[0]
        assert (lag == 0) if t == 0 else (0 < lag < 10.0)
        np.testing.assert_allclose(b.box, np.r_[b.landmarks.min(0), b.landmarks.max(0)])
