"""tools/fll_probes.py: the ridge correction's fit and the averaged views' mapping back."""

import numpy as np
import tensorflow as tf

from helpers import load_tool


def _tool():
    return load_tool("fll_probes")


def test_ridge_correction_recovers_a_linear_miss_and_shrinks_with_strength():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 30))
    true_weights = rng.normal(size=(30, 136))
    misses = features @ true_weights + 0.7
    fits = _tool().ridge_corrections(features, misses, strengths=(1e-6, 10.0))
    weights, bias = fits[1e-6]
    np.testing.assert_allclose(features @ weights + bias, misses, atol=1e-3)
    strong, _ = fits[10.0]
    assert np.linalg.norm(strong) < 0.5 * np.linalg.norm(weights)


def _brightest_pixel(crops):
    """A stand-in FLL: all 68 points on the crop's brightest pixel (x, y)."""
    flat = tf.reshape(tf.reduce_sum(crops, axis=-1), [tf.shape(crops)[0], -1])
    index = tf.argmax(flat, axis=1, output_type=tf.int32)
    size = tf.shape(crops)[2]
    point = tf.cast(tf.stack([index % size, index // size], axis=1), tf.float32)
    return tf.tile(point[:, None, :], [1, 68, 1])


def test_averaged_views_map_each_view_back_to_the_crops_pixels():
    size = 64
    crops = np.zeros((2, size, size, 3), np.float32)
    crops[0, 20, 40] = 255.0      # (x 40, y 20)
    crops[1, 45, 12] = 255.0      # (x 12, y 45)
    tool = _tool()
    # one view at a time (the probe's views come in symmetric pairs, whose errors would cancel)
    singles = [[view] for views in tool.VIEWS.values() for view in views] + [[(0.94, 3, -2)]]
    for views in singles:
        points = tool.averaged_views(_brightest_pixel, size, views)(tf.constant(crops)).numpy()
        # a zoomed view's brightest pixel sits up to half a view pixel off the dot
        np.testing.assert_allclose(points[0], np.tile([40.0, 20.0], (68, 1)), atol=0.6)
        np.testing.assert_allclose(points[1], np.tile([12.0, 45.0], (68, 1)), atol=0.6)
