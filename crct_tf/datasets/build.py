"""Prepares a dataset from a user's copy: `python -m crct_tf.datasets.build NAME --manual_dir DIR`.

    python -m crct_tf.datasets.build vw300 --manual_dir ~/data/300VW --config 3da2d
    python -m crct_tf.datasets.build ibug300w --manual_dir ~/data/300W --data_dir ~/tfds
    python -m crct_tf.datasets.build menpo2d --manual_dir ~/data/menpo --config 3da2d
    python -m crct_tf.datasets.build crct_video_frames     # the project's own sets: no manual_dir

Exits 0 after printing the prepared folder and the examples per split; exits 2 with one line on
bad input (unknown dataset or config, missing folder, unreadable video, malformed `.pts`, an
asset that cannot be fetched).
"""

import argparse
import os
import sys

import tensorflow_datasets as tfds

from crct_tf import assets, datasets
from crct_tf.geometry.landmarks import PtsError


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser():
    parser = _OneLineParser(prog="python -m crct_tf.datasets.build",
                            description="Prepare a crct_tf TFDS dataset from a downloaded copy.")
    parser.add_argument("name", help=f"dataset: {', '.join(datasets.BUILDER_NAMES)}")
    parser.add_argument("--manual_dir", help="the dataset's root folder, or a folder holding "
                                             "one subfolder per dataset name")
    parser.add_argument("--data_dir", default=None,
                        help="where TFDS writes the prepared data (default: TFDS's, "
                             "~/tensorflow_datasets)")
    parser.add_argument("--config", default=None, help="builder config: 2d (default) or 3da2d "
                                                         "(vw300, ibug300w, menpo2d)")
    return parser


def make_builder(name, data_dir=None, config=None):
    """The TFDS builder `name` (with `config`); ValueError with one clear line on bad names."""
    if name not in datasets.BUILDER_NAMES:
        raise ValueError(f"unknown dataset {name!r}; expected one of "
                         f"{', '.join(datasets.BUILDER_NAMES)}")
    configs = tfds.builder_cls(name).builder_configs
    if config is not None and config not in configs:
        choices = ", ".join(configs) if configs else "none (this dataset has no configs)"
        raise ValueError(f"unknown config {config!r} for {name}; expected: {choices}")
    kwargs = {"config": config} if config is not None else {}
    return tfds.builder(name, data_dir=data_dir, **kwargs)


def build(name, manual_dir=None, data_dir=None, config=None):
    """Prepares dataset `name` and returns its builder.

    Raises:
      ValueError (DatasetError, PtsError included): bad names, folders or files.
    """
    builder = make_builder(name, data_dir, config)
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        if not manual_dir:
            raise ValueError(f"{name} reads a downloaded copy: pass --manual_dir DIR")
        if not os.path.isdir(os.path.expanduser(manual_dir)):
            raise ValueError(f"--manual_dir {manual_dir}: not a folder")
    download_config = tfds.download.DownloadConfig(
        manual_dir=os.path.expanduser(manual_dir) if manual_dir else None)
    builder.download_and_prepare(download_config=download_config)
    return builder


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        builder = build(args.name, args.manual_dir, args.data_dir, args.config)
    except (datasets.DatasetError, PtsError, ValueError, assets.AssetError) as error:
        sys.stderr.write(f"error: {' '.join(str(error).split())}\n")
        return 2
    except OSError as error:        # e.g. a full disk; TFDS renames a split only when complete
        where = error.filename or args.data_dir or "the data folder"
        sys.stderr.write(f"error: cannot write {where}: {error.strerror or error}\n")
        return 2
    splits = builder.info.splits
    sizes = ", ".join(f"{split}: {info.num_examples}" for split, info in splits.items())
    sys.stdout.write(f"{builder.data_dir}  ({sizes})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
