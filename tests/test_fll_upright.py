"""FLL's crop turned upright by the roll of BT's points (`CropSettings.fll_upright`): the roll
of a shape, the turned window, the crops and point maps in numpy and TensorFlow, and the step
that uses them. (The LiteRT step's equality with the TF step, with the option on, is in
test_tflite_runtime.py.)"""

import dataclasses
import math

import cv2
import numpy as np
import pytest
import tensorflow as tf

from crct_tf.geometry import cropping, tf_cropping
from crct_tf.geometry import landmarks as lm
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.models.landmark_heads import mean_shape_in_crop
from crct_tf.tracking.frame_step import FrameSteps
from crct_tf.tracking.tflite_steps import crop_turned_region

from helpers import SETTINGS, SIZE, STATE_SHAPE, save_untrained_bundle

FACE = (lm.MEAN_SHAPE_UNIT_BOX * 80.0 + [100.0, 70.0]).astype(np.float32)   # 80 px, upright


def _turned(points, degrees, centre):
    """`points` turned clockwise in the picture by `degrees` about `centre`."""
    a = math.radians(degrees)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], np.float32)
    return ((points - centre) @ rotation.T + centre).astype(np.float32)


def _pattern(height=240, width=320):
    """A textured image with no symmetry: gradients, a bright disc and a dark bar."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([xs * 0.6, ys * 0.9, 128 + 60 * np.sin(xs / 9.0) * np.cos(ys / 13.0)], -1)
    cv2.circle(image, (150, 100), 25, (250, 250, 250), -1)
    cv2.rectangle(image, (120, 150), (200, 165), (10, 10, 10), -1)
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("degrees", [-35.0, -10.0, 0.0, 20.0, 40.0])
def test_shape_roll_recovers_the_turn_of_a_face(degrees):
    centre = FACE.mean(axis=0)
    turned = _turned(FACE, degrees, centre)
    assert math.degrees(cropping.shape_roll(turned)) == pytest.approx(degrees, abs=1e-3)
    assert math.degrees(float(tf_cropping.tf_shape_roll(turned))) == \
        pytest.approx(degrees, abs=1e-3)
    # Scale and position do not matter; a batch gives one roll per face.
    both = np.stack([turned, 2.0 * turned + 50.0])
    np.testing.assert_allclose(np.degrees(cropping.shape_roll(both)), [degrees] * 2, atol=1e-3)


def test_turned_window_is_the_upright_faces_context_window_turned():
    centre = FACE.mean(axis=0)
    upright = cropping.square_context_box(lm.box_from_landmarks(FACE), 1.6)
    window = cropping.turned_context_window(_turned(FACE, 30.0, centre), 1.6)
    box_centre = (upright[:2] + upright[2:]) / 2.0
    np.testing.assert_allclose(window[:2], _turned(box_centre[None], 30.0, centre)[0], atol=1e-3)
    assert window[2] == pytest.approx(upright[2] - upright[0], abs=1e-3)
    assert math.degrees(window[3]) == pytest.approx(30.0, abs=1e-3)
    np.testing.assert_allclose(
        tf_cropping.tf_turned_context_window(_turned(FACE, 30.0, centre)[None], 1.6).numpy()[0],
        window, atol=1e-3)
    # An upright face's window is square_context_box's (the mean face's roll is 0).
    flat = cropping.turned_context_window(FACE, 1.6)
    assert flat[3] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(flat[:3], [*box_centre, upright[2] - upright[0]], atol=1e-3)


def test_a_turned_photo_cropped_upright_is_the_upright_crop():
    """The photo turned by 30 degrees, cut by the turned window of the turned face, gives the
    crop the upright photo gives with its upright window (inside the photo, up to resampling)."""
    image, size = _pattern(), 96
    centre = FACE.mean(axis=0)
    matrix = cv2.getRotationMatrix2D(tuple(float(c) for c in centre), -30.0, 1.0)  # clockwise
    turned_image = cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]),
                                  flags=cv2.INTER_LINEAR)
    turned_face = _turned(FACE, 30.0, centre)
    np.testing.assert_allclose(turned_face, FACE @ matrix[:, :2].T + matrix[:, 2], atol=1e-3)
    window = cropping.turned_context_window(turned_face, 1.6)
    upright = cropping.crop_image(image, cropping.square_context_box(
        lm.box_from_landmarks(FACE), 1.6), size)
    got = cropping.crop_turned(turned_image, window, size)
    inner = slice(8, size - 8)                     # away from the turned photo's black corners
    assert np.abs(got[inner, inner] - upright[inner, inner]).mean() < 3.0
    # Not a crop that ignores the angle: the axis-aligned crop of the turned photo differs.
    axis_aligned = cropping.crop_image(turned_image, cropping.square_context_box(
        lm.box_from_landmarks(turned_face), 1.6), size)
    assert np.abs(axis_aligned[inner, inner] - upright[inner, inner]).mean() > 20.0


def test_numpy_tensorflow_and_region_crops_agree_and_points_map_back():
    image = _pattern()
    windows = np.array([[150.0, 110.0, 120.0, 0.4], [20.0, 30.0, 90.0, -0.7],   # past the edge
                        [160.0, 120.0, 100.0, 0.0]], np.float32)
    size = 64
    tf_crops = tf_cropping.tf_crop_turned(image, windows, size).numpy()
    for window, tf_crop in zip(windows, tf_crops):
        np_crop = cropping.crop_turned(image, window, size)
        assert np.abs(np_crop - tf_crop).max() < 0.5          # OpenCV's 1/32-pixel weights
        np.testing.assert_allclose(crop_turned_region(image, window, size), np_crop, atol=0.01)
    assert (tf_crops[1][:4, :4] == 0).all()                   # outside the image: zero
    # Angle 0 is the plain crop of the same square.
    square = np.array([110.0, 70.0, 210.0, 170.0], np.float32)
    np.testing.assert_allclose(tf_crops[2], cropping.crop_image(image, square, size), atol=0.5)
    # Points: to the crop and back, and the TF map equals numpy's.
    points = np.random.default_rng(0).uniform(0, 200, [5, 2]).astype(np.float32)
    in_crop = cropping.points_to_turned_crop(points, windows[0], size)
    np.testing.assert_allclose(cropping.points_from_turned_crop(in_crop, windows[0], size),
                               points, atol=1e-3)
    np.testing.assert_allclose(
        tf_cropping.tf_points_from_turned_crop(in_crop, windows[0], size).numpy(), points,
        atol=1e-3)


def stand_in_steps(bt_degrees, **choices):
    """BT answers the mean face turned by `bt_degrees` in its crop, FLL the mean face upright
    in the middle of its crop whatever it sees: the step's points show how FLL's crop was
    turned. `choices` replace fields of the test settings (fll_upright, fll_turn, ...)."""
    context = SETTINGS.bt_context

    def bt(inputs):
        n = tf.shape(inputs["state"])[0]
        lo, hi = SIZE / 2 * (1 - 1 / context), SIZE / 2 * (1 + 1 / context)
        face = lo + lm.MEAN_SHAPE_UNIT_BOX * (hi - lo)
        face = _turned(face.astype(np.float32), bt_degrees, face.mean(axis=0))
        return {"landmarks": tf.tile(tf.constant(face)[None], [n, 1, 1]),
                "state": inputs["state"]}

    fixed = mean_shape_in_crop(SETTINGS.fll_size, SETTINGS.fll_context)

    def fll(crops):
        return tf.tile(tf.constant(fixed, tf.float32)[None], [tf.shape(crops)[0], 1, 1])

    settings = dataclasses.replace(SETTINGS, **choices)
    return FrameSteps(bt, lambda patches: tf.ones([tf.shape(patches)[0]]), fll, settings,
                      state_shape=STATE_SHAPE)


@pytest.mark.parametrize("bt_degrees", [-25.0, 30.0])
def test_the_step_turns_flls_crop_by_bts_roll(bt_degrees):
    frame = _pattern()
    box = np.array([[100.0, 80.0, 180.0, 160.0]], np.float32)
    state = np.zeros([1, *STATE_SHAPE], np.float32)
    for upright, expected in ((True, bt_degrees), (False, 0.0)):
        out = stand_in_steps(bt_degrees, fll_upright=upright).step(frame, frame, box, state, np.zeros([1, 2]))
        roll = math.degrees(cropping.shape_roll(out["landmarks"].numpy()[0]))
        assert roll == pytest.approx(expected, abs=0.5)
        if upright:
            # FLL's upright mean face, turned back, lands on BT's face: the crop was BT's
            # points' turned window (same centre, size and angle).
            np.testing.assert_allclose(out["landmarks"].numpy()[0],
                                       out["bt_landmarks"].numpy()[0], atol=0.05)


def test_settings_need_the_bt_rule_and_old_bundles_have_it_off():
    with pytest.raises(ValueError, match="fll_upright"):
        CropSettings(fll_upright="yes")
    with pytest.raises(ValueError, match="fll_upright.*bt_centre"):
        CropSettings(fll_box="bt_centre", fll_upright=True)
    old = {k: v for k, v in CropSettings().to_dict().items() if k != "fll_upright"}
    assert CropSettings.from_dict(old).fll_upright is False
    assert CropSettings().with_tracker_choices(fll_upright=True).fll_upright is True


@pytest.fixture(scope="module")
def untrained_weights(tmp_path_factory):
    return save_untrained_bundle(tmp_path_factory.mktemp("fll_upright") / "weights", "tiny")


def test_runtime_and_saved_model_keep_or_refuse_the_choice(untrained_weights, tmp_path):
    from crct_tf import export
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    assert load_runtime(str(untrained_weights)).steps.settings.fll_upright is False
    assert load_runtime(str(untrained_weights), fll_upright=True).steps.settings.fll_upright
    with pytest.raises(RuntimeLoadError, match="fll_upright"):
        load_runtime(str(untrained_weights), fll_box="bt_centre", fll_upright=True)
    out = export.run("saved_model", str(tmp_path / "saved"), weights=str(untrained_weights),
                     jit_compile=False, fll_upright=True)
    assert load_runtime(saved_model=out).steps.settings.fll_upright is True
    with pytest.raises(RuntimeLoadError, match="exported with fll_upright on"):
        load_runtime(saved_model=out, fll_upright=False)
    with pytest.raises(export.ExportError, match="fll_upright"):
        export.run("saved_model", str(tmp_path / "bad"), weights=str(untrained_weights),
                   jit_compile=False, fll_box="bt_centre", fll_upright=True)
