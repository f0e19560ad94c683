"""FLL on its crop as it is and turned by the roll of BT's points, the two point sets averaged
(`CropSettings.fll_turn`): the turned square, the step that uses it, the settings and their
way through the runtimes. (The LiteRT step's equality with the TF step, with the option on, is
in test_tflite_runtime.py.)"""

import math

import numpy as np
import pytest

from crct_tf.geometry import cropping, tf_cropping
from crct_tf.geometry import landmarks as lm
from crct_tf.geometry.landmarks import flip_landmarks
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.models.landmark_heads import mean_shape_in_crop

from helpers import SETTINGS, STATE_SHAPE, save_untrained_bundle
from test_fll_upright import _pattern, stand_in_steps

# What the stand-in FLL answers for every crop (test_fll_upright.stand_in_steps).
FIXED = mean_shape_in_crop(SETTINGS.fll_size, SETTINGS.fll_context)


def test_turned_square_keeps_the_squares_centre_and_side():
    square = np.array([[110.0, 70.0, 210.0, 170.0], [0.0, -20.0, 40.0, 20.0]], np.float32)
    angles = np.array([0.4, -0.7], np.float32)
    turned = cropping.turned_square(square, angles)
    np.testing.assert_allclose(turned, [[160.0, 120.0, 100.0, 0.4], [20.0, 0.0, 40.0, -0.7]],
                               atol=1e-5)
    np.testing.assert_allclose(tf_cropping.tf_turned_square(square, angles).numpy(), turned,
                               atol=1e-5)
    # At angle 0 the turned crop is the square's plain crop.
    image, size = _pattern(), 64
    flat = cropping.turned_square(square[0], np.float32(0.0))
    np.testing.assert_allclose(cropping.crop_turned(image, flat, size),
                               cropping.crop_image(image, square[0], size), atol=0.5)


@pytest.mark.parametrize("bt_degrees, fll_flip", [(-25.0, False), (30.0, False), (30.0, True)])
def test_the_step_averages_flls_points_on_the_crop_and_the_crop_turned(bt_degrees, fll_flip):
    frame = _pattern()
    boxes = np.array([[100.0, 80.0, 180.0, 160.0], [60.0, 40.0, 120.0, 100.0]], np.float32)
    state = np.zeros([2, *STATE_SHAPE], np.float32)
    shifts = np.zeros([2, 2], np.float32)
    steps = stand_in_steps(bt_degrees, fll_box="bt_capped", fll_turn=True, fll_flip=fll_flip)
    fixed = FIXED
    out = steps.step(frame, frame, boxes, state, shifts)
    size = SETTINGS.fll_size
    for face in range(2):
        bt_points = out["bt_landmarks"].numpy()[face]
        rule_box = cropping.fll_crop_box(out["bt_box"].numpy()[face], boxes[face], "bt_capped")
        window = cropping.square_context_box(rule_box, SETTINGS.fll_context)
        as_is = cropping.points_from_crop(fixed, window, size)
        turned = cropping.points_from_turned_crop(
            fixed, cropping.turned_square(window, cropping.shape_roll(bt_points)), size)
        views = [as_is, turned]
        if fll_flip:        # the third view: the crop's mirror, its points mirrored back
            views.append(cropping.points_from_crop(flip_landmarks(fixed, size), window, size))
        np.testing.assert_allclose(out["landmarks"].numpy()[face], np.mean(views, axis=0),
                                   atol=0.05)
        # The crop as it is (and its mirror) sees the face upright (roll 0), the turned one at
        # BT's roll: the mean leans by BT's roll over the number of views.
        roll = math.degrees(cropping.shape_roll(out["landmarks"].numpy()[face]))
        assert roll == pytest.approx(bt_degrees / len(views), abs=0.5)
        np.testing.assert_allclose(out["box"].numpy()[face],
                                   lm.box_from_landmarks(out["landmarks"].numpy()[face]),
                                   atol=1e-3)
    # Off, FLL's points are those of the crop as it is.
    plain = stand_in_steps(bt_degrees, fll_box="bt_capped")
    off = plain.step(frame, frame, boxes, state, shifts)
    assert abs(math.degrees(cropping.shape_roll(off["landmarks"].numpy()[0]))) < 0.5


def test_settings_check_the_choice_and_old_bundles_have_it_off():
    with pytest.raises(ValueError, match="fll_turn"):
        CropSettings(fll_turn="yes")
    with pytest.raises(ValueError, match="choose one"):
        CropSettings(fll_upright=True, fll_turn=True)
    old = {k: v for k, v in CropSettings().to_dict().items() if k != "fll_turn"}
    assert CropSettings.from_dict(old).fll_turn is False
    # Any rule takes it; asking for one turning turns the other off unless both are given.
    assert CropSettings(fll_box="bt_centre", fll_turn=True).fll_turn is True
    turning = CropSettings(fll_turn=True)
    assert turning.with_tracker_choices(fll_upright=True).fll_turn is False
    assert CropSettings(fll_upright=True).with_tracker_choices(fll_turn=True).fll_upright is False
    with pytest.raises(ValueError, match="choose one"):
        CropSettings().with_tracker_choices(fll_upright=True, fll_turn=True)


@pytest.fixture(scope="module")
def untrained_weights(tmp_path_factory):
    return save_untrained_bundle(tmp_path_factory.mktemp("fll_turn") / "weights", "tiny")


def test_runtime_and_saved_model_keep_or_refuse_the_choice(untrained_weights, tmp_path):
    from crct_tf import export
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    assert load_runtime(str(untrained_weights)).steps.settings.fll_turn is False
    assert load_runtime(str(untrained_weights), fll_turn=True).steps.settings.fll_turn is True
    out = export.run("saved_model", str(tmp_path / "saved"), weights=str(untrained_weights),
                     jit_compile=False, fll_box="bt_capped", fll_turn=True)
    restored = load_runtime(saved_model=out).steps
    assert restored.settings.fll_turn is True and restored.settings.fll_box == "bt_capped"
    with pytest.raises(RuntimeLoadError, match="exported with fll_turn on"):
        load_runtime(saved_model=out, fll_turn=False)
