"""The TensorFlow twins of `cropping`: the same windows and sampling positions, as TF ops.

`tf.image.crop_and_resize` samples at `x1 * (W - 1) + u * (x2 - x1) * (W - 1) / (size - 1)`,
so each crop window is converted explicitly in `crop_and_resize_boxes` to land on the sample
positions of `cropping.crop_image` (half-pixel centres). Outside the image, both are zero.
"""

import tensorflow as tf

from crct_tf.geometry.cropping import (DEFAULT_CONTEXT, FLL_BOX_RULES, FV_FACE_CONTEXT,
                                      FV_FACE_SIZE, FV_PATCH_SIZE, MIN_BOX_SIDE,
                                      unknown_fll_box_rule)
from crct_tf.geometry.landmarks import FLIP_PERMUTATION


def tf_box_from_landmarks(points):
    """Eq. 4 in TensorFlow: [..., N, 2] points -> [..., 4] boxes [min x, min y, max x, max y]."""
    return tf.concat([tf.reduce_min(points, axis=-2), tf.reduce_max(points, axis=-2)], axis=-1)


def tf_flip_landmarks(points, image_width):
    """`landmarks.flip_landmarks` as TensorFlow ops: [..., 68, 2] points of an image
    `image_width` pixels wide, mirrored (x -> width - 1 - x) and re-indexed by FLIP_PERMUTATION."""
    points = tf.convert_to_tensor(points, tf.float32)
    last = tf.cast(image_width, tf.float32) - 1.0
    mirrored = tf.stack([last - points[..., 0], points[..., 1]], axis=-1)
    return tf.gather(mirrored, list(FLIP_PERMUTATION), axis=-2)


def tf_square_context_box(box, context=DEFAULT_CONTEXT):
    """`square_context_box` as TensorFlow ops ([..., 4] float32)."""
    box = tf.convert_to_tensor(box, tf.float32)
    centre = (box[..., :2] + box[..., 2:]) / 2.0
    side = context * tf.maximum(tf.reduce_max(box[..., 2:] - box[..., :2], axis=-1), MIN_BOX_SIDE)
    half = (side / 2.0)[..., None]
    return tf.concat([centre - half, centre + half], axis=-1)


def tf_fll_crop_box(bt_box, previous_box, rule="bt", centre_shift=None):
    """`fll_crop_box` as TensorFlow ops (`rule` is a Python string: fixed when traced)."""
    bt_box = tf.convert_to_tensor(bt_box, tf.float32)
    if rule == "bt":
        return bt_box
    if rule not in FLL_BOX_RULES:
        raise unknown_fll_box_rule(rule)
    previous_box = tf.convert_to_tensor(previous_box, tf.float32)
    centre = (bt_box[..., :2] + bt_box[..., 2:]) / 2.0
    if rule == "bt_centre_corrected" and centre_shift is not None:
        centre = centre - tf.convert_to_tensor(centre_shift, tf.float32)
    half = (previous_box[..., 2:] - previous_box[..., :2]) / 2.0
    return tf.concat([centre - half, centre + half], axis=-1)


def crop_and_resize_boxes(crop_boxes, image_height, image_width, size):
    """Converts crop windows [N, 4] to `tf.image.crop_and_resize`'s normalised [y1, x1, y2, x2].

    crop_and_resize puts crop pixel 0 on x1 * (W - 1) and pixel size-1 on x2 * (W - 1); our
    windows put them at X0 + 0.5 * w / size and X0 + (size - 0.5) * w / size.
    """
    crop_boxes = tf.convert_to_tensor(crop_boxes, tf.float32)
    x0, y0, x1, y1 = tf.unstack(crop_boxes, axis=-1)
    w, h = x1 - x0, y1 - y0
    first, last = 0.5 / size, (size - 0.5) / size
    wn = tf.maximum(tf.cast(image_width, tf.float32) - 1.0, 1.0)
    hn = tf.maximum(tf.cast(image_height, tf.float32) - 1.0, 1.0)
    return tf.stack([(y0 + first * h) / hn, (x0 + first * w) / wn,
                     (y0 + last * h) / hn, (x0 + last * w) / wn], axis=-1)


def tf_crop_images(images, crop_boxes, size, box_indices=None):
    """Crops windows out of a batch of images with `tf.image.crop_and_resize` (bilinear).

    Args:
      images: [B, H, W, C] (any numeric dtype; 0-255 values).
      crop_boxes: [N, 4] windows in image pixel coordinates.
      size: output side.
      box_indices: [N] image index of each window; default 0..N-1 (one window per image).

    Returns:
      [N, size, size, C] float32, zero outside the image.
    """
    images = tf.convert_to_tensor(images)
    crop_boxes = tf.convert_to_tensor(crop_boxes, tf.float32)
    shape = tf.shape(images)
    if box_indices is None:
        box_indices = tf.range(tf.shape(crop_boxes)[0])
    boxes = crop_and_resize_boxes(crop_boxes, shape[1], shape[2], size)
    return tf.image.crop_and_resize(tf.cast(images, tf.float32), boxes, box_indices,
                                    (size, size), method="bilinear", extrapolation_value=0.0)


def tf_landmark_patch_boxes(landmarks, face_box, patch_size=FV_PATCH_SIZE,
                            face_context=FV_FACE_CONTEXT, face_size=FV_FACE_SIZE):
    """`cropping.landmark_patch_boxes` as TensorFlow ops."""
    window = tf_square_context_box(face_box, face_context)
    half = (patch_size * (window[..., 2] - window[..., 0]) / face_size / 2.0)[..., None, None]
    return tf.concat([landmarks - half, landmarks + half], axis=-1)


def tf_landmark_patches(images, landmarks, face_boxes, patch_size=FV_PATCH_SIZE, **kwargs):
    """The validator's input: [B, N, P, P, C] patches around landmarks [B, N, 2] of images.

    `face_boxes` [B, 4] sets the patch scale (see `landmark_patch_boxes`); usually the box of
    the landmarks themselves.
    """
    landmarks = tf.convert_to_tensor(landmarks, tf.float32)
    boxes = tf_landmark_patch_boxes(landmarks, tf.convert_to_tensor(face_boxes, tf.float32),
                                 patch_size, **kwargs)
    batch, count = tf.shape(landmarks)[0], tf.shape(landmarks)[1]
    indices = tf.repeat(tf.range(batch), count)
    patches = tf_crop_images(images, tf.reshape(boxes, [-1, 4]), patch_size, indices)
    return tf.reshape(patches, [batch, count, patch_size, patch_size, tf.shape(patches)[-1]])
