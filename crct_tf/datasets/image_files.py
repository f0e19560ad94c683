"""Still images with same-name `.pts` files: listing, decoding and TFDS examples.

Shared by the 300-W (`ibug300w`) and Menpo (`menpo2d`) builders. An example is
`{"image": JPEG bytes of the uint8 RGB image, "landmarks": [68, 2] float32 0-based pixels,
"image/filename": path relative to the dataset root}`.
"""

import os

import cv2
import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from crct_tf import landmarks as lm
from crct_tf.datasets.manual_dir import DatasetError, encode_jpeg_bgr, to_uint8_bgr

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
_JPEG_MAGIC = b"\xff\xd8"


def image_features():
    """The TFDS features of an image dataset with 68 landmarks."""
    return tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
        "landmarks": tfds.features.Tensor(shape=(lm.NUM_LANDMARKS, 2), dtype=np.float32),
        "image/filename": tfds.features.Text(),
    })


def list_image_pairs(folder):
    """The (image path, `.pts` path) pairs of one folder (not recursive), sorted by name.

    Returns:
      (pairs, num_without_pts): images without a same-name `.pts` are not paired but counted.
    """
    names = sorted(os.listdir(folder))
    pts_stems = {os.path.splitext(n)[0] for n in names if n.lower().endswith(".pts")}
    pairs, without_pts = [], 0
    for name in names:
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS:
            continue
        if stem in pts_stems:
            pairs.append((os.path.join(folder, name), os.path.join(folder, stem + ".pts")))
        else:
            without_pts += 1
    return pairs, without_pts


def read_image_bgr(path):
    """Reads an image file as uint8 3-channel BGR (see `to_uint8_bgr`); errors name the file."""
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise DatasetError(f"{path}: OpenCV cannot decode this image file")
    return to_uint8_bgr(image, path)


def read_image_rgb(path):
    """Reads an image file as a uint8 [H, W, 3] RGB array; errors name the file."""
    return cv2.cvtColor(read_image_bgr(path), cv2.COLOR_BGR2RGB)


def jpeg_bytes(path):
    """JPEG bytes of the image at `path`, for the `image` feature.

    A file that already is an 8-bit 3-channel JPEG is stored as it is (no second compression);
    anything else (PNG, grayscale, RGBA, 16-bit) is converted to 8-bit RGB and encoded.
    """
    with open(path, "rb") as f:
        data = f.read()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if image is None:
        raise DatasetError(f"{path}: OpenCV cannot decode this image file")
    if (data.startswith(_JPEG_MAGIC) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        return data
    return encode_jpeg_bgr(to_uint8_bgr(image, path), path)


def collect_folders(root, folders):
    """Lists the image/.pts pairs of several folders of a dataset root.

    Args:
      root: the dataset root.
      folders: existing folders (absolute paths) inside `root`.

    Returns:
      The pairs of all folders, in folder order then name order. Images without a `.pts` are
      skipped, and a warning per folder gives their count.
    """
    pairs = []
    for folder in folders:
        folder_pairs, without_pts = list_image_pairs(folder)
        if without_pts:
            logging.warning("%s: %d images without a .pts file skipped", folder, without_pts)
        logging.info("%s: %d annotated images", os.path.relpath(folder, root), len(folder_pairs))
        pairs.extend(folder_pairs)
    return pairs


def generate_image_examples(root, pairs, read_landmarks=lm.read_pts, skip_reason="skipped"):
    """Yields (key, example) for TFDS from image/.pts pairs.

    Args:
      root: the dataset root; `image/filename` and the key are paths relative to it.
      pairs: (image path, .pts path) pairs, as from `collect_folders`.
      read_landmarks: reads a `.pts` path into [68, 2] 0-based landmarks, or returns None to
        skip the image (e.g. Menpo's 39-point profile faces). Malformed files raise `PtsError`.
      skip_reason: words for the warning that counts the skipped images.
    """
    skipped = 0
    for image_path, pts_path in pairs:
        landmarks = read_landmarks(pts_path)
        if landmarks is None:
            skipped += 1
            continue
        relpath = os.path.relpath(image_path, root).replace(os.sep, "/")
        yield relpath, {
            "image": jpeg_bytes(image_path),
            "landmarks": landmarks,
            "image/filename": relpath,
        }
    if skipped:
        logging.warning("%s: %d of %d images %s", root, skipped, len(pairs), skip_reason)
