"""FV, the facial validator (paper III-B, eq. 6): p(face) from patches around BT's landmarks.

    p(f | X_t, l_t^BT) = sigmoid(W^FV . cnn(X_t, l_t^BT))

cnn: small stacked convolutions shared by the 68 patches, then a bottleneck over all of them.
Input: [B, 68, P, P, 3] RGB 0-255 patches (`geometry.tf_landmark_patches`); output: [B] in (0, 1).
"""

import keras
from keras import layers

from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.geometry.landmarks import NUM_LANDMARKS
from crct_tf.models.inception_resnet_v1 import Prewhiten

CONV_FILTERS = (16, 32)     # "two small convolutions" (the authors' code)
BOTTLENECK_UNITS = 64       # eq. 6's bottleneck, over all 68 patches (pooled to 3x3 each)


def build_fv(settings=CropSettings(), name="fv"):
    p = settings.fv_patch_size
    patches = keras.Input((NUM_LANDMARKS, p, p, 3), name="patches")
    # One standardisation over the whole patch set, so the validator judges shape, not exposure.
    x = layers.Reshape((NUM_LANDMARKS * p, p, 3), name="fv_patch_stack")(patches)
    x = Prewhiten(name="fv_prewhiten")(x)
    x = layers.Reshape((NUM_LANDMARKS, p, p, 3), name="fv_patch_unstack")(x)
    for i, filters in enumerate(CONV_FILTERS):
        x = layers.TimeDistributed(
            layers.Conv2D(filters, 3, strides=1 if i == 0 else 2, padding="same",
                          activation="relu", name=f"fv_conv{i + 1}_per_patch"),
            name=f"fv_conv{i + 1}")(x)
    x = layers.TimeDistributed(layers.MaxPooling2D(2, name="fv_pool_per_patch"),
                               name="fv_pool")(x)
    x = layers.Flatten(name="fv_flatten")(x)
    x = layers.Dense(BOTTLENECK_UNITS, activation="relu", name="fv_bottleneck")(x)
    logit = layers.Dense(1, name="fv_logit")(x)
    probability = layers.Activation("sigmoid", name="fv_probability")(logit)
    return keras.Model(patches, layers.Reshape((), name="p_face")(probability), name=name)
