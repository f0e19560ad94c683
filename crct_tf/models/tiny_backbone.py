"""A small stand-in with the backbone's signature, for tests and the smoke config.

Tracing the real Inception-ResNet-v1 takes many seconds: loop, control-flow and
tracker tests use this instead. Same input (RGB 0-255) and output dict (`features`).
"""

import keras

FEATURE_DIM = 64


def build_tiny_backbone(image_size=128, name="backbone"):
    images = keras.Input((image_size, image_size, 3), name="images")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="tiny_scale")(images)
    x = keras.layers.Conv2D(8, 5, strides=4, activation="relu", name="tiny_conv1")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="tiny_conv2")(x)
    x = keras.layers.Flatten(name="tiny_flatten")(x)
    features = keras.layers.Dense(FEATURE_DIM, activation="relu", name="tiny_features")(x)
    return keras.Model(images, {"features": features}, name=name)
