"""Packing training runs into a bundle: pack -> load into fresh models -> identical outputs."""

import dataclasses
import os
import numpy as np
import pytest
import tensorflow as tf

from crct_tf.weights import bundle
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.models.bt import zero_state
from crct_tf.models.tiny_backbone import build_tiny_backbone
from crct_tf.tracking.tracker import TrackerConfig
from crct_tf.training import loop, pack, run_setup, tasks

SETTINGS = CropSettings(fll_context=1.6)
BOX_MAP = {"dx": 0.0, "dy": 0.1, "sx": 1.0, "sy": 0.8}


def _fake_batches(name):
    rng = np.random.default_rng(0)
    if name == "fll":
        batch = (rng.uniform(0, 255, (2, 128, 128, 3)).astype("float32"),
                 rng.uniform(30, 90, (2, 68, 2)).astype("float32"))
    elif name == "fv":
        batch = (rng.uniform(0, 255, (2, 68, 12, 12, 3)).astype("float32"),
                 np.array([0.0, 1.0], np.float32))
    else:
        batch = {"frames": rng.integers(0, 255, (2, 3, 160, 160, 3)).astype("uint8"),
                 "landmarks": rng.uniform(50, 110, (2, 3, 68, 2)).astype("float32")}
    return lambda seq_len, first: tf.data.Dataset.from_tensors(batch).repeat()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    dirs = {}
    for name in ("fll", "fv", "bt"):
        model_dir = str(root / name)
        run_setup.write_run(model_dir, {"model": name, "backbone": "tiny", "seq_bt": 2,
                                        "crop_settings": SETTINGS.to_dict()})
        config = loop.LoopConfig(model_dir=model_dir, steps=3, batch_size=2, learning_rate=1e-2)
        loop.train(tasks.get_task(name, SETTINGS, build_tiny_backbone), config,
                   tf.distribute.OneDeviceStrategy("/cpu:0"), dataset_fn=_fake_batches(name))
        dirs[name] = model_dir
    return dirs


def test_pack_then_load_gives_the_runs_outputs(runs, tmp_path):
    path = pack.pack_runs([runs["bt"], runs["fv"], runs["fll"]], str(tmp_path / "bundle"),
                          mtcnn_box_map=BOX_MAP)
    loaded = bundle.load_bundle(path)
    assert not loaded.manifest["shared_backbone"] and loaded.manifest["backbone"] == "tiny"
    assert loaded.tracker == {"seq_bt": 2, "t_b": pack.T_B, "t_c": pack.T_C}
    assert loaded.settings == SETTINGS and loaded.mtcnn_box_map == BOX_MAP
    rng = np.random.default_rng(1)
    crops = rng.uniform(0, 255, (1, 128, 128, 3)).astype("float32")
    patches = rng.uniform(0, 255, (1, 68, 12, 12, 3)).astype("float32")
    inputs = {"previous_crop": crops, "current_crop": crops[:, ::-1].copy(),
              "state": zero_state(1)}
    for name, run_input, loaded_model in (("fll", crops, loaded.fll), ("fv", patches, loaded.fv),
                                          ("bt", inputs, loaded.bt)):
        task, _, _ = run_setup.restore_run(runs[name])
        expected, got = task.model(run_input), loaded_model(run_input)
        if name == "bt":
            expected, got = expected["landmarks"], got["landmarks"]
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    # The trained heads moved away from their initial mean face: the check compares something.
    fresh = tasks.get_task("fll", SETTINGS, build_tiny_backbone).build_model()
    assert not np.allclose(fresh(crops), loaded.fll(crops))


def test_pack_refuses_missing_or_repeated_parts(runs, tmp_path):
    with pytest.raises(bundle.BundleError, match="missing \\['fv'\\]"):
        pack.pack_runs([runs["bt"], runs["fll"]], str(tmp_path / "a"), mtcnn_box_map=BOX_MAP)
    with pytest.raises(bundle.BundleError, match="two fll runs"):
        pack.pack_runs([runs["fll"], runs["fll"], runs["fv"], runs["bt"]], str(tmp_path / "b"),
                       mtcnn_box_map=BOX_MAP)


def test_pack_saves_a_calibrated_t_c_and_refuses_one_out_of_range(runs, tmp_path):
    parts = [runs["bt"], runs["fv"], runs["fll"]]
    path = pack.pack_runs(parts, str(tmp_path / "calibrated"), mtcnn_box_map=BOX_MAP, t_c=0.7)
    assert bundle.load_bundle(path).tracker["t_c"] == 0.7
    with pytest.raises(bundle.BundleError, match="T_C must be between 0 and 1"):
        pack.pack_runs(parts, str(tmp_path / "bad"), mtcnn_box_map=BOX_MAP, t_c=1.5)
    assert not os.path.exists(tmp_path / "bad")


def test_pack_saves_the_trackers_fll_choices(runs, tmp_path):
    """--fll_box / --fll_flip of `export --format bundle` end up in the manifest's crop settings;
    not given, the runs' own (the paper's `bt`, off)."""
    parts = [runs["bt"], runs["fv"], runs["fll"]]
    chosen = bundle.load_bundle(pack.pack_runs(parts, str(tmp_path / "chosen"),
                                               mtcnn_box_map=BOX_MAP, fll_box="bt_centre",
                                               fll_flip=True)).settings
    assert (chosen.fll_box, chosen.fll_flip) == ("bt_centre", True)
    plain = bundle.load_bundle(pack.pack_runs(parts, str(tmp_path / "plain"),
                                              mtcnn_box_map=BOX_MAP)).settings
    assert (plain.fll_box, plain.fll_flip) == ("bt", False)
    assert dataclasses.replace(chosen, fll_box="bt", fll_flip=False) == plain


def test_pack_saves_the_validators_second_look_only_when_chosen(runs, tmp_path):
    """--recheck_fll of `export --format bundle` ends up in the manifest's tracker constants,
    and a tracker built from them uses it; not given, nothing is saved (the tracker's own
    default: Algorithm 1 with one face)."""
    parts = [runs["bt"], runs["fv"], runs["fll"]]
    chosen = bundle.load_bundle(pack.pack_runs(parts, str(tmp_path / "chosen"),
                                               mtcnn_box_map=BOX_MAP, recheck_fll=True)).tracker
    plain = bundle.load_bundle(pack.pack_runs(parts, str(tmp_path / "plain"),
                                              mtcnn_box_map=BOX_MAP)).tracker
    assert chosen == {**plain, "recheck_fll": True} and "recheck_fll" not in plain
    assert TrackerConfig.from_constants(chosen).fll_recheck is True
    assert TrackerConfig.from_constants(plain).fll_recheck is False
