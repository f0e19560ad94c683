"""Menpo 2D (the Menpo facial landmark localisation challenge): the `menpo2d` TFDS builder.

The challenge's training release is a folder of images, each with a same-name `.pts`: semi-frontal
faces carry the 68 iBUG points, profile faces 39 other points. Only the 68-point faces are used;
the profile ones are skipped and counted.

Configs: `2d` (default) reads the same-name `.pts` beside each image; `3da2d` reads 3DA-2D labels
`<stem>_3d.pts` beside it (68 points for every pose, e.g. Menpo-3D of LS3D-W converted by
tools/convert_ls3dw.py); see `image_files.ImageLabelsConfig` for a parallel label folder.
"""

import os

import tensorflow_datasets as tfds
from absl import logging

from crct_tf.geometry import landmarks as lm
from crct_tf.datasets import image_files
from crct_tf.datasets.manual_dir import DatasetError, find_subdir, resolve_root

NAME = "menpo2d"
PROFILE_POINTS = 39
MENPO_HOMEPAGE = ("https://ibug.doc.ic.ac.uk/resources/"
                  "2nd-facial-landmark-tracking-competition-menpo-ben/")

# Accepted folder names per split, first match wins (case-insensitive).
SPLIT_FOLDERS = {
    "train": ("trainset", "train"),
    "test": ("testset", "test"),
}


def read_semifrontal_pts(path):
    """[68, 2] landmarks of a semi-frontal face, or None for a 39-point profile face.

    Raises:
      PtsError: naming the file, when it holds neither 68 nor 39 well-formed points.
    """
    try:
        return lm.read_pts(path)
    except lm.PtsError as error:
        try:
            lm.read_pts(path, num_points=PROFILE_POINTS)
        except lm.PtsError:
            raise error from None
        return None


def list_splits(root, layout=image_files.LabelLayout()):
    """{split: folder} of the Menpo splits with annotations in `root`.

    `train` is `trainset/` (or `train/`), or the root itself when it directly holds label
    files; `test` is `testset/` (or `test/`) when that folder holds label files. Label files
    are those of `layout` (default: `<stem>.pts` beside the images).

    Raises:
      DatasetError: when no training folder with label files is found.
    """
    splits = {}
    for split, names in SPLIT_FOLDERS.items():
        folder = next((f for f in (find_subdir(root, n) for n in names) if f), None)
        if folder is not None and layout.has_labels(root, folder):
            splits[split] = folder
        elif folder is not None:
            logging.warning("Menpo: %s has no label file (%s); split %s left out", folder,
                            layout.describe(), split)
    if "train" not in splits and layout.has_labels(root, root):
        splits["train"] = root
    if "train" not in splits:
        raise DatasetError(f"Menpo: no trainset/ folder with label files ({layout.describe()}),"
                           f" nor such files, in {root}")
    return splits


class Menpo2d(tfds.core.GeneratorBasedBuilder):
    """Menpo 2D semi-frontal face images with their 68 landmarks."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    # Configs change the prepared data's path (menpo2d/2d/1.0.0): `2d` is the default.
    BUILDER_CONFIGS = image_files.label_configs("Menpo")
    DEFAULT_CONFIG_NAME = "2d"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Request the Menpo 2D data from the Menpo challenge site (the 2017 Menpo facial landmark
    localisation challenge, ibug, Imperial College London) and extract it. Point manual_dir at
    the folder holding `trainset/` (or at a folder holding it as `menpo2d/`):

        manual_dir/trainset/*.jpg + same-name *.pts    (split train)
        manual_dir/testset/*.jpg + *.pts               (optional: split test)

    Only semi-frontal faces (68 points) are used; profile faces (39 points) are skipped.
    Config 3da2d reads 3DA-2D labels named `<stem>_3d.pts` beside the images instead.
    """

    def _info(self):
        return self.dataset_info_from_configs(
            features=image_files.image_features(),
            supervised_keys=("image", "landmarks"),
            homepage=MENPO_HOMEPAGE,
        )

    def _split_generators(self, dl_manager):
        root = resolve_root(dl_manager.manual_dir, NAME)
        layout = self.builder_config.layout
        return {split: self._generate_examples(root, folder, layout)
                for split, folder in list_splits(root, layout).items()}

    def _generate_examples(self, root, folder, layout):
        pairs = image_files.collect_folders(root, [folder], layout)
        yield from image_files.generate_image_examples(
            root, pairs, read_landmarks=read_semifrontal_pts,
            skip_reason=f"skipped: profile faces ({PROFILE_POINTS} points)")
