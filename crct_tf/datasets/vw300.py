"""300-VW (300 Videos in the Wild): a plain-Python frame reader and the `vw300` TFDS builder.

A user's copy holds one folder per video, `NNN/vid.avi`, with one `.pts` file per annotated
frame in `NNN/annot/000001.pts` (six digits, 1-based: frame index 0 is `000001.pts`). The 3DA-2D
re-annotations of the 3D Menpo tracking challenge go in `NNN/annot2/` under the same names.

Frames are decoded one at a time with OpenCV; frames without a `.pts` are skipped and counted,
never shifted: a frame's `.pts` is always found from its own index in the video.
"""

import collections
import dataclasses
import os

import cv2
import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from crct_tf.geometry import landmarks as lm
from crct_tf.datasets.manual_dir import DatasetError, encode_jpeg_bgr, ordered_key, resolve_root
from crct_tf.evaluation.vw300_categories import VW300_TEST_CATEGORIES, VW300_TRAIN_IDS

NAME = "vw300"
# The top folder of the distributed archive, accepted as the dataset root under manual_dir.
ARCHIVE_FOLDER = "300VW_Dataset_2015_12_14"
VIDEO_FILE = "vid.avi"

SPLIT_IDS = {
    "train": VW300_TRAIN_IDS,
    "test_cat1": VW300_TEST_CATEGORIES[1],
    "test_cat2": VW300_TEST_CATEGORIES[2],
    "test_cat3": VW300_TEST_CATEGORIES[3],
}
SPLITS = tuple(SPLIT_IDS)
# Reader-only split (not a TFDS split; TFDS users write "test_cat1+test_cat2+test_cat3").
_ALL_TEST_IDS = tuple(sorted(i for ids in VW300_TEST_CATEGORIES.values() for i in ids))

VideoEntry = collections.namedtuple("VideoEntry",
                                    ["video_id", "video_dir", "video_path", "annot_path"])


def pts_name(frame_index):
    """The `.pts` file name of a 0-based frame index: 0 -> "000001.pts"."""
    return f"{frame_index + 1:06d}.pts"


def split_video_ids(split):
    """The video ids of a split: "train", "test_cat1/2/3", or "test" (all three categories)."""
    if split == "test":
        return _ALL_TEST_IDS
    if split not in SPLIT_IDS:
        raise DatasetError(f"unknown 300-VW split {split!r}: expected one of "
                           f"{', '.join(SPLITS + ('test',))}")
    return SPLIT_IDS[split]


def list_vw300_videos(root, split, annot_dir="annot"):
    """The videos of a 300-VW split present in a user's copy, in split order.

    Args:
      root: the dataset root, or a folder holding it as `vw300/` or `300VW_Dataset_2015_12_14/`.
      split: "train", "test_cat1", "test_cat2", "test_cat3" or "test".
      annot_dir: the annotation folder inside each video folder ("annot" or "annot2").

    Returns:
      A list of `VideoEntry(video_id, video_dir, video_path, annot_path)`. Videos of the split
      that are missing, or that lack `annot_dir`, are skipped with a warning naming them.

    Raises:
      DatasetError: when no video of the split is usable (naming the split and the folder).
    """
    root = resolve_root(root, NAME, aliases=(ARCHIVE_FOLDER,))
    ids = split_video_ids(split)
    entries, missing, unannotated = [], [], []
    for video_id in ids:
        video_dir = os.path.join(root, video_id)
        video_path = os.path.join(video_dir, VIDEO_FILE)
        annot_path = os.path.join(video_dir, annot_dir)
        if not os.path.isfile(video_path):
            missing.append(video_id)
        elif not os.path.isdir(annot_path):
            unannotated.append(video_id)
        else:
            entries.append(VideoEntry(video_id, video_dir, video_path, annot_path))
    if missing:
        logging.warning("300-VW split %s: %d of %d videos missing from %s (no %s), skipped: %s",
                        split, len(missing), len(ids), root, VIDEO_FILE, " ".join(missing))
    for video_id in unannotated:
        logging.warning("300-VW split %s: video %s has no %s/ folder, skipped",
                        split, os.path.join(root, video_id), annot_dir)
    if not entries:
        # e.g. config 3da2d on a split none of whose videos has 3DA-2D labels (annot2/)
        without = (f"; {len(unannotated)} of its videos are there but have no {annot_dir}/"
                   if unannotated else "")
        raise DatasetError(f"300-VW split {split!r}: no video found in {root} (expected folders "
                           f"NNN/{VIDEO_FILE} with NNN/{annot_dir}/ for ids {ids[0]}...{ids[-1]})"
                           f"{without}")
    return entries


def _open_video(video_path):
    capture = cv2.VideoCapture(os.fspath(video_path))
    if not capture.isOpened():
        capture.release()
        raise DatasetError(f"{video_path}: OpenCV cannot open this video file")
    return capture


def _annotated_frames_bgr(video_path, annot_path, frame_step=1, start=0, stop=None):
    """Yields (frame_index, BGR frame, landmarks) of the annotated frames, one at a time."""
    if frame_step < 1 or start < 0:
        raise ValueError(f"frame_step must be >= 1 and start >= 0, got {frame_step}, {start}")
    if not os.path.isdir(annot_path):
        raise DatasetError(f"{annot_path}: annotation folder not found")
    annotated = set(n for n in os.listdir(annot_path) if n.endswith(".pts"))
    capture = _open_video(video_path)
    try:
        index, skipped = 0, 0
        while stop is None or index < stop:
            wanted = index >= start and (index - start) % frame_step == 0
            name = pts_name(index)
            if not (wanted and name in annotated):
                # grab() advances without the colour conversion and copy of read().
                if not capture.grab():
                    break
                skipped += wanted
                index += 1
                continue
            ok, frame = capture.read()
            if not ok:
                break
            yield index, frame, lm.read_pts(os.path.join(annot_path, name))
            index += 1
        if index == 0 and stop != 0:
            raise DatasetError(f"{video_path}: OpenCV opened the video but decoded no frame")
        _warn_unaligned(video_path, annot_path, index, skipped, annotated, stop is None)
    finally:
        capture.release()


def _warn_unaligned(video_path, annot_path, num_frames, skipped, annotated, at_end):
    """Logs frames without a `.pts` and (at the end of the video) `.pts` files without a frame."""
    if skipped:
        logging.warning("%s: %d frames without a .pts file in %s skipped",
                        video_path, skipped, annot_path)
    if at_end:
        beyond = sum(1 for n in annotated if n[:-4].isdigit() and int(n[:-4]) > num_frames)
        if beyond:
            logging.warning("%s: %d .pts files in %s lie beyond the %d decoded frames",
                            video_path, beyond, annot_path, num_frames)


def iter_vw300_video(video_dir, annot_dir="annot", frame_step=1, start=0, stop=None):
    """Reads the annotated frames of one 300-VW video, one frame at a time, without TFDS.

    Args:
      video_dir: the video's folder `NNN/`, holding `vid.avi` and `annot_dir/`.
      annot_dir: "annot" (2D) or "annot2" (3DA-2D), or any folder of 1-based `.pts` files.
      frame_step: keep frames start, start + frame_step, ... (the authors' code used 3).
      start: first 0-based frame index considered.
      stop: frame index at which to stop (exclusive); None reads to the end.

    Yields:
      (frame_index, rgb_frame, landmarks): 0-based index in the video, uint8 [H, W, 3] RGB,
      [68, 2] float32 0-based pixels. Kept frames without a `.pts` are skipped, and their count
      is logged when the video ends.

    Raises:
      DatasetError: naming the video when it cannot be opened or decoded.
      PtsError: naming the `.pts` file when one is malformed.
    """
    video_path = os.path.join(video_dir, VIDEO_FILE)
    annot_path = os.path.join(video_dir, annot_dir)
    for index, frame, points in _annotated_frames_bgr(video_path, annot_path,
                                                      frame_step, start, stop):
        yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), points


@dataclasses.dataclass(eq=False)
class Vw300Config(tfds.core.BuilderConfig):
    """A `vw300` configuration.

    Attributes:
      annot_dir: the annotation folder of each video ("annot": 2D, "annot2": 3DA-2D).
      splits: the splits to prepare; a custom config may prepare a subset, e.g. only the test
        categories of a partial copy.
    """

    annot_dir: str = "annot"
    splits: tuple = SPLITS


class Vw300(tfds.core.GeneratorBasedBuilder):
    """300-VW frames with their 68 landmarks, in video order (frame by frame, video by video)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        Vw300Config(name="2d", annot_dir="annot",
                    description="The original 300-VW 2D annotations (NNN/annot/)."),
        Vw300Config(name="3da2d", annot_dir="annot2",
                    description="The 3DA-2D annotations of the 3D Menpo tracking challenge "
                                "(NNN/annot2/); videos without them are skipped."),
    ]
    DEFAULT_CONFIG_NAME = "2d"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Request and download 300-VW from the ibug 300-VW challenge site (Imperial College London,
    intelligent behaviour understanding group) and extract it. Point manual_dir at the folder
    holding the video folders (or at a folder holding it as `vw300/` or
    `300VW_Dataset_2015_12_14/`):

        manual_dir/001/vid.avi
        manual_dir/001/annot/000001.pts 000002.pts ...   (one per frame, 1-based)
        manual_dir/001/annot2/000001.pts ...             (3DA-2D, only for config 3da2d)
        manual_dir/002/...

    For the `3da2d` config, put the 3DA-2D annotations of the 3D Menpo tracking challenge in
    each video's `annot2/` folder, named like the 2D ones.
    """

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                "landmarks": tfds.features.Tensor(shape=(lm.NUM_LANDMARKS, 2),
                                                  dtype=np.float32),
                "video_id": tfds.features.Text(),
                "frame_index": tfds.features.Scalar(dtype=np.int32),
            }),
            supervised_keys=("image", "landmarks"),
            disable_shuffling=True,  # frames must come back in video order
            homepage="https://ibug.doc.ic.ac.uk/resources/300-VW/",
        )

    def _split_generators(self, dl_manager):
        """Lists each split's videos up front, so a missing split fails before any decoding."""
        config = self.builder_config
        unknown = [s for s in config.splits if s not in SPLIT_IDS]
        if unknown:
            raise DatasetError(f"vw300 config {config.name!r}: unknown splits {unknown}")
        videos = {s: list_vw300_videos(dl_manager.manual_dir, s, config.annot_dir)
                  for s in config.splits}
        # Generators are lazy: each split decodes its videos only when TFDS writes that split.
        return {s: self._generate_examples(entries) for s, entries in videos.items()}

    def _generate_examples(self, entries):
        for position, entry in enumerate(entries):
            frames = _annotated_frames_bgr(entry.video_path, entry.annot_path)
            for index, frame, points in frames:
                yield ordered_key(position, len(entries), index), {
                    "image": encode_jpeg_bgr(frame, entry.video_path),
                    "landmarks": points,
                    "video_id": entry.video_id,
                    "frame_index": index,
                }
