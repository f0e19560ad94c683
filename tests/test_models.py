"""The sub-networks: shapes, separate regional heads, config round trips, bundle round trips."""

import os

import keras
import numpy as np
import pytest

from crct_tf.weights import bundle
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.geometry.landmarks import REGIONS
from crct_tf.models.bt import build_bt, zero_state
from crct_tf.models.fll import build_fll
from crct_tf.models.fv import build_fv
from crct_tf.models.landmark_heads import mean_shape_in_crop
from crct_tf.models.tiny_backbone import build_tiny_backbone

SETTINGS = CropSettings()


@pytest.fixture(scope="module")
def networks():
    backbone = build_tiny_backbone(SETTINGS.input_size)
    return build_bt(backbone, SETTINGS), build_fv(SETTINGS), build_fll(backbone, SETTINGS)


def _crops(batch=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, 128, 128, 3)).astype("float32")


def _bt_inputs(batch=2):
    return {"previous_crop": _crops(batch, 1), "current_crop": _crops(batch, 2),
            "state": zero_state(batch)}


def test_shapes_at_batch_2(networks):
    bt, fv, fll = networks
    out = bt(_bt_inputs())
    assert out["landmarks"].shape == (2, 68, 2) and out["state"].shape == (2, 4, 512)
    assert fll(_crops()).shape == (2, 68, 2)
    p = np.asarray(fv(np.random.default_rng(0).uniform(0, 255, (2, 68, 12, 12, 3))
                      .astype("float32")))
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))


def test_untrained_heads_start_from_the_mean_face(networks):
    _, _, fll = networks
    np.testing.assert_allclose(fll(_crops())[0], mean_shape_in_crop(128, SETTINGS.fll_context),
                               atol=1e-4)


def test_the_five_bt_heads_are_separate_and_own_their_regions(networks):
    bt = networks[0]
    inputs = _bt_inputs()
    before = np.asarray(bt(inputs)["landmarks"])
    names = [layer.name for layer in bt.layers if layer.name.startswith("bt_head_")
             and isinstance(layer, keras.layers.Dense)]
    assert sorted(names) == sorted(f"bt_head_{r}" for r in REGIONS)
    for region, indices in REGIONS.items():
        head = bt.get_layer(f"bt_head_{region}")
        kernel, bias = head.get_weights()
        head.set_weights([kernel, bias + 0.1])            # move only this head
        after = np.asarray(bt(inputs)["landmarks"])
        head.set_weights([kernel, bias])
        moved = np.where(np.abs(after - before).max(axis=(0, 2)) > 1e-3)[0]
        assert list(moved) == list(indices), region


def test_lstm_state_carries_information(networks):
    bt = networks[0]
    inputs = _bt_inputs()
    first = bt(inputs)
    second = bt({**inputs, "state": np.asarray(first["state"])})
    assert np.abs(np.asarray(first["state"])).max() > 0
    assert not np.allclose(first["state"], second["state"])


def test_configs_round_trip(networks):
    for model in networks:
        clone = keras.Model.from_config(model.get_config())
        assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]


def test_every_layer_is_named_by_us(networks):
    for model in networks:
        for layer in model.layers:
            assert not layer.name.startswith(("dense", "conv2d", "lstm", "reshape")), layer.name


def test_bundle_round_trip_and_refusals(networks, tmp_path):
    bt, fv, fll = networks
    path = str(tmp_path / "bundle é")
    bundle.save_bundle(path, bt, fv, fll, SETTINGS, {"seq_bt": 2, "t_b": 1.0, "t_c": 0.5},
                       {"dx": 0.0, "dy": 0.1, "sx": 1.0, "sy": 1.0}, backbone="tiny")
    loaded = bundle.load_bundle(path)
    inputs = _bt_inputs()
    np.testing.assert_array_equal(loaded.bt(inputs)["landmarks"], bt(inputs)["landmarks"])
    np.testing.assert_array_equal(loaded.fll(_crops()), fll(_crops()))
    assert loaded.manifest["shared_backbone"] and loaded.tracker["seq_bt"] == 2
    with pytest.raises(bundle.BundleError, match="exists"):
        bundle.save_bundle(path, bt, fv, fll, SETTINGS, {}, {}, backbone="tiny")

    fv_file = os.path.join(path, "fv.weights.h5")
    data = open(fv_file, "rb").read()
    with open(fv_file, "wb") as f:                        # truncated file
        f.write(data[: len(data) // 2])
    with pytest.raises(bundle.BundleError, match="fv.weights.h5: sha256 differs"):
        bundle.load_bundle(path)
    os.remove(fv_file)                                     # missing file
    with pytest.raises(bundle.BundleError, match="fv.weights.h5: missing"):
        bundle.load_bundle(path)
    with pytest.raises(bundle.BundleError, match="no such weights folder"):
        bundle.load_bundle(str(tmp_path / "nowhere"))
