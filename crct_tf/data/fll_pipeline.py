"""The FLL input pipeline: face crops and their 68 landmarks in crop pixels (eq. 7).

The tracker runs FLL on the crop `square_context_box(b_t^BT, fll_context)` resized to
`input_size`; training cuts the same crop around the (jittered) landmark box with the same
`geometry` code, so FLL sees in training exactly what it sees when tracking.
"""

import tensorflow as tf

from crct_tf.geometry import cropping, tf_cropping
from crct_tf.data import augment, common

SALT = 1  # keeps FLL's random numbers apart from FV's and BT's on the same seed


def fll_example(example, seed, settings, do_augment=True, hard_conditions=False,
                box_jitter=(augment.BOX_SHIFT, augment.BOX_SCALE), fringe_probability=0.0):
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

    Returns:
      {"crop": float32 [S, S, 3] 0-255, "landmarks": float32 [68, 2] crop pixels,
       "window": float32 [4], the crop window in the (augmented) image's pixels}.
    """
    seeds = augment.split_seed(seed, 2)
    example = common.still_with_box(example, seeds[0], do_augment)
    if do_augment and hard_conditions:
        example = augment.hard_conditions(example, augment.split_seed(seeds[1], 2)[1])
    if do_augment:
        example = augment.maybe_fringe(example, seeds[1], fringe_probability)
        example = augment.jitter_box(example, seeds[1], *box_jitter)
    size = settings.fll_size
    window = tf_cropping.tf_square_context_box(example["box"], settings.fll_context)
    crop = tf_cropping.tf_crop_images(example["image"][None], window[None], size)[0]
    points = cropping.points_to_crop(example["landmarks"], window, size)
    return {"crop": crop, "landmarks": points, "window": window}


def make_fll_dataset(source, settings, batch_size, seed=0, augment=True, repeat=True,
                     shuffle_buffer=common.DEFAULT_SHUFFLE_BUFFER, with_windows=False,
                     hard_conditions=False, box_jitter=(augment.BOX_SHIFT, augment.BOX_SCALE),
                     fringe_probability=0.0):
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
      hard_conditions, box_jitter, fringe_probability: see `fll_example`.

    Returns:
      A dataset of (crops [B, S, S, 3] float32 0-255, landmarks [B, 68, 2] float32 crop pixels)
      or, with `with_windows`, (crops, landmarks, windows).
    """
    stream = common.seeded_stream(source, seed, SALT, shuffle_buffer, repeat)

    def example_fn(index, example_seed, example):
        del index
        out = fll_example(example, example_seed, settings, augment, hard_conditions, box_jitter,
                          fringe_probability)
        if with_windows:
            return out["crop"], out["landmarks"], out["window"]
        return out["crop"], out["landmarks"]

    dataset = common.batch_and_prefetch(stream, example_fn, batch_size)
    shapes = [[batch_size, settings.fll_size, settings.fll_size, 3], [batch_size, 68, 2],
              [batch_size, 4]]
    # Static shapes for Keras and tf.function (crop_and_resize leaves the batch dimension open).
    return dataset.map(lambda *t: tuple(tf.ensure_shape(x, s) for x, s in zip(t, shapes)))
