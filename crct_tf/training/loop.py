"""The training loop: strategy, checkpoints with resume, summaries, NaN guard, signals.

Order of business (resume first, pretrained initialisation only without a checkpoint):

  1. build the task's networks and the optimizer inside `strategy.scope()`, and build the
     optimizer's variables before the first step (a Keras 3 optimizer in a custom
     distributed step fails otherwise);
  2. restore the latest checkpoint of `model_dir` if there is one -- step, model, backbone slot,
     optimizer -- or else run `init_fn` (facenet weights, or another run's backbone);
  3. for each curriculum stage left (one stage for FLL and FV), make the stage's dataset starting
     at the example the step count says, and run `tf.function` steps through `strategy.run`;
  4. every `log_every` steps: a log line with steps/s and TensorBoard scalars; a non-finite
     loss stops the run with an error naming the step; every `checkpoint_every` steps, at the end
     of a stage, at the end, and on SIGINT/SIGTERM: a checkpoint.
"""

import dataclasses
import os
import signal
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from crct_tf.training import tasks

CHECKPOINT_SUBDIR = "checkpoints"
SUMMARY_SUBDIR = "tensorboard"


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, unusable checkpoint); the message says why."""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; a checkpoint was saved. `signum` says which."""

    def __init__(self, signum, step):
        super().__init__(f"interrupted by signal {signum} at step {step}; checkpoint saved")
        self.signum = signum
        self.step = step


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """Plain settings of a run (the entry point maps flags onto them)."""
    model_dir: str
    steps: int                      # total steps (for BT: all curriculum stages together)
    batch_size: int                 # global batch, split over replicas
    learning_rate: float = 1e-4
    lr_decay_steps: int = 10_000    # paper III-E: step decay every 10 000 iterations
    lr_decay_rate: float = 0.1      # authors' code: x0.1
    seq_bt: int = 2                 # BT only: the last unroll length of the curriculum
    log_every: int = 10
    image_every: int = 200
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    seed: int = 0


def make_strategy(name):
    """`mirrored` (all local GPUs, or the CPU), `multi_worker` (TF_CONFIG), or `one_device`."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    raise ValueError(f"unknown strategy {name!r}; expected mirrored, multi_worker or one_device")


def stages_of(task_name, config):
    """[(seq_len, first_step, end_step)]: BT's curriculum splits the steps evenly over stages."""
    if task_name != "bt":
        return [(None, 0, config.steps)]
    lengths = tasks.curriculum(config.seq_bt)
    per_stage = max(1, config.steps // len(lengths))
    bounds = [(t, i * per_stage, (i + 1) * per_stage) for i, t in enumerate(lengths)]
    return bounds[:-1] + [(lengths[-1], bounds[-1][1], config.steps)]


class _SignalFlag:
    """Turns SIGINT/SIGTERM into a flag that the loop checks between steps."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def train(task_fn, dataset_fn, init_fn, config, strategy, summary_images=None):
    """Runs (or resumes) a training run.

    Args:
      task_fn: callable() -> tasks.Task, called inside the strategy's scope.
      dataset_fn: callable(seq_len, first_example) -> tf.data.Dataset of global batches.
      init_fn: callable(task) run only when `model_dir` holds no checkpoint.
      config: LoopConfig.
      strategy: a tf.distribute strategy.
      summary_images: optional callable(task, batch) -> [N, H, W, 3] uint8 for TensorBoard.

    Returns:
      dict with the final `step` and the last logged `loss`.

    Raises:
      TrainingError: non-finite loss (naming the step) or an unusable checkpoint.
      Interrupted: after saving a checkpoint on SIGINT/SIGTERM.
    """
    with strategy.scope():
        task = task_fn()
        schedule = tf.keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, config.lr_decay_steps, config.lr_decay_rate, staircase=True)
        optimizer = keras.optimizers.Adam(learning_rate=schedule)
        optimizer.build(task.trainable_variables())
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    slots = {"model": task.model, "optimizer": optimizer, "step": step}
    if task.backbone is not None:
        slots["backbone"] = task.backbone   # its own slot: another run can read just this
    checkpoint = tf.train.Checkpoint(**slots)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(config.model_dir, CHECKPOINT_SUBDIR),
        max_to_keep=config.keep_checkpoints)
    if manager.latest_checkpoint:
        try:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError, IndexError) as e:  # IndexError: a
            # truncated data file ("Read less bytes than requested")
            raise TrainingError(f"{manager.latest_checkpoint}: cannot restore "
                                f"({str(e).splitlines()[0]})") from None
        logging.info("resumed from %s at step %d", manager.latest_checkpoint, int(step.numpy()))
    else:
        init_fn(task)
    writer = tf.summary.create_file_writer(os.path.join(config.model_dir, SUMMARY_SUBDIR))
    last = {"step": int(step.numpy()), "loss": float("nan")}
    with _SignalFlag() as flag, writer.as_default():
        for seq_len, first, end in stages_of(task.name, config):
            if int(step.numpy()) >= end:
                continue
            last = _run_stage(task, optimizer, strategy, step, seq_len, end, dataset_fn,
                              config, manager, flag, summary_images)
            manager.save(checkpoint_number=int(step.numpy()))
    return last


def _make_step_fn(task, optimizer, strategy, seq_len, global_batch, seed):
    variables = task.trainable_variables()

    def loss_of(batch):
        if task.name == "fll":
            return task.fll_loss(batch, global_batch)
        if task.name == "fv":
            return task.fv_loss(batch, global_batch)
        step_seed = tf.stack([tf.constant(seed, tf.int32),
                              tf.cast(optimizer.iterations, tf.int32)])
        return task.bt_loss(batch, global_batch, seq_len, step_seed)

    def replica_step(batch):
        with tf.GradientTape() as tape:
            loss, metrics = loss_of(batch)
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss, metrics

    @tf.function
    def step_fn(iterator):
        loss, metrics = strategy.run(replica_step, args=(next(iterator),))
        loss = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        metrics = {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                   for k, v in metrics.items()}
        return loss, metrics

    return step_fn


def _run_stage(task, optimizer, strategy, step, seq_len, end, dataset_fn, config, manager, flag,
               summary_images):
    start = int(step.numpy())
    dataset = dataset_fn(seq_len, start * config.batch_size)
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    step_fn = _make_step_fn(task, optimizer, strategy, seq_len, config.batch_size, config.seed)
    stage = f"unroll {seq_len}" if seq_len else task.name
    logging.info("%s: steps %d..%d, global batch %d, %d replica(s)", stage, start, end,
                 config.batch_size, strategy.num_replicas_in_sync)
    tick, tick_step, loss_value = time.time(), start, float("nan")
    while int(step.numpy()) < end:
        loss, metrics = step_fn(iterator)
        step.assign_add(1)
        current = int(step.numpy())
        loss_value = float(loss.numpy())
        if not np.isfinite(loss_value):
            raise TrainingError(f"non-finite loss ({loss_value}) at step {current} of "
                                f"{config.model_dir}; the last good checkpoint is kept")
        if flag.signum is not None:
            manager.save(checkpoint_number=current)
            raise Interrupted(flag.signum, current)
        if current % config.log_every == 0 or current == end:
            elapsed = max(time.time() - tick, 1e-9)
            rate = (current - tick_step) / elapsed
            learning_rate = float(optimizer.learning_rate.numpy()) if hasattr(
                optimizer.learning_rate, "numpy") else float(optimizer.learning_rate)
            values = {k: float(v.numpy()) for k, v in metrics.items()}
            logging.info("%s step %d/%d loss %.4f %s lr %.2e %.2f steps/s %.1f examples/s",
                         stage, current, config.steps, loss_value,
                         " ".join(f"{k} {v:.4f}" for k, v in values.items()), learning_rate,
                         rate, rate * config.batch_size)
            tf.summary.scalar("loss", loss_value, step=current)
            tf.summary.scalar("learning_rate", learning_rate, step=current)
            tf.summary.scalar("steps_per_second", rate, step=current)
            for k, v in values.items():
                tf.summary.scalar(k, v, step=current)
            tick, tick_step = time.time(), current
        if summary_images is not None and current % config.image_every == 0:
            tf.summary.image("predictions", summary_images(task, dataset), step=current,
                             max_outputs=4)
        if current % config.checkpoint_every == 0:
            manager.save(checkpoint_number=current)
    return {"step": int(step.numpy()), "loss": loss_value}
