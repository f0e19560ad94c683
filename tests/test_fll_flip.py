"""FLL on its crop and the mirrored crop, averaged (`CropSettings.fll_flip`): a localiser's
left-right bias cancels, the mirror's points come back re-indexed, and the runtime, the export
and the commands keep or choose the setting. (The LiteRT step's equality with the TF step, with
the option on, is in test_tflite_runtime.py.)"""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from crct_tf.geometry import landmarks as lm
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.tracking.frame_step import FrameSteps

from helpers import BOX, SETTINGS, SIZE, STATE_SHAPE, H, W, central_face, run_track, \
    save_untrained_bundle

LINE_X = 57                                   # the bright column of the test frame


def _line_frame():
    frame = np.full([H, W, 3], 30, np.uint8)
    frame[:, LINE_X] = 250
    return frame


def _line_finder_steps(bias, fll_flip):
    """Stand-in FLL: all 68 points at the crop's bright column (the centroid of its column
    profile), `bias` crop pixels to its right (a localiser that leans one way), at the central
    face's heights."""
    def fll(crops):
        profile = tf.reduce_mean(crops, axis=[1, 3])
        weights = profile - tf.reduce_min(profile, axis=1, keepdims=True)
        columns = tf.range(tf.shape(crops)[2], dtype=tf.float32)
        column = tf.reduce_sum(weights * columns, axis=1) / tf.reduce_sum(weights, axis=1)
        heights = central_face()[:, 1]
        x = tf.tile(column[:, None] + bias, [1, lm.NUM_LANDMARKS])
        return tf.stack([x, tf.tile(heights[None], [tf.shape(crops)[0], 1])], axis=-1)

    settings = dataclasses.replace(SETTINGS, fll_flip=fll_flip)
    return FrameSteps(lambda inputs: inputs, lambda patches: tf.ones([tf.shape(patches)[0]]),
                      fll, settings, state_shape=STATE_SHAPE)


def _fll_x(steps):
    return steps.fll_step(_line_frame(), BOX[None])["landmarks"].numpy()[0, :, 0]


def test_flip_cancels_a_localisers_sideways_bias():
    unbiased = _fll_x(_line_finder_steps(0.0, False))
    assert np.abs(unbiased - LINE_X).max() < 1.0                     # the stand-in finds it
    biased = _fll_x(_line_finder_steps(6.0, False))
    scale = (BOX[2] - BOX[0]) * SETTINGS.fll_context / SIZE          # image px per crop px
    np.testing.assert_allclose(biased - unbiased, 6.0 * scale, atol=1e-3)
    np.testing.assert_allclose(_fll_x(_line_finder_steps(6.0, True)), unbiased, atol=1e-3)


def test_mirrored_points_come_back_re_indexed():
    """An FLL that ignores the image answers the same points P for both crops: the result is
    (P + flip(P)) / 2 with numpy's `flip_landmarks` (column x -> S - 1 - x, pairs swapped)."""
    points = np.random.default_rng(3).uniform(10, 110, [lm.NUM_LANDMARKS, 2]).astype(np.float32)

    def fll(crops):
        return tf.tile(tf.constant(points)[None], [tf.shape(crops)[0], 1, 1])

    steps = FrameSteps(lambda inputs: inputs, lambda patches: tf.ones([tf.shape(patches)[0]]),
                       fll, dataclasses.replace(SETTINGS, fll_flip=True),
                       state_shape=STATE_SHAPE)
    crops = tf.zeros([3, SIZE, SIZE, 3])
    expected = (points + lm.flip_landmarks(points, SIZE)) / 2.0
    got = steps._fll_points(crops).numpy()
    assert got.shape == (3, lm.NUM_LANDMARKS, 2)
    np.testing.assert_allclose(got, np.broadcast_to(expected, got.shape), atol=1e-4)


def test_settings_refuse_a_non_boolean_and_old_bundles_have_it_off():
    with pytest.raises(ValueError, match="fll_flip"):
        CropSettings(fll_flip="yes")
    old = {k: v for k, v in CropSettings().to_dict().items() if k != "fll_flip"}
    assert CropSettings.from_dict(old).fll_flip is False
    assert CropSettings().with_tracker_choices(fll_flip=True).fll_flip is True
    assert CropSettings(fll_flip=True).with_tracker_choices(fll_box="bt_centre").fll_flip is True


@pytest.fixture(scope="module")
def untrained_weights(tmp_path_factory):
    return save_untrained_bundle(tmp_path_factory.mktemp("fll_flip") / "weights", "tiny")


def test_runtime_takes_the_weights_setting_unless_told(untrained_weights):
    from crct_tf.tracking.runtime import load_runtime
    assert load_runtime(str(untrained_weights)).steps.settings.fll_flip is False
    assert load_runtime(str(untrained_weights), fll_flip=True).steps.settings.fll_flip is True


def test_load_tracker_passes_the_fll_choices(untrained_weights):
    import crct_tf
    chosen = crct_tf.load_tracker(str(untrained_weights), runtime="tf", fll_box="bt_centre",
                                  fll_flip=True, detect=lambda rgb: (np.zeros([0, 4]), np.zeros(0)))
    assert (chosen.tracker.steps.settings.fll_box, chosen.tracker.steps.settings.fll_flip) == \
        ("bt_centre", True)


def test_saved_model_keeps_the_settings_it_was_exported_with(untrained_weights, tmp_path):
    """fll_flip, and the tracker's recheck_fll (FV's second look) in its constants."""
    from crct_tf import export
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    from crct_tf.tracking.tracker import TrackerConfig
    out = export.run("saved_model", str(tmp_path / "saved"), weights=str(untrained_weights),
                     jit_compile=False, fll_flip=True, recheck_fll=True)
    constants = json.loads((tmp_path / "saved" / "assets" / "crct_tracker.json").read_text())
    assert constants["crop_settings"]["fll_flip"] is True
    restored = load_runtime(saved_model=out)
    assert restored.steps.settings.fll_flip is True
    assert TrackerConfig.from_constants(restored.constants["tracker"]).fll_recheck is True
    with pytest.raises(RuntimeLoadError, match="exported with fll_flip on; .* --fll_flip off"):
        load_runtime(saved_model=out, fll_flip=False)
    # The restored step mirrors: it equals the in-memory step with the option on.
    frame = np.random.default_rng(0).integers(0, 255, [H, W, 3], dtype=np.uint8)
    in_memory = load_runtime(str(untrained_weights), fll_flip=True).steps
    np.testing.assert_allclose(restored.steps.fll_step(frame, BOX[None])["landmarks"],
                               in_memory.fll_step(frame, BOX[None])["landmarks"], atol=1e-3)


def test_track_command_refuses_a_bad_value_in_one_line(capsys):
    assert run_track("--fll_flip", "maybe", "--max_frames", "1") == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "--fll_flip" in err
