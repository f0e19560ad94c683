"""Where FLL's crop goes (`CropSettings.fll_box`): around BT's box (Algorithm 1) or at BT's
centre with the previous box's size; the same rule in numpy, in TF, in the frame step and in
the runtime, the export and the commands that choose it."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from crct_tf.geometry import cropping, tf_cropping
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.tracking.frame_step import FrameSteps

from helpers import BOX, SETTINGS, SIZE, STATE_SHAPE, H, W, central_face, run_track, \
    save_untrained_bundle

BT_BOXES = np.array([[10.0, 20.0, 50.0, 40.0], [0.0, 0.0, 8.0, 8.0]], np.float32)
PREVIOUS = np.array([[12.0, 18.0, 42.0, 58.0], [100.0, 100.0, 120.0, 110.0]], np.float32)


@pytest.mark.parametrize("rule", cropping.FLL_BOX_RULES)
def test_numpy_and_tf_rules_agree(rule):
    expected = cropping.fll_crop_box(BT_BOXES, PREVIOUS, rule)
    got = tf_cropping.tf_fll_crop_box(tf.constant(BT_BOXES), tf.constant(PREVIOUS), rule)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)


def test_bt_rule_is_bts_box_and_bt_centre_has_bts_centre_and_the_previous_size():
    np.testing.assert_array_equal(cropping.fll_crop_box(BT_BOXES, PREVIOUS, "bt"), BT_BOXES)
    box = cropping.fll_crop_box(BT_BOXES, PREVIOUS, "bt_centre")
    np.testing.assert_allclose(box, [[15.0, 10.0, 45.0, 50.0], [-6.0, -1.0, 14.0, 9.0]])


def test_unknown_rule_is_refused_by_the_functions_and_the_settings():
    with pytest.raises(ValueError, match="bt or bt_centre"):
        cropping.fll_crop_box(BT_BOXES, PREVIOUS, "detector")
    with pytest.raises(ValueError, match="bt or bt_centre"):
        tf_cropping.tf_fll_crop_box(BT_BOXES, PREVIOUS, "detector")
    with pytest.raises(ValueError, match="fll_box"):
        CropSettings(fll_box="detector")
    old = {k: v for k, v in CropSettings().to_dict().items() if k != "fll_box"}
    assert CropSettings.from_dict(old).fll_box == "bt"        # bundles from before the option


def _shrinking_steps(fll_box):
    """Stand-ins: BT returns the central face at 0.8 of its size and 6 crop pixels to the
    right; FLL returns the central face, so FLL's box is the square of its crop box."""
    def bt(inputs):
        centre = (SIZE - 1) / 2.0
        face = (central_face() - centre) * 0.8 + centre + np.float32([6.0, 0.0])
        return {"landmarks": tf.tile(face[None], [tf.shape(inputs["state"])[0], 1, 1]),
                "state": inputs["state"] + 1.0}

    def fll(crops):
        return tf.tile(central_face()[None], [tf.shape(crops)[0], 1, 1])

    settings = dataclasses.replace(SETTINGS, fll_box=fll_box)
    return FrameSteps(bt, lambda patches: tf.ones([tf.shape(patches)[0]]), fll, settings,
                      state_shape=STATE_SHAPE)


@pytest.mark.parametrize("fll_box", cropping.FLL_BOX_RULES)
def test_frame_step_crops_fll_by_the_rule(fll_box):
    frame = np.full([H, W, 3], 128, np.uint8)
    out = _shrinking_steps(fll_box).step(frame, frame, BOX[None],
                                         np.zeros([1, *STATE_SHAPE], np.float32))
    bt_box, box = out["bt_box"].numpy()[0], out["box"].numpy()[0]
    side = BOX[2] - BOX[0]
    assert bt_box[2] - bt_box[0] == pytest.approx(0.8 * side, abs=0.1)
    np.testing.assert_allclose((box[:2] + box[2:]) / 2, (bt_box[:2] + bt_box[2:]) / 2, atol=0.05)
    expected_side = 0.8 * side if fll_box == "bt" else side
    assert box[2] - box[0] == pytest.approx(expected_side, abs=0.1)


@pytest.fixture(scope="module")
def untrained_weights(tmp_path_factory):
    return save_untrained_bundle(tmp_path_factory.mktemp("fll_box") / "weights", "tiny")


def test_runtime_takes_the_weights_rule_unless_told(untrained_weights):
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    assert load_runtime(str(untrained_weights)).steps.settings.fll_box == "bt"
    told = load_runtime(str(untrained_weights), fll_box="bt_centre")
    assert told.steps.settings.fll_box == "bt_centre"
    with pytest.raises(RuntimeLoadError, match="fll_box"):
        load_runtime(str(untrained_weights), fll_box="detector")


def test_saved_model_keeps_the_rule_it_was_exported_with(untrained_weights, tmp_path):
    from crct_tf import export
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    out = export.run("saved_model", str(tmp_path / "saved"), weights=str(untrained_weights),
                     jit_compile=False, fll_box="bt_centre")
    constants = json.loads((tmp_path / "saved" / "assets" / "crct_tracker.json").read_text())
    assert constants["crop_settings"]["fll_box"] == "bt_centre"
    assert load_runtime(saved_model=out).steps.settings.fll_box == "bt_centre"
    with pytest.raises(RuntimeLoadError, match="exported with fll_box bt_centre"):
        load_runtime(saved_model=out, fll_box="bt")
    with pytest.raises(RuntimeLoadError, match="unknown fll_box 'detector'"):
        load_runtime(saved_model=out, fll_box="detector")


def test_track_command_refuses_an_unknown_rule_in_one_line(capsys):
    assert run_track("--fll_box", "detector", "--max_frames", "1") == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "--fll_box" in err
