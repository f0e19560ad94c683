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
from pathlib import Path

import numpy as np
import tensorflow as tf

from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.tracking.frame_step import FrameSteps

REPO = Path(__file__).resolve().parents[1]

# -- stand-in networks and frames -----------------------------------------------------------------

SETTINGS = CropSettings()
SIZE, CONTEXT = SETTINGS.input_size, SETTINGS.bt_context
BRIGHT, DARK = 220, 40            # p(face) = 0.86 and 0.16
H, W = 160, 240
BOX = np.array([40.0, 60.0, 80.0, 100.0], np.float32)       # square, far from the borders
STATE_SHAPE = (4, 8)


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
