"""tools/seed_run_from_bundle.py: a run seeded from the bundled weights, and `--backbone_from`,
which takes the backbone from another run (BT refitted on a new FLL's backbone)."""

import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf

from helpers import REPO

from crct_tf.training import loop, run_setup, tasks


def _tool():
    spec = importlib.util.spec_from_file_location(
        "seed_run_from_bundle", os.path.join(REPO, "tools", "seed_run_from_bundle.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_backbone_from_a_folder_without_checkpoints_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint there"):
        _tool().latest_checkpoint(str(tmp_path))
    assert _tool().main(["--part", "bt", "--model_dir", str(tmp_path / "seed"),
                         "--backbone_from", str(tmp_path / "missing")]) == 2


@pytest.mark.slow
def test_seeded_bt_run_holds_the_bundles_bt_on_another_runs_backbone(tmp_path):
    from crct_tf.tracking.runtime import load_weights
    source = load_weights(None)
    # An "FLL run" whose backbone differs from the bundled one: its first kernel is a constant.
    fll = tasks.get_task("fll", source.settings,
                         lambda size: run_setup.backbone_for("facenet", size))
    fll.build_model()
    first = fll.backbone.trainable_weights[0]
    first.assign(tf.fill(first.shape, 0.125))
    index = next(i for i, w in enumerate(fll.backbone.weights) if w is first)
    run = tmp_path / "fll_run"
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=fll.model, backbone=fll.backbone),
        str(run / loop.CHECKPOINT_SUBDIR), max_to_keep=1)
    manager.save(checkpoint_number=7)

    seed = tmp_path / "bt_seed"
    _tool().seed_run("bt", str(seed), backbone_from=str(run))
    bt = tasks.get_task("bt", source.settings,
                        lambda size: run_setup.backbone_for("facenet", size),
                        seq_bt=int(source.tracker["seq_bt"]), freeze_backbone=True)
    bt.build_model()
    tf.train.Checkpoint(model=bt.model, backbone=bt.backbone).restore(
        tf.train.latest_checkpoint(str(seed / loop.CHECKPOINT_SUBDIR))).expect_partial()
    # The backbone is the FLL run's; BT's own layers are the bundle's.
    np.testing.assert_array_equal(bt.backbone.weights[index].numpy(), 0.125)
    bundled_head = source.bt.get_layer("bt_embedding").get_weights()
    for seeded, bundled in zip(bt.model.get_layer("bt_embedding").get_weights(), bundled_head):
        np.testing.assert_array_equal(seeded, bundled)
