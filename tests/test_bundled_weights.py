"""The weights bundled with the package (crct_tf/checkpoints/): complete, and they track the demo clip's real face."""

import os

import cv2
import numpy as np
import pytest

from crct_tf.weights import bundle
from crct_tf.geometry import tf_cropping
from crct_tf.geometry.landmarks import MEAN_SHAPE_UNIT_BOX
from crct_tf.weights.packaged import bundled_weights_dir

CHECKPOINTS = bundled_weights_dir()


@pytest.fixture(scope="module")
def bundled():
    return bundle.load_bundle(CHECKPOINTS)


def _demo_frames(path, count):
    capture = cv2.VideoCapture(path)
    frames = []
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return frames


def test_bundle_is_complete_and_fits_the_budget(bundled):
    manifest = bundled.manifest
    assert manifest["shared_backbone"] and manifest["dtype"] == "float16"
    assert set(manifest["parts"]) == {"backbone", "bt", "fv", "fll"}
    assert manifest["tracker"] == {"seq_bt": 2, "t_b": 1.0, "t_c": 0.5}
    size = sum(os.path.getsize(os.path.join(CHECKPOINTS, p["file"]))
               for p in manifest["parts"].values())
    assert size <= 64 * 2 ** 20


def test_first_30_demo_frames_are_tracked_inside_the_face_mtcnn_finds(bundled, demo_clip,
                                                                       mtcnn_detector):
    from crct_tf.tracking import detection
    from crct_tf.tracking.frame_step import FrameSteps
    from crct_tf.tracking.tracker import Tracker

    steps = FrameSteps(bundled.bt, bundled.fv, bundled.fll, bundled.settings)
    tracker = Tracker.from_constants(
        steps, {"tracker": bundled.tracker, "mtcnn_box_map": bundled.mtcnn_box_map},
        detect=lambda rgb: detection.detect_faces(mtcnn_detector, rgb))
    for index, rgb in enumerate(_demo_frames(demo_clip, 30)):
        result = tracker.track(rgb)
        assert result.status == "tracked", f"frame {index}: {result.status}"
        boxes, scores = detection.detect_faces(mtcnn_detector, rgb)
        x0, y0, x1, y1 = boxes[np.argmax(scores)]
        grow = 0.1 * np.array([x1 - x0, y1 - y0])   # MTCNN's box stops at the jaw line
        inside = ((result.landmarks >= [x0, y0] - grow) &
                  (result.landmarks <= [x1, y1] + grow)).all(axis=1)
        assert inside.mean() >= 0.95, f"frame {index}: {inside.mean():.2f} of points inside"


def test_validator_accepts_faces_and_rejects_background(bundled, demo_clip):
    from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples

    def p_face(image, points):
        box = np.concatenate([points.min(0), points.max(0)])[None]
        patches = tf_cropping.tf_landmark_patches(image[None], points[None], box)
        return float(bundled.fv(patches)[0])

    faces = [p_face(ex["image"], ex["landmarks"]) for ex in load_bootstrap_examples("val")]
    assert np.mean(np.array(faces) >= 0.5) >= 0.95
    # A face-shaped set of points on the car's window and seat (left of the face in the clip).
    frame = _demo_frames(demo_clip, 1)[0]
    background = []
    for x0, y0, side in [(2, 5, 40), (0, 60, 45), (130, 10, 40), (135, 90, 40)]:
        points = (MEAN_SHAPE_UNIT_BOX * side + [x0, y0]).astype(np.float32)
        background.append(p_face(frame, points))
    assert max(background) < 0.5, background


def test_no_face_is_reported_on_frames_without_one(bundled, mtcnn_detector):
    from crct_tf.tracking import detection
    from crct_tf.tracking.frame_step import FrameSteps
    from crct_tf.tracking.tracker import Tracker

    steps = FrameSteps(bundled.bt, bundled.fv, bundled.fll, bundled.settings)
    tracker = Tracker.from_constants(
        steps, {"tracker": bundled.tracker, "mtcnn_box_map": bundled.mtcnn_box_map},
        detect=lambda rgb: detection.detect_faces(mtcnn_detector, rgb))
    rng = np.random.default_rng(0)
    for _ in range(8):   # a moving smooth texture: no face anywhere
        noise = cv2.GaussianBlur(rng.uniform(0, 255, (144, 176, 3)).astype(np.float32), (0, 0), 6)
        frame = np.clip((noise - noise.mean()) * 4 + 128, 0, 255).astype(np.uint8)
        result = tracker.track(frame)
        assert result.status == "searching" and result.landmarks is None
