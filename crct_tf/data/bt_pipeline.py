"""The BT input pipeline: frame sequences with per-frame landmarks, and the crop of a BT step.

BT's crops are NOT cut here: with own-prediction feeding the crop of frame t
depends on the network's output at t-1, so the training step cuts them with `bt_crop_pair`. The
pipeline yields, per sequence, a generous square region around the face (fixed for the whole
sequence, `REGION_CONTEXT_FACTOR x bt_context` times the landmark box of all its frames),
resampled with `geometry` to `region_size`, and the landmarks in region pixels.

Sources:
- stills (photos, 300-W, Menpo, generated faces): `make_bt_dataset` moves each still smoothly
  over T frames (`augment.smooth_motion`); pure tf.data, checkpointable iterator.
- 300-VW videos: `make_bt_video_dataset` reads consecutive annotated frames (every
  `frame_step`-th, the authors' code used 3) with `crct_tf.datasets.vw300.iter_vw300_video`
  through `from_generator`: that iterator cannot be saved in a checkpoint;
  a resumed run restarts the video stream from its beginning.
"""

import numpy as np
import tensorflow as tf

from crct_tf.geometry import cropping, tf_cropping
from crct_tf.data import augment, common

augment_lib = augment    # `make_bt_dataset`'s `augment` argument shadows the module

SALT = 3
DEFAULT_REGION_SIZE = 256
# The box BT starts a training sequence from. Re3 trains from noisy boxes, and the tracker
# re-initialises BT from MTCNN boxes mapped to landmark boxes (`detection.MtcnnBoxMap`), which are
# off the true landmark box by several percent in centre, size and aspect; a BT that only ever
# started from the exact box drifts on its first steps after a re-detection. With this
# probability the first box is the true landmark box of frame 0 moved by up to
# INIT_BOX_SHIFT of its size and rescaled by INIT_BOX_SCALE per axis (no noise without augment).
INIT_BOX_NOISE_PROBABILITY = 0.5
INIT_BOX_SHIFT = 0.10
INIT_BOX_SCALE = (0.85, 1.15)
# Region side over the BT crop's context: the BT crop of any frame (bt_context x its box, around
# a box that may be off) stays inside a region 1.5 x that wide around the sequence's box.
REGION_CONTEXT_FACTOR = 1.5


def region_context(settings):
    return REGION_CONTEXT_FACTOR * settings.bt_context


def region_window(landmarks, context):
    """The square window [4] around the landmark box of all frames' landmarks [T, 68, 2]."""
    return tf_cropping.tf_square_context_box(
        augment.landmark_box(tf.reshape(landmarks, [-1, 2])), context)


def crop_region(frames, landmarks, region_size, context):
    """Cuts the same region out of every frame [T, H, W, 3], landmarks into region pixels.

    Returns:
      {"frames": uint8 [T, R, R, 3], "landmarks": float32 [T, 68, 2], "window": [4]}.
    """
    window = region_window(landmarks, context)
    count = tf.shape(frames)[0]
    windows = tf.tile(window[None], [count, 1])
    crops = tf_cropping.tf_crop_images(frames, windows, region_size)
    points = cropping.points_to_crop(landmarks, windows, region_size)
    return {"frames": tf.saturate_cast(tf.round(crops), tf.uint8), "landmarks": points,
            "window": window}


def bt_still_example(example, seed, settings, seq_len, region_size=DEFAULT_REGION_SIZE,
                     do_augment=True, hard_conditions=False):
    """A sequence of `seq_len` frames made from one still by smooth synthetic motion.

    `hard_conditions` (with `do_augment`): what a tracked face goes through
    (`augment.hard_conditions`: an occluder, light 0.4-1.4x, motion blur, a face seen small),
    applied to the still before it moves, so that the whole sequence has it. Not in the paper
    (its BT trains on clean 300-VW frames) and off by default: 800 more steps of the bundled BT
    with it moved the full tracker by -0.004 to +0.002 AUC on the robustness benchmark
    (docs/robustness.md).
    """
    seeds = augment.split_seed(seed, 2)
    example = common.still_with_box(example, seeds[0], do_augment)
    if do_augment and hard_conditions:
        example = augment.hard_conditions(example, augment.split_seed(seeds[1], 2)[1])
    motion = augment.smooth_motion(example, seeds[1], seq_len)
    return crop_region(motion["frames"], motion["landmarks"], region_size,
                       region_context(settings))


def noisy_init_box(landmarks, seed, probability=INIT_BOX_NOISE_PROBABILITY):
    """The box [4] BT starts from: frame 0's landmark box, jittered with `probability`."""
    box = augment.landmark_box(landmarks)
    seeds = augment.split_seed(seed, 3)
    centre, size = (box[:2] + box[2:]) / 2.0, box[2:] - box[:2]
    centre = centre + size * tf.random.stateless_uniform([2], seeds[0], -INIT_BOX_SHIFT,
                                                         INIT_BOX_SHIFT)
    size = size * tf.random.stateless_uniform([2], seeds[1], *INIT_BOX_SCALE)
    jittered = tf.concat([centre - size / 2.0, centre + size / 2.0], axis=0)
    apply = tf.random.stateless_uniform([], seeds[2]) < probability
    return tf.where(apply, jittered, box)


def bt_crop_pair(prev_frames, cur_frames, prev_boxes, settings):
    """The crops of one BT step (eq. 2): X_{t-1} and X_t both cut with b_{t-1} plus context.

    Args:
      prev_frames, cur_frames: [B, H, W, 3] (e.g. region frames t-1 and t).
      prev_boxes: [B, 4] b_{t-1} in those frames' pixels (ground truth or BT's own output).
      settings: `CropSettings` (bt_context, input_size).

    Returns:
      (prev_crops, cur_crops, windows): float32 [B, S, S, 3] 0-255 twice and the windows [B, 4];
      map points with `cropping.points_to_crop` / `points_from_crop` and these windows.
    """
    windows = tf_cropping.tf_square_context_box(prev_boxes, settings.bt_context)
    size = settings.input_size
    return (tf_cropping.tf_crop_images(prev_frames, windows, size),
            tf_cropping.tf_crop_images(cur_frames, windows, size), windows)


def _ensure_shapes(batch_size, seq_len, region_size):
    def fn(batch):
        out = {"frames": tf.ensure_shape(batch["frames"],
                                         [batch_size, seq_len, region_size, region_size, 3]),
               "landmarks": tf.ensure_shape(batch["landmarks"], [batch_size, seq_len, 68, 2])}
        if "init_box" in batch:
            out["init_box"] = tf.ensure_shape(batch["init_box"], [batch_size, 4])
        return out
    return fn


def make_bt_dataset(source, settings, batch_size, seq_len, seed=0, augment=True, repeat=True,
                    shuffle_buffer=common.DEFAULT_SHUFFLE_BUFFER,
                    region_size=DEFAULT_REGION_SIZE, hard_conditions=False):
    """BT batches from stills: {"frames": uint8 [B, T, R, R, 3], "landmarks": [B, T, 68, 2],
    "init_box": [B, 4] the box BT starts from (`noisy_init_box`; exact without augment)}.

    Args:
      source: `tf.data.Dataset` of dicts with `image` and `landmarks` (see `make_fll_dataset`).
      settings: `CropSettings`.
      batch_size, seq_len: B and T.
      seed, augment, repeat, shuffle_buffer: as in `fll_pipeline.make_fll_dataset`.
      region_size: R.
      hard_conditions: with `augment`, occluders, light, blur and small faces
        (`bt_still_example`).
    """
    stream = common.seeded_stream(source, seed, SALT, shuffle_buffer, repeat)

    def example_fn(index, example_seed, example):
        del index
        seeds = augment_lib.split_seed(example_seed, 2)
        out = bt_still_example(example, seeds[0], settings, seq_len, region_size, augment,
                               hard_conditions)
        init_box = noisy_init_box(out["landmarks"][0], seeds[1],
                                  INIT_BOX_NOISE_PROBABILITY if augment else 0.0)
        return {"frames": out["frames"], "landmarks": out["landmarks"], "init_box": init_box}

    dataset = common.batch_and_prefetch(stream, example_fn, batch_size)
    return dataset.map(_ensure_shapes(batch_size, seq_len, region_size))


# --- Real videos (300-VW) ------------------------------------------------------------------------

def video_sequences(video_dirs, seq_len, frame_step=1, annot_dir="annot", region_size=256,
                    context=3.0, seed=0, iter_video=None):
    """Yields (frames uint8 [T, R, R, 3], landmarks [T, 68, 2]) of consecutive annotated frames.

    Sequences do not overlap and never bridge a frame without a `.pts` (kept frames must be
    exactly `frame_step` apart). Each is cut to its region with `cropping.crop_image` (the
    OpenCV twin of `tf_crop_images`, same sampling) so that full frames never reach tf.data.
    Videos are visited in an order shuffled by `seed`.
    """
    if iter_video is None:
        from crct_tf.datasets.vw300 import iter_vw300_video as iter_video
    order = np.random.default_rng(seed).permutation(len(video_dirs))
    for position in order:
        frames, points, last = [], [], None
        for index, rgb, landmarks in iter_video(video_dirs[position], annot_dir=annot_dir,
                                                frame_step=frame_step):
            if last is not None and index - last != frame_step:
                frames, points = [], []
            frames.append(rgb)
            points.append(landmarks)
            last = index
            if len(frames) == seq_len:
                yield _crop_region_numpy(frames, points, region_size, context)
                frames, points = [], []


def _crop_region_numpy(frames, points, region_size, context):
    points = np.asarray(points, np.float32)
    flat = points.reshape(-1, 2)
    window = cropping.square_context_box(np.concatenate([flat.min(0), flat.max(0)]), context)
    crops = [cropping.crop_image(frame, window, region_size) for frame in frames]
    regions = np.clip(np.round(np.stack(crops)), 0, 255).astype(np.uint8)
    return regions, cropping.points_to_crop(points, window, region_size).astype(np.float32)


def _augment_sequence(frames, landmarks, seed):
    """The same flip and photometric change on every frame of a region sequence."""
    seeds = augment.split_seed(seed, 2)

    def one(args):
        image, points = args
        example = {"image": image, "landmarks": points, "box": augment.landmark_box(points)}
        example = augment.random_flip(example, seeds[0])
        example = augment.photometric(example, seeds[1])
        return example["image"], example["landmarks"]

    return tf.map_fn(one, (frames, landmarks),
                     fn_output_signature=(tf.TensorSpec(None, tf.uint8),
                                          tf.TensorSpec([68, 2], tf.float32)))


def make_bt_video_dataset(video_dirs, settings, batch_size, seq_len, seed=0, augment=True,
                          repeat=True, frame_step=1, annot_dir="annot",
                          shuffle_buffer=64, region_size=DEFAULT_REGION_SIZE):
    """BT batches from 300-VW videos, same structure as `make_bt_dataset`.

    Args:
      video_dirs: folders `NNN/` holding `vid.avi` and `annot_dir/`, e.g.
        `[os.path.dirname(v.video_path) for v in list_vw300_videos(root, "train")]`.
      frame_step: keep every frame_step-th frame (the authors' code: 3).
      Other arguments as in `make_bt_dataset`. Augmentation here is a flip and a photometric
      change shared by all frames (the motion is real).

    The stream uses `from_generator`: its iterator cannot be checkpointed.
    """
    context = region_context(settings)
    signature = (tf.TensorSpec([seq_len, region_size, region_size, 3], tf.uint8),
                 tf.TensorSpec([seq_len, 68, 2], tf.float32))
    sequences = tf.data.Dataset.from_generator(
        lambda: video_sequences(list(video_dirs), seq_len, frame_step, annot_dir, region_size,
                                context, seed),
        output_signature=signature)
    if shuffle_buffer:
        sequences = sequences.shuffle(shuffle_buffer, seed=seed)
    if repeat:
        sequences = sequences.repeat()
    base = tf.constant([seed, SALT + 100], tf.int64)

    def example_fn(index, sequence):
        frames, points = sequence
        if augment:
            frames, points = _augment_sequence(
                frames, points, tf.random.experimental.stateless_fold_in(base, index))
        return {"frames": frames, "landmarks": points}

    dataset = sequences.enumerate().map(example_fn, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return dataset.map(_ensure_shapes(batch_size, seq_len, region_size))
