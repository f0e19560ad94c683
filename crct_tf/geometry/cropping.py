"""Crops and the exact mapping of points between an image and a crop, in numpy and OpenCV.

One definition serves training, tracking and export; `tf_cropping` holds the TensorFlow twins,
which sample at the same positions (tests hold the two together):

- Pixel convention: integer coordinates are pixel centres, so image pixel i covers [i-0.5, i+0.5].
- A crop window is a box `[X0, Y0, X1, Y1]` in those coordinates whose sides are the crop's outer
  edges. Resampled to `size x size`, crop pixel u covers [u-0.5, u+0.5] and
      u = (x - X0) * size / (X1 - X0) - 0.5,      x = X0 + (u + 0.5) * (X1 - X0) / size.
- OpenCV's `warpAffine` uses that half-pixel mapping directly. Outside the image, crops are zero.

The point maps are plain arithmetic and work on numpy arrays and tf tensors alike. This module
imports no TensorFlow, so the LiteRT runtime cuts its crops without it.
"""

import cv2
import numpy as np

from crct_tf.geometry.landmarks import MEAN_SHAPE_UNIT_BOX

# Re3's context: the crop is the square of twice the box's larger side, centred on the box
# (the authors' code grows the landmark box by half its size on every side).
DEFAULT_CONTEXT = 2.0
MIN_BOX_SIDE = 1.0  # a degenerate box (one point, or all points on a line) still gets a crop


def square_context_box(box, context=DEFAULT_CONTEXT):
    """The square crop window centred on `box` ([..., 4]) with side `context * max(w, h)`."""
    box = np.asarray(box, dtype=np.float32)
    centre = (box[..., :2] + box[..., 2:]) / 2.0
    side = context * np.maximum(np.max(box[..., 2:] - box[..., :2], axis=-1), MIN_BOX_SIDE)
    half = (side / 2.0)[..., None]
    return np.concatenate([centre - half, centre + half], axis=-1)


# Where FLL's crop goes (`CropSettings.fll_box`). `bt`: around b_t^BT (Algorithm 1, line 18,
# eq. 7). `bt_centre`: at b_t^BT's centre, sized by b_{t-1} (the previous frame's FLL box, or
# the mapped detector box after a (re)detection): BT's motion with FLL's steadier size.
# `bt_centre_corrected`: as `bt_centre`, with b_t^BT's centre moved back by `centre_shift`, the
# tracker's running mean of how far BT's centre lies from FLL's (BT's lean, not in the paper).
# `bt_capped`: b_t^BT, its width and height each no larger than b_{t-1}'s (not in the paper):
# either size estimate swells when an occluder or a nearby face pulls the shape outwards.
FLL_BOX_RULES = ("bt", "bt_centre", "bt_centre_corrected", "bt_capped")


def unknown_fll_box_rule(rule):
    """The ValueError for a rule not in FLL_BOX_RULES."""
    return ValueError(f"unknown FLL box rule {rule!r}; expected {', '.join(FLL_BOX_RULES[:-1])} "
                      f"or {FLL_BOX_RULES[-1]}")


def fll_crop_box(bt_box, previous_box, rule="bt", centre_shift=None):
    """The box FLL's crop is centred on and sized by ([..., 4] each), by `rule`.

    `centre_shift` ([..., 2] pixels, or None: none) moves BT's centre back for
    `bt_centre_corrected`; the other rules ignore it.
    """
    bt_box = np.asarray(bt_box, dtype=np.float32)
    if rule == "bt":
        return bt_box
    if rule not in FLL_BOX_RULES:
        raise unknown_fll_box_rule(rule)
    previous_box = np.asarray(previous_box, dtype=np.float32)
    centre = (bt_box[..., :2] + bt_box[..., 2:]) / 2.0
    if rule == "bt_centre_corrected" and centre_shift is not None:
        centre = centre - np.asarray(centre_shift, dtype=np.float32)
    half = (previous_box[..., 2:] - previous_box[..., :2]) / 2.0
    if rule == "bt_capped":
        half = np.minimum(half, (bt_box[..., 2:] - bt_box[..., :2]) / 2.0)
    return np.concatenate([centre - half, centre + half], axis=-1)


# FLL's crop turned upright (`CropSettings.fll_upright`; not in the paper). A turned window is
# [..., 4] (centre x, centre y, side, angle): the square of `side` centred on the centre, its axes
# turned by `angle` radians (the face's roll, clockwise in the picture as the image's y points
# down), so that a face leaning by `angle` stands upright in the crop. Crop pixel (u, v) samples
#     p = centre + R(angle) ((u + 0.5, v + 0.5) * side / size - side / 2),
# with R(a) = [[cos a, -sin a], [sin a, cos a]]; angle 0 is `square_context_box`'s window.


def shape_roll(points):
    """The roll of a face [..., 68, 2] in radians: the angle of the least-squares similarity
    that maps the mean face (eye line level) onto the points; > 0 leans clockwise."""
    points = np.asarray(points, dtype=np.float64)
    mean = MEAN_SHAPE_UNIT_BOX - MEAN_SHAPE_UNIT_BOX.mean(axis=0)
    centred = points - points.mean(axis=-2, keepdims=True)
    cross = np.sum(mean[:, 0] * centred[..., 1] - mean[:, 1] * centred[..., 0], axis=-1)
    dot = np.sum(mean[:, 0] * centred[..., 0] + mean[:, 1] * centred[..., 1], axis=-1)
    return np.arctan2(cross, dot).astype(np.float32)


def _rotate(vectors, angle):
    """Vectors [..., N, 2] turned by `angle` [...] radians (R(angle) above)."""
    cos, sin = np.cos(angle)[..., None], np.sin(angle)[..., None]
    x, y = vectors[..., 0], vectors[..., 1]
    return np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1)


def turned_context_window(points, context=DEFAULT_CONTEXT):
    """The turned window [..., 4] of a face [..., 68, 2]: turned by its `shape_roll`, centred
    on and `context` x the larger side of the box of the points seen upright."""
    points = np.asarray(points, dtype=np.float32)
    angle = shape_roll(points)
    upright = _rotate(points, -angle)
    low, high = upright.min(axis=-2), upright.max(axis=-2)
    centre = _rotate(((low + high) / 2.0)[..., None, :], angle)[..., 0, :]
    side = context * np.maximum(np.max(high - low, axis=-1), MIN_BOX_SIDE)
    return np.concatenate([centre, side[..., None], angle[..., None]], axis=-1).astype(np.float32)


def turned_square(window, angle):
    """A square crop window [..., 4] (x0, y0, x1, y1, as `square_context_box` gives) turned by
    `angle` [...] radians about its centre: the turned window [..., 4] (`CropSettings.fll_turn`)."""
    window = np.asarray(window, dtype=np.float32)
    centre = (window[..., :2] + window[..., 2:]) / 2.0
    side = window[..., 2:3] - window[..., 0:1]
    return np.concatenate([centre, side, np.asarray(angle, np.float32)[..., None]],
                          axis=-1).astype(np.float32)


def points_from_turned_crop(points, window, size):
    """Crop pixels [..., N, 2] of a `size` crop of the turned `window` [..., 4] -> image."""
    window = np.asarray(window, dtype=np.float32)
    side = window[..., None, 2:3]
    offsets = (np.asarray(points, dtype=np.float32) + 0.5) * side / size - side / 2.0
    return _rotate(offsets, window[..., 3]) + window[..., None, :2]


def points_to_turned_crop(points, window, size):
    """The inverse of `points_from_turned_crop`: image points -> crop pixels."""
    window = np.asarray(window, dtype=np.float32)
    side = window[..., None, 2:3]
    offsets = _rotate(np.asarray(points, dtype=np.float32) - window[..., None, :2],
                      -window[..., 3])
    return (offsets + side / 2.0) * size / side - 0.5


def crop_turned(image, window, size):
    """Cuts the turned `window` (4,) of an [H, W, C] image: [size, size, C] float32, bilinear,
    zero where a sample lies outside [0, W-1] x [0, H-1] (as `crop_image`)."""
    image = np.asarray(image, dtype=np.float32)
    grid = np.arange(size, dtype=np.float32)
    us, vs = np.meshgrid(grid, grid)
    samples = points_from_turned_crop(np.stack([us, vs], -1).reshape(-1, 2), window, size)
    map_x = samples[:, 0].reshape(size, size).astype(np.float32)
    map_y = samples[:, 1].reshape(size, size).astype(np.float32)
    out = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE).reshape(size, size, -1)
    height, width = image.shape[:2]
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return out * inside[..., None]


def points_to_crop(points, crop_box, size):
    """Maps image points [..., N, 2] into crop pixels of a `size` crop of `crop_box` [..., 4]."""
    origin = crop_box[..., None, :2]
    extent = crop_box[..., None, 2:] - crop_box[..., None, :2]
    return (points - origin) * (size / extent) - 0.5


def points_from_crop(points, crop_box, size):
    """The inverse of `points_to_crop`: crop pixels [..., N, 2] back to image coordinates."""
    origin = crop_box[..., None, :2]
    extent = crop_box[..., None, 2:] - crop_box[..., None, :2]
    return (points + 0.5) * (extent / size) + origin


def crop_image(image, crop_box, size, interpolation=cv2.INTER_LINEAR):
    """Cuts the `crop_box` window of an [H, W, C] image, resampled to [size, size, C] float32.

    Same sampling positions and the same border as `tf_crop_images`: a sample whose position
    lies outside [0, W-1] x [0, H-1] is zero, one inside interpolates image pixels only (as
    `crop_and_resize` does; OpenCV's constant border would blend the outermost ring with 0).
    """
    image = np.asarray(image, dtype=np.float32)
    x0, y0, x1, y1 = (float(v) for v in crop_box)
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    # u = sx * x + (-sx * x0 - 0.5): the forward map of the module docstring, as a matrix.
    matrix = np.array([[sx, 0.0, -sx * x0 - 0.5], [0.0, sy, -sy * y0 - 0.5]], dtype=np.float64)
    out = cv2.warpAffine(image, matrix, (size, size), flags=interpolation,
                         borderMode=cv2.BORDER_REPLICATE).reshape(size, size, -1)
    centres = np.arange(size, dtype=np.float64) + 0.5
    xs, ys = x0 + centres / sx, y0 + centres / sy            # sample positions in the image
    height, width = image.shape[:2]
    outside_x = (xs < 0) | (xs > width - 1)
    outside_y = (ys < 0) | (ys > height - 1)
    if outside_x.any() or outside_y.any():
        out[:, outside_x] = 0.0
        out[outside_y, :] = 0.0
    return out


def crop_images(image, crop_boxes, size):
    """`crop_image` for many windows [N, 4] of one image at once: [N, size, size, C] float32.

    One `cv2.remap` over all windows (the validator's 68 patches in one call instead of 68),
    same sampling positions and border as `crop_image` and `tf_crop_images`.
    """
    image = np.asarray(image, dtype=np.float32)
    boxes = np.asarray(crop_boxes, dtype=np.float64).reshape(-1, 4)
    count = len(boxes)
    centres = (np.arange(size, dtype=np.float64) + 0.5) / size
    xs = boxes[:, :1] + centres[None] * (boxes[:, 2:3] - boxes[:, :1])      # [N, size]
    ys = boxes[:, 1:2] + centres[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    map_x = np.broadcast_to(xs[:, None, :], (count, size, size)).reshape(count * size, size)
    map_y = np.broadcast_to(ys[:, :, None], (count, size, size)).reshape(count * size, size)
    out = cv2.remap(image, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE).reshape(count, size, size, -1)
    height, width = image.shape[:2]
    inside = (((ys >= 0) & (ys <= height - 1))[:, :, None]
              & ((xs >= 0) & (xs <= width - 1))[:, None, :])
    return out * inside[..., None]


# The validator's patches (from the authors' code): the face box grown by 0.75 of
# its size on every side (a square window of 2.5x the box here, like the other crops), seen at
# 192x192, and a 12x12 patch around each landmark at that scale.
FV_FACE_CONTEXT = 2.5
FV_FACE_SIZE = 192
FV_PATCH_SIZE = 12


def landmark_patch_boxes(landmarks, face_box, patch_size=FV_PATCH_SIZE,
                         face_context=FV_FACE_CONTEXT, face_size=FV_FACE_SIZE):
    """Windows [..., N, 4] of the validator's patches around landmarks [..., N, 2].

    A patch is `patch_size` pixels of the face crop (the `face_context` window of `face_box`
    resampled to `face_size`), centred on the landmark; in image pixels its side is
    patch_size * window_side / face_size. `tf_cropping.tf_landmark_patch_boxes` is its twin.
    """
    window = square_context_box(face_box, face_context)
    half = (patch_size * (window[..., 2] - window[..., 0]) / face_size / 2.0)[..., None, None]
    return np.concatenate([landmarks - half, landmarks + half], axis=-1)
