"""The FLL input pipeline: face crops and their 68 landmarks in crop pixels (eq. 7).

The tracker runs FLL on the crop `square_context_box(b_t^BT, fll_context)` resized to
`input_size`; training cuts the same crop around the (jittered) landmark box with the same
`geometry` code, so FLL sees in training exactly what it sees when tracking. With
`upright_probability`, that fraction of the examples is cut as the tracker cuts FLL's crop with
`CropSettings.fll_upright`: turned upright by the face's roll (jittered by a few degrees).
"""

import tensorflow as tf

from crct_tf.geometry import cropping, tf_cropping
from crct_tf.data import augment, common, expression

SALT = 1  # keeps FLL's random numbers apart from FV's and BT's on the same seed


def fll_example(example, seed, settings, do_augment=True, hard_conditions=False,
                box_jitter=(augment.BOX_SHIFT, augment.BOX_SCALE), fringe_probability=0.0,
                upright_probability=0.0, mouth_cover_probability=0.0, shape_warp_probability=0.0,
                shape_warp_nodes=augment.SHAPE_WARP_NODES, expression_probability=0.0):
    """One training example from {image, landmarks}.

    Args:
      example: {"image": [H, W, 3], "landmarks": [68, 2] float32}.
      seed: int tensor [2].
      settings: `CropSettings` (input_size, fll_context).
      do_augment: flip / rotate / occlude / photometric, then jitter the box.
      hard_conditions: with `do_augment`, also an occluder, light 0.4-1.4x, motion blur or a
        small face (`augment.hard_conditions`; not in the paper, off by default).
      box_jitter: (largest centre shift, largest rescale) of the box, fractions of its size.
      fringe_probability: with `do_augment`, hair over the brows on this fraction of the
        examples (`augment.fringe`; not in the paper, 0 by default).
      upright_probability: with `do_augment`, this fraction of the examples is cut from the
        turned window of the points (`cropping.turned_context_window`, jittered by
        `augment.jitter_turned_window`), as the tracker does with `fll_upright`; not in the
        paper, 0 by default.
      mouth_cover_probability: with `do_augment`, something held over the mouth on this
        fraction of the examples (`augment.mouth_cover`; not in the paper, 0 by default).
      shape_warp_probability: with `do_augment`, the face given other proportions on this
        fraction of the examples (`augment.shape_warp`, before anything is painted on it; not
        in the paper, 0 by default).
      shape_warp_nodes: the shape warp's control points a side (4: proportions; more, finer
        moves such as expressions).
      expression_probability: with `do_augment`, brows raised or lowered and the mouth opened
        and rounded on this fraction of the examples (`expression.expression_warp`, after the
        shape warp and before anything is painted; not in the paper, 0 by default).

    Returns:
      {"crop": float32 [S, S, 3] 0-255, "landmarks": float32 [68, 2] crop pixels,
       "window": float32 [4], the crop window in the (augmented) image's pixels; for a turned
       example, the turned window [cx, cy, side, angle]}.
    """
    seeds = augment.split_seed(seed, 2)
    example = common.still_with_box(example, seeds[0], do_augment)
    if do_augment:
        example = augment.maybe_shape_warp(example, seeds[1], shape_warp_probability,
                                           shape_warp_nodes)
        example = expression.maybe_expression_warp(example, seeds[1], expression_probability)
    if do_augment and hard_conditions:
        example = augment.hard_conditions(example, augment.split_seed(seeds[1], 2)[1])
    if do_augment:
        example = augment.maybe_fringe(example, seeds[1], fringe_probability)
        example = augment.maybe_mouth_cover(example, seeds[1], mouth_cover_probability)
        if upright_probability > 0:
            turned_seeds = augment.split_seed(
                tf.random.experimental.stateless_fold_in(tf.cast(seeds[1], tf.int64),
                                                         UPRIGHT_SALT), 2)
            upright = tf.random.stateless_uniform([], turned_seeds[0]) < upright_probability
            return tf.cond(upright,
                           lambda: _turned_example(example, turned_seeds[1], settings,
                                                   box_jitter),
                           lambda: _axis_example(augment.jitter_box(example, seeds[1],
                                                                    *box_jitter), settings))
        example = augment.jitter_box(example, seeds[1], *box_jitter)
    return _axis_example(example, settings)


UPRIGHT_SALT = 202     # the turned crops' draws, folded in: the other draws stay what they were


def _axis_example(example, settings):
    """The paper's crop: the square context window of the example's (jittered) box."""
    size = settings.fll_size
    window = tf_cropping.tf_square_context_box(example["box"], settings.fll_context)
    crop = tf_cropping.tf_crop_images(example["image"][None], window[None], size)[0]
    points = cropping.points_to_crop(example["landmarks"], window, size)
    return {"crop": crop, "landmarks": points, "window": window}


def _turned_example(example, seed, settings, box_jitter):
    """The tracker's crop with `fll_upright`: the points' turned window, jittered."""
    size, context = settings.fll_size, settings.fll_context
    points = tf.cast(example["landmarks"], tf.float32)
    window = augment.jitter_turned_window(tf_cropping.tf_turned_context_window(points, context),
                                          seed, context, *box_jitter)
    crop = tf_cropping.tf_crop_turned(example["image"], window[None], size)[0]
    return {"crop": crop, "landmarks": tf_cropping.tf_points_to_turned_crop(points, window, size),
            "window": window}


def make_fll_dataset(source, settings, batch_size, seed=0, augment=True, repeat=True,
                     shuffle_buffer=common.DEFAULT_SHUFFLE_BUFFER, with_windows=False,
                     hard_conditions=False, box_jitter=(augment.BOX_SHIFT, augment.BOX_SCALE),
                     fringe_probability=0.0, upright_probability=0.0,
                     mouth_cover_probability=0.0, shape_warp_probability=0.0,
                     shape_warp_nodes=augment.SHAPE_WARP_NODES, expression_probability=0.0):
    """Batches for FLL training.

    Args:
      source: `tf.data.Dataset` of dicts with `image` (uint8 [H, W, 3]) and `landmarks` [68, 2],
        e.g. `tfds.load("crct_bootstrap", split="train")` or `synthetic.synthetic_faces(n)`.
      settings: `CropSettings`.
      batch_size: examples per batch (the last partial batch is dropped).
      seed: the stream is a function of it.
      augment: apply the training augmentations.
      repeat: repeat forever.
      shuffle_buffer: 0 keeps the source order.
      with_windows: also yield the crop windows [B, 4], to map points back with
        `cropping.points_from_crop`.
      hard_conditions, box_jitter, fringe_probability, upright_probability,
        mouth_cover_probability, shape_warp_probability, shape_warp_nodes,
        expression_probability: see `fll_example`.

    Returns:
      A dataset of (crops [B, S, S, 3] float32 0-255, landmarks [B, 68, 2] float32 crop pixels)
      or, with `with_windows`, (crops, landmarks, windows).
    """
    stream = common.seeded_stream(source, seed, SALT, shuffle_buffer, repeat)

    def example_fn(index, example_seed, example):
        del index
        out = fll_example(example, example_seed, settings, augment, hard_conditions, box_jitter,
                          fringe_probability, upright_probability, mouth_cover_probability,
                          shape_warp_probability, shape_warp_nodes, expression_probability)
        if with_windows:
            return out["crop"], out["landmarks"], out["window"]
        return out["crop"], out["landmarks"]

    dataset = common.batch_and_prefetch(stream, example_fn, batch_size)
    shapes = [[batch_size, settings.fll_size, settings.fll_size, 3], [batch_size, 68, 2],
              [batch_size, 4]]
    # Static shapes for Keras and tf.function (crop_and_resize leaves the batch dimension open).
    return dataset.map(lambda *t: tuple(tf.ensure_shape(x, s) for x, s in zip(t, shapes)))
