"""The backbones a weights bundle can name, built by name.

BT and FLL nest their backbone as a sub-model called `BACKBONE_LAYER`, so a bundle can store it
once when the two share it.
"""

BACKBONE_LAYER = "backbone"   # the name of the backbone model nested in BT and FLL
BACKBONES = ("inception_resnet_v1", "tiny")


def build_named_backbone(kind, image_size, weights=None):
    """The backbone a manifest names: facenet's Inception-ResNet-v1, or the tiny test stand-in.

    Raises:
      ValueError: for a name not in `BACKBONES`.
    """
    if kind == "inception_resnet_v1":
        from crct_tf.models.backbone import build_backbone
        return build_backbone(image_size, weights=weights, name=BACKBONE_LAYER)
    if kind == "tiny":
        if image_size is None:
            raise ValueError("the tiny backbone takes one crop size: BT and FLL cannot share it "
                             "with fll_input_size set")
        from crct_tf.models.tiny_backbone import build_tiny_backbone
        return build_tiny_backbone(image_size, name=BACKBONE_LAYER)
    raise ValueError(f"unknown backbone {kind!r}; expected one of {BACKBONES}")
