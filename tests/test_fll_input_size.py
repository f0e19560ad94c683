"""FLL's crops at a size of their own (`CropSettings.fll_input_size`): the settings, the step's
crop and point map, packing runs trained at two sizes, and a bundle sharing one backbone."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from crct_tf.geometry import cropping
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.tracking.frame_step import FrameSteps
from crct_tf.training.pack import bundle_settings
from crct_tf.weights.bundle import BundleError

from helpers import BOX, STATE_SHAPE, H, W

FLL_SIZE = 160


def test_settings_default_to_one_size_and_refuse_a_bad_one():
    one = CropSettings()
    assert (one.fll_size, one.backbone_size) == (128, 128)
    two = CropSettings(fll_input_size=FLL_SIZE)
    assert (two.input_size, two.fll_size, two.backbone_size) == (128, FLL_SIZE, None)
    # a manifest written before the setting existed reads as one size
    old = {k: v for k, v in one.to_dict().items() if k != "fll_input_size"}
    assert CropSettings.from_dict(old).fll_input_size is None
    for bad in (0, -160, 160.0, "160"):
        with pytest.raises(ValueError, match="fll_input_size"):
            CropSettings(fll_input_size=bad)


def test_the_step_cuts_fll_s_crop_at_its_size_and_maps_its_points_back():
    """A stand-in FLL that puts every point at a fixed crop pixel: the crop must be FLL's size,
    and the points must come back through that size (the window's pixel, not BT's size's)."""
    seen = []
    pixel = (37.0, 101.0)                                   # a crop pixel of a 160 crop

    def fll(crops):
        seen.append(tuple(crops.shape[1:]))
        return tf.tile(tf.constant([[pixel]], tf.float32), [tf.shape(crops)[0], 68, 1])

    settings = CropSettings(fll_input_size=FLL_SIZE, fll_context=1.6)
    steps = FrameSteps(lambda inputs: inputs, lambda p: tf.ones([tf.shape(p)[0]]), fll,
                       settings, state_shape=STATE_SHAPE)
    frame = np.random.default_rng(0).integers(0, 255, [H, W, 3]).astype(np.uint8)
    points = steps.fll_step(frame, BOX[None])["landmarks"].numpy()[0]
    assert seen[-1] == (FLL_SIZE, FLL_SIZE, 3)
    window = cropping.square_context_box(BOX, 1.6)
    expected = cropping.points_from_crop(np.array([pixel], np.float32), window, FLL_SIZE)[0]
    np.testing.assert_allclose(points, np.tile(expected, [68, 1]), atol=1e-3)
    # through BT's size instead the same pixel would land elsewhere
    wrong = cropping.points_from_crop(np.array([pixel], np.float32), window, 128)[0]
    assert np.linalg.norm(expected - wrong) > 5.0


def test_bundle_settings_take_fll_s_crop_size_and_refuse_other_differences():
    bt = CropSettings(fll_context=1.6)
    assert bundle_settings(bt, bt, bt).fll_input_size is None
    fll_160 = CropSettings(input_size=FLL_SIZE, fll_context=1.6)     # `--input_size 160` FLL run
    assert bundle_settings(bt, fll_160, bt) == dataclasses.replace(bt, fll_input_size=FLL_SIZE)
    fll_flag = CropSettings(fll_input_size=FLL_SIZE, fll_context=1.6)  # `--fll_input_size` run
    assert bundle_settings(bt, fll_flag, bt).fll_size == FLL_SIZE
    with pytest.raises(BundleError, match="different crop settings"):
        bundle_settings(bt, dataclasses.replace(fll_160, fll_context=2.0), bt)
    with pytest.raises(BundleError, match="different crop settings"):
        bundle_settings(bt, fll_160, dataclasses.replace(bt, bt_context=1.5))
    # A run seeded from a bundle carries the bundle's tracker choices; a trained run none. They
    # are not crop settings: ignored here, set by the export's flags.
    seeded = dataclasses.replace(bt, fll_flip=True, fll_box="bt_centre")
    assert bundle_settings(seeded, fll_160, dataclasses.replace(bt, fll_upright=True)) == \
        dataclasses.replace(bt, fll_input_size=FLL_SIZE)
    # An FV (or BT) run seeded from a bundle of a 160-px FLL carries that size; FLL's run decides.
    seeded_fv = dataclasses.replace(bt, fll_input_size=FLL_SIZE)
    assert bundle_settings(bt, fll_160, seeded_fv) == dataclasses.replace(bt, fll_input_size=FLL_SIZE)
    assert bundle_settings(seeded_fv, bt, seeded_fv).fll_input_size is None


@pytest.mark.slow
def test_a_bundle_of_two_crop_sizes_shares_one_backbone_and_round_trips(tmp_path):
    from crct_tf.weights.bundle import load_bundle, read_manifest, save_bundle, untrained_bundle
    settings = CropSettings(fll_input_size=FLL_SIZE)
    b = untrained_bundle(settings=settings)
    assert b.bt.get_layer("backbone") is b.fll.get_layer("backbone")
    assert tuple(b.fll.input.shape[1:]) == (FLL_SIZE, FLL_SIZE, 3)
    assert tuple(b.bt.input["current_crop"].shape[1:]) == (128, 128, 3)
    rng = np.random.default_rng(1)
    for layer in b.fll.layers:                  # a head whose points depend on the crop
        if layer.name.startswith("fll_regression") and len(layer.weights) == 2:
            kernel, bias = layer.get_weights()
            layer.set_weights([rng.normal(0, 1e-3, kernel.shape).astype(np.float32), bias])
    save_bundle(str(tmp_path / "w"), b.bt, b.fv, b.fll, b.settings, b.tracker, b.mtcnn_box_map)
    manifest = read_manifest(str(tmp_path / "w"))
    assert manifest["shared_backbone"] and manifest["crop_settings"]["fll_input_size"] == FLL_SIZE
    loaded = load_bundle(str(tmp_path / "w"))
    crops = rng.uniform(0, 255, [2, FLL_SIZE, FLL_SIZE, 3]).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded.fll(crops)), np.asarray(b.fll(crops)), atol=1e-4)
    assert loaded.settings.fll_size == FLL_SIZE


def test_the_tiny_stand_in_refuses_two_crop_sizes():
    from crct_tf.weights.bundle import untrained_bundle
    with pytest.raises(ValueError, match="tiny backbone takes one crop size"):
        untrained_bundle(settings=CropSettings(fll_input_size=FLL_SIZE), backbone="tiny")


def test_training_crops_are_fll_s_size_and_the_points_follow_them():
    """The training pipeline cuts FLL's crops at `fll_size`, with the true points mapped into
    that crop: the same crop and map the tracker's step uses."""
    from crct_tf.data import fll_pipeline, synthetic
    settings = CropSettings(fll_input_size=FLL_SIZE, fll_context=1.6)
    source = synthetic.synthetic_faces(4)
    crops, points = next(iter(fll_pipeline.make_fll_dataset(
        source, settings, batch_size=2, augment=False, repeat=False, shuffle_buffer=0)))
    assert tuple(crops.shape) == (2, FLL_SIZE, FLL_SIZE, 3)
    example = next(iter(source))
    landmarks = example["landmarks"].numpy()
    box = np.concatenate([landmarks.min(0), landmarks.max(0)])
    window = cropping.square_context_box(box, 1.6)
    np.testing.assert_allclose(points[0].numpy(),
                               cropping.points_to_crop(landmarks, window, FLL_SIZE), atol=1e-3)
