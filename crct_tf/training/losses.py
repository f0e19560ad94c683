"""Per-example landmark losses of FLL, on points in crop pixels.

    l2_point_loss    the paper's loss (eq. 7, section III-E): squared error, mean over the points
    wing_point_loss  the wing loss of Feng et al., "Wing Loss for Robust Facial Landmark
                     Localisation with CNNs", CVPR 2018: logarithmic for small errors, l1 for
                     large ones; an option (`python -m crct_tf.train --fll_loss wing`)

Both take predicted and true points [B, 68, 2] and return [B]; the task sums them and divides
by the global batch size.
"""

import math

import tensorflow as tf

# Feng et al. 2018, eq. 5 and section 4.2: w = 10 and epsilon = 2, for points in pixels of the
# network's input (theirs 64 px; ours `CropSettings.input_size`, 128 px by default).
WING_W = 10.0
WING_EPSILON = 2.0

POINT_LOSSES = ("l2", "wing")


def l2_point_loss(predicted, target):
    """Sum of squared coordinate errors over the points, divided by their number: [B]."""
    points = tf.cast(tf.shape(target)[1], tf.float32)
    return tf.reduce_sum(tf.square(predicted - target), axis=[1, 2]) / points


def wing(error, w=WING_W, epsilon=WING_EPSILON):
    """Feng et al.'s eq. 5 on absolute coordinate errors (any shape):
    w ln(1 + |x| / epsilon) below w, |x| - C above, C = w - w ln(1 + w / epsilon)."""
    magnitude = tf.abs(error)
    c = w - w * math.log(1.0 + w / epsilon)
    return tf.where(magnitude < w, w * tf.math.log1p(magnitude / epsilon), magnitude - c)


def wing_point_loss(predicted, target, w=WING_W, epsilon=WING_EPSILON):
    """Wing loss summed over both coordinates of each point, mean over the points: [B]."""
    points = tf.cast(tf.shape(target)[1], tf.float32)
    return tf.reduce_sum(wing(predicted - target, w, epsilon), axis=[1, 2]) / points


def point_loss(name):
    """The per-example loss function called `name` (`l2` or `wing`)."""
    losses = {"l2": l2_point_loss, "wing": wing_point_loss}
    if name not in losses:
        raise ValueError(f"unknown FLL loss {name!r}; expected one of {', '.join(POINT_LOSSES)}")
    return losses[name]
