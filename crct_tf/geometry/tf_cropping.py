"""The TensorFlow twins of `cropping`: the same windows and sampling positions, as TF ops.

`tf.image.crop_and_resize` samples at `x1 * (W - 1) + u * (x2 - x1) * (W - 1) / (size - 1)`,
so each crop window is converted explicitly in `crop_and_resize_boxes` to land on the sample
positions of `cropping.crop_image` (half-pixel centres). Outside the image, both are zero.
"""

import tensorflow as tf

from crct_tf.geometry.cropping import (DEFAULT_CONTEXT, FLL_BOX_RULES, FV_FACE_CONTEXT,
                                      FV_FACE_SIZE, FV_PATCH_SIZE, MIN_BOX_SIDE,
                                      unknown_fll_box_rule)
from crct_tf.geometry.landmarks import FLIP_PERMUTATION, MEAN_SHAPE_UNIT_BOX


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
    if rule == "bt_capped":
        half = tf.minimum(half, (bt_box[..., 2:] - bt_box[..., :2]) / 2.0)
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


def tf_shape_roll(points):
    """`cropping.shape_roll` as TensorFlow ops: [..., 68, 2] -> [...] radians."""
    points = tf.convert_to_tensor(points, tf.float32)
    mean = tf.constant(MEAN_SHAPE_UNIT_BOX - MEAN_SHAPE_UNIT_BOX.mean(axis=0), tf.float32)
    centred = points - tf.reduce_mean(points, axis=-2, keepdims=True)
    cross = tf.reduce_sum(mean[:, 0] * centred[..., 1] - mean[:, 1] * centred[..., 0], axis=-1)
    dot = tf.reduce_sum(mean[:, 0] * centred[..., 0] + mean[:, 1] * centred[..., 1], axis=-1)
    return tf.atan2(cross, dot)


def _tf_rotate(vectors, angle):
    cos, sin = tf.cos(angle)[..., None], tf.sin(angle)[..., None]
    x, y = vectors[..., 0], vectors[..., 1]
    return tf.stack([cos * x - sin * y, sin * x + cos * y], axis=-1)


def tf_turned_context_window(points, context=DEFAULT_CONTEXT):
    """`cropping.turned_context_window` as TensorFlow ops: [..., 68, 2] -> [..., 4]."""
    points = tf.convert_to_tensor(points, tf.float32)
    angle = tf_shape_roll(points)
    upright = _tf_rotate(points, -angle)
    low, high = tf.reduce_min(upright, axis=-2), tf.reduce_max(upright, axis=-2)
    centre = _tf_rotate(((low + high) / 2.0)[..., None, :], angle)[..., 0, :]
    side = context * tf.maximum(tf.reduce_max(high - low, axis=-1), MIN_BOX_SIDE)
    return tf.concat([centre, side[..., None], angle[..., None]], axis=-1)


def tf_turned_square(window, angle):
    """`cropping.turned_square` as TensorFlow ops: [..., 4] and [...] -> [..., 4]."""
    window = tf.convert_to_tensor(window, tf.float32)
    centre = (window[..., :2] + window[..., 2:]) / 2.0
    side = window[..., 2:3] - window[..., 0:1]
    return tf.concat([centre, side, tf.convert_to_tensor(angle, tf.float32)[..., None]], axis=-1)


def tf_points_from_turned_crop(points, window, size):
    """`cropping.points_from_turned_crop` as TensorFlow ops."""
    window = tf.convert_to_tensor(window, tf.float32)
    side = window[..., None, 2:3]
    offsets = (tf.convert_to_tensor(points, tf.float32) + 0.5) * side / size - side / 2.0
    return _tf_rotate(offsets, window[..., 3]) + window[..., None, :2]


def tf_points_to_turned_crop(points, window, size):
    """`cropping.points_to_turned_crop` as TensorFlow ops."""
    window = tf.convert_to_tensor(window, tf.float32)
    side = window[..., None, 2:3]
    offsets = _tf_rotate(tf.convert_to_tensor(points, tf.float32) - window[..., None, :2],
                         -window[..., 3])
    return (offsets + side / 2.0) * size / side - 0.5


def tf_crop_turned(image, windows, size):
    """Turned windows [N, 4] of one image [H, W, C]: [N, size, size, C] float32, bilinear, zero
    where a sample lies outside [0, W-1] x [0, H-1] (`cropping.crop_turned`'s positions).
    Only the gathered pixels are converted to float, not the whole frame."""
    image = tf.convert_to_tensor(image)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    grid = tf.range(size, dtype=tf.float32)
    vs, us = tf.meshgrid(grid, grid, indexing="ij")
    pixels = tf.reshape(tf.stack([us, vs], axis=-1), [1, size * size, 2])
    samples = tf_points_from_turned_crop(pixels, windows, size)        # [N, size*size, 2]
    x, y = samples[..., 0], samples[..., 1]
    last_x, last_y = tf.cast(width - 1, tf.float32), tf.cast(height - 1, tf.float32)
    inside = (x >= 0.0) & (x <= last_x) & (y >= 0.0) & (y <= last_y)
    x, y = tf.clip_by_value(x, 0.0, last_x), tf.clip_by_value(y, 0.0, last_y)
    x0, y0 = tf.floor(x), tf.floor(y)
    wx, wy = (x - x0)[..., None], (y - y0)[..., None]
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    x1, y1 = tf.minimum(x0 + 1, width - 1), tf.minimum(y0 + 1, height - 1)

    def at(ys, xs):
        return tf.cast(tf.gather_nd(image, tf.stack([ys, xs], axis=-1)), tf.float32)

    top = at(y0, x0) * (1.0 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1.0 - wx) + at(y1, x1) * wx
    out = (top * (1.0 - wy) + bottom * wy) * tf.cast(inside, tf.float32)[..., None]
    return tf.reshape(out, [-1, size, size, tf.shape(image)[2]])


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
