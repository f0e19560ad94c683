"""The parts of a run around the loop: backbones, initialisation, images, evaluation of a run."""

import json
import os

import cv2
import numpy as np
import tensorflow as tf
from absl import logging

from crct_tf.weights import bundle
from crct_tf.geometry import cropping, tf_cropping
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.models.bt import LSTM_UNITS, STATE_PARTS
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


def restore_run(model_dir, shared_backbone=None):
    """Rebuilds a run's task from run.json and restores its latest checkpoint (no optimizer)."""
    run = read_run(model_dir)
    settings = CropSettings.from_dict(run["crop_settings"])
    task = tasks.build_task(run["model"], settings,
                            lambda size: backbone_for(run["backbone"], size), shared_backbone)
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, loop.CHECKPOINT_SUBDIR))
    if latest is None:
        raise loop.TrainingError(f"{model_dir}: no checkpoint to restore")
    slots = {"model": task.model}
    tf.train.Checkpoint(**slots).read(latest).expect_partial().assert_existing_objects_matched()
    return task, run, latest


def prediction_images(task, dataset, count=4):
    """Crops with predicted (red) and true (green) points, for TensorBoard (FLL only)."""
    if task.name != "fll":
        return np.zeros((0, 8, 8, 3), np.uint8)
    crops, truth = next(iter(dataset.take(1)))
    predicted = task.model(crops[:count], training=False).numpy()
    images = []
    for crop, points, true_points in zip(crops[:count].numpy(), predicted, truth[:count].numpy()):
        image = np.clip(crop, 0, 255).astype(np.uint8).copy()
        for (x, y), colour in [(p, (0, 255, 0)) for p in true_points] + \
                              [(p, (255, 0, 0)) for p in points]:
            cv2.circle(image, (int(round(x)), int(round(y))), 1, colour, -1)
        images.append(image)
    return np.stack(images)


def _bt_first_step(task, batch):
    """BT's prediction for frame 1 of each sequence from frame 0's true box, in crop pixels."""
    frames, landmarks = batch["frames"], batch["landmarks"]
    size = task.settings.input_size
    box = tf.concat([tf.reduce_min(landmarks[:, 0], 1), tf.reduce_max(landmarks[:, 0], 1)], -1)
    window = tf_cropping.tf_square_context_box(box, task.settings.bt_context)
    out = task.model({"previous_crop": tf_cropping.tf_crop_images(frames[:, 0], window, size),
                      "current_crop": tf_cropping.tf_crop_images(frames[:, 1], window, size),
                      "state": tf.zeros([tf.shape(frames)[0], STATE_PARTS, LSTM_UNITS])},
                     training=False)
    return out["landmarks"], cropping.points_to_crop(landmarks[:, 1], window, size)


def evaluate_run(model_dir, sources, max_examples=0):
    """NME (box diagonal) of a trained FLL or BT run on a split, through the training crops.

    FLL: each example's crop around its (unjittered) landmark box. BT: one step from the
    ground-truth box of the previous frame of each sequence.
    """
    from crct_tf.evaluation import metrics
    from crct_tf.training import inputs

    task, run, latest = restore_run(model_dir)
    if task.name == "fv":
        raise loop.TrainingError("evaluation of FV runs is its accuracy in the training log")
    errors = []
    for batch in inputs.evaluation_batches(task.name, sources, task.settings, max_examples):
        if task.name == "fll":
            crops, truth = batch
            predicted = task.model(crops, training=False)
        else:
            predicted, truth = _bt_first_step(task, batch)
        errors.extend(metrics.nme_box_diagonal(np.asarray(predicted), np.asarray(truth)).tolist())
    errors = np.asarray(errors)
    return {"model_dir": model_dir, "checkpoint": latest, "model": run["model"],
            "dataset": sources.names, "split": sources.split, "examples": int(errors.size),
            "nme_median": float(np.median(errors)), "nme_mean": float(errors.mean()),
            "nme_p90": float(np.percentile(errors, 90))}
