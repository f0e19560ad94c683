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


def _randomised_networks(seed):
    """BT, FV and FLL on one tiny backbone with every kernel and bias moved at random, so that
    each output depends on every weight (the untrained heads' zero kernels would hide the rest)."""
    backbone = build_tiny_backbone(SETTINGS.input_size)
    networks = build_bt(backbone, SETTINGS), build_fv(SETTINGS), build_fll(backbone, SETTINGS)
    rng = np.random.default_rng(seed)
    for model in networks:
        for variable in model.weights:
            value = variable.numpy()
            variable.assign(value + rng.normal(0, 0.02 + 0.1 * np.abs(value).mean(), value.shape)
                            .astype(value.dtype))
    return networks


def _patches(batch=2):
    return np.random.default_rng(3).uniform(0, 255, (batch, 68, 12, 12, 3)).astype("float32")


def _outputs(networks):
    bt, fv, fll = networks
    out = bt(_bt_inputs())
    return {"bt_landmarks": np.asarray(out["landmarks"]), "bt_state": np.asarray(out["state"]),
            "fv": np.asarray(fv(_patches())), "fll": np.asarray(fll(_crops()))}


def test_configs_round_trip():
    networks = _randomised_networks(0)
    clones = []
    for model in networks:
        clone = keras.Model.from_config(model.get_config())
        clone.set_weights(model.get_weights())
        clones.append(clone)
    expected, got = _outputs(networks), _outputs(clones)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5,
                                   err_msg=name)


def test_every_layer_is_named_by_us(networks):
    for model in networks:
        for layer in model.layers:
            assert not layer.name.startswith(("dense", "conv2d", "lstm", "reshape")), layer.name


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_saved_and_loaded_bundle_gives_the_same_outputs(tmp_path, dtype):
    networks = _randomised_networks(1)
    path = str(tmp_path / "bundle")
    bundle.save_bundle(path, *networks, SETTINGS, {"seq_bt": 2, "t_b": 1.0, "t_c": 0.5},
                       {"dx": 0.0, "dy": 0.1, "sx": 1.0, "sy": 1.0}, backbone="tiny",
                       dtype=dtype)
    loaded = bundle.load_bundle(path)
    expected, got = _outputs(networks), _outputs((loaded.bt, loaded.fv, loaded.fll))
    fresh = _outputs(_randomised_networks(2))            # other weights, other outputs
    for name in expected:
        if dtype == "float32":
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
        else:                       # weights rounded to float16: close, not equal
            scale = np.abs(expected[name]).max() + 1e-6
            assert np.abs(got[name] - expected[name]).max() <= 1e-2 * scale, name
        assert np.abs(fresh[name] - expected[name]).max() > 1e-3 * np.abs(expected[name]).max()
    assert loaded.manifest["shared_backbone"] and loaded.manifest["dtype"] == dtype
    assert loaded.tracker == {"seq_bt": 2, "t_b": 1.0, "t_c": 0.5}


def test_bundle_refusals(networks, tmp_path):
    bt, fv, fll = networks
    path = str(tmp_path / "bundle é")
    bundle.save_bundle(path, bt, fv, fll, SETTINGS, {"seq_bt": 2, "t_b": 1.0, "t_c": 0.5},
                       {"dx": 0.0, "dy": 0.1, "sx": 1.0, "sy": 1.0}, backbone="tiny")
    with pytest.raises(bundle.BundleError, match="exists"):
        bundle.save_bundle(path, bt, fv, fll, SETTINGS, {}, {}, backbone="tiny")
    with open(os.path.join(path, "README.md"), "w") as f:     # a model card, then a retrain
        f.write("# Model card\n")
    with open(os.path.join(path, "notes.txt"), "w") as f:     # anything else is replaced
        f.write("scratch\n")
    bundle.save_bundle(path, bt, fv, fll, SETTINGS, {"seq_bt": 2, "t_b": 1.0, "t_c": 0.7},
                       {"dx": 0.0, "dy": 0.1, "sx": 1.0, "sy": 1.0}, backbone="tiny",
                       overwrite=True)
    assert open(os.path.join(path, "README.md")).read() == "# Model card\n"
    assert not os.path.exists(os.path.join(path, "notes.txt"))
    assert bundle.read_manifest(path)["tracker"]["t_c"] == 0.7

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
