"""Where FLL's crop goes (`CropSettings.fll_box`): around BT's box (Algorithm 1), at BT's
centre with the previous box's size, or there with BT's centre corrected by its running offset
from FLL's, or around BT's box capped at the previous box's size; the same rule in numpy, in
TF, in the frame step, the tracker, the runtime, the export and the commands that choose it."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from crct_tf.geometry import cropping, tf_cropping
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.tracking.frame_step import FrameSteps

from helpers import BOX, CONTEXT, SETTINGS, SIZE, STATE_SHAPE, H, W, central_face, run_track, \
    save_untrained_bundle

BT_BOXES = np.array([[10.0, 20.0, 50.0, 40.0], [0.0, 0.0, 8.0, 8.0]], np.float32)
PREVIOUS = np.array([[12.0, 18.0, 42.0, 58.0], [100.0, 100.0, 120.0, 110.0]], np.float32)
SHIFTS = np.array([[3.0, -2.0], [-1.0, 0.5]], np.float32)


@pytest.mark.parametrize("rule", cropping.FLL_BOX_RULES)
def test_numpy_and_tf_rules_agree(rule):
    expected = cropping.fll_crop_box(BT_BOXES, PREVIOUS, rule, SHIFTS)
    got = tf_cropping.tf_fll_crop_box(tf.constant(BT_BOXES), tf.constant(PREVIOUS), rule,
                                      tf.constant(SHIFTS))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)


def test_bt_rule_is_bts_box_bt_centre_has_the_previous_size_and_bt_capped_the_smaller():
    np.testing.assert_array_equal(cropping.fll_crop_box(BT_BOXES, PREVIOUS, "bt", SHIFTS),
                                  BT_BOXES)
    box = cropping.fll_crop_box(BT_BOXES, PREVIOUS, "bt_centre", SHIFTS)
    np.testing.assert_allclose(box, [[15.0, 10.0, 45.0, 50.0], [-6.0, -1.0, 14.0, 9.0]])
    capped = cropping.fll_crop_box(BT_BOXES, PREVIOUS, "bt_capped", SHIFTS)
    np.testing.assert_allclose(capped, [[15.0, 20.0, 45.0, 40.0], BT_BOXES[1]])  # per side
    corrected = cropping.fll_crop_box(BT_BOXES, PREVIOUS, "bt_centre_corrected", SHIFTS)
    np.testing.assert_allclose(corrected, [[12.0, 12.0, 42.0, 52.0], [-5.0, -1.5, 15.0, 8.5]])
    np.testing.assert_allclose(cropping.fll_crop_box(BT_BOXES, PREVIOUS, "bt_centre_corrected"),
                               box)


def test_unknown_rule_is_refused_by_the_functions_and_the_settings():
    with pytest.raises(ValueError, match="bt, bt_centre, bt_centre_corrected or bt_capped"):
        cropping.fll_crop_box(BT_BOXES, PREVIOUS, "detector")
    with pytest.raises(ValueError, match="bt, bt_centre, bt_centre_corrected or bt_capped"):
        tf_cropping.tf_fll_crop_box(BT_BOXES, PREVIOUS, "detector")
    with pytest.raises(ValueError, match="fll_box"):
        CropSettings(fll_box="detector")
    old = {k: v for k, v in CropSettings().to_dict().items() if k != "fll_box"}
    assert CropSettings.from_dict(old).fll_box == "bt"        # bundles from before the option


def _rescaling_steps(fll_box, scale):
    """Stand-ins: BT returns the central face at `scale` of its size and 6 crop pixels to the
    right; FLL returns the central face, so FLL's box is the square of its crop box."""
    def bt(inputs):
        centre = (SIZE - 1) / 2.0
        face = (central_face() - centre) * scale + centre + np.float32([6.0, 0.0])
        return {"landmarks": tf.tile(face[None], [tf.shape(inputs["state"])[0], 1, 1]),
                "state": inputs["state"] + 1.0}

    def fll(crops):
        return tf.tile(central_face()[None], [tf.shape(crops)[0], 1, 1])

    settings = dataclasses.replace(SETTINGS, fll_box=fll_box)
    return FrameSteps(bt, lambda patches: tf.ones([tf.shape(patches)[0]]), fll, settings,
                      state_shape=STATE_SHAPE)


@pytest.mark.parametrize("scale", [0.8, 1.2])       # BT's face shrinks, or swells
@pytest.mark.parametrize("fll_box", cropping.FLL_BOX_RULES)
def test_frame_step_crops_fll_by_the_rule(fll_box, scale):
    frame = np.full([H, W, 3], 128, np.uint8)
    out = _rescaling_steps(fll_box, scale).step(frame, frame, BOX[None],
                                                np.zeros([1, *STATE_SHAPE], np.float32),
                                                np.zeros([1, 2], np.float32))
    bt_box, box = out["bt_box"].numpy()[0], out["box"].numpy()[0]
    side = BOX[2] - BOX[0]
    assert bt_box[2] - bt_box[0] == pytest.approx(scale * side, abs=0.1)
    np.testing.assert_allclose((box[:2] + box[2:]) / 2, (bt_box[:2] + bt_box[2:]) / 2, atol=0.05)
    expected_side = {"bt": scale * side, "bt_capped": min(scale, 1.0) * side}.get(fll_box, side)
    assert box[2] - box[0] == pytest.approx(expected_side, abs=0.1)


def _leaning_steps(fll_box):
    """Stand-ins for a frame with a bright square face: BT leans 6 crop pixels to the right of
    its window's centre; FLL finds the square but moves only half-way there from its crop's
    centre (it follows its crop in part, as the trained one does)."""
    def bt(inputs):
        face = central_face(np.float32([6.0, 0.0]))
        return {"landmarks": tf.tile(face[None], [tf.shape(inputs["state"])[0], 1, 1]),
                "state": inputs["state"]}

    def fll(crops):
        bright = tf.cast(tf.reduce_mean(crops, axis=-1) > 128.0, tf.float32)      # [N, S, S]
        pixels = tf.range(SIZE, dtype=tf.float32)
        mass = tf.reduce_sum(bright, axis=[1, 2])
        found = tf.stack([tf.reduce_sum(bright * pixels[None, None, :], axis=[1, 2]) / mass,
                          tf.reduce_sum(bright * pixels[None, :, None], axis=[1, 2]) / mass], -1)
        half_way = (found - (SIZE - 1) / 2.0) / 2.0
        return central_face()[None] + half_way[:, None, :]

    settings = dataclasses.replace(SETTINGS, fll_box=fll_box)
    return FrameSteps(bt, lambda patches: tf.ones([tf.shape(patches)[0]]), fll, settings,
                      state_shape=STATE_SHAPE)


def _track_the_square(fll_box, frames=60):
    """(FLL's box centre x minus the face's, BT's learned lean in pixels) after `frames`."""
    from crct_tf.tracking.tracker import Tracker, TrackerConfig
    image = np.zeros([H, W, 3], np.uint8)
    image[int(BOX[1]):int(BOX[3]), int(BOX[0]):int(BOX[2])] = 255          # the face: BOX
    tracker = Tracker(_leaning_steps(fll_box), TrackerConfig(), init_box=BOX)
    for _ in range(frames):
        result = tracker.track(image)
    assert result.status == "tracked"
    error = (result.box[0] + result.box[2]) / 2 - (BOX[0] + BOX[2]) / 2
    return error, tracker.state.bt_offset[0, 0] * (BOX[2] - BOX[0])


def test_face_states_bt_offset_is_a_running_mean_that_each_new_start_zeroes():
    from crct_tf.tracking.state import BT_OFFSET_RATE, FaceStates
    states = FaceStates.create(2, STATE_SHAPE, initial_boxes=[BOX, BOX + 100])
    side = BOX[2] - BOX[0]
    fll_box, bt_box = BOX, BOX + np.float32([4.0, -2.0, 4.0, -2.0])      # BT 4 px right, 2 up
    lstm = np.zeros(STATE_SHAPE, np.float32)
    states.accept(0, fll_box, lstm, bt_box)
    np.testing.assert_allclose(states.bt_offset[0], BT_OFFSET_RATE * np.array([4.0, -2.0]) / side)
    for _ in range(200):
        states.accept(0, fll_box, lstm, bt_box)
    np.testing.assert_allclose(states.fll_shifts([0, 1]), [[4.0, -2.0], [0.0, 0.0]], atol=1e-3)
    states.accept(1, BOX + 100, lstm)                      # no BT box (fll_mt): no update
    np.testing.assert_array_equal(states.bt_offset[1], [0.0, 0.0])
    states.reinitialise(0, BOX)                            # a re-detection starts afresh
    np.testing.assert_array_equal(states.fll_shifts([0]), [[0.0, 0.0]])
    states.accept(0, fll_box, lstm, bt_box)
    states.release(0)
    np.testing.assert_array_equal(states.bt_offset[0], [0.0, 0.0])


def test_tracker_learns_bts_lean_and_the_corrected_crop_cancels_it():
    lean = 6.0 * CONTEXT * (BOX[2] - BOX[0]) / SIZE                         # 3.75 image px
    error, learned = _track_the_square("bt_centre")
    assert error > 0.7 * lean      # each FLL box starts the next BT window: the lean stays
    corrected, learned = _track_the_square("bt_centre_corrected")
    assert abs(corrected) < 0.2 * error                    # the crop goes where FLL looks
    assert learned == pytest.approx(lean, rel=0.3)         # BT's lean, learned


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


def test_saved_model_takes_the_corrected_crops_shift(untrained_weights, tmp_path):
    from crct_tf import export
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    out = export.run("saved_model", str(tmp_path / "saved"), weights=str(untrained_weights),
                     jit_compile=False, fll_box="bt_centre_corrected")
    steps = load_runtime(saved_model=out).steps
    frame = np.random.default_rng(0).integers(0, 255, [H, W, 3], dtype=np.uint8)
    state = np.zeros([1, *steps.state_shape], np.float32)
    boxes = {}
    for shift in ([0.0, 0.0], [4.0, -3.0]):
        result = steps.step(frame, frame, BOX[None], state, np.float32([shift]))
        boxes[tuple(shift)] = np.asarray(result["box"])[0]
    moved = (boxes[(4.0, -3.0)][:2] + boxes[(4.0, -3.0)][2:] - boxes[(0.0, 0.0)][:2]
             - boxes[(0.0, 0.0)][2:]) / 2
    np.testing.assert_allclose(moved, [-4.0, 3.0], atol=0.3)   # the untrained FLL's mean face
    constants = tmp_path / "saved" / "assets" / "crct_tracker.json"
    older = json.loads(constants.read_text())
    older["version"] = 1
    constants.write_text(json.dumps(older))
    with pytest.raises(RuntimeLoadError, match="version 1.*export it again"):
        load_runtime(saved_model=out)


def test_track_command_refuses_an_unknown_rule_in_one_line(capsys):
    assert run_track("--fll_box", "detector", "--max_frames", "1") == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "--fll_box" in err
