"""BT follows a moving face the right way round: the tests fail if BT gets its previous and
current crops swapped, or the same frame twice.

1. A stand-in BT that measures motion: it moves the face by how far the brightness centroid
   moved from its previous crop to its current crop. Through the real `Tracker` and `FrameSteps`
   (modes bt and crct), a bright square moving across a dark frame is followed; swapped crops
   move the box the other way, the same frame twice leaves it still.
2. The LiteRT runtime cuts its crops in its own code: on a tiny bundle its BT step must give the
   TF step's points, on two different frames where swapping them, or passing one twice, changes
   the points.
3. The bundled weights on the demo clip's real face, shifted by a few pixels per frame and
   tracked by BT alone from the teacher's landmarks: the landmarks move with the face, to within
   30 % of the shift (swapped crops fall about half the shift behind). A real BT also finds the
   face in its current crop alone, so the same current frame twice is caught by 1 and 2 only.
"""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from crct_tf.geometry.landmarks import box_from_landmarks, read_pts
from crct_tf.tracking import TrackerConfig
from crct_tf.tracking.frame_step import FrameSteps
from crct_tf.tracking.tracker import Tracker
from crct_tf.tracking.video_io import open_source

from helpers import BOX, BRIGHT, H, REPO, SETTINGS, STATE_SHAPE, W, central_face
from helpers import save_untrained_bundle

TEACHER_FRAME_1 = REPO / "tests" / "data" / "demo_teacher" / "annot" / "000001.pts"
VELOCITY = np.array([4.0, 2.0])      # pixels per frame
FRAMES = 5


def _centroid(crops):
    """Brightness-weighted centroid [N, 2] (x, y) of crops [N, S, S, 3], in crop pixels."""
    weight = tf.reduce_mean(crops, axis=-1)
    weight = weight / tf.reduce_sum(weight, axis=[1, 2], keepdims=True)
    grid = tf.range(tf.shape(crops)[1], dtype=tf.float32)
    return tf.stack([tf.reduce_sum(weight * grid[None, None, :], axis=[1, 2]),
                     tf.reduce_sum(weight * grid[None, :, None], axis=[1, 2])], axis=-1)


def motion_steps():
    """FrameSteps whose BT moves the fixed face by the centroid's motion between its crops."""
    def bt(inputs):
        motion = _centroid(inputs["current_crop"]) - _centroid(inputs["previous_crop"])
        return {"landmarks": central_face()[None] + motion[:, None, :],
                "state": inputs["state"] + 1.0}

    def fv(patches):
        return tf.reduce_mean(patches, axis=[1, 2, 3, 4]) / 255.0

    def fll(crops):
        return tf.tile(central_face()[None], [tf.shape(crops)[0], 1, 1])

    return FrameSteps(bt, fv, fll, SETTINGS, state_shape=STATE_SHAPE, jit_compile=False)


def _square_at(offset):
    """A dark frame with a bright square at BOX moved by `offset` pixels."""
    frame = np.zeros([H, W, 3], np.uint8)
    x0, y0, x1, y1 = np.round(BOX + np.tile(offset, 2)).astype(int)
    frame[y0:y1, x0:x1] = BRIGHT
    return frame


class _Miswired:
    """Steps that feed BT the crops in the wrong order, or one frame twice."""

    def __init__(self, steps, fault):
        self.steps, self.fault, self.state_shape = steps, fault, steps.state_shape

    def _frames(self, frame, previous_frame):
        return {"swapped": (previous_frame, frame), "current twice": (frame, frame),
                "previous twice": (previous_frame, previous_frame)}[self.fault]

    def step(self, frame, previous_frame, boxes, state, fll_shift):
        return self.steps.step(*self._frames(frame, previous_frame), boxes, state, fll_shift)

    def bt_step(self, frame, previous_frame, boxes, state):
        return self.steps.bt_step(*self._frames(frame, previous_frame), boxes, state)


def _follows_the_square(steps, mode, frames=6, velocity=(3.0, 2.0)):
    """Whether the tracker keeps the square (no frame lost) and its box moved with it to within
    a pixel; also returns how far the box moved."""
    tracker = Tracker(steps, TrackerConfig(mode=mode, seq_bt=100, t_c=0.5), init_box=BOX,
                      detect=lambda rgb: (np.zeros([0, 4], np.float32), np.zeros([0], np.float32)))
    results = [tracker.track(_square_at(t * np.array(velocity))) for t in range(frames)]
    if not all(r.status == "tracked" for r in results):
        return False, None
    moved = (results[-1].box - BOX)[:2]
    return bool(np.abs(moved - (frames - 1) * np.array(velocity)).max() <= 1.0), moved


@pytest.fixture(scope="module")
def stand_in_motion_steps():
    return motion_steps()


@pytest.mark.parametrize("mode", ["bt", "crct"])
def test_the_tracker_follows_a_moving_square_with_a_motion_measuring_bt(stand_in_motion_steps,
                                                                        mode):
    followed, moved = _follows_the_square(stand_in_motion_steps, mode)
    assert followed, moved


@pytest.mark.parametrize("mode", ["bt", "crct"])
@pytest.mark.parametrize("fault", ["swapped", "current twice", "previous twice"])
def test_miswired_crops_lose_the_moving_square(stand_in_motion_steps, fault, mode):
    """The check above catches each fault: the box moves back or stays (crct: FV then rejects
    the frame where the square is not)."""
    followed, moved = _follows_the_square(_Miswired(stand_in_motion_steps, fault), mode)
    assert not followed, moved


def _first_frame(clip):
    source = open_source(clip)
    rgb = next(iter(source)).rgb
    source.close()
    return rgb


def _shifted(image, offset):
    matrix = np.float32([[1, 0, offset[0]], [0, 1, offset[1]]])
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]),
                          borderMode=cv2.BORDER_REPLICATE)


def _bt_motion(runtime, frames, start):
    """The mean landmark's motion from the first to the last frame, tracked by BT alone."""
    tracker = Tracker.from_constants(runtime.steps, runtime.constants, init_landmarks=start,
                                     mode="bt")
    results = [tracker.track(frame) for frame in frames]
    assert all(r.status == "tracked" for r in results)
    return results[-1].landmarks.mean(0) - results[0].landmarks.mean(0)


@pytest.mark.parametrize("runtime", ["tf", pytest.param("litert", marks=pytest.mark.slow)])
def test_bt_moves_the_landmarks_with_the_face(runtime, demo_clip):
    from crct_tf.tracking.runtime import load_runtime
    loaded = load_runtime(runtime=runtime)               # the bundled weights
    first, start = _first_frame(demo_clip), read_pts(str(TEACHER_FRAME_1))
    for velocity in (VELOCITY, -VELOCITY):               # right and down, then left and up
        frames = [_shifted(first, t * velocity) for t in range(FRAMES)]
        expected = (FRAMES - 1) * velocity
        moved = _bt_motion(loaded, frames, start)
        assert np.linalg.norm(moved - expected) <= 0.3 * np.linalg.norm(expected), moved
    still = _bt_motion(loaded, [first] * FRAMES, start)
    assert np.linalg.norm(still) <= 0.2 * np.linalg.norm((FRAMES - 1) * VELOCITY), still


def test_litert_bt_step_takes_the_crops_in_the_tf_steps_order(tmp_path, demo_clip):
    from crct_tf.deploy.tflite import export_tflite
    from crct_tf.tracking.frame_step import FrameSteps
    from crct_tf.tracking.tflite_steps import TfliteSteps
    from crct_tf.weights.bundle import load_bundle
    # Heads with large random kernels: BT's points depend clearly on which crop is which.
    weights = save_untrained_bundle(tmp_path / "weights", "tiny", head_noise=0.1)
    bundle = load_bundle(str(weights))
    folder = export_tflite(bundle, str(tmp_path / "tflite"), weights_dir=str(weights))
    tf_steps = FrameSteps(bundle.bt, bundle.fv, bundle.fll, bundle.settings)
    litert = TfliteSteps(folder, num_threads=2)
    previous = _first_frame(demo_clip)
    current = _shifted(previous, 3 * VELOCITY)
    box = box_from_landmarks(read_pts(str(TEACHER_FRAME_1)))[None].astype(np.float32)
    state = np.zeros([1, *tf_steps.state_shape], np.float32)

    def points(steps, frame, previous_frame):
        return np.asarray(steps.bt_step(frame, previous_frame, box, state)["landmarks"])

    forward = points(tf_steps, current, previous)
    swapped = points(tf_steps, previous, current)
    for other in (swapped, points(tf_steps, current, current),
                  points(tf_steps, previous, previous)):
        assert np.abs(forward - other).max() > 0.2               # the crops matter here
    assert np.abs(points(litert, current, previous) - forward).max() <= 0.01
    assert np.abs(points(litert, previous, current) - swapped).max() <= 0.01
