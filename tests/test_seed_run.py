"""tools/seed_run_from_bundle.py: a run seeded from the bundled weights, and `--backbone_from`,
which takes the backbone from another run (BT refitted on a new FLL's backbone)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from helpers import load_tool

from crct_tf.training import loop, run_setup, tasks


def _tool():
    return load_tool("seed_run_from_bundle")


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


def test_seeded_fv_run_restores_the_bundles_validator(tmp_path):
    from crct_tf.tracking.runtime import load_weights
    from helpers import save_untrained_bundle
    weights = str(save_untrained_bundle(tmp_path / "weights", "tiny"))
    source = load_weights(weights)
    for kernel in source.fv.trainable_weights:            # weights no fresh FV would have
        kernel.assign(tf.random.stateless_normal(kernel.shape, [3, 4]))
    source_weights = source.fv.get_weights()
    from crct_tf.weights.bundle import save_bundle
    save_bundle(weights, source.bt, source.fv, source.fll, source.settings, source.tracker,
                source.mtcnn_box_map, backbone="tiny", overwrite=True)
    seed = tmp_path / "fv_seed"
    _tool().seed_run("fv", str(seed), weights=weights)
    restored, run, _ = run_setup.restore_run(str(seed))
    assert run["model"] == "fv" and restored.backbone is None
    for got, expected in zip(restored.model.get_weights(), source_weights):
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert _tool().main(["--part", "fv", "--model_dir", str(tmp_path / "again"),
                         "--backbone_from", str(seed)]) == 2


def test_average_with_seeds_the_mean_of_two_bundles_weights(tmp_path):
    """`--average_with`: the seeded part holds, weight by weight, the mean of the two bundles';
    `--average_share` weights the mean."""
    from crct_tf.tracking.runtime import load_weights
    from crct_tf.weights.bundle import save_bundle
    from helpers import save_untrained_bundle
    values = []
    for name, seed in (("a", [3, 4]), ("b", [5, 6])):
        folder = str(save_untrained_bundle(tmp_path / name, "tiny"))
        source = load_weights(folder)
        for i, kernel in enumerate(source.fv.trainable_weights):
            kernel.assign(tf.random.stateless_normal(kernel.shape, [seed[0] + i, seed[1]]))
        save_bundle(folder, source.bt, source.fv, source.fll, source.settings, source.tracker,
                    source.mtcnn_box_map, backbone="tiny", overwrite=True)
        values.append(load_weights(folder).fv.get_weights())    # as stored (float16 or not)
    seed_dir = tmp_path / "fv_seed"
    assert _tool().main(["--part", "fv", "--model_dir", str(seed_dir), "--weights",
                         str(tmp_path / "a"), "--average_with", str(tmp_path / "b")]) == 0
    restored, run, _ = run_setup.restore_run(str(seed_dir))
    assert run["averaged_with"] == str(tmp_path / "b")
    for got, a, b in zip(restored.model.get_weights(), *values):
        np.testing.assert_allclose(got, (a.astype(np.float32) + b) / 2.0, rtol=1e-6, atol=1e-7)
    assert any(np.abs(a - b).max() > 0.1 for a, b in zip(*values))     # the two differ
    share_dir = tmp_path / "fv_quarter"                      # --average_share: b's share
    assert _tool().main(["--part", "fv", "--model_dir", str(share_dir), "--weights",
                         str(tmp_path / "a"), "--average_with", str(tmp_path / "b"),
                         "--average_share", "0.25"]) == 0
    restored, run, _ = run_setup.restore_run(str(share_dir))
    assert run["average_share"] == 0.25
    for got, a, b in zip(restored.model.get_weights(), *values):
        np.testing.assert_allclose(got, 0.75 * a.astype(np.float32) + 0.25 * b,
                                   rtol=1e-6, atol=1e-6)
    assert _tool().main(["--part", "fv", "--model_dir", str(tmp_path / "bad_share"),
                         "--weights", str(tmp_path / "a"), "--average_with",
                         str(tmp_path / "b"), "--average_share", "1.5"]) == 2
    assert not os.path.exists(tmp_path / "bad_share" / "checkpoints")
    with pytest.raises(ValueError, match="--average_with other: its network has other"):
        _tool().average_weights(values[0], values[0][:-1], "other")
