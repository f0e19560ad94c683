"""The weights bundled with the package (crct_tf/checkpoints/): complete, as their model card
says, and accurate on the demo clip's real face against the stored teacher labels."""

import os
import re

import cv2
import numpy as np
import pytest

from crct_tf.weights import bundle
from crct_tf.evaluation import metrics
from crct_tf.geometry import tf_cropping
from crct_tf.geometry.landmarks import MEAN_SHAPE_UNIT_BOX, read_pts
from crct_tf.weights.packaged import bundled_weights_dir

from helpers import REPO

CHECKPOINTS = bundled_weights_dir()
MODEL_CARD = os.path.join(CHECKPOINTS, "README.md")
# dlib's points (the bootstrap teacher) on the first frames of the demo clip.
TEACHER_DIR = REPO / "tests" / "data" / "demo_teacher" / "annot"
# Median NME (over the teacher's box diagonal) the full tracker must reach on those frames. The
# bundled weights reach about 0.018; untrained heads (a mean face in the tracked box) 0.064.
MAX_MEDIAN_NME = 0.03


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
    assert manifest["tracker"] == {"seq_bt": 2, "t_b": 1.0, "t_c": 0.8,   # T_C calibrated
                                   "recheck_fll": True}            # docs/robustness.md
    assert manifest["crop_settings"]["fll_box"] == "bt_capped"     # docs/robustness.md
    assert manifest["crop_settings"]["fll_flip"] is True           # docs/robustness.md
    assert manifest["crop_settings"]["fll_turn"] is True           # docs/robustness.md
    size = sum(os.path.getsize(os.path.join(CHECKPOINTS, p["file"]))
               for p in manifest["parts"].values())
    assert size <= 64 * 2 ** 20


def _track_demo(steps, constants, demo_clip, mtcnn_detector, count):
    """The full tracker (crct mode, MTCNN) on the first `count` frames: [(rgb, result)]."""
    from crct_tf.tracking import detection
    from crct_tf.tracking.tracker import Tracker
    tracker = Tracker.from_constants(
        steps, constants, detect=lambda rgb: detection.detect_faces(mtcnn_detector, rgb))
    return [(rgb, tracker.track(rgb)) for rgb in _demo_frames(demo_clip, count)]


@pytest.fixture(scope="module")
def demo_run(bundled, demo_clip, mtcnn_detector):
    """The full tracker with the bundled weights (TF runtime) on the first 30 demo frames."""
    from crct_tf.tracking.frame_step import FrameSteps
    steps = FrameSteps(bundled.bt, bundled.fv, bundled.fll, bundled.settings)
    constants = {"tracker": bundled.tracker, "mtcnn_box_map": bundled.mtcnn_box_map}
    return _track_demo(steps, constants, demo_clip, mtcnn_detector, 30)


def _teacher_nme(run):
    """Per-frame NME of the tracked points against the stored teacher labels."""
    teacher = sorted(TEACHER_DIR.glob("*.pts"))
    assert len(teacher) == 8 and len(run) >= len(teacher)
    assert all(result.status == "tracked" for _, result in run[:len(teacher)])
    predicted = np.stack([result.landmarks for _, result in run[:len(teacher)]])
    return metrics.nme_box_diagonal(predicted, np.stack([read_pts(str(p)) for p in teacher]))


def test_full_tracker_agrees_with_the_teacher_on_the_demo_clip(demo_run):
    nme = _teacher_nme(demo_run)
    assert np.median(nme) <= MAX_MEDIAN_NME, np.round(nme, 4)


@pytest.mark.slow
def test_full_tracker_on_litert_agrees_with_the_teacher(demo_clip, mtcnn_detector):
    """The same on the default runtime (LiteRT int8; converts the weights once if not cached)."""
    from crct_tf.tracking.runtime import load_runtime
    runtime = load_runtime(runtime="litert")
    run = _track_demo(runtime.steps, runtime.constants, demo_clip, mtcnn_detector, 8)
    nme = _teacher_nme(run)
    assert np.median(nme) <= MAX_MEDIAN_NME, np.round(nme, 4)


def test_first_30_demo_frames_are_tracked_inside_the_face_mtcnn_finds(demo_run, mtcnn_detector):
    from crct_tf.tracking import detection
    for index, (rgb, result) in enumerate(demo_run):
        assert result.status == "tracked", f"frame {index}: {result.status}"
        boxes, scores = detection.detect_faces(mtcnn_detector, rgb)
        x0, y0, x1, y1 = boxes[np.argmax(scores)]
        grow = 0.1 * np.array([x1 - x0, y1 - y0])   # MTCNN's box stops at the jaw line
        inside = ((result.landmarks >= [x0, y0] - grow) &
                  (result.landmarks <= [x1, y1] + grow)).all(axis=1)
        assert inside.mean() >= 0.95, f"frame {index}: {inside.mean():.2f} of points inside"


def _background_point_sets(frame, detector):
    """Mean faces of 30 and 45 px on a 16-px grid over the frame, away from the face MTCNN
    finds there (its box grown by 15 % on each side)."""
    from crct_tf.tracking import detection
    boxes, scores = detection.detect_faces(detector, frame)
    x0, y0, x1, y1 = boxes[np.argmax(scores)]
    grow = 0.15 * np.array([x1 - x0, y1 - y0])
    fx0, fy0, fx1, fy1 = x0 - grow[0], y0 - grow[1], x1 + grow[0], y1 + grow[1]
    height, width = frame.shape[:2]
    sets = []
    for side in (30, 45):
        for left in range(0, width - side + 1, 16):
            for top in range(0, height - side + 1, 16):
                if left < fx1 and left + side > fx0 and top < fy1 and top + side > fy0:
                    continue
                sets.append((MEAN_SHAPE_UNIT_BOX * side + [left, top]).astype(np.float32))
    return sets


def test_validator_accepts_faces_and_rejects_background(bundled, demo_clip, mtcnn_detector):
    """The model card's figures: p >= T_C on all 25 val faces, p < T_C on all 221 face-shaped
    point sets on the demo clip's background (frames 1, 41, 81 and 120)."""
    from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples

    def p_faces(image, point_sets):
        """FV's p(face) of each [68, 2] point set on one image, in one batch."""
        points = np.stack(point_sets).astype(np.float32)
        boxes = np.concatenate([points.min(1), points.max(1)], axis=-1)
        images = np.repeat(image[None], len(points), axis=0)
        return np.asarray(bundled.fv(tf_cropping.tf_landmark_patches(images, points, boxes)))

    faces = [float(p_faces(ex["image"], [ex["landmarks"]])[0])
             for ex in load_bootstrap_examples("val")]
    t_c = bundled.tracker["t_c"]
    assert len(faces) == 25 and min(faces) >= t_c, np.round(faces, 3)
    frames = _demo_frames(demo_clip, 120)
    background = []
    for t in (0, 40, 80, 119):
        sets = _background_point_sets(frames[t], mtcnn_detector)
        background.extend(p_faces(frames[t], sets).tolist())
    assert len(background) == 221
    assert max(background) < t_c, sorted(background)[-5:]


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


def test_model_card_states_the_bundle_as_it_is(bundled):
    """The card's sizes and constants are the manifest's."""
    card = re.sub(r"\s+", " ", open(MODEL_CARD, encoding="utf-8").read()).replace("\u2212", "-")
    manifest = bundled.manifest
    sizes = {name: os.path.getsize(os.path.join(CHECKPOINTS, part["file"]))
             for name, part in manifest["parts"].items()}
    assert f"one {manifest['dtype']} `.weights.h5` per part, " \
           f"{sum(sizes.values()) / 2 ** 20:.1f} MiB in all" in card
    for name, part in manifest["parts"].items():
        assert f"`{part['file']}` ({sizes[name] / 1e6:.1f} MB)" in card, part["file"]
    settings, tracker = manifest["crop_settings"], manifest["tracker"]
    constants = (f"input {settings['input_size']}×{settings['input_size']}, "
                 f"BT context {settings['bt_context']}, FLL context {settings['fll_context']}, "
                 f"FV patches {settings['fv_patch_size']} px of the "
                 f"{settings['fv_face_context']}× face window seen at "
                 f"{settings['fv_face_size']} px, SeqBT {tracker['seq_bt']}, "
                 f"T_B {tracker['t_b']}, T_C {tracker['t_c']}")
    assert constants in card, constants
    fll_size = settings.get("fll_input_size") or settings["input_size"]
    assert f"FLL's input {fll_size}×{fll_size}" in card
    assert f"FLL's crop `{settings['fll_box']}`" in card
    assert f"FLL on the mirrored crop too: `{'on' if settings['fll_flip'] else 'off'}`" in card
    assert f"FLL on its crop turned too: `{'on' if settings.get('fll_turn') else 'off'}`" in card
    box_map = ", ".join(f"{k} {manifest['mtcnn_box_map'][k]:.3f}" for k in ("dx", "dy", "sx", "sy"))
    assert f"({box_map})" in card, box_map
