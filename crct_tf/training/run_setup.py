"""The parts of a run around the loop: backbones, initialisation, run.json, evaluation of a run."""

import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from crct_tf.weights import bundle
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.models.facenet_weights import load_facenet_h5
from crct_tf.training import loop, tasks

RUN_FILE = "run.json"


def backbone_for(kind, image_size):
    """The backbone of a run, untrained: its weights come from `initialise` or a checkpoint."""
    if kind in ("facenet", "random"):
        return bundle.build_named_backbone("inception_resnet_v1", image_size)
    if kind == "tiny":
        return bundle.build_named_backbone("tiny", image_size)
    raise ValueError(f"unknown backbone {kind!r}")


def bundle_backbone_name(kind):
    return "tiny" if kind == "tiny" else "inception_resnet_v1"


def initialise(task, kind, init_from=None):
    """A run's start when it has no checkpoint: another run's backbone, or facenet's weights."""
    if task.backbone is None:
        return
    if init_from:
        latest = tf.train.latest_checkpoint(os.path.join(init_from, loop.CHECKPOINT_SUBDIR))
        if latest is None:
            raise loop.TrainingError(f"--init_from {init_from}: no checkpoint there")
        tf.train.Checkpoint(backbone=task.backbone).read(latest).expect_partial()
        logging.info("backbone initialised from %s", latest)
    elif kind == "facenet":
        load_facenet_h5(task.backbone)
        logging.info("backbone initialised from facenet's weights")


def write_run(model_dir, run):
    """Writes run.json atomically: what `pack_runs` and `restore_run` read back.

    `run` holds at least model, backbone, crop_settings (a dict) and seq_bt.
    """
    os.makedirs(model_dir, exist_ok=True)
    tmp = os.path.join(model_dir, f".{RUN_FILE}.tmp")
    with open(tmp, "w") as f:
        json.dump(run, f, indent=2)
    os.replace(tmp, os.path.join(model_dir, RUN_FILE))


def read_run(model_dir):
    path = os.path.join(model_dir, RUN_FILE)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise loop.TrainingError(f"{path}: missing (not a training run folder)") from None
    except (OSError, ValueError) as e:
        raise loop.TrainingError(f"{path}: unreadable ({e})") from None


def restore_run(model_dir, shared_backbone=None, settings=None):
    """Rebuilds a run's task from run.json and restores its latest checkpoint (no optimizer).

    `settings`: crop settings to build the task with instead of the run's own (a bundle whose
    FLL crop size differs from BT's builds both on one backbone of any input size).
    """
    run = read_run(model_dir)
    settings = settings or CropSettings.from_dict(run["crop_settings"])
    task = tasks.get_task(run["model"], settings,
                          lambda size: backbone_for(run["backbone"], size),
                          seq_bt=int(run.get("seq_bt", 2)), shared_backbone=shared_backbone)
    task.build_model()
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, loop.CHECKPOINT_SUBDIR))
    if latest is None:
        raise loop.TrainingError(f"{model_dir}: no checkpoint to restore")
    slots = {"model": task.model}
    tf.train.Checkpoint(**slots).read(latest).expect_partial().assert_existing_objects_matched()
    return task, run, latest


def evaluate_run(model_dir, sources, max_examples=0):
    """NME (box diagonal) of a trained FLL or BT run on a split, through the training crops.

    FLL: each example's crop around its (unjittered) landmark box. BT: one step from the
    ground-truth box of the previous frame of each sequence.
    """
    from crct_tf.evaluation import metrics

    task, run, latest = restore_run(model_dir)
    try:
        batches = task.evaluation_inputs(sources, max_examples)
    except NotImplementedError:
        raise loop.TrainingError(f"evaluation of {task.name} runs is its accuracy in the "
                                 "training log") from None
    errors = []
    for batch in batches:
        predicted, truth = task.evaluation_points(batch)
        errors.extend(metrics.nme_box_diagonal(np.asarray(predicted), np.asarray(truth)).tolist())
    errors = np.asarray(errors)
    return {"model_dir": model_dir, "checkpoint": latest, "model": run["model"],
            "dataset": sources.names, "split": sources.split, "examples": int(errors.size),
            "nme_median": float(np.median(errors)), "nme_mean": float(errors.mean()),
            "nme_p90": float(np.percentile(errors, 90))}
