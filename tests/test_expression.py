"""Synthetic expressions (`crct_tf.data.expression`): the picture moves with the points."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from crct_tf.data import expression
from crct_tf.geometry import landmarks as lm

SIDE = 200.0


def _face(angle_degrees=0.0, size=480):
    """A smooth random texture and the mean face's points on it, `SIDE` px wide, turned."""
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 255, (size // 8, size // 8, 3)).astype(np.float32)
    image = np.clip(cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC), 0, 255)
    points = (lm.MEAN_SHAPE_UNIT_BOX - 0.5) * SIDE
    turn = np.radians(angle_degrees)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return image.astype(np.uint8), (points @ rotation.T + size / 2).astype(np.float32)


@pytest.fixture
def every_move(monkeypatch):
    for name in ("BROW_PROBABILITY", "MOUTH_PROBABILITY"):
        monkeypatch.setattr(expression, name, 1.0)
    monkeypatch.setattr(expression, "BROW_RAISE", (0.05, 0.07))
    monkeypatch.setattr(expression, "MOUTH_OPEN", (0.08, 0.12))


def _sample(image, points):
    xs = points[:, 0:1].astype(np.float32)[None]
    ys = points[:, 1:2].astype(np.float32)[None]
    return cv2.remap(image.astype(np.float32), xs, ys, cv2.INTER_LINEAR)[0, :, 0]


@pytest.mark.parametrize("angle", [0.0, 30.0, -90.0])
def test_the_picture_moves_with_the_points(every_move, angle):
    image, points = _face(angle)
    warped, moved = expression.expression_warp(image, points, seed=3)
    assert not np.array_equal(warped, image)
    outside_mouth = [i for i in range(68) if i not in range(60, 68)]
    before = _sample(image, points[outside_mouth])
    after = _sample(warped, moved[outside_mouth])
    # Each point shows, after the warp, what it showed before (bilinear resampling aside).
    assert np.abs(after - before).mean() < 2.0
    # A pixel 5 px off its point shows something else: the check can fail.
    assert np.abs(_sample(warped, moved[outside_mouth] + 5.0) - before).mean() > 10.0


def test_moves_follow_the_face_not_the_picture(every_move):
    for angle in (0.0, 90.0):
        image, points = _face(angle)
        _, moved = expression.expression_warp(image, points, seed=3)
        turn = np.radians(angle)
        down = np.array([-np.sin(turn), np.cos(turn)])        # the face's own "down"
        shift = (moved - points) @ down / SIDE
        assert np.all(shift[[57, 66]] > 0.07)                 # the lower lip drops
        assert np.all(shift[list(lm.REGIONS["eyebrows"])] < -0.02)   # the brows rise
        for still in (list(lm.REGIONS["nose"]) + list(lm.REGIONS["eyes"]) + [50, 51, 52, 62]):
            assert np.allclose(moved[still], points[still])


def test_an_opened_mouth_is_painted_dark(every_move, monkeypatch):
    monkeypatch.setattr(expression, "TEETH_PROBABILITY", 0.0)
    image = np.full((480, 480, 3), 220, np.uint8)
    _, points = _face()
    warped, moved = expression.expression_warp(image, points, seed=5)
    inside = np.round((moved[62] + moved[66]) / 2).astype(int)
    assert warped[inside[1], inside[0]].mean() < 120
    assert warped[5, 5].mean() == 220                         # far from the face: untouched


def test_a_face_the_mesh_does_not_fit_is_left_alone(every_move):
    image, points = _face()
    profile = points.copy()
    profile[0:8, 0] = profile[27:31, 0].mean() + 40.0         # the near cheek past the nose
    warped, moved = expression.expression_warp(image, profile, seed=3)
    assert warped is image and np.array_equal(moved, profile)


def test_same_seed_same_expression():
    image, points = _face()
    first = expression.expression_warp(image, points, seed=[7, -3])
    again = expression.expression_warp(image, points, seed=[7, -3])
    other = expression.expression_warp(image, points, seed=[8, -3])
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_in_the_pipeline_only_on_the_drawn_share():
    image, points = _face()
    example = {"image": tf.constant(image), "landmarks": tf.constant(points),
               "box": tf.constant([0.0, 0.0, 1.0, 1.0])}
    changed = 0
    for i in range(40):
        seed = tf.constant([i, 1], tf.int64)
        none = expression.maybe_expression_warp(example, seed, 0.0)
        assert np.array_equal(none["landmarks"].numpy(), points)
        some = expression.maybe_expression_warp(example, seed, 0.5)
        moved = not np.allclose(some["landmarks"].numpy(), points)
        changed += moved
        if moved:
            box = some["box"].numpy()
            assert np.allclose(box, [*some["landmarks"].numpy().min(0),
                                     *some["landmarks"].numpy().max(0)])
    assert 8 <= changed <= 32
