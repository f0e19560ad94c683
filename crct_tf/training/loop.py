"""The training loop: strategy, checkpoints with resume, summaries, NaN guard, signals.

The loop runs any task of `crct_tf.training.tasks` through its `build_model`, `build_inputs`,
`loss` and `stages`; it knows nothing of FLL, FV or BT. Order of business (resume first,
pretrained initialisation only without a checkpoint):

  1. build the task's networks and the optimizer inside `strategy.scope()`, and build the
     optimizer's variables before the first step (a Keras 3 optimizer in a custom
     distributed step fails otherwise);
  2. restore the latest checkpoint of `model_dir` if there is one -- step, model, backbone slot,
     optimizer -- or else run `init_fn` (facenet weights, or another run's backbone);
  3. for each of the task's stages left (BT's curriculum; one stage for FLL and FV), make the
     stage's dataset starting at the example the step count says, and run `tf.function` steps
     (`make_step_fn`) through `strategy.run`;
  4. every `log_every` steps: a log line with steps/s and TensorBoard scalars; a non-finite
     loss stops the run with an error naming the step; every `checkpoint_every` steps, at the end
     of a stage, at the end, and on SIGINT/SIGTERM: a checkpoint.

Across workers (`multi_worker`, TF_CONFIG; docs/scale_out.md): every worker restores the chief's
latest checkpoint from `model_dir` (which must be shared storage) and checks that all workers
are at the same step; every worker saves at the same steps, the chief into `model_dir` and the
others into temporary folders removed at once, and only the chief's TensorBoard events go to
`model_dir` (the others' to a temporary folder); a SIGINT/SIGTERM is acted on at the next
`log_every` step that all workers agree on, so that no worker waits for one that has left.
"""

import contextlib
import dataclasses
import hashlib
import os
import shutil
import signal
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

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


class _Workers:
    """What this process is in its strategy's cluster: the chief (or the only worker) or not.

    The chief writes checkpoints and TensorBoard events into `model_dir`; the other workers
    write theirs into temporary folders that are removed (a save has to run on every worker).
    """

    def __init__(self, strategy):
        self.strategy = strategy
        self.chief = bool(getattr(strategy.extended, "should_checkpoint", True))
        self.multi = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        resolver = getattr(strategy, "cluster_resolver", None)
        self.task = f"{getattr(resolver, 'task_type', None) or 'worker'}" \
                    f"{getattr(resolver, 'task_id', None) or 0}"
        self._sum = None

    def sum(self, values):
        """The sum over all replicas of every worker of these local numbers (float64)."""
        values = tf.constant(values, tf.float64)
        if not self.multi:
            return values.numpy() * self.strategy.num_replicas_in_sync
        if self._sum is None:
            strategy = self.strategy

            @tf.function
            def all_reduce(local):
                per_replica = strategy.run(lambda: tf.identity(local))
                return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
            self._sum = all_reduce
        return self._sum(values).numpy()

    def check_same_step(self, step):
        """TrainingError unless every worker restored the same step (a model_dir that is not
        shared storage gives the workers different checkpoints)."""
        if not self.multi:
            return
        total, squares = self.sum([float(step), float(step) ** 2])
        if squares * self.strategy.num_replicas_in_sync != total ** 2:
            raise TrainingError(f"the workers start from different steps (this one: {step}); "
                                f"every worker must read the chief's checkpoints: put "
                                f"--model_dir on storage they share")

    def any_flag(self, flag):
        """Whether any worker's flag is set (every worker calls this at the same step)."""
        return self.sum([1.0 if flag else 0.0])[0] > 0

    @contextlib.contextmanager
    def summary_dir(self, model_dir):
        if self.chief:
            yield os.path.join(model_dir, SUMMARY_SUBDIR)
            return
        folder = tempfile.mkdtemp(prefix=f"crct_{self.task}_tensorboard_")
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class _Saver:
    """Checkpoints: the chief's manager in model_dir; another worker writes into a temporary
    folder and removes it."""

    def __init__(self, checkpoint, manager, workers):
        self.checkpoint, self.manager, self.workers = checkpoint, manager, workers

    def save(self, number):
        if self.workers.chief:
            return self.manager.save(checkpoint_number=number)
        folder = tempfile.mkdtemp(prefix=f"crct_{self.workers.task}_checkpoint_")
        try:   # the very save the chief makes (its collectives, the save counter), elsewhere
            return tf.train.CheckpointManager(self.checkpoint, folder, max_to_keep=1).save(
                checkpoint_number=number)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def weights_digest(model):
    """sha256 of a model's weights (names, shapes and values): equal on workers that hold the
    same weights."""
    digest = hashlib.sha256()
    for variable in sorted(model.weights, key=lambda v: v.path):
        value = np.asarray(variable.numpy())
        digest.update(f"{variable.path}:{value.dtype}:{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def make_optimizer(config, variables):
    """Adam with the step decay of `config`, its variables built (inside the strategy's scope)."""
    schedule = tf.keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, config.lr_decay_steps, config.lr_decay_rate, staircase=True)
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    optimizer.build(variables)
    return optimizer


def train(task, config, strategy, init_fn=None, dataset_fn=None, summary_images=False):
    """Runs (or resumes) a training run.

    Args:
      task: a `tasks.Task`; its `build_model` runs inside the strategy's scope.
      config: LoopConfig.
      strategy: a tf.distribute strategy.
      init_fn: callable(task) run only when `model_dir` holds no checkpoint.
      dataset_fn: callable(seq_len, first_example) -> tf.data.Dataset of global batches, in place
        of the task's own `build_inputs` (tests feed fixed batches).
      summary_images: write the task's `summary_images` to TensorBoard every `image_every` steps.

    Returns:
      dict with the final `step`, the number of steps `trained` by this call, and the last
      logged `loss` (None when there was nothing left to train).

    Raises:
      TrainingError: non-finite loss (naming the step) or an unusable checkpoint.
      Interrupted: after saving a checkpoint on SIGINT/SIGTERM.
    """
    if dataset_fn is None:
        def dataset_fn(seq_len, first_example):
            return task.build_inputs(config.batch_size, config.seed, seq_len, first_example)
    with strategy.scope():
        task.build_model()
        optimizer = make_optimizer(config, task.trainable_variables())
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    slots = {"model": task.model, "optimizer": optimizer, "step": step}
    if task.backbone is not None:
        slots["backbone"] = task.backbone   # its own slot: another run can read just this
    checkpoint = tf.train.Checkpoint(**slots)
    workers = _Workers(strategy)
    checkpoint_dir = os.path.join(config.model_dir, CHECKPOINT_SUBDIR)
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir,
                                         max_to_keep=config.keep_checkpoints) \
        if workers.chief else None
    state = tf.train.get_checkpoint_state(checkpoint_dir)  # the chief's, on every worker; a
    latest = state.model_checkpoint_path if state else None  # damaged one is an error below
    if latest:
        try:
            checkpoint.restore(latest).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError, IndexError) as e:  # IndexError: a
            # truncated data file ("Read less bytes than requested")
            raise TrainingError(f"{latest}: cannot restore "
                                f"({str(e).splitlines()[0]})") from None
        logging.info("resumed from %s at step %d", latest, int(step.numpy()))
    elif init_fn is not None:
        init_fn(task)
    workers.check_same_step(int(step.numpy()))
    saver = _Saver(checkpoint, manager, workers)
    first_step = int(step.numpy())
    last = {"step": first_step, "trained": 0, "loss": None}
    with workers.summary_dir(config.model_dir) as summary_dir, _SignalFlag() as flag:
        writer = tf.summary.create_file_writer(summary_dir)
        with writer.as_default():
            for seq_len, first, end in task.stages(config.steps):
                if int(step.numpy()) >= end:
                    continue
                loss = _run_stage(task, optimizer, strategy, step, seq_len, end, dataset_fn,
                                  config, saver, flag, summary_images, workers)
                saver.save(int(step.numpy()))
                last = {"step": int(step.numpy()), "trained": int(step.numpy()) - first_step,
                        "loss": loss}
        writer.close()
    return last


def make_step_fn(task, optimizer, strategy, seq_len, global_batch, seed):
    """The distributed training step: step_fn(iterator) -> (summed loss, mean metrics).

    Each replica computes the task's loss on its share of the next global batch and applies
    its gradients; BT's stateless choices are seeded by (seed, optimizer step).
    """
    variables = task.trainable_variables()

    def replica_step(batch):
        step_seed = tf.stack([tf.constant(seed, tf.int32),
                              tf.cast(optimizer.iterations, tf.int32)])
        with tf.GradientTape() as tape:
            loss, metrics = task.loss(batch, global_batch, seq_len=seq_len, seed=step_seed)
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


def _run_stage(task, optimizer, strategy, step, seq_len, end, dataset_fn, config, saver, flag,
               summary_images, workers):
    start = int(step.numpy())
    dataset = dataset_fn(seq_len, start * config.batch_size)
    if workers.multi:
        # Every worker reads the same stream of global batches and takes its share of each, so
        # that a run sees the examples of a one-worker run and resumes at the same example.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    step_fn = make_step_fn(task, optimizer, strategy, seq_len, config.batch_size, config.seed)
    stage = f"unroll {seq_len}" if seq_len else task.name
    logging.info("%s: steps %d..%d, global batch %d, %d replica(s)", stage, start, end,
                 config.batch_size, strategy.num_replicas_in_sync)
    tick, tick_step, loss_value = time.time(), start, float("nan")
    while int(step.numpy()) < end:
        try:
            loss, metrics = step_fn(iterator)
        except tf.errors.OutOfRangeError:
            raise TrainingError(
                f"the training data ran out at step {int(step.numpy()) + 1} ({stage}): not one "
                "more full batch; too few examples or sequences for the batch size") from None
        step.assign_add(1)
        current = int(step.numpy())
        loss_value = float(loss.numpy())
        if not np.isfinite(loss_value):
            raise TrainingError(f"non-finite loss ({loss_value}) at step {current} of "
                                f"{config.model_dir}; the last good checkpoint is kept")
        at_sync_point = current % config.log_every == 0 or current == end
        if workers.multi:              # acted on where all workers are at the same step
            stop = at_sync_point and workers.any_flag(flag.signum is not None)
        else:
            stop = flag.signum is not None
        if stop:
            saver.save(current)
            raise Interrupted(flag.signum or signal.SIGTERM, current)
        if at_sync_point:
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
        if summary_images and current % config.image_every == 0:
            images = task.summary_images(dataset)
            if images is not None:
                tf.summary.image("predictions", images, step=current, max_outputs=4)
        if current % config.checkpoint_every == 0:
            saver.save(current)
    return loss_value
