"""The FV input pipeline: 68 patches around a landmark set, labelled face (1) or not (0) (eq. 6).

From the authors' code: positives are the true landmarks and small shifts of them
(2.5-5 % of the face box), negatives are larger shifts (7.5-20 %), the shape moved to a random
place in the image, and flat patches. Patches are cut by `tf_cropping.tf_landmark_patches` with the
box of the landmarks shown, as the tracker cuts them around BT's landmarks.
"""

import math

import tensorflow as tf

from crct_tf.geometry import tf_cropping
from crct_tf.data import augment, common

SALT = 2

# Shift sizes as fractions of the face box's larger side (the authors' code).
POSITIVE_SHIFT = (0.025, 0.05)
NEGATIVE_SHIFT = (0.075, 0.20)
POSITIVE_FRACTION = 0.5
# Positives: half the true landmarks, half shifted. Negatives: how often each kind is drawn.
POSITIVE_TRUE_PROBABILITY = 0.5
NEGATIVE_KINDS = ("shift", "random_position", "flat")
NEGATIVE_WEIGHTS = (0.5, 0.25, 0.25)
# Kind codes in `fv_example`'s output.
KIND_TRUE, KIND_SMALL_SHIFT, KIND_SHIFT, KIND_RANDOM_POSITION, KIND_FLAT = range(5)


def shift_landmarks(landmarks, seed, fraction_range, per_point=False):
    """Landmarks moved by a distance in `fraction_range` x the landmark box's larger side.

    Args:
      landmarks: [68, 2] float32.
      seed: int tensor [2].
      fraction_range: (low, high) fractions of the box side.
      per_point: each point gets its own direction and distance (a distorted shape); otherwise
        one shift moves the whole shape.

    Returns:
      [68, 2] float32; every point lies at a distance in the range from its original place.
    """
    seeds = augment.split_seed(seed, 2)
    count = tf.shape(landmarks)[0] if per_point else 1
    box = augment.landmark_box(landmarks)
    side = tf.reduce_max(box[2:] - box[:2])
    distance = side * tf.random.stateless_uniform([count], seeds[0], *fraction_range)
    direction = tf.random.stateless_uniform([count], seeds[1], 0.0, 2.0 * math.pi)
    offset = tf.stack([tf.cos(direction), tf.sin(direction)], axis=-1) * distance[:, None]
    return landmarks + offset


def random_position(landmarks, image_shape, seed, min_fraction=NEGATIVE_SHIFT[1]):
    """The shape moved so that its box centre is a uniform point of the image.

    A draw landing closer than `min_fraction` of the box side to the true place is pushed out to
    that distance, so the result is always a negative.
    """
    seeds = augment.split_seed(seed, 2)
    box = augment.landmark_box(landmarks)
    centre, side = (box[:2] + box[2:]) / 2.0, tf.reduce_max(box[2:] - box[:2])
    extent = tf.cast(tf.stack([image_shape[1], image_shape[0]]), tf.float32) - 1.0
    target = extent * tf.random.stateless_uniform([2], seeds[0])
    offset = target - centre
    norm = tf.norm(offset)
    angle = tf.random.stateless_uniform([], seeds[1], 0.0, 2.0 * math.pi)
    fallback = tf.stack([tf.cos(angle), tf.sin(angle)])
    direction = tf.where(norm > 1e-3, offset / tf.maximum(norm, 1e-3), fallback)
    return landmarks + direction * tf.maximum(norm, min_fraction * side)


def _label(index, positive_fraction):
    """1 for example `index` when floor((i+1) p) > floor(i p): exactly p of any run are positive."""
    i = tf.cast(index, tf.float64)
    p = tf.cast(positive_fraction, tf.float64)
    return tf.cast(tf.floor((i + 1.0) * p) > tf.floor(i * p), tf.int32)


def _shown_landmarks(example, seed, label):
    """(landmarks to cut patches at, kind code) for a positive (label 1) or negative."""
    seeds = augment.split_seed(seed, 5)
    points, shape = example["landmarks"], tf.shape(example["image"])
    per_point = tf.random.stateless_uniform([], seeds[0]) < 0.5

    def shifted(fraction_range):
        return tf.cond(per_point,
                       lambda: shift_landmarks(points, seeds[1], fraction_range, True),
                       lambda: shift_landmarks(points, seeds[1], fraction_range, False))

    def positive():
        keep = tf.random.stateless_uniform([], seeds[2]) < POSITIVE_TRUE_PROBABILITY
        return tf.cond(keep, lambda: (points, KIND_TRUE),
                       lambda: (shifted(POSITIVE_SHIFT), KIND_SMALL_SHIFT))

    def negative():
        logits = tf.math.log(tf.constant([NEGATIVE_WEIGHTS], tf.float32))
        kind = tf.random.stateless_categorical(logits, 1, seeds[3])[0, 0]
        return tf.switch_case(tf.cast(kind, tf.int32), [
            lambda: (shifted(NEGATIVE_SHIFT), KIND_SHIFT),
            lambda: (random_position(points, shape, seeds[4]), KIND_RANDOM_POSITION),
            lambda: (points, KIND_FLAT),
        ])

    return tf.cond(label > 0, positive, negative)


def fv_example(example, seed, label, settings, do_augment=True):
    """One validator example.

    Args:
      example: {"image": [H, W, 3], "landmarks": [68, 2]}.
      seed: int tensor [2].
      label: int32 scalar, 1 (face) or 0 (not a face).
      settings: `CropSettings` (fv_face_context, fv_face_size, fv_patch_size).
      do_augment: apply the still augmentations first.

    Returns:
      {"patches": float32 [68, P, P, 3] 0-255, "label": float32 scalar,
       "landmarks": [68, 2] the points the patches are centred on, "kind": int32 KIND_*,
       "image", "true_landmarks": the (augmented) image and its true points, for display}.
    """
    seeds = augment.split_seed(seed, 3)
    example = common.still_with_box(example, seeds[0], do_augment)
    shown, kind = _shown_landmarks(example, seeds[1], label)
    patches = tf_cropping.tf_landmark_patches(
        example["image"][None], shown[None], augment.landmark_box(shown)[None],
        patch_size=settings.fv_patch_size, face_context=settings.fv_face_context,
        face_size=settings.fv_face_size)[0]
    # Flat negatives: every patch one colour, the mean of the face's own patches, so that only
    # structure (not colour) tells them apart.
    flat_colour = tf.reduce_mean(patches, axis=[0, 1, 2])
    patches = tf.where(tf.equal(kind, KIND_FLAT), tf.ones_like(patches) * flat_colour, patches)
    return {"patches": patches, "label": tf.cast(label, tf.float32), "landmarks": shown,
            "kind": tf.cast(kind, tf.int32), "image": example["image"],
            "true_landmarks": example["landmarks"]}


def make_fv_dataset(source, settings, batch_size, seed=0, augment=True, repeat=True,
                    shuffle_buffer=common.DEFAULT_SHUFFLE_BUFFER,
                    positive_fraction=POSITIVE_FRACTION):
    """Batches for FV training: (patches [B, 68, P, P, 3] float32 0-255, labels [B] float32).

    Labels follow the example index so that exactly `positive_fraction` of any run of examples
    is positive (50/50 by default); the images behind them are shuffled. Other arguments as in
    `fll_pipeline.make_fll_dataset`.
    """
    stream = common.seeded_stream(source, seed, SALT, shuffle_buffer, repeat)

    def example_fn(index, example_seed, example):
        out = fv_example(example, example_seed, _label(index, positive_fraction), settings,
                         augment)
        return out["patches"], out["label"]

    size = settings.fv_patch_size
    dataset = common.batch_and_prefetch(stream, example_fn, batch_size)
    return dataset.map(lambda p, y: (tf.ensure_shape(p, [batch_size, 68, size, size, 3]),
                                     tf.ensure_shape(y, [batch_size])))
