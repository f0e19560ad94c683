"""Helpers shared by the dataset builders: the dataset root, folder look-up, keys and JPEG bytes.

A builder reads a user's copy of a dataset through TFDS's `manual_dir`. The
folder given may be the dataset's root itself or a folder holding one subfolder per builder name
(`manual_dir/vw300`, `manual_dir/ibug300w`, ...), so that one `--manual_dir` can serve several
datasets.
"""

import os

import cv2
import numpy as np

# Quality of the JPEG frames written into prepared datasets. 95 keeps compression artefacts well
# below the landmark annotation noise; it roughly doubles the size of quality 75.
JPEG_QUALITY = 95

# TFDS keeps the examples of a split ordered by an integer key of at most 128 bits when shuffling
# is disabled, and it sorts them bucket by bucket, each bucket read whole into memory: keys spread
# over the full range keep those buckets (and memory) small.
_KEY_BITS = 128
_INDEX_BITS = 24


class DatasetError(ValueError):
    """A user's copy of a dataset that cannot be read as expected; the message names the path."""


def resolve_root(manual_dir, name, aliases=()):
    """The root folder of dataset `name` inside `manual_dir`.

    Args:
      manual_dir: the folder the user pointed `--manual_dir` (TFDS `manual_dir`) at.
      name: the builder name, e.g. "vw300".
      aliases: other subfolder names accepted for the root (e.g. the name of the distributed
        archive's top folder).

    Returns:
      `manual_dir/<name>` (or `manual_dir/<alias>`) when that folder exists, else `manual_dir`.

    Raises:
      DatasetError: when `manual_dir` is not a folder.
    """
    manual_dir = os.fspath(manual_dir)
    if not os.path.isdir(manual_dir):
        raise DatasetError(f"{manual_dir}: the manual_dir of dataset {name!r} is not a folder")
    for candidate in (name, *aliases):
        sub = find_subdir(manual_dir, candidate)
        if sub is not None:
            return sub
    return manual_dir


def find_subdir(root, relpath):
    """The folder `root/relpath`, matching each path component case-insensitively, or None.

    An exact match of a component wins over a case-insensitive one, so "Helen" and "helen"
    are both found, and an exact "helen" is preferred when both exist.
    """
    current = os.fspath(root)
    for part in relpath.replace("\\", "/").split("/"):
        exact = os.path.join(current, part)
        if os.path.isdir(exact):
            current = exact
            continue
        try:
            names = sorted(os.listdir(current))
        except OSError:
            return None
        matches = [n for n in names
                   if n.lower() == part.lower() and os.path.isdir(os.path.join(current, n))]
        if not matches:
            return None
        current = os.path.join(current, matches[0])
    return current


def ordered_key(group, num_groups, index):
    """An integer example key that sorts by (group, index) and spreads groups over TFDS buckets.

    With `disable_shuffling=True` TFDS writes examples in the order of their keys; the keys of
    group g occupy the g-th 1/2**k of the 128-bit key range, so that each video of a split lands
    in its own shuffle buckets and never more than about one video is sorted in memory at once.

    Args:
      group: 0-based position of the group (e.g. the video) in the split.
      num_groups: number of groups in the split.
      index: 0-based position inside the group (e.g. the frame index), < 2**24.
    """
    if not 0 <= group < num_groups or not 0 <= index < 2 ** _INDEX_BITS:
        raise ValueError(f"key out of range: group {group} of {num_groups}, index {index}")
    group_bits = max(1, (num_groups - 1).bit_length())
    return ((group << _INDEX_BITS) | index) << (_KEY_BITS - _INDEX_BITS - group_bits)


def encode_jpeg_bgr(image_bgr, path_for_errors=""):
    """JPEG bytes of a uint8 BGR image (OpenCV channel order), at `JPEG_QUALITY`."""
    ok, buffer = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DatasetError(f"{path_for_errors}: OpenCV could not encode the image as JPEG")
    return buffer.tobytes()


def to_uint8_bgr(image, path_for_errors=""):
    """Converts an OpenCV image read with IMREAD_UNCHANGED to a uint8 3-channel BGR image.

    Grayscale and gray+alpha images are replicated to three channels, the alpha channel of BGRA
    images is dropped, and 16-bit images are scaled to 8 bits (65535 -> 255).
    """
    if image.dtype == np.uint16:
        image = np.round(image.astype(np.float32) / 257.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise DatasetError(f"{path_for_errors}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 1 or channels == 2:
        return cv2.cvtColor(np.ascontiguousarray(image[..., 0]), cv2.COLOR_GRAY2BGR)
    if channels == 3:
        return image
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise DatasetError(f"{path_for_errors}: unsupported number of channels {channels}")
