"""The facenet Inception-ResNet-v1 backbone, ready to use: built, with facenet's weights.

    from crct_tf.models.backbone import facenet_embedder
    embed = facenet_embedder(image_size=160)
    vectors = embed(face_crops_uint8_rgb)   # [B, 128], L2-normalised

`build_backbone` is what BT and FLL are composed from (paper III-A/C): the same network,
initialised from facenet, returning the 1792 average-pooled features.
"""

import glob
import os
import sys

import cv2
import keras
import numpy as np

from crct_tf.models.facenet_weights import load_facenet_h5
from crct_tf.models.inception_resnet_v1 import build_inception_resnet_v1


def build_backbone(image_size=128, weights="facenet", include_bottleneck=False,
                   feature_maps=False, freeze_batchnorm=True, name="backbone"):
    """The Inception-ResNet-v1 with facenet's weights (`weights="facenet"`) or random (None).

    Args:
      freeze_batchnorm: BatchNorm layers not trainable, so they always run in inference mode
        with facenet's moving statistics. Fine-tuning with small batches converges several
        times faster this way than updating the statistics.

    Returns a keras.Model from [B, S, S, 3] RGB 0-255 to a dict with `features` [B, 1792]
    (and `embedding` [B, 128] / stage maps when asked).
    """
    model = build_inception_resnet_v1(image_size, include_bottleneck=include_bottleneck,
                                      feature_maps=feature_maps, name=name)
    if weights == "facenet":
        load_facenet_h5(model)
    elif weights is not None:
        raise ValueError(f"weights must be 'facenet' or None, got {weights!r}")
    if freeze_batchnorm:
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    return model


@keras.saving.register_keras_serializable(package="crct_tf")
class L2Normalize(keras.layers.Layer):
    """x / ||x||, on the last axis."""

    def call(self, x):
        return x * keras.ops.rsqrt(keras.ops.maximum(keras.ops.sum(x * x, axis=-1, keepdims=True),
                                                     1e-10))


def facenet_embedder(image_size=160):
    """A keras.Model mapping RGB face crops (uint8 or float 0-255) to L2-normalised 128-d vectors.

    Prewhitening happens inside. facenet was trained on 160x160 crops of the MTCNN box grown by
    a small margin; other sizes from 128 up work, a little less well.
    """
    net = build_backbone(image_size, include_bottleneck=True, name="facenet")
    images = keras.Input((image_size, image_size, 3), name="images")
    embedding = L2Normalize(name="l2_normalize")(net(images)["embedding"])
    return keras.Model(images, embedding, name="facenet_embedder")


def largest_face_crop(detector, image, size=160):
    """The largest MTCNN face of an RGB image, cut out and resized to size x size (or None)."""
    faces = detector.detect_faces(image)
    if not faces:
        return None
    x, y, w, h = max(faces, key=lambda f: f["box"][2] * f["box"][3])["box"]
    x, y = max(x, 0), max(y, 0)
    return cv2.resize(image[y:y + h, x:x + w], (size, size))


def identity_check(photos_dir, detector=None, embedder=None):
    """Nearest-centroid identity on the `val` photos, centroids from the `train` photos.

    The proof that facenet's weights arrived intact: >= 24/25 is expected.

    Returns:
      (correct, total) over the val photos where MTCNN finds a face.
    """
    if detector is None:
        from mtcnn import MTCNN
        detector = MTCNN()
    embedder = embedder or facenet_embedder(160)

    def embed_split(split):
        names, crops = [], []
        for path in sorted(glob.glob(os.path.join(photos_dir, split, "*", "*.jpg"))):
            image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
            crop = largest_face_crop(detector, image)
            if crop is not None:
                names.append(os.path.basename(os.path.dirname(path)))
                crops.append(crop)
        return names, embedder.predict(np.stack(crops), verbose=0)

    train_names, train_vectors = embed_split("train")
    val_names, val_vectors = embed_split("val")
    people = sorted(set(train_names))
    centroids = np.stack([train_vectors[[n == p for n in train_names]].mean(0) for p in people])
    distances = ((val_vectors[:, None] - centroids[None]) ** 2).sum(-1)
    predicted = [people[i] for i in distances.argmin(1)]
    return sum(p == n for p, n in zip(predicted, val_names)), len(val_names)


if __name__ == "__main__":
    from crct_tf import assets
    correct, total = identity_check(assets.path("facenet_photos"))
    print(f"facenet backbone: {correct}/{total} val photos recognised by nearest centroid "
          f"({'OK' if correct >= 24 else 'WEIGHTS WRONG'})")
    sys.exit(0 if correct >= 24 else 1)
