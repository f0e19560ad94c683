"""The FV input pipeline: 68 patches around a landmark set, labelled face (1) or not (0) (eq. 6).

Two schemes of examples:

`paper` (the authors' code; `fv_example`'s default): positives are the true landmarks and small
shifts of them (2.5-5 % of the face box), negatives are larger shifts (7.5-20 %), the shape moved
to a random place in the image, and flat patches.

`robust` (what `make_fv_dataset` trains with by default, `TRAINING_SCHEME`): the validator must
accept a face that is partly hidden, blurred, dim or turned, as BT's landmarks show it -- a few
percent off -- and reject a shape that is not on the face. Positives: the true landmarks, or
jittered (shift up to 10 % of the face box, scale 0.9-1.1x, turn up to 10 degrees), on images that
got, besides the still augmentations, an occluder over up to ~30 % of the face (a bar over the
eyes, a strip across the upper lip, a hand-like blob, a strip), a light gain of 0.4-1.4x and
motion blur, low resolution (`augment.hard_conditions`; negatives get the same, so these are no
cue).
Negatives: the shape shifted by 0.3-1 face width, scaled by 0.5x or 2x, turned by 60-180
degrees, distorted point by point (20-40 %), moved to a random place and resized 0.6-1.5x
(background, or another face in the photo), the shape on a face-free clutter image (smooth
noise and boxes), the shape moved below the face onto the neck, collar and clothes, and
flat patches. The band between (10-30 %
shifts) is left out: those shapes are neither clearly on nor clearly off the face. The
measured effect is in docs/robustness.md.

Patches are cut by `tf_cropping.tf_landmark_patches` with the box of the landmarks shown, as the
tracker cuts them around BT's landmarks.
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
# Robust scheme: the share of examples with hair over the brows (`augment.fringe`), alone or with
# another occluder (before it, a fringe plus a strip under the nose was rejected on a new face).
FRINGE_PROBABILITY = 0.25
NEGATIVE_WEIGHTS = (0.5, 0.25, 0.25)
# Kind codes in `fv_example`'s output.
KIND_TRUE, KIND_SMALL_SHIFT, KIND_SHIFT, KIND_RANDOM_POSITION, KIND_FLAT = range(5)
# The robust scheme's own kinds.
KIND_JITTER, KIND_FAR_SHIFT, KIND_SCALE, KIND_TURN, KIND_DISTORT, KIND_CLUTTER, KIND_BELOW = \
    range(5, 12)

SCHEMES = ("paper", "robust")
TRAINING_SCHEME = "robust"
ROBUST_TRUE_PROBABILITY = 0.3
JITTER_SHIFT = (0.0, 0.10)
JITTER_SCALE = (0.9, 1.1)
JITTER_DEGREES = 10.0
FAR_SHIFT = (0.3, 1.0)                  # fractions of the face box's larger side
SMALL_SCALE, LARGE_SCALE = (0.45, 0.6), (1.8, 2.2)
TURN_DEGREES = (60.0, 180.0)
DISTORT_SHIFT = (0.2, 0.4)
# far, scale, turn, distort, place, flat, clutter, below
ROBUST_NEGATIVE_WEIGHTS = (0.15, 0.1, 0.1, 0.05, 0.25, 0.07, 0.16, 0.12)
PLACE_SCALE = (0.6, 1.5)                # a shape on background is also resized
# A shape on the neck, collar and clothes under the face (where a drifting box goes, and what a
# background shape most often lands on in a head-and-shoulders video): moved down by 0.6-1.6
# face sides, sideways by up to 0.3 and scaled 0.6-1.0x. (Wider draws, up to 1.2 sideways and
# 0.45-1.0x, drawn twice as often, did not reject the demo clip's shoulder better: runs
# robust_fv9 and robust_fv10 in docs/robustness.md.)
BELOW_SHIFT = (0.6, 1.6)
BELOW_SIDEWAYS = 0.3
BELOW_SCALE = (0.6, 1.0)


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


def similarity_about_centre(landmarks, scale, angle, shift=(0.0, 0.0)):
    """Landmarks scaled by `scale` and turned by `angle` radians about their box centre, then
    moved by `shift` pixels."""
    box = augment.landmark_box(landmarks)
    centre = (box[:2] + box[2:]) / 2.0
    matrix = augment.similarity_matrix(centre, angle, scale, shift)
    return augment.transform_points(landmarks, matrix)


def _robust_shown_landmarks(example, seed, label, point_noise=0.0):
    """(landmarks, kind) of the robust scheme (see the module docstring).

    `point_noise` (an option, 0 by default): each point of a jittered positive also moved on its
    own by up to this fraction of the face box's larger side, as a landmark localiser's points
    miss the true ones one by one (its errors are 1-3 % of the box); the train command allows at
    most 0.1, half DISTORT_SHIFT's smallest, so no positive looks like a distorted negative.
    """
    seeds = augment.split_seed(seed, 8)
    points, shape = example["landmarks"], tf.shape(example["image"])
    box = augment.landmark_box(points)
    side = tf.reduce_max(box[2:] - box[:2])
    u = tf.random.stateless_uniform([4], seeds[0])
    direction = 2.0 * math.pi * u[0]
    unit = tf.stack([tf.cos(direction), tf.sin(direction)])

    def jitter():
        shift = unit * side * (JITTER_SHIFT[0] + (JITTER_SHIFT[1] - JITTER_SHIFT[0]) * u[1])
        scale = JITTER_SCALE[0] + (JITTER_SCALE[1] - JITTER_SCALE[0]) * u[2]
        angle = math.radians(JITTER_DEGREES) * (2.0 * u[3] - 1.0)
        moved = similarity_about_centre(points, scale, angle, shift)
        if point_noise > 0:           # seeds[7], unused before: the other draws stay as they were
            moved = shift_landmarks(moved, seeds[7], (0.0, point_noise), per_point=True)
        return moved

    def positive():
        keep = tf.random.stateless_uniform([], seeds[1]) < ROBUST_TRUE_PROBABILITY
        return tf.cond(keep, lambda: (points, KIND_TRUE), lambda: (jitter(), KIND_JITTER))

    def scaled():
        small = SMALL_SCALE[0] + (SMALL_SCALE[1] - SMALL_SCALE[0]) * u[1]
        large = LARGE_SCALE[0] + (LARGE_SCALE[1] - LARGE_SCALE[0]) * u[1]
        return similarity_about_centre(points, tf.where(u[2] < 0.5, small, large), 0.0)

    def turned():
        degrees = TURN_DEGREES[0] + (TURN_DEGREES[1] - TURN_DEGREES[0]) * u[1]
        sign = tf.where(u[2] < 0.5, -1.0, 1.0)
        return similarity_about_centre(points, 1.0, sign * math.radians(1.0) * degrees)

    def below():
        down = side * (BELOW_SHIFT[0] + (BELOW_SHIFT[1] - BELOW_SHIFT[0]) * u[1])
        sideways = side * BELOW_SIDEWAYS * (2.0 * u[2] - 1.0)
        scale = BELOW_SCALE[0] + (BELOW_SCALE[1] - BELOW_SCALE[0]) * u[3]
        return similarity_about_centre(points, scale, 0.0, tf.stack([sideways, down]))

    def negative():
        logits = tf.math.log(tf.constant([ROBUST_NEGATIVE_WEIGHTS], tf.float32))
        kind = tf.random.stateless_categorical(logits, 1, seeds[2])[0, 0]
        return tf.switch_case(tf.cast(kind, tf.int32), [
            lambda: (shift_landmarks(points, seeds[3], FAR_SHIFT), KIND_FAR_SHIFT),
            lambda: (scaled(), KIND_SCALE),
            lambda: (turned(), KIND_TURN),
            lambda: (shift_landmarks(points, seeds[4], DISTORT_SHIFT, True), KIND_DISTORT),
            lambda: (random_position(similarity_about_centre(
                points, PLACE_SCALE[0] + (PLACE_SCALE[1] - PLACE_SCALE[0]) * u[3], 0.0),
                shape, seeds[5], FAR_SHIFT[0]), KIND_RANDOM_POSITION),
            lambda: (points, KIND_FLAT),
            lambda: (random_position(points, shape, seeds[6], FAR_SHIFT[0]), KIND_CLUTTER),
            lambda: (below(), KIND_BELOW),
        ])

    return tf.cond(label > 0, positive, negative)


def clutter_image(shape, seed):
    """A face-free image of `shape` [H, W, 3]: smooth noise at three scales plus a few boxes of
    random colour (the edges of windows, seats, shelves), 0-255 float."""
    seeds = augment.split_seed(seed, 8)
    height, width = shape[0], shape[1]
    out = tf.zeros([height, width, 3])
    for k, cells in enumerate((4, 12, 40)):
        grid = tf.random.stateless_uniform([1, cells, cells, 3], seeds[k], -1.0, 1.0)
        weight = tf.random.stateless_uniform([], seeds[k + 3], 0.2, 1.0)
        out += weight * tf.image.resize(grid, tf.stack([height, width]))[0]
    base = tf.random.stateless_uniform([3], seeds[6], 40.0, 215.0)
    out = base + 60.0 * out
    boxes = tf.random.stateless_uniform([4, 7], seeds[7])
    ys, xs = tf.meshgrid(tf.linspace(0.0, 1.0, height), tf.linspace(0.0, 1.0, width),
                         indexing="ij")
    for b in range(4):
        x0, y0 = boxes[b, 0] * 0.8, boxes[b, 1] * 0.8
        inside = (xs >= x0) & (xs <= x0 + 0.1 + 0.4 * boxes[b, 2]) & \
                 (ys >= y0) & (ys <= y0 + 0.1 + 0.4 * boxes[b, 3])
        out = tf.where(inside[..., None], 255.0 * boxes[b, 4:7], out)
    return tf.clip_by_value(out, 0.0, 255.0)


def fv_example(example, seed, label, settings, do_augment=True, scheme="paper", point_noise=0.0,
               decolour=0.0):
    """One validator example.

    Args:
      example: {"image": [H, W, 3], "landmarks": [68, 2]}.
      seed: int tensor [2].
      label: int32 scalar, 1 (face) or 0 (not a face).
      settings: `CropSettings` (fv_face_context, fv_face_size, fv_patch_size).
      do_augment: apply the still augmentations first (and, in the robust scheme, an occluder,
        a light gain and motion blur: `augment.hard_conditions`).
      scheme: `paper` or `robust` (see the module docstring).
      point_noise: robust scheme only: the jittered positives' points each moved on their own
        by up to this fraction of the face box's larger side (0: not at all, as before).
      decolour: with `do_augment`, colour taken away (`augment.decolour`: grey, faded sepia or
        half gone) on this fraction of the examples, faces and not-faces alike, after every
        other change (0: none, as before).

    Returns:
      {"patches": float32 [68, P, P, 3] 0-255, "label": float32 scalar,
       "landmarks": [68, 2] the points the patches are centred on, "kind": int32 KIND_*,
       "image", "true_landmarks": the (augmented) image and its true points, for display}.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown FV scheme {scheme!r}; expected one of {SCHEMES}")
    seeds = augment.split_seed(seed, 3)
    example = common.still_with_box(example, seeds[0], do_augment)
    if scheme == "robust":
        if do_augment:
            example = augment.hard_conditions(example, seeds[2],
                                              fringe_probability=FRINGE_PROBABILITY)
        shown, kind = _robust_shown_landmarks(example, seeds[1], label, point_noise)
    else:
        shown, kind = _shown_landmarks(example, seeds[1], label)
    if scheme == "robust":      # clutter negatives: the same shape on a face-free image
        example = dict(example, image=tf.cond(
            tf.equal(kind, KIND_CLUTTER),
            lambda: tf.cast(clutter_image(tf.shape(example["image"]), seeds[2]),
                            example["image"].dtype),
            lambda: example["image"]))
    if do_augment:
        example = augment.maybe_decolour(example, seeds[2], decolour)
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
                    positive_fraction=POSITIVE_FRACTION, scheme=TRAINING_SCHEME,
                    point_noise=0.0, decolour=0.0):
    """Batches for FV training: (patches [B, 68, P, P, 3] float32 0-255, labels [B] float32).

    `scheme`: `robust` (default) or `paper` (see the module docstring); `point_noise`,
    `decolour`: as in `fv_example`.

    Labels follow the example index so that exactly `positive_fraction` of any run of examples
    is positive (50/50 by default); the images behind them are shuffled. Other arguments as in
    `fll_pipeline.make_fll_dataset`.
    """
    stream = common.seeded_stream(source, seed, SALT, shuffle_buffer, repeat)

    def example_fn(index, example_seed, example):
        out = fv_example(example, example_seed, _label(index, positive_fraction), settings,
                         augment, scheme, point_noise, decolour)
        return out["patches"], out["label"]

    size = settings.fv_patch_size
    dataset = common.batch_and_prefetch(stream, example_fn, batch_size)
    return dataset.map(lambda p, y: (tf.ensure_shape(p, [batch_size, 68, size, size, 3]),
                                     tf.ensure_shape(y, [batch_size])))
