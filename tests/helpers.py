"""Helpers the tests share: stand-in networks, a generated clip, the track command, bundles.

Test files import from here (`from helpers import ...`), never from one another. Fixtures that
several files use live in conftest.py.

The stand-in networks have the sub-networks' signatures and run through the real `FrameSteps`:
  BT   returns a fixed face filling the central 1/context of its crop, shifted by `shift` crop
       pixels, and state + 1 (so the state counts BT steps since the last reset);
  FV   returns the mean of its patches / 255: a frame's brightness around the landmarks is
       its p(face), scripted per frame;
  FLL  returns the same fixed face without shift (so b_t = b_t^BT).
"""

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

import cv2

from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.geometry.landmarks import write_pts
from crct_tf.tracking.frame_step import FrameSteps

REPO = Path(__file__).resolve().parents[1]

# -- stand-in networks and frames -----------------------------------------------------------------

SETTINGS = CropSettings()
SIZE, CONTEXT = SETTINGS.input_size, SETTINGS.bt_context
BRIGHT, DARK = 220, 40            # p(face) = 0.86 and 0.16
H, W = 160, 240
BOX = np.array([40.0, 60.0, 80.0, 100.0], np.float32)       # square, far from the borders
STATE_SHAPE = (4, 8)


def load_tool(name):
    """tools/NAME.py as a module (the tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_prepared_train_split(builder, examples, count=6):
    """Prepares a teacher-labelled set's TFDS `builder` and checks its `train` split against the
    loader's numpy `examples` (one per `person`): size, and `count` records' image (JPEG-close),
    landmarks, MTCNN box and file name."""
    import tensorflow_datasets as tfds
    builder.download_and_prepare()
    assert builder.info.splits["train"].num_examples == len(examples)
    by_person = {ex["person"]: ex for ex in examples}
    for record in tfds.as_numpy(builder.as_dataset(split="train").take(count)):
        reference = by_person[record["person"].decode()]
        assert record["image"].shape == reference["image"].shape
        assert np.abs(record["image"].astype(int) - reference["image"]).mean() < 2.0
        np.testing.assert_array_equal(record["landmarks"], reference["landmarks"])
        np.testing.assert_array_equal(record["mtcnn_box"], reference["mtcnn_box"])
        assert record["image/filename"].decode() == reference["image/filename"]


def unit_face():
    """68 points in the unit square, touching all four sides."""
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 9), np.linspace(0, 1, 8)), -1).reshape(-1, 2)
    return grid[:68].astype(np.float32)


def central_face(shift=0.0):
    lo, hi = SIZE / 2 * (1 - 1 / CONTEXT) - 0.5, SIZE / 2 * (1 + 1 / CONTEXT) - 0.5
    return tf.constant(lo + unit_face() * (hi - lo) + np.float32(shift))


def make_steps(shift=0.0):
    """FrameSteps over the stand-in BT, FV and FLL (see the module docstring)."""
    def bt(inputs):
        n = tf.shape(inputs["state"])[0]
        face = tf.tile(central_face(shift)[None], [n, 1, 1])
        return {"landmarks": face, "state": inputs["state"] + 1.0}

    def fv(patches):
        return tf.reduce_mean(patches, axis=[1, 2, 3, 4]) / 255.0

    def fll(crops):
        return tf.tile(central_face()[None], [tf.shape(crops)[0], 1, 1])

    return FrameSteps(bt, fv, fll, SETTINGS, state_shape=STATE_SHAPE, jit_compile=False)


def frame(left, right=None, split=90):
    """A frame of brightness `left` left of x = split and `right` (default the same) after."""
    image = np.full([H, W, 3], left, np.uint8)
    image[:, split:] = left if right is None else right
    return image


# -- the track command with the stand-ins ----------------------------------------------------------

STAND_IN_CONSTANTS = {"tracker": {"seq_bt": 2, "t_b": 1.0, "t_c": 0.5}, "mtcnn_box_map": {}}
# Frame brightness of the stand-in clip: frame 2 is rejected by FV (lost), the rest tracked.
CLIP = [BRIGHT, BRIGHT, DARK, BRIGHT, BRIGHT, BRIGHT]


def detector_at_box(on_call=None):
    """A detector that always finds the face at BOX; `on_call(n)` runs at the n-th call (1-based)."""
    calls = []

    def detect(rgb):
        calls.append(len(calls) + 1)
        if on_call:
            on_call(len(calls))
        return np.array([BOX]), np.array([0.9], np.float32)
    return detect


def csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def run_track(*args):
    """`python -m crct_tf.track ARGS` in-process; returns the exit code."""
    from crct_tf import track
    return track.main([str(a) for a in args])


# -- weights --------------------------------------------------------------------------------------

def save_untrained_bundle(folder, backbone="inception_resnet_v1", head_noise=1e-3, seed=0):
    """Saves an untrained bundle; T_C = 0 so FV accepts every frame. Returns the folder.

    The landmark heads start with zero kernels (a fixed mean face); `head_noise` gives them small
    random kernels, so that the points depend on the image and comparisons mean something.
    """
    from crct_tf.datasets import crct_bootstrap
    from crct_tf.weights.bundle import save_bundle, untrained_bundle
    b = untrained_bundle(tracker={"seq_bt": 2, "t_b": 1.0, "t_c": 0.0}, backbone=backbone,
                         mtcnn_box_map=crct_bootstrap.mtcnn_box_map().to_dict())
    rng = np.random.default_rng(seed)
    for layer in b.bt.layers + b.fll.layers:
        if layer.name.startswith(("bt_head_", "fll_regression")) and len(layer.weights) == 2:
            kernel, bias = layer.get_weights()
            layer.set_weights([rng.normal(0, head_noise, kernel.shape).astype(np.float32), bias])
    save_bundle(str(folder), b.bt, b.fv, b.fll, b.settings, b.tracker, b.mtcnn_box_map,
                backbone=backbone)
    return folder


# -- generated 300-W and Menpo trees ----------------------------------------------------------------

FACE_H, FACE_W = 30, 40    # the generated photos' size


def landmarks_for(value):
    k = np.arange(68, dtype=np.float32)
    return np.stack([k * 0.5 + value, k * 0.25 + 2 * value], axis=-1)


def write_face(folder, stem, value, kind="bgr", pts=True, num_points=68):
    """Writes one image (`kind` selects its format) whose red level is `value`, and its .pts."""
    os.makedirs(folder, exist_ok=True)
    bgr = np.full((FACE_H, FACE_W, 3), (90, 60, value), np.uint8)
    if kind == "bgr":
        name, image = stem + ".jpg", bgr
    elif kind == "png":
        name, image = stem + ".png", bgr
    elif kind == "gray":
        name, image = stem + ".png", np.full((FACE_H, FACE_W), value, np.uint8)
    elif kind == "rgba":
        name, image = stem + ".png", np.dstack([bgr, np.full((FACE_H, FACE_W), 7, np.uint8)])
    elif kind == "16bit":
        name, image = stem + ".png", bgr.astype(np.uint16) * 257
    assert cv2.imwrite(os.path.join(folder, name), image)
    if pts:
        write_pts(os.path.join(folder, stem + ".pts"),
                  landmarks_for(value)[:num_points] if num_points <= 68
                  else np.zeros((num_points, 2)))
    return name


def make_300w(root, official_test=False):
    """A 300-W tree: 4 train faces (+1 without .pts), 2 common, 1 challenging."""
    write_face(os.path.join(root, "afw"), "111_1", 10)
    write_face(os.path.join(root, "afw"), "111_2", 20, kind="png")
    write_face(os.path.join(root, "helen", "trainset"), "222_1", 30)
    write_face(os.path.join(root, "helen", "trainset"), "no_pts", 35, pts=False)
    write_face(os.path.join(root, "lfpw", "trainset"), "image_0001", 40, kind="16bit")
    write_face(os.path.join(root, "helen", "testset"), "333_1", 50)
    write_face(os.path.join(root, "lfpw", "testset"), "image_0001", 60, kind="gray")
    write_face(os.path.join(root, "ibug"), "image_003_1", 70, kind="rgba")
    if official_test:
        write_face(os.path.join(root, "300W", "01_Indoor"), "indoor_001", 80, kind="png")
        write_face(os.path.join(root, "300W", "02_Outdoor"), "outdoor_001", 90, kind="png")
    return root


def make_menpo(root, test=True):
    """A Menpo 2D tree: 2 train faces, 1 profile face (39 points), and 1 test face."""
    write_face(os.path.join(root, "trainset"), "aflw__face_1", 10)
    write_face(os.path.join(root, "trainset"), "aflw__face_2", 20, kind="gray")
    write_face(os.path.join(root, "trainset"), "profile_1", 30, num_points=39)
    if test:
        write_face(os.path.join(root, "testset"), "test_1", 40)
    return root


# -- a generated 300-VW tree ----------------------------------------------------------------------

NUM_FRAMES = 6
WIDTH, HEIGHT = 32, 24
# One video per split, plus a second training video without 3DA-2D annotations.
VIDEOS = {"001": "train", "002": "train", "114": "test_cat1", "203": "test_cat2",
          "410": "test_cat3"}
NO_ANNOT2 = "002"
MISSING_PTS = ("114", 2)  # video 114 has no annot/000003.pts (frame index 2)


def frame_value(frame_index):
    """Red level of a frame: tells frames apart after MJPG and JPEG compression."""
    return 20 + 35 * frame_index


def expected_landmarks(video_id, frame_index, annot2=False):
    k = np.arange(68, dtype=np.float32)
    points = np.stack([k * 0.5 + frame_index, 100.0 + k * 0.25 + int(video_id)], axis=-1)
    return points + (1000.0 if annot2 else 0.0)


def write_video(path, video_id):
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for i in range(NUM_FRAMES):
        bgr = (100, 40 + int(video_id) % 100, frame_value(i))
        writer.write(np.full((HEIGHT, WIDTH, 3), bgr, np.uint8))
    writer.release()


def make_vw300_tree(root):
    """Writes the 300-VW layout: NNN/vid.avi, NNN/annot/*.pts and (mostly) NNN/annot2/*.pts."""
    from crct_tf.datasets import vw300
    for video_id in VIDEOS:
        folder = os.path.join(root, video_id)
        os.makedirs(os.path.join(folder, "annot"))
        write_video(os.path.join(folder, "vid.avi"), video_id)
        if video_id != NO_ANNOT2:
            os.makedirs(os.path.join(folder, "annot2"))
        for i in range(NUM_FRAMES):
            if (video_id, i) != MISSING_PTS:
                write_pts(os.path.join(folder, "annot", vw300.pts_name(i)),
                          expected_landmarks(video_id, i))
            if video_id != NO_ANNOT2:
                write_pts(os.path.join(folder, "annot2", vw300.pts_name(i)),
                          expected_landmarks(video_id, i, annot2=True))
    return root


# -- the evaluate command on generated .pts trees --------------------------------------------------

EVAL_FRAMES = 5


def random_landmarks(video, frame):
    rng = np.random.default_rng(int(video) * 100 + frame)
    return rng.uniform(50, 150, size=(68, 2))


def write_pts_tree(root, videos, frames=range(1, EVAL_FRAMES + 1), shift=0.0):
    """Writes root/NNN/annot/00000F.pts; `shift` moves every point by (shift, 0) pixels."""
    for video in videos:
        folder = root / video / "annot"
        folder.mkdir(parents=True, exist_ok=True)
        for frame in frames:
            write_pts(folder / f"{frame:06d}.pts", random_landmarks(video, frame) + [shift, 0.0])
    return root


def run_evaluate(*args):
    """`python -m crct_tf.evaluate ARGS` in a subprocess (it must not import TensorFlow)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "crct_tf.evaluate", *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def read_results(out):
    import json
    return json.loads((out / "results.json").read_text())


def one_error_line(proc):
    """The one `error:` line of a command that exited 2 without a traceback."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# -- training with the tiny backbone on generated faces --------------------------------------------

TRAIN_SETTINGS = CropSettings()
TRAIN_BATCH = {"fll": 8, "fv": 8, "bt": 4}


def tiny_task(name, **options):
    """The `name` task (fll, fv, bt) on the tiny stand-in backbone."""
    from crct_tf.models.tiny_backbone import build_tiny_backbone
    from crct_tf.training import tasks
    return tasks.get_task(name, TRAIN_SETTINGS, build_tiny_backbone, **options)


def generated_batches(name):
    """dataset_fn(seq_len, first_example) of a small generated set without augmentation."""
    from crct_tf.data import bt_pipeline, fll_pipeline, fv_pipeline, synthetic
    from crct_tf.training import inputs

    def make(seq_len, first):
        faces = synthetic.synthetic_faces(16, seed=0)
        seed = inputs.run_seed(0, first)
        if name == "fll":
            return fll_pipeline.make_fll_dataset(faces, TRAIN_SETTINGS, TRAIN_BATCH[name], seed,
                                                 False, shuffle_buffer=16)
        if name == "fv":
            return fv_pipeline.make_fv_dataset(faces, TRAIN_SETTINGS, TRAIN_BATCH[name], seed,
                                               False, shuffle_buffer=16)
        return bt_pipeline.make_bt_dataset(faces, TRAIN_SETTINGS, TRAIN_BATCH[name], seq_len + 1,
                                           seed, False, shuffle_buffer=16, region_size=160)
    return make


def train_cli(*args, **kwargs):
    """`python -m crct_tf.train ARGS` as a running subprocess (stdout and stderr piped)."""
    return subprocess.Popen([sys.executable, "-m", "crct_tf.train", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


# -- a 300-VW tree of the demo clip's real face ------------------------------------------------------

DEMO_TEACHER_DIR = REPO / "tests" / "data" / "demo_teacher" / "annot"


def make_demo_vw300_tree(root, demo_clip, videos=("001", "002", "114", "203", "410")):
    """300-VW layout whose every video is the demo clip's first 8 frames (a real face), with the
    stored teacher labels as annot/ (and annot2/, for the 3DA-2D recipe). 001 and 002 are
    training videos, 114, 203 and 410 test videos of categories 1, 2 and 3."""
    import shutil
    from crct_tf.tracking.video_io import open_source
    labels = sorted(DEMO_TEACHER_DIR.glob("*.pts"))
    source = open_source(demo_clip)
    frames = [f.rgb for _, f in zip(range(len(labels)), source)]
    source.close()
    for video in videos:
        folder = os.path.join(root, video)
        os.makedirs(folder)
        height, width = frames[0].shape[:2]
        writer = cv2.VideoWriter(os.path.join(folder, "vid.avi"),
                                 cv2.VideoWriter_fourcc(*"MJPG"), 25, (width, height))
        for rgb in frames:
            writer.write(rgb[:, :, ::-1])
        writer.release()
        for annot in ("annot", "annot2"):
            os.makedirs(os.path.join(folder, annot))
            for label in labels:
                shutil.copy(label, os.path.join(folder, annot, label.name))
    return root
