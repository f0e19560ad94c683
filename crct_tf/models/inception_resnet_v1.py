"""facenet's Inception-ResNet-v1 (Szegedy et al. 2016) as Keras 3 functional code.

Layer names are those of facenet's Keras conversion (`model/facenet_keras.h5`), so that its
weights copy over by name (`crct_tf.models.facenet_weights`). The h5's residual scaling was a
Lambda that Keras 3 cannot deserialise; here it is the registered `ScaleSum` layer, so configs
round-trip without unsafe deserialisation.

Each residual block computes r_{i+1} = r_i + scale * F(r_i) (paper eq. 5), with facenet's scales:
5 x Block35 (0.17), Mixed_6a, 10 x Block17 (0.10), Mixed_7a, 5 x Block8 (0.20), Block8 (1.0, no
activation), then average pooling (1792 features) and a 128-d bottleneck.
"""

import keras
from keras import layers

# Residual scales of facenet's inception_resnet_v1.py.
BLOCK35_SCALE = 0.17
BLOCK17_SCALE = 0.10
BLOCK8_SCALE = 0.20
NUM_BLOCK35, NUM_BLOCK17, NUM_BLOCK8 = 5, 10, 5
BATCHNORM_EPSILON = 1e-3
BATCHNORM_MOMENTUM = 0.995
FEATURE_DIM = 1792      # AvgPool output: what BT's embedding layer (eq. 3) and FLL (eq. 7) read
EMBEDDING_DIM = 128     # facenet's bottleneck
MIN_IMAGE_SIZE = 128    # BT/FLL crop size (paper III-A); the Block8 map is 2x2 here, 3x3 at 160


@keras.saving.register_keras_serializable(package="crct_tf")
class ScaleSum(layers.Layer):
    """`inputs[0] + scale * inputs[1]`: the scaled residual sum of Inception-ResNet (eq. 5)."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        shortcut, residual = inputs
        return shortcut + self.scale * residual

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="crct_tf")
class Prewhiten(layers.Layer):
    """facenet's per-image standardisation: (x - mean) / max(std, 1 / sqrt(x.size)).

    Takes RGB images with values 0-255 (uint8 or float), so every model of the project takes
    crops in the same range and prewhitening happens inside the network.
    """

    def call(self, images):
        x = keras.ops.cast(images, "float32")
        axes = (1, 2, 3)
        mean = keras.ops.mean(x, axis=axes, keepdims=True)
        std = keras.ops.std(x, axis=axes, keepdims=True)
        size = keras.ops.cast(keras.ops.prod(keras.ops.shape(x)[1:]), "float32")
        return (x - mean) / keras.ops.maximum(std, keras.ops.rsqrt(size))


def _conv_bn(x, filters, kernel_size, name, strides=1, padding="same", activation=True):
    """Conv2D (no bias) -> BatchNorm (no scale) -> ReLU, named as in the h5."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                      name=name)(x)
    x = layers.BatchNormalization(axis=-1, momentum=BATCHNORM_MOMENTUM, epsilon=BATCHNORM_EPSILON,
                                  scale=False, name=f"{name}_BatchNorm")(x)
    if activation:
        x = layers.Activation("relu", name=f"{name}_Activation")(x)
    return x


def _residual_block(x, branches, prefix, scale, activation=True):
    """Concatenated branches -> 1x1 conv (with bias) back to x's width -> scaled sum (eq. 5)."""
    mixed = layers.Concatenate(axis=-1, name=f"{prefix}_Concatenate")(branches)
    up = layers.Conv2D(x.shape[-1], 1, padding="same", use_bias=True,
                       name=f"{prefix}_Conv2d_1x1")(mixed)
    x = ScaleSum(scale, name=f"{prefix}_ScaleSum")([x, up])
    if activation:
        x = layers.Activation("relu", name=f"{prefix}_Activation")(x)
    return x


def _block35(x, prefix, scale):
    b0 = _conv_bn(x, 32, 1, f"{prefix}_Branch_0_Conv2d_1x1")
    b1 = _conv_bn(x, 32, 1, f"{prefix}_Branch_1_Conv2d_0a_1x1")
    b1 = _conv_bn(b1, 32, 3, f"{prefix}_Branch_1_Conv2d_0b_3x3")
    b2 = _conv_bn(x, 32, 1, f"{prefix}_Branch_2_Conv2d_0a_1x1")
    b2 = _conv_bn(b2, 32, 3, f"{prefix}_Branch_2_Conv2d_0b_3x3")
    b2 = _conv_bn(b2, 32, 3, f"{prefix}_Branch_2_Conv2d_0c_3x3")
    return _residual_block(x, [b0, b1, b2], prefix, scale)


def _block17(x, prefix, scale):
    b0 = _conv_bn(x, 128, 1, f"{prefix}_Branch_0_Conv2d_1x1")
    b1 = _conv_bn(x, 128, 1, f"{prefix}_Branch_1_Conv2d_0a_1x1")
    b1 = _conv_bn(b1, 128, (1, 7), f"{prefix}_Branch_1_Conv2d_0b_1x7")
    b1 = _conv_bn(b1, 128, (7, 1), f"{prefix}_Branch_1_Conv2d_0c_7x1")
    return _residual_block(x, [b0, b1], prefix, scale)


def _block8(x, prefix, scale, activation=True):
    b0 = _conv_bn(x, 192, 1, f"{prefix}_Branch_0_Conv2d_1x1")
    b1 = _conv_bn(x, 192, 1, f"{prefix}_Branch_1_Conv2d_0a_1x1")
    b1 = _conv_bn(b1, 192, (1, 3), f"{prefix}_Branch_1_Conv2d_0b_1x3")
    b1 = _conv_bn(b1, 192, (3, 1), f"{prefix}_Branch_1_Conv2d_0c_3x1")
    return _residual_block(x, [b0, b1], prefix, scale, activation=activation)


def _mixed_6a(x):
    b0 = _conv_bn(x, 384, 3, "Mixed_6a_Branch_0_Conv2d_1a_3x3", strides=2, padding="valid")
    b1 = _conv_bn(x, 192, 1, "Mixed_6a_Branch_1_Conv2d_0a_1x1")
    b1 = _conv_bn(b1, 192, 3, "Mixed_6a_Branch_1_Conv2d_0b_3x3")
    b1 = _conv_bn(b1, 256, 3, "Mixed_6a_Branch_1_Conv2d_1a_3x3", strides=2, padding="valid")
    b2 = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_6a_Branch_2_MaxPool_1a_3x3")(x)
    return layers.Concatenate(axis=-1, name="Mixed_6a")([b0, b1, b2])


def _mixed_7a(x):
    b0 = _conv_bn(x, 256, 1, "Mixed_7a_Branch_0_Conv2d_0a_1x1")
    b0 = _conv_bn(b0, 384, 3, "Mixed_7a_Branch_0_Conv2d_1a_3x3", strides=2, padding="valid")
    b1 = _conv_bn(x, 256, 1, "Mixed_7a_Branch_1_Conv2d_0a_1x1")
    b1 = _conv_bn(b1, 256, 3, "Mixed_7a_Branch_1_Conv2d_1a_3x3", strides=2, padding="valid")
    b2 = _conv_bn(x, 256, 1, "Mixed_7a_Branch_2_Conv2d_0a_1x1")
    b2 = _conv_bn(b2, 256, 3, "Mixed_7a_Branch_2_Conv2d_0b_3x3")
    b2 = _conv_bn(b2, 256, 3, "Mixed_7a_Branch_2_Conv2d_1a_3x3", strides=2, padding="valid")
    b3 = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_7a_Branch_3_MaxPool_1a_3x3")(x)
    return layers.Concatenate(axis=-1, name="Mixed_7a")([b0, b1, b2, b3])


def build_inception_resnet_v1(image_size=160, include_bottleneck=True, feature_maps=False,
                              name="inception_resnet_v1"):
    """Builds the network; weights are random until `facenet_weights.load_facenet_h5`.

    Args:
      image_size: side of the square RGB input (0-255 values), at least MIN_IMAGE_SIZE; None:
        any side (a backbone shared by crops of two sizes, `CropSettings.fll_input_size`).
      include_bottleneck: also compute the 128-d facenet embedding (Bottleneck + BatchNorm).
      feature_maps: also return the stage outputs (`stem`, `block35`, `block17`, `block8`).

    Returns:
      A keras.Model whose outputs are a dict: `features` [B, 1792] (average-pooled), and
      `embedding` [B, 128] (not normalised) when `include_bottleneck`, plus the feature maps.
    """
    if image_size is not None and image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE}, got {image_size}")
    images = keras.Input((image_size, image_size, 3), name="images")
    x = Prewhiten(name="prewhiten")(images)
    x = _conv_bn(x, 32, 3, "Conv2d_1a_3x3", strides=2, padding="valid")
    x = _conv_bn(x, 32, 3, "Conv2d_2a_3x3", padding="valid")
    x = _conv_bn(x, 64, 3, "Conv2d_2b_3x3")
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="MaxPool_3a_3x3")(x)
    x = _conv_bn(x, 80, 1, "Conv2d_3b_1x1", padding="valid")
    x = _conv_bn(x, 192, 3, "Conv2d_4a_3x3", padding="valid")
    x = _conv_bn(x, 256, 3, "Conv2d_4b_3x3", strides=2, padding="valid")
    maps = {"stem": x}
    for i in range(1, NUM_BLOCK35 + 1):
        x = _block35(x, f"Block35_{i}", BLOCK35_SCALE)
    maps["block35"] = x
    x = _mixed_6a(x)
    for i in range(1, NUM_BLOCK17 + 1):
        x = _block17(x, f"Block17_{i}", BLOCK17_SCALE)
    maps["block17"] = x
    x = _mixed_7a(x)
    for i in range(1, NUM_BLOCK8 + 1):
        x = _block8(x, f"Block8_{i}", BLOCK8_SCALE)
    x = _block8(x, f"Block8_{NUM_BLOCK8 + 1}", 1.0, activation=False)
    maps["block8"] = x
    features = layers.GlobalAveragePooling2D(name="AvgPool")(x)
    outputs = {"features": features}
    if include_bottleneck:
        # facenet's Dropout (rate 0.2) sat here; it only mattered for facenet's own training.
        e = layers.Dense(EMBEDDING_DIM, use_bias=False, name="Bottleneck")(features)
        outputs["embedding"] = layers.BatchNormalization(
            momentum=BATCHNORM_MOMENTUM, epsilon=BATCHNORM_EPSILON, scale=False,
            name="Bottleneck_BatchNorm")(e)
    if feature_maps:
        outputs.update(maps)
    return keras.Model(images, outputs, name=name)
