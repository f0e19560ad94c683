"""FLL, the facial landmark localiser (paper III-C, eq. 7): backbone -> regression -> 68 points.

    l_t = W^FLL . res(X_t^Pb)

Input: [B, S, S, 3] RGB 0-255 crops (S: `CropSettings.fll_size`) of the context window around
b_t^BT; output: [B, 68, 2] landmarks in crop pixels.
"""

import keras

from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.geometry.landmarks import NUM_LANDMARKS
from crct_tf.models.landmark_heads import landmark_head


def build_fll(backbone, settings=CropSettings(), name="fll"):
    """Composes FLL from a backbone instance (`crct_tf.models.backbone.build_backbone`)."""
    size = settings.fll_size
    crops = keras.Input((size, size, 3), name="crops")
    features = backbone(crops)["features"]
    points = landmark_head(features, range(NUM_LANDMARKS), size, settings.fll_context,
                           name="fll_regression")
    return keras.Model(crops, points, name=name)
