r"""Seeds a training run from a weights bundle, so that training fine-tunes the bundled networks.

    python tools/seed_run_from_bundle.py --part bt --model_dir runs/robust_bt_ft [--weights DIR]
    python -m crct_tf.train --flagfile=configs/robust_bt_ft.cfg      # resumes from the seed

The bundled weights were trained from runs that are not shipped. This writes `model_dir` with the
checkpoint a run of `--part` (bt, fll or fv) would have at step 0 -- model, backbone (FV has none), a fresh
optimizer, step 0 -- holding the bundle's weights, so `python -m crct_tf.train --model_dir ...`
"resumes" from them. A BT or FLL run must use --freeze_backbone (the seed's optimizer holds the
task's own layers only), which keeps the backbone shared by BT and FLL, unless the seed was
written with --train_backbone (an FLL run that fine-tunes the backbone too, after which BT is
refitted with --backbone_from); a seeded run that is not trained further packs the bundle's
part unchanged:

    python tools/seed_run_from_bundle.py --part fll --model_dir runs/bundled_fll

`--backbone_from RUN` takes the backbone from another run's last checkpoint instead (an FLL run
trained with its backbone unfrozen), so BT's bundled layers can be refitted on a new FLL's
backbone, the order of paper III-E (FLL first, then BT on its frozen backbone):

    python tools/seed_run_from_bundle.py --part bt --model_dir runs/bt_on_new \
        --backbone_from runs/more_people_fll
    python -m crct_tf.export --format bundle --model_dir runs/robust_bt_ft \
        --model_dir runs/bundled_fll --model_dir runs/robust_fv --export_dir outputs/bundle \
        --dtype float16 --share_backbone

`--average_with BUNDLE` seeds the mean, weight by weight, of the part in `--weights` and the
same part in BUNDLE (its backbone included): two fine-tunings of one network averaged (a weight
space ensemble), for example the bundled FLL and a continued one:

    python tools/seed_run_from_bundle.py --part fll --model_dir runs/soup_fll --train_backbone \
        --average_with W138a

`--average_share F` gives BUNDLE's weights the share F of the mean and `--weights` 1 - F
(default 0.5; 0 is `--weights` alone, 1 is BUNDLE alone): a point on the line between the two.

Exit 2 with one line on bad input (an existing run folder, an unknown part).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def seed_run(part, model_dir, weights=None, backbone_from=None, learning_rate=1e-4,
             lr_decay_steps=10_000, train_backbone=False, average_with=None, average_share=0.5):
    import tensorflow as tf

    from crct_tf.tracking.runtime import load_weights
    from crct_tf.training import loop, run_setup, tasks
    from crct_tf.weights.packaged import bundled_weights_dir
    if backbone_from and part == "fv":
        raise ValueError("--backbone_from: FV has no backbone")
    backbone_checkpoint = latest_checkpoint(backbone_from) if backbone_from else None
    source = load_weights(weights)
    task = tasks.get_task(part, source.settings,
                          lambda size: run_setup.backbone_for("facenet", size),
                          seq_bt=int(source.tracker["seq_bt"]),
                          freeze_backbone=not train_backbone)
    task.build_model()
    values = getattr(source, part).get_weights()
    if average_with:
        values = average_weights(values, getattr(load_weights(average_with), part).get_weights(),
                                 average_with, average_share)
    task.model.set_weights(values)
    if backbone_checkpoint:
        restore_backbone(task.backbone, backbone_checkpoint)
    config = loop.LoopConfig(model_dir=model_dir, steps=1, batch_size=1,
                             learning_rate=learning_rate, lr_decay_steps=lr_decay_steps)
    optimizer = loop.make_optimizer(config, task.trainable_variables())
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    slots = {"model": task.model, "optimizer": optimizer, "step": step}
    if task.backbone is not None:
        slots["backbone"] = task.backbone                 # the training loop's slots
    checkpoint = tf.train.Checkpoint(**slots)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(model_dir, loop.CHECKPOINT_SUBDIR), max_to_keep=3)
    path = manager.save(checkpoint_number=0)
    run_setup.write_run(model_dir, {"model": part, "backbone": "facenet",
                                    "crop_settings": source.settings.to_dict(),
                                    "seq_bt": int(source.tracker["seq_bt"]),
                                    "seeded_from": os.path.abspath(weights or
                                                                   bundled_weights_dir()),
                                    "backbone_from": backbone_from and os.path.abspath(
                                        backbone_from),
                                    "averaged_with": average_with and os.path.abspath(
                                        average_with),
                                    "average_share": average_with and average_share})
    return path


def average_weights(values, others, name, share=0.5):
    """The weighted mean `(1 - share) * values + share * others` of two lists of weight arrays of
    one network (float32); ValueError naming `--average_with` if the networks differ or the share
    is outside [0, 1]."""
    import numpy as np
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"--average_share must be between 0 and 1, got {share}")
    if len(values) != len(others) or any(a.shape != b.shape for a, b in zip(values, others)):
        raise ValueError(f"--average_with {name}: its network has other variables "
                         "(another architecture or input size?)")
    return [(1.0 - share) * np.asarray(a, np.float32) + share * np.asarray(b, np.float32)
            for a, b in zip(values, others)]


def latest_checkpoint(run_dir):
    """The last checkpoint of a run folder; ValueError naming `--backbone_from` if none."""
    import tensorflow as tf

    from crct_tf.training import loop
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, loop.CHECKPOINT_SUBDIR))
    if latest is None:
        raise ValueError(f"--backbone_from {run_dir}: no checkpoint there")
    return latest


def restore_backbone(backbone, checkpoint):
    """Overwrites `backbone` with the backbone slot of `checkpoint` (a path prefix)."""
    import tensorflow as tf

    status = tf.train.Checkpoint(backbone=backbone).restore(checkpoint).expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError:
        raise ValueError(f"--backbone_from: {checkpoint} does not hold this backbone "
                         "(another architecture or input size?)") from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", required=True, choices=["bt", "fll", "fv"])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--weights", default=None, help="bundle (default: the bundled weights)")
    parser.add_argument("--backbone_from", default=None,
                        help="run folder whose last checkpoint gives the backbone")
    parser.add_argument("--average_with", default=None,
                        help="another bundle whose same part (its backbone included) is averaged "
                             "in, weight by weight: two fine-tunings of one network")
    parser.add_argument("--average_share", type=float, default=0.5,
                        help="--average_with's share of the mean (0 to 1; default 0.5)")
    parser.add_argument("--train_backbone", action="store_true",
                        help="the run will train the backbone too (no --freeze_backbone): "
                             "the seed's optimizer covers it")
    args = parser.parse_args(argv)
    if os.path.exists(os.path.join(args.model_dir, "checkpoints")):
        print(f"error: {args.model_dir} already holds checkpoints", file=sys.stderr)
        return 2
    try:
        print(seed_run(args.part, args.model_dir, args.weights, args.backbone_from,
                       train_backbone=args.train_backbone, average_with=args.average_with,
                       average_share=args.average_share))
    except (ValueError, RuntimeError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
