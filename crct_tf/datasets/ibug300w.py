"""300-W (ibug 300 Faces in-the-Wild): the `ibug300w` TFDS builder.

The distributed archives extract to `afw/`, `helen/{trainset,testset}/`, `lfpw/{trainset,testset}/`
and `ibug/`, each image (`.jpg`/`.png`) next to a same-name `.pts`; the official 300-W challenge
test set extracts to `300W/01_Indoor/` and `300W/02_Outdoor/`. The splits are the usual ones of the
facial landmark literature.

Configs: `2d` (default) reads the same-name `.pts` beside each image; `3da2d` reads 3DA-2D labels
`<stem>_3d.pts` beside it (see `image_files.ImageLabelsConfig` for a parallel label folder).
"""

import os

import tensorflow_datasets as tfds
from absl import logging

from crct_tf.datasets import image_files
from crct_tf.datasets.manual_dir import DatasetError, find_subdir, resolve_root

NAME = "ibug300w"

# Each split lists its folders; each folder lists the relative paths accepted for it (the first
# that exists is used, matched case-insensitively).
SPLIT_FOLDERS = {
    "train": (("afw",), ("helen/trainset",), ("lfpw/trainset",)),            # 337 + 2000 + 811
    "test_common": (("helen/testset",), ("lfpw/testset",)),                   # 330 + 224
    "test_challenging": (("ibug",),),                                         # 135
    "test_full": (("helen/testset",), ("lfpw/testset",), ("ibug",)),          # 689
    "test_300w": (("300W/01_Indoor", "01_Indoor"), ("300W/02_Outdoor", "02_Outdoor")),  # 600
}
SPLITS = tuple(SPLIT_FOLDERS)


def find_split_folders(root, split, layout=image_files.LabelLayout()):
    """The existing, labelled folders of a split, warning about the split's other folders.

    Args:
      root: the dataset root.
      split: a key of `SPLIT_FOLDERS`.
      layout: where the labels are; a folder holding no label file of this layout is skipped
        with a warning naming it (e.g. a folder without 3DA-2D labels).

    Returns:
      A list of absolute folder paths; empty when none of the split's folders is usable.
    """
    found, missing = [], []
    for alternatives in SPLIT_FOLDERS[split]:
        folder = next((f for f in (find_subdir(root, a) for a in alternatives) if f), None)
        if folder is None:
            missing.append(alternatives[0])
        elif not layout.has_labels(root, folder):
            logging.warning("300-W split %s: folder %s has no label files (%s), skipped",
                            split, folder, layout.describe())
        else:
            found.append(folder)
    if found and missing:
        logging.warning("300-W split %s is incomplete: folders %s not found in %s",
                        split, ", ".join(missing), root)
    return found


def list_splits(root, layout=image_files.LabelLayout()):
    """{split: folders} for the splits of 300-W with at least one labelled folder in `root`.

    Raises:
      DatasetError: when no labelled folder of any split is found.
    """
    splits = {}
    for split in SPLITS:
        folders = find_split_folders(root, split, layout)
        if folders:
            splits[split] = folders
        else:
            logging.info("300-W split %s omitted: none of its folders is in %s", split, root)
    if not splits:
        raise DatasetError(f"300-W: none of the folders afw, helen/trainset, helen/testset, "
                           f"lfpw/trainset, lfpw/testset, ibug, 300W/01_Indoor, "
                           f"300W/02_Outdoor with labels ({layout.describe()}) found in {root}")
    return splits


class Ibug300w(tfds.core.GeneratorBasedBuilder):
    """300-W face images with their 68 landmarks (one face per image file)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    # Configs change the prepared data's path (ibug300w/2d/1.0.0): `2d` is the default.
    BUILDER_CONFIGS = image_files.label_configs("300-W")
    DEFAULT_CONFIG_NAME = "2d"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download the 300-W data from the ibug 300-W challenge site (Imperial College London,
    intelligent behaviour understanding group): the re-annotated AFW, HELEN, LFPW and IBUG
    archives, and optionally the official 300-W test set. Extract them side by side and point
    manual_dir at that folder (or at a folder holding it as `ibug300w/`):

        manual_dir/afw/*.jpg + *.pts
        manual_dir/helen/trainset/  manual_dir/helen/testset/
        manual_dir/lfpw/trainset/   manual_dir/lfpw/testset/
        manual_dir/ibug/
        manual_dir/300W/01_Indoor/  manual_dir/300W/02_Outdoor/   (optional: split test_300w)

    Splits: train (afw + helen/trainset + lfpw/trainset, 3148 faces), test_common
    (helen/testset + lfpw/testset, 554), test_challenging (ibug, 135), test_full (689) and
    test_300w (600). Splits whose folders are all absent are left out.

    Config 3da2d reads 3DA-2D labels named `<stem>_3d.pts` beside the images instead (e.g.
    written from LS3D-W / 300W-LP `.mat` files by tools/convert_ls3dw.py); folders without
    them are skipped with a warning.
    """

    def _info(self):
        return self.dataset_info_from_configs(
            features=image_files.image_features(),
            supervised_keys=("image", "landmarks"),
            homepage="https://ibug.doc.ic.ac.uk/resources/300-W/",
        )

    def _split_generators(self, dl_manager):
        root = resolve_root(dl_manager.manual_dir, NAME)
        layout = self.builder_config.layout
        return {split: self._generate_examples(root, folders, layout)
                for split, folders in list_splits(root, layout).items()}

    def _generate_examples(self, root, folders, layout):
        pairs = image_files.collect_folders(root, folders, layout)
        if not pairs:
            raise DatasetError(f"300-W: no image with a .pts file ({layout.describe()}) in "
                               f"{', '.join(os.path.relpath(f, root) for f in folders)} "
                               f"under {root}")
        yield from image_files.generate_image_examples(root, pairs)
