"""Per-example landmark losses of FLL, on points in crop pixels.

    l2_point_loss    the paper's loss (eq. 7, section III-E): squared error, mean over the points
    wing_point_loss  the wing loss of Feng et al., "Wing Loss for Robust Facial Landmark
                     Localisation with CNNs", CVPR 2018: logarithmic for small errors, l1 for
                     large ones; an option (`python -m crct_tf.train --fll_loss wing`)

Both take predicted and true points [B, 68, 2] and return [B]; the task sums them and divides
by the global batch size. `point_loss(name, region_weights)` weighs the points of some facial
regions more than the others (`python -m crct_tf.train --fll_region_weights eyebrows=2`; not in
the paper, whose points all count alike).
"""

import math

import numpy as np
import tensorflow as tf

from crct_tf.geometry import landmarks as lm

# Feng et al. 2018, eq. 5 and section 4.2: w = 10 and epsilon = 2, for points in pixels of the
# network's input (theirs 64 px; ours `CropSettings.input_size`, 128 px by default).
WING_W = 10.0
WING_EPSILON = 2.0

POINT_LOSSES = ("l2", "wing")


def l2_point_errors(predicted, target):
    """Squared error of each point (both coordinates summed): [B, P]."""
    return tf.reduce_sum(tf.square(predicted - target), axis=2)


def l2_point_loss(predicted, target):
    """Sum of squared coordinate errors over the points, divided by their number: [B]."""
    return tf.reduce_mean(l2_point_errors(predicted, target), axis=1)


def wing(error, w=WING_W, epsilon=WING_EPSILON):
    """Feng et al.'s eq. 5 on absolute coordinate errors (any shape):
    w ln(1 + |x| / epsilon) below w, |x| - C above, C = w - w ln(1 + w / epsilon)."""
    magnitude = tf.abs(error)
    c = w - w * math.log(1.0 + w / epsilon)
    return tf.where(magnitude < w, w * tf.math.log1p(magnitude / epsilon), magnitude - c)


def wing_point_errors(predicted, target, w=WING_W, epsilon=WING_EPSILON):
    """Wing loss of each point, summed over its two coordinates: [B, P]."""
    return tf.reduce_sum(wing(predicted - target, w, epsilon), axis=2)


def wing_point_loss(predicted, target, w=WING_W, epsilon=WING_EPSILON):
    """Wing loss summed over both coordinates of each point, mean over the points: [B]."""
    return tf.reduce_mean(wing_point_errors(predicted, target, w, epsilon), axis=1)


def region_point_weights(region_weights):
    """[68] float32 weights: each point's region's weight (`landmarks.REGIONS`; 1 for regions not
    named), scaled to a mean of 1 so that the loss keeps its size.

    Raises:
      ValueError: an unknown region or a weight that is not a positive finite number.
    """
    weights = np.ones(lm.NUM_LANDMARKS, np.float32)
    for region, weight in region_weights.items():
        if region not in lm.REGIONS:
            raise ValueError(f"unknown region {region!r}; expected one of "
                             f"{', '.join(lm.REGION_NAMES)}")
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"region {region}: the weight must be a positive number, "
                             f"got {weight}")
        weights[list(lm.REGIONS[region])] = weight
    return weights / weights.mean()


def point_loss(name, region_weights=None):
    """The per-example loss function called `name` (`l2` or `wing`); with `region_weights`
    ({region: weight}, see `region_point_weights`) each point's loss is weighted by its region's
    before the mean over the points."""
    errors = {"l2": l2_point_errors, "wing": wing_point_errors}
    if name not in errors:
        raise ValueError(f"unknown FLL loss {name!r}; expected one of {', '.join(POINT_LOSSES)}")
    if not region_weights:
        return {"l2": l2_point_loss, "wing": wing_point_loss}[name]
    weights = tf.constant(region_point_weights(region_weights))
    point_errors = errors[name]

    def weighted_point_loss(predicted, target):
        return tf.reduce_mean(point_errors(predicted, target) * weights, axis=1)
    return weighted_point_loss
