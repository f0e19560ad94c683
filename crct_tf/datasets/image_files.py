"""Still images with their `.pts` label files: listing, decoding and TFDS examples.

Shared by the 300-W (`ibug300w`) and Menpo (`menpo2d`) builders. An example is
`{"image": JPEG bytes of the uint8 RGB image, "landmarks": [68, 2] float32 0-based pixels,
"image/filename": path relative to the dataset root}`.

Where an image's labels are is a `LabelLayout`, set per builder config (`ImageLabelsConfig`):
config `2d` reads the same-name `.pts` beside each image (`helen/trainset/x.jpg` ->
`helen/trainset/x.pts`), config `3da2d` the 3DA-2D labels beside it with the suffix `_3d`
(`helen/trainset/x_3d.pts`); a custom config may also read them from a parallel folder that
mirrors the dataset's tree (`pts_dir="annot3d"`: `annot3d/helen/trainset/x.pts`).
"""

import dataclasses
import os

import cv2
import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from crct_tf.geometry import landmarks as lm
from crct_tf.datasets.manual_dir import DatasetError, encode_jpeg_bgr, to_uint8_bgr

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
_JPEG_MAGIC = b"\xff\xd8"
# The suffix of the 3DA-2D label files of the `3da2d` configs: `<stem>_3d.pts` beside the image.
SUFFIX_3DA2D = "_3d"


@dataclasses.dataclass(frozen=True)
class LabelLayout:
    """Where the `.pts` file of an image is.

    Attributes:
      pts_suffix: the label of image `<stem>.<ext>` is named `<stem><pts_suffix>.pts`.
      pts_dir: "" for labels beside the images; else a folder (relative to the dataset root, or
        absolute) that mirrors the dataset's tree: the labels of the images of `root/a/b/` are
        in `pts_dir/a/b/`.
    """

    pts_suffix: str = ""
    pts_dir: str = ""

    def label_folder(self, root, folder):
        """The folder holding the labels of the images of `folder` (a folder inside `root`)."""
        if not self.pts_dir:
            return folder
        relative = os.path.relpath(folder, root)
        base = os.path.join(root, os.path.expanduser(self.pts_dir))
        return os.path.normpath(os.path.join(base, relative))

    def describe(self):
        """Words for messages, e.g. "<stem>_3d.pts beside the images"."""
        where = f"in {self.pts_dir}/ (mirroring the tree)" if self.pts_dir else "beside the images"
        return f"<stem>{self.pts_suffix}.pts {where}"

    def has_labels(self, root, folder):
        """Whether the label folder of `folder` holds at least one label file of this layout."""
        labels = self.label_folder(root, folder)
        ending = f"{self.pts_suffix}.pts".lower()
        return os.path.isdir(labels) and any(n.lower().endswith(ending)
                                             for n in os.listdir(labels))


@dataclasses.dataclass(eq=False)
class ImageLabelsConfig(tfds.core.BuilderConfig):
    """A configuration of an image builder: which label files it reads (see `LabelLayout`).

    Attributes:
      pts_suffix: label file of image `<stem>.<ext>` is `<stem><pts_suffix>.pts`.
      pts_dir: "" (labels beside the images) or a folder mirroring the dataset's tree, relative
        to the dataset root or absolute.
    """

    pts_suffix: str = ""
    pts_dir: str = ""

    @property
    def layout(self):
        return LabelLayout(self.pts_suffix, self.pts_dir)


def label_configs(dataset_title):
    """The predefined configs of an image builder: `2d` (the default) and `3da2d`."""
    return [
        ImageLabelsConfig(name="2d", description=f"The original {dataset_title} 2D landmarks: "
                                                 "<stem>.pts beside each image."),
        ImageLabelsConfig(name="3da2d", pts_suffix=SUFFIX_3DA2D,
                          description=f"3DA-2D (3D-aware 2D) landmarks of {dataset_title}: "
                                      f"<stem>{SUFFIX_3DA2D}.pts beside each image (e.g. "
                                      "written by tools/convert_ls3dw.py)."),
    ]


def image_features():
    """The TFDS features of an image dataset with 68 landmarks."""
    return tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
        "landmarks": tfds.features.Tensor(shape=(lm.NUM_LANDMARKS, 2), dtype=np.float32),
        "image/filename": tfds.features.Text(),
    })


def list_image_pairs(folder, pts_suffix="", label_folder=None):
    """The (image path, `.pts` path) pairs of one folder (not recursive), sorted by name.

    Args:
      folder: a folder of images.
      pts_suffix: the label of `<stem>.<ext>` is `<stem><pts_suffix>.pts`.
      label_folder: where the labels are (default: `folder` itself).

    Returns:
      (pairs, num_without_pts): images without their `.pts` are not paired but counted.
    """
    label_folder = folder if label_folder is None else label_folder
    names = sorted(os.listdir(folder))
    label_names = (names if label_folder == folder else
                   os.listdir(label_folder) if os.path.isdir(label_folder) else [])
    labels = {n for n in label_names if n.lower().endswith(".pts")}
    pairs, without_pts = [], 0
    for name in names:
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS:
            continue
        label = stem + pts_suffix + ".pts"
        if label in labels:
            pairs.append((os.path.join(folder, name), os.path.join(label_folder, label)))
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


def collect_folders(root, folders, layout=LabelLayout()):
    """Lists the image/.pts pairs of several folders of a dataset root.

    Args:
      root: the dataset root.
      folders: existing folders (absolute paths) inside `root`.
      layout: where the labels are (`LabelLayout`; default: same-name `.pts` beside the images).

    Returns:
      The pairs of all folders, in folder order then name order. Images without a `.pts` are
      skipped, and a warning per folder gives their count.
    """
    pairs = []
    for folder in folders:
        folder_pairs, without_pts = list_image_pairs(folder, layout.pts_suffix,
                                                     layout.label_folder(root, folder))
        if without_pts:
            expected = "" if layout == LabelLayout() else f" (expected {layout.describe()})"
            logging.warning("%s: %d images without a .pts file skipped%s", folder, without_pts,
                            expected)
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
