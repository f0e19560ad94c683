"""FLL's point losses: the paper's l2 and the wing loss option (Feng et al. 2018)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from crct_tf.training import losses

from helpers import TRAIN_BATCH as BATCH, generated_batches, tiny_task


def test_wing_is_logarithmic_below_w_linear_above_and_continuous():
    w, eps = losses.WING_W, losses.WING_EPSILON
    x = tf.constant([0.0, 1.0, -1.0, w - 1e-4, w, w + 5.0, -(w + 5.0)])
    got = losses.wing(x).numpy()
    c = w - w * math.log(1 + w / eps)
    np.testing.assert_allclose(got[:3], [0.0, w * math.log(1.5), w * math.log(1.5)], rtol=1e-6)
    np.testing.assert_allclose(got[3], got[4], atol=1e-3)                  # continuous at w
    np.testing.assert_allclose(got[5:], [w + 5.0 - c] * 2, rtol=1e-6)     # |x| - C above w
    # Small errors weigh more than in l1: the slope at 1 px is w / (eps + 1) > 1.
    slope = (losses.wing(tf.constant(1.01)) - losses.wing(tf.constant(0.99))).numpy() / 0.02
    assert slope == pytest.approx(w / (eps + 1.0), rel=1e-3)


def test_point_losses_per_example():
    target = tf.zeros([2, 68, 2])
    predicted = tf.concat([tf.fill([1, 68, 2], 3.0), tf.zeros([1, 68, 2])], 0)
    np.testing.assert_allclose(losses.l2_point_loss(predicted, target).numpy(), [18.0, 0.0])
    expected = 2 * losses.WING_W * math.log(1 + 3.0 / losses.WING_EPSILON)
    np.testing.assert_allclose(losses.wing_point_loss(predicted, target).numpy(), [expected, 0],
                               rtol=1e-6)
    with pytest.raises(ValueError, match="unknown FLL loss 'l1'"):
        losses.point_loss("l1")


def test_fll_task_uses_the_chosen_loss():
    batch = next(iter(generated_batches("fll")(2, 10_000)))
    values = {}
    for name in losses.POINT_LOSSES:
        task = tiny_task("fll", fll_loss=name)
        task.build_model()
        crops, target = batch
        predicted = task.model(crops, training=False)
        expected = losses.point_loss(name)(predicted, target).numpy().sum() / BATCH["fll"]
        values[name] = float(task.loss(batch, BATCH["fll"], training=False)[0])
        assert values[name] == pytest.approx(expected, rel=1e-5)
    assert values["l2"] != pytest.approx(values["wing"])


def test_region_weights_weigh_their_points_and_keep_the_loss_size():
    brows = list(range(17, 27))
    target = tf.zeros([1, 68, 2])
    on_brows = np.zeros([1, 68, 2], np.float32)
    on_brows[0, brows] = 3.0                       # only the brows miss
    everywhere = tf.fill([1, 68, 2], 3.0)          # every point misses alike
    for name in losses.POINT_LOSSES:
        plain, weighted = losses.point_loss(name), losses.point_loss(name, {"eyebrows": 2.0})
        # Brows count twice as much as another point: 2 / (58 + 2 * 10) of the sum, not 1 / 68.
        np.testing.assert_allclose(weighted(on_brows, target).numpy(),
                                   plain(on_brows, target).numpy() * 2 * 68 / 78, rtol=1e-6)
        # The weights' mean is 1: an error on every point costs what it did.
        np.testing.assert_allclose(weighted(everywhere, target).numpy(),
                                   plain(everywhere, target).numpy(), rtol=1e-6)
    weights = losses.region_point_weights({"mouth": 3.0, "contour": 0.5})
    assert weights.shape == (68,) and weights.mean() == pytest.approx(1.0)
    assert weights[48] / weights[30] == pytest.approx(3.0)
    assert weights[0] / weights[30] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown region 'lips'"):
        losses.region_point_weights({"lips": 2.0})
    with pytest.raises(ValueError, match="positive"):
        losses.region_point_weights({"mouth": float("nan")})


def test_fll_task_weighs_regions_when_asked():
    batch = next(iter(generated_batches("fll")(2, 10_000)))
    task = tiny_task("fll", fll_loss="wing", fll_region_weights={"eyebrows": 2.0, "mouth": 1.5})
    task.build_model()
    crops, target = batch
    predicted = task.model(crops, training=False)
    expected = losses.point_loss("wing", {"eyebrows": 2.0, "mouth": 1.5})(
        predicted, target).numpy().sum() / BATCH["fll"]
    plain = losses.point_loss("wing")(predicted, target).numpy().sum() / BATCH["fll"]
    assert float(task.loss(batch, BATCH["fll"], training=False)[0]) == pytest.approx(
        expected, rel=1e-5)
    assert expected != pytest.approx(plain)
