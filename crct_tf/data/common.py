"""What the three pipelines share: source clean-up, per-example seeds, batching.

Every pipeline is `source -> shuffle -> repeat -> enumerate -> map(example_fn) -> batch ->
prefetch`. Example i of the (repeated) stream gets the seed fold_in([seed, salt], i), so the
stream is the same for the same seed, differs between epochs, and uses no stateful random op:
the iterator can be saved in a checkpoint.
"""

import tensorflow as tf

from crct_tf.data import augment

DEFAULT_SHUFFLE_BUFFER = 256


def image_and_landmarks(example):
    """Keeps the two features every source has: uint8 `image` [H, W, 3], float32 `landmarks`.

    TFDS sources (`crct_bootstrap`, `ibug300w`, `menpo2d`, `vw300`) carry more features;
    dropping them lets any of them, or `synthetic.synthetic_faces`, feed any pipeline.
    """
    return {"image": tf.convert_to_tensor(example["image"]),
            "landmarks": tf.cast(example["landmarks"], tf.float32)}


def seeded_stream(source, seed, salt, shuffle_buffer=DEFAULT_SHUFFLE_BUFFER, repeat=True):
    """(index, seed [2], example) triples of a shuffled, optionally repeated source.

    Args:
      source: a `tf.data.Dataset` of dicts with `image` and `landmarks`.
      seed: Python int; the whole stream is a function of it.
      salt: Python int that keeps two pipelines on one seed from drawing the same numbers.
      shuffle_buffer: 0 keeps the source order.
      repeat: repeat forever (training) or make one pass.
    """
    stream = source.map(image_and_landmarks, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle_buffer:
        stream = stream.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        stream = stream.repeat()
    base = tf.constant([seed, salt], tf.int64)
    return stream.enumerate().map(
        lambda i, ex: (i, tf.random.experimental.stateless_fold_in(base, i), ex),
        num_parallel_calls=tf.data.AUTOTUNE)


def batch_and_prefetch(stream, example_fn, batch_size):
    """Maps `example_fn(index, seed, example)` in parallel (order kept), batches, prefetches."""
    stream = stream.map(example_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return stream.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def still_with_box(example, seed, do_augment):
    """The example with its landmark box, after the paper's augmentations when `do_augment`."""
    if do_augment:
        return augment.augment_still(example, seed)
    return dict(example, box=augment.landmark_box(example["landmarks"]))


def dataset_from_examples(examples):
    """A `tf.data.Dataset` of {image, landmarks} from in-memory examples of varying image size.

    Images are held as PNG bytes (lossless) and decoded in the pipeline, so the dataset is pure
    TensorFlow (no `from_generator`): e.g. `dataset_from_examples(load_bootstrap_examples("val"))`
    stands in for `tfds.load("crct_bootstrap", split="val")` without preparing TFDS data.
    """
    encoded = [tf.io.encode_png(tf.convert_to_tensor(ex["image"], tf.uint8)).numpy()
               for ex in examples]
    points = tf.constant([ex["landmarks"] for ex in examples], tf.float32)
    slices = tf.data.Dataset.from_tensor_slices({"png": encoded, "landmarks": points})
    return slices.map(lambda ex: {"image": tf.io.decode_png(ex["png"], channels=3),
                                  "landmarks": ex["landmarks"]})
