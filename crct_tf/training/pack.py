"""Packs training runs (BT, FV, FLL) into one weights bundle.

    python -m crct_tf.export --format bundle --model_dir runs/fll --model_dir runs/fv \
        --model_dir runs/bt_seq2 --export_dir bundles/crct_2

The tracker constants come with the bundle: SeqBT from the BT run, T_B = 1.0 and T_C = 0.5
(paper IV-A; `--t_c` sets a calibrated T_C), and the MTCNN box map fitted on the bootstrap photos' labels.
"""

import dataclasses
import os

import tensorflow as tf
from absl import logging

from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.weights import bundle
from crct_tf.training import loop, run_setup

T_B = 1.0   # eq. 8's distance threshold (paper IV-A)
T_C = 0.5   # the validator's threshold (paper IV-A)


def _default_box_map():
    from crct_tf.datasets.crct_bootstrap import mtcnn_box_map
    return mtcnn_box_map().to_dict()


def _training_crops(settings):
    """`settings` with the tracker's choices (`fll_box`, `fll_flip`, `fll_upright`,
    `fll_turn`) at their defaults: a run seeded from a bundle carries the bundle's, a trained run none, and a bundle
    takes them from `pack_runs`' arguments."""
    return dataclasses.replace(settings, fll_box="bt", fll_flip=False, fll_upright=False,
                               fll_turn=False)


def bundle_settings(bt_settings, fll_settings, fv_settings):
    """The crop settings of a bundle of these runs: BT's, with FLL's crop size when FLL was
    trained on crops of another size (`CropSettings.fll_input_size`), and the tracker's
    choices at their defaults (`_training_crops`). FLL's crop size is the FLL run's alone: a BT
    or FV run seeded from a bundle carries the bundle's, which says nothing of BT or FV.

    Raises:
      bundle.BundleError: the runs differ in anything else.
    """
    fll_settings = _training_crops(fll_settings)
    bt_settings, fv_settings = (dataclasses.replace(_training_crops(s), fll_input_size=None)
                                for s in (bt_settings, fv_settings))
    fll_size = fll_settings.fll_size
    combined = dataclasses.replace(
        bt_settings, fll_input_size=None if fll_size == bt_settings.input_size else fll_size)
    fll_as_bundled = dataclasses.replace(fll_settings, input_size=bt_settings.input_size,
                                         fll_input_size=combined.fll_input_size)
    if fll_as_bundled != combined or fv_settings != bt_settings:
        raise bundle.BundleError("the runs were trained with different crop settings: "
                                 f"{bt_settings} / {fll_settings} / {fv_settings}")
    return combined


def pack_runs(model_dirs, export_dir, dtype="float32", overwrite=False, share_backbone=False,
              mtcnn_box_map=None, t_c=T_C, fll_box=None, fll_flip=None,
              fll_upright=None, recheck_fll=None, fll_turn=None):
    """Restores the latest checkpoint of each run and writes them as one bundle.

    Args:
      model_dirs: run folders, one per sub-network (bt, fv, fll), in any order.
      share_backbone: store one backbone for BT and FLL -- BT's, which the curriculum started
        from the fine-tuned FLL (paper III-E) -- instead of both (the paper keeps them apart).
      t_c: the validator's threshold saved with the weights (default the paper's 0.5; a value
        calibrated on held-out faces by `python -m crct_tf.evaluation.robustness_fv`).
      fll_box: where the tracker puts FLL's crop (`CropSettings.fll_box`); None: `bt`
        (Algorithm 1), whatever the runs say.
      fll_flip: FLL on its crop and the mirrored crop, averaged (`CropSettings.fll_flip`);
        None: off.
      fll_upright: FLL's crop turned upright by BT's roll (`CropSettings.fll_upright`); None:
        off.
      fll_turn: FLL also on its crop turned by BT's roll, averaged (`CropSettings.fll_turn`);
        None: off.
      recheck_fll: FV's second look, at FLL's landmarks, when it rejects BT's estimate
        (`TrackerConfig.recheck_fll`), saved in the tracker constants; None: not saved (the
        tracker's default: on with several faces, off with one, as Algorithm 1).

    Raises:
      bundle.BundleError: a sub-network missing or given twice, runs with different crop
        settings, or a run that cannot be restored.
    """
    runs = {}
    for model_dir in model_dirs:
        name = run_setup.read_run(model_dir)["model"]
        if name in runs:
            raise bundle.BundleError(f"two {name} runs given: {runs[name]} and {model_dir}")
        runs[name] = model_dir
    missing = sorted({"bt", "fv", "fll"} - set(runs))
    if missing:
        raise bundle.BundleError(f"a bundle needs bt, fv and fll runs; missing {missing}")
    settings = bundle_settings(*(
        CropSettings.from_dict(run_setup.read_run(runs[name])["crop_settings"])
        for name in ("bt", "fll", "fv")))
    shared = None
    if share_backbone and settings.backbone_size is None:     # one backbone for two crop sizes
        shared = run_setup.backbone_for(run_setup.read_run(runs["bt"])["backbone"], None)
    bt, bt_run, bt_ckpt = run_setup.restore_run(runs["bt"], shared_backbone=shared,
                                                settings=settings)
    fv, _, fv_ckpt = run_setup.restore_run(runs["fv"])
    if share_backbone:
        fll, fll_run, fll_ckpt = run_setup.restore_run(runs["fll"], shared_backbone=bt.backbone,
                                                       settings=settings)
        # restore_run read FLL's checkpoint into the shared backbone too: BT's wins.
        bt, bt_run, bt_ckpt = _reload_backbone(bt, runs["bt"])
    else:
        fll, fll_run, fll_ckpt = run_setup.restore_run(runs["fll"], settings=settings)
    if bt_run["backbone"] != fll_run["backbone"]:
        raise bundle.BundleError("BT and FLL runs use different backbones")
    training = {"runs": {"bt": runs["bt"], "fv": runs["fv"], "fll": runs["fll"]},
                "checkpoints": {"bt": bt_ckpt, "fv": fv_ckpt, "fll": fll_ckpt},
                "bt_run": bt_run, "fll_run": fll_run}
    if not 0.0 < t_c < 1.0:
        raise bundle.BundleError(f"T_C must be between 0 and 1, got {t_c}")
    tracker = {"seq_bt": int(bt_run["seq_bt"]), "t_b": T_B, "t_c": float(t_c)}
    if recheck_fll is not None:
        tracker["recheck_fll"] = bool(recheck_fll)
    try:
        settings = settings.with_tracker_choices(fll_box, fll_flip, fll_upright, fll_turn)
    except ValueError as e:
        raise bundle.BundleError(str(e)) from None
    path = bundle.save_bundle(
        export_dir, bt.model, fv.model, fll.model, settings, tracker,
        mtcnn_box_map or _default_box_map(), training=training, dtype=dtype,
        overwrite=overwrite, backbone=run_setup.bundle_backbone_name(bt_run["backbone"]))
    logging.info("bundle written to %s", path)
    return path


def _reload_backbone(task, model_dir):
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, loop.CHECKPOINT_SUBDIR))
    tf.train.Checkpoint(model=task.model).read(latest).expect_partial()
    return task, run_setup.read_run(model_dir), latest
