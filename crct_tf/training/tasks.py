"""What each sub-network learns: its networks, its loss and its per-replica step (paper III-E).

    FLL: l2 loss on the 68 points in crop pixels            (eq. 7)
    FV:  binary cross-entropy on p(face)                     (eq. 6)
    BT:  l1 loss on the 68 points of every unrolled step     (eq. 2), Re3's curriculum

A task knows nothing of strategies, checkpoints or summaries: `crct_tf.training.loop` runs it.
Losses are summed over the replica's examples and divided by the GLOBAL batch size, so that
summing over replicas gives the mean (tf.distribute's convention).
"""

import dataclasses
import math

import keras
import tensorflow as tf

from crct_tf.geometry import cropping, tf_cropping
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.geometry.landmarks import NUM_LANDMARKS
from crct_tf.models.bt import LSTM_UNITS, STATE_PARTS, build_bt
from crct_tf.models.fll import build_fll
from crct_tf.models.fv import build_fv


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


@dataclasses.dataclass
class Task:
    """The networks of one training run and the step that trains them.

    Attributes:
      name: `fll`, `fv` or `bt`.
      model: the trained keras.Model (BT, FV or FLL).
      backbone: its backbone instance (None for FV), kept in its own checkpoint slot.
      settings: the crop settings the data and the tracker share.
    """
    name: str
    model: keras.Model
    backbone: object
    settings: CropSettings

    def trainable_variables(self):
        return self.model.trainable_variables

    # Each *_loss returns (per-replica loss scaled by the global batch, a dict of metrics).

    def fll_loss(self, batch, global_batch_size, training=True):
        crops, target = batch
        predicted = self.model(crops, training=training)
        per_example = tf.reduce_sum(tf.square(predicted - target), axis=[1, 2]) / NUM_LANDMARKS
        return (tf.reduce_sum(per_example) / global_batch_size,
                {"point_error_px": _mean_point_error(predicted, target)})

    def fv_loss(self, batch, global_batch_size, training=True):
        patches, labels = batch
        p_face = self.model(patches, training=training)
        per_example = keras.losses.binary_crossentropy(labels[:, None], p_face[:, None])
        accuracy = tf.reduce_mean(tf.cast(tf.equal(p_face > 0.5, labels > 0.5), tf.float32))
        return tf.reduce_sum(per_example) / global_batch_size, {"accuracy": accuracy}

    def bt_loss(self, batch, global_batch_size, seq_len, seed, training=True):
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
        previous_box = tf_cropping.tf_box_from_landmarks(truth[:, 0])
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
            previous_box = tf.where(use_own[:, None], tf_cropping.tf_box_from_landmarks(predicted), tf_cropping.tf_box_from_landmarks(truth[:, t]))
        loss = total / (global_batch_size * seq_len)
        return loss, {"point_error_px": tf.add_n(point_errors) / seq_len}


def _mean_point_error(predicted, target):
    return tf.reduce_mean(tf.norm(predicted - target, axis=-1))


def build_task(name, settings, backbone_factory, shared_backbone=None, freeze_backbone=False):
    """Builds the networks of a task.

    Args:
      name: `fll`, `fv` or `bt`.
      backbone_factory: callable(image_size) -> backbone model named "backbone" (facenet
        initialised, random, or a tiny stand-in for tests).
      shared_backbone: an existing backbone instance to reuse (BT and FLL sharing one).
      freeze_backbone: train only the task's own layers (e.g. BT on top of a fine-tuned FLL's
        backbone, so that one backbone serves both in a bundle).
    """
    if name == "fv":
        return Task("fv", build_fv(settings), None, settings)
    backbone = shared_backbone or backbone_factory(settings.input_size)
    if freeze_backbone:
        backbone.trainable = False
    if name == "fll":
        return Task("fll", build_fll(backbone, settings), backbone, settings)
    if name == "bt":
        return Task("bt", build_bt(backbone, settings), backbone, settings)
    raise ValueError(f"unknown model {name!r}; expected fll, fv or bt")
