"""Training tasks: what each sub-network learns (paper III-E), one class per sub-network.

In the spirit of TF Model Garden's `Task`, a task builds its networks (`build_model`), its
training batches (`build_inputs`) and its loss (`loss`):

    FLLTask  l2 loss on the 68 points in crop pixels            (eq. 7; wing loss as an option)
    FVTask   binary cross-entropy on p(face)                     (eq. 6)
    BTTask   l1 loss on the 68 points of every unrolled step     (eq. 2), Re3's curriculum

A task knows nothing of strategies, checkpoints or summaries: `crct_tf.training.loop` runs any
task. Losses are summed over the replica's examples and divided by the GLOBAL batch size, so that
summing over replicas gives the mean (tf.distribute's convention).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from crct_tf.geometry import cropping, tf_cropping
from crct_tf.geometry.landmarks import NUM_LANDMARKS
from crct_tf.models.bt import LSTM_UNITS, STATE_PARTS, build_bt
from crct_tf.models.fll import build_fll
from crct_tf.models.fv import build_fv
from crct_tf.training import inputs, losses


def own_prediction_probability(seq_len):
    """Probability of feeding BT its own previous prediction in a stage of unroll `seq_len`.

    The authors' code uses 0.25 * log2(T / 2): 0 at T = 2, 0.25 at 4, ..., 1.0 at 32 (Re3 used
    0.8). Feeding its own output teaches BT to recover from its drift.
    """
    return min(1.0, max(0.0, 0.25 * math.log2(seq_len / 2.0)))


def curriculum(seq_bt):
    """Re3's curriculum: unroll lengths 2, 4, ... doubling up to SeqBT."""
    if seq_bt < 2 or seq_bt & (seq_bt - 1):
        raise ValueError(f"SeqBT must be a power of two >= 2, got {seq_bt}")
    return [2 ** k for k in range(1, int(math.log2(seq_bt)) + 1)]


class Task:
    """The networks of one training run, its batches and its loss.

    Args:
      settings: the crop settings the data and the tracker share.
      backbone_factory: callable(image_size) -> backbone model named "backbone" (facenet
        initialised, random, or a tiny stand-in for tests); FV has none.
      seq_bt: BT only: SeqBT, the longest unroll of the curriculum.
      freeze_backbone: train only the task's own layers (e.g. BT on top of a fine-tuned FLL's
        backbone, so that one backbone serves both in a bundle).
      shared_backbone: an existing backbone instance to reuse (BT and FLL sharing one).
      sources: `inputs.SourceSpec` of the training examples (needed by `build_inputs` only).
      augment: augment the training examples.
      hard_conditions: BT and FLL from stills: occluders, light, blur and small faces on the
        training examples (`augment.hard_conditions`; FV's robust scheme always has them).
      fll_loss: FLL only: `l2` (the paper's) or `wing` (`losses.wing_point_loss`).
      fll_region_weights: FLL only: {facial region: weight} of its points in the loss
        (`losses.region_point_weights`; None: all alike, the paper's).
      fll_box_jitter: FLL only: (largest centre shift, largest rescale) of the training box,
        fractions of its size; None: `augment.BOX_SHIFT`, `augment.BOX_SCALE`.
      fll_fringe: FLL only: hair over the brows on this fraction of the training examples
        (`augment.fringe`; 0: none, the paper's).
      fll_upright: FLL only: this fraction of the training crops turned upright by the face's
        roll, as the tracker's with `CropSettings.fll_upright` (0: none, the paper's).
      fll_mouth_cover: FLL only: something held over the mouth on this fraction of the
        training examples (`augment.mouth_cover`; 0: none, the paper's).
      fll_shape_warp: FLL only: the face given other proportions on this fraction of the
        training examples (`augment.shape_warp`; 0: none, the paper's).
      fll_shape_warp_nodes: FLL only: the shape warp's control points a side (None:
        `augment.SHAPE_WARP_NODES`, 4; more also move the mouth, brows and eyes on their own).
      fll_expression: FLL only: brows raised or lowered and the mouth opened and rounded on
        this fraction of the training examples (`expression.expression_warp`; 0: none, the
        paper's).
      fv_point_noise: FV only: the jittered positives' points each moved on their own by up to
        this fraction of the face box's side (`fv_pipeline.fv_example`; 0: not at all).
      fv_decolour: FV only: colour taken away (grey, faded sepia or half gone) on this fraction
        of the training examples (`augment.decolour`; 0: none, as before).

    Attributes set by `build_model`: `model` (the trained keras.Model) and `backbone` (its
    backbone instance, None for FV), which the loop checkpoints in a slot of its own.
    """

    name = None          # run.json's "model": fll, fv or bt

    def __init__(self, settings, backbone_factory=None, *, seq_bt=2, freeze_backbone=False,
                 shared_backbone=None, sources=None, augment=True, hard_conditions=False,
                 fll_loss="l2", fll_box_jitter=None, fll_fringe=0.0, fll_upright=0.0,
                 fll_mouth_cover=0.0, fll_shape_warp=0.0, fll_shape_warp_nodes=None,
                 fv_point_noise=0.0, fll_region_weights=None, fll_expression=0.0,
                 fv_decolour=0.0):
        self.settings = settings
        self.hard_conditions = hard_conditions
        self.fll_box_jitter = fll_box_jitter
        self.fll_fringe = fll_fringe
        self.fll_mouth_cover = fll_mouth_cover
        self.fll_shape_warp = fll_shape_warp
        self.fll_shape_warp_nodes = fll_shape_warp_nodes
        self.fll_expression = fll_expression
        self.fv_point_noise = fv_point_noise
        self.fv_decolour = fv_decolour
        self.fll_upright = fll_upright
        self.point_loss = losses.point_loss(fll_loss, fll_region_weights)
        self.backbone_factory = backbone_factory
        self.seq_bt = seq_bt
        self.freeze_backbone = freeze_backbone
        self.shared_backbone = shared_backbone
        self.sources = sources
        self.augment = augment
        self.model = None
        self.backbone = None

    # -- what the training loop calls -------------------------------------------------------------

    def build_model(self):
        """Builds the networks (the loop calls this inside the strategy's scope); returns the
        trained model, also kept as `self.model`."""
        raise NotImplementedError

    def build_inputs(self, batch_size, seed, seq_len=None, first_example=0):
        """Endless global batches for training, the stream restarted at `first_example`."""
        raise NotImplementedError

    def loss(self, batch, global_batch_size, seq_len=None, seed=None, training=True):
        """(per-replica loss scaled by the global batch, a dict of scalar metrics).

        `seq_len` and `seed` (int32 [2]) matter to BT only: the unroll of the stage and the
        seed of its stateless choices.
        """
        raise NotImplementedError

    def stages(self, steps):
        """[(seq_len, first_step, end_step)] of a run of `steps` steps: one stage here."""
        return [(None, 0, steps)]

    def total_steps(self, steps, steps_per_stage=None):
        """The run's step count from `--steps` / `--steps_per_stage` (per curriculum stage)."""
        return steps

    def trainable_variables(self):
        return self.model.trainable_variables

    def summary_images(self, dataset, count=4):
        """[N, H, W, 3] uint8 images of predictions for TensorBoard, or None."""
        return None

    # -- evaluating a trained run ---------------------------------------------------------------

    def evaluation_inputs(self, sources, max_examples=0, batch_size=1):
        """One pass over `sources` without augmentation, in batches of one by default (so that
        `drop_remainder` drops no example)."""
        raise NotImplementedError(f"{self.name} runs have no landmark evaluation")

    def evaluation_points(self, batch):
        """(predicted, true) points [B, 68, 2] in crop pixels of an evaluation batch."""
        raise NotImplementedError(f"{self.name} runs have no landmark evaluation")

    # -- shared parts ------------------------------------------------------------------------------

    def _build_backbone(self, size=None):
        backbone = self.shared_backbone or self.backbone_factory(size or self.settings.input_size)
        if self.freeze_backbone:
            backbone.trainable = False
        self.backbone = backbone
        return backbone

    def _examples(self):
        if self.sources is None:
            raise inputs.InputError(f"the {self.name} task was built without training sources")
        return inputs.image_examples(self.sources)


class FLLTask(Task):
    """FLL, the landmark localiser (paper III-C): l2 (or wing) loss on the points in crop pixels."""

    name = "fll"

    def build_model(self):
        self.model = build_fll(self._build_backbone(self.settings.fll_size), self.settings)
        return self.model

    def build_inputs(self, batch_size, seed, seq_len=None, first_example=0):
        from crct_tf.data import augment, fll_pipeline
        jitter = {"box_jitter": tuple(self.fll_box_jitter)} if self.fll_box_jitter else {}
        return fll_pipeline.make_fll_dataset(self._examples(), self.settings, batch_size,
                                             inputs.run_seed(seed, first_example), self.augment,
                                             hard_conditions=self.hard_conditions,
                                             fringe_probability=self.fll_fringe,
                                             upright_probability=self.fll_upright,
                                             mouth_cover_probability=self.fll_mouth_cover,
                                             shape_warp_probability=self.fll_shape_warp,
                                             shape_warp_nodes=(self.fll_shape_warp_nodes
                                                               or augment.SHAPE_WARP_NODES),
                                             expression_probability=self.fll_expression,
                                             **jitter)

    def loss(self, batch, global_batch_size, seq_len=None, seed=None, training=True):
        crops, target = batch
        predicted = self.model(crops, training=training)
        per_example = self.point_loss(predicted, target)
        return (tf.reduce_sum(per_example) / global_batch_size,
                {"point_error_px": _mean_point_error(predicted, target)})

    def summary_images(self, dataset, count=4):
        """Crops with predicted (red) and true (green) points."""
        import cv2
        crops, truth = next(iter(dataset.take(1)))
        predicted = self.model(crops[:count], training=False).numpy()
        images = []
        for crop, points, true_points in zip(crops[:count].numpy(), predicted,
                                             truth[:count].numpy()):
            image = np.clip(crop, 0, 255).astype(np.uint8).copy()
            for (x, y), colour in [(p, (0, 255, 0)) for p in true_points] + \
                                  [(p, (255, 0, 0)) for p in points]:
                cv2.circle(image, (int(round(x)), int(round(y))), 1, colour, -1)
            images.append(image)
        return np.stack(images)

    def evaluation_inputs(self, sources, max_examples=0, batch_size=1):
        """Each example's crop around its (unjittered) landmark box."""
        from crct_tf.data import fll_pipeline
        dataset = fll_pipeline.make_fll_dataset(inputs.image_examples(sources), self.settings,
                                                batch_size, augment=False, repeat=False,
                                                shuffle_buffer=0)
        return _take(dataset, max_examples, batch_size)

    def evaluation_points(self, batch):
        crops, truth = batch
        return self.model(crops, training=False), truth


class FVTask(Task):
    """FV, the face validator (paper III-D): binary cross-entropy on p(face)."""

    name = "fv"

    def build_model(self):
        self.model = build_fv(self.settings)
        return self.model

    def build_inputs(self, batch_size, seed, seq_len=None, first_example=0):
        from crct_tf.data import fv_pipeline
        return fv_pipeline.make_fv_dataset(self._examples(), self.settings, batch_size,
                                           inputs.run_seed(seed, first_example), self.augment,
                                           point_noise=self.fv_point_noise,
                                           decolour=self.fv_decolour)

    def loss(self, batch, global_batch_size, seq_len=None, seed=None, training=True):
        patches, labels = batch
        p_face = self.model(patches, training=training)
        per_example = keras.losses.binary_crossentropy(labels[:, None], p_face[:, None])
        accuracy = tf.reduce_mean(tf.cast(tf.equal(p_face > 0.5, labels > 0.5), tf.float32))
        return tf.reduce_sum(per_example) / global_batch_size, {"accuracy": accuracy}


class BTTask(Task):
    """BT, the box tracker (paper III-A): l1 loss on the points of every unrolled step, trained
    over Re3's curriculum of unrolls 2, 4, ... SeqBT."""

    name = "bt"

    def build_model(self):
        self.model = build_bt(self._build_backbone(), self.settings)
        return self.model

    def build_inputs(self, batch_size, seed, seq_len=None, first_example=0):
        """Sequences of seq_len + 1 frames: a stage of unroll T trains T steps on T + 1 frames."""
        from crct_tf.data import bt_pipeline
        seed = inputs.run_seed(seed, first_example)
        if self.sources is not None and inputs.is_video(self.sources):
            video_dirs, annot_dir = inputs.video_dirs(self.sources)
            return bt_pipeline.make_bt_video_dataset(
                video_dirs, self.settings, batch_size, seq_len + 1, seed=seed,
                augment=self.augment, frame_step=self.sources.frame_step, annot_dir=annot_dir)
        return bt_pipeline.make_bt_dataset(self._examples(), self.settings, batch_size,
                                           seq_len + 1, seed, self.augment,
                                           hard_conditions=self.hard_conditions)

    def stages(self, steps):
        """The curriculum splits the steps evenly over its stages (the last takes the rest)."""
        lengths = curriculum(self.seq_bt)
        per_stage = max(1, steps // len(lengths))
        bounds = [(t, i * per_stage, (i + 1) * per_stage) for i, t in enumerate(lengths)]
        return bounds[:-1] + [(lengths[-1], bounds[-1][1], steps)]

    def total_steps(self, steps, steps_per_stage=None):
        return steps_per_stage * len(curriculum(self.seq_bt)) if steps_per_stage else steps

    def loss(self, batch, global_batch_size, seq_len=None, seed=None, training=True):
        """Unrolls BT over `seq_len` steps of a sequence of seq_len + 1 frames.

        Both crops of step t are cut from frames t-1 and t with the previous box: the ground
        truth box of frame t-1 or, with the stage's probability, the box of BT's own previous
        prediction -- which is why the crops are cut here, not in tf.data.

        Args:
          batch: dict with `frames` [B, T+1, R, R, 3] uint8 and `landmarks` [B, T+1, 68, 2].
          seed: int32 [2] tensor for the stateless choice of own-prediction feeding.
        """
        frames, truth = batch["frames"], batch["landmarks"]
        size, context = self.settings.input_size, self.settings.bt_context
        batch_size = tf.shape(frames)[0]
        p_own = own_prediction_probability(seq_len)
        state = tf.zeros([batch_size, STATE_PARTS, LSTM_UNITS])  # h_0
        # b_0: the batch's (possibly noisy) start box, else frame 0's true landmark box.
        previous_box = batch["init_box"] if "init_box" in batch else \
            tf_cropping.tf_box_from_landmarks(truth[:, 0])
        total, point_errors = 0.0, []
        for t in range(1, seq_len + 1):
            window = tf_cropping.tf_square_context_box(previous_box, context)
            previous_crop = tf_cropping.tf_crop_images(frames[:, t - 1], window, size)
            current_crop = tf_cropping.tf_crop_images(frames[:, t], window, size)
            out = self.model({"previous_crop": previous_crop, "current_crop": current_crop,
                              "state": state}, training=training)
            target = cropping.points_to_crop(truth[:, t], window, size)
            per_example = tf.reduce_sum(tf.abs(out["landmarks"] - target), axis=[1, 2])
            total += tf.reduce_sum(per_example) / NUM_LANDMARKS
            point_errors.append(_mean_point_error(out["landmarks"], target))
            state = out["state"]
            predicted = cropping.points_from_crop(tf.stop_gradient(out["landmarks"]), window, size)
            use_own = tf.random.stateless_uniform([batch_size], seed + t) < p_own
            previous_box = tf.where(use_own[:, None], tf_cropping.tf_box_from_landmarks(predicted),
                                    tf_cropping.tf_box_from_landmarks(truth[:, t]))
        loss = total / (global_batch_size * seq_len)
        return loss, {"point_error_px": tf.add_n(point_errors) / seq_len}

    def evaluation_inputs(self, sources, max_examples=0, batch_size=1):
        """Pairs of consecutive frames."""
        from crct_tf.data import bt_pipeline
        if inputs.is_video(sources):
            video_dirs, annot_dir = inputs.video_dirs(sources)
            dataset = bt_pipeline.make_bt_video_dataset(
                video_dirs, self.settings, batch_size, 2, augment=False, repeat=False,
                frame_step=sources.frame_step, shuffle_buffer=0, annot_dir=annot_dir)
        else:
            dataset = bt_pipeline.make_bt_dataset(inputs.image_examples(sources), self.settings,
                                                  batch_size, 2, augment=False, repeat=False,
                                                  shuffle_buffer=0)
        return _take(dataset, max_examples, batch_size)

    def evaluation_points(self, batch):
        """One step from the ground-truth box of each sequence's first frame."""
        frames, landmarks = batch["frames"], batch["landmarks"]
        size = self.settings.input_size
        box = tf.concat([tf.reduce_min(landmarks[:, 0], 1), tf.reduce_max(landmarks[:, 0], 1)], -1)
        window = tf_cropping.tf_square_context_box(box, self.settings.bt_context)
        out = self.model({"previous_crop": tf_cropping.tf_crop_images(frames[:, 0], window, size),
                          "current_crop": tf_cropping.tf_crop_images(frames[:, 1], window, size),
                          "state": tf.zeros([tf.shape(frames)[0], STATE_PARTS, LSTM_UNITS])},
                         training=False)
        return out["landmarks"], cropping.points_to_crop(landmarks[:, 1], window, size)


TASKS = {task.name: task for task in (FLLTask, FVTask, BTTask)}


def get_task(name, settings, backbone_factory=None, **options):
    """The task called `name` (fll, fv or bt); `options` as in `Task`."""
    if name not in TASKS:
        raise ValueError(f"unknown model {name!r}; expected fll, fv or bt")
    return TASKS[name](settings, backbone_factory, **options)


def _mean_point_error(predicted, target):
    return tf.reduce_mean(tf.norm(predicted - target, axis=-1))


def _take(dataset, max_examples, batch_size):
    return dataset.take(max(1, max_examples // batch_size)) if max_examples else dataset
