"""Landmark regression layers shared by BT (five regional heads) and FLL (one head).

Heads output points in crop pixels. Each head is a Dense layer predicting coordinates in units
of the crop side, followed by a fixed rescaling to pixels; its kernel starts at zero and its bias
at the mean face placed where a landmark box sits in a context crop, so training starts from a
face instead of a point (Adam's step of ~1e-4 per iteration would otherwise need thousands of
steps just to spread the points out).
"""

import keras
import numpy as np
from keras import layers

from crct_tf.geometry.landmarks import MEAN_SHAPE_UNIT_BOX, NUM_LANDMARKS


def mean_shape_in_crop(input_size, context):
    """The mean face [68, 2] in crop pixels, its landmark box centred and 1/context of the crop."""
    unit = (MEAN_SHAPE_UNIT_BOX - 0.5) / context + 0.5     # in crop-side units, edges at 0 and 1
    return unit * input_size - 0.5                          # pixel-centre convention


def landmark_head(features, indices, input_size, context, name):
    """A Dense head for the landmarks `indices`; returns [B, len(indices), 2] in crop pixels."""
    start = (mean_shape_in_crop(input_size, context)[list(indices)] + 0.5) / input_size
    dense = layers.Dense(
        2 * len(indices), kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(start.reshape(-1).astype(np.float32)),
        name=name)(features)
    pixels = layers.Rescaling(scale=float(input_size), offset=-0.5, name=f"{name}_to_pixels")(dense)
    return layers.Reshape((len(indices), 2), name=f"{name}_points")(pixels)


def check_all_landmarks(points):
    if points.shape[-2] != NUM_LANDMARKS:
        raise ValueError(f"heads give {points.shape[-2]} points, expected {NUM_LANDMARKS}")
    return points
