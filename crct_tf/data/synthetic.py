"""Generated faces with known landmarks, for smoke tests and `configs/smoke.cfg` (no dataset).

Each image is a drawn face-like pattern: a skin-coloured ellipse on a random background with the
68-point shape drawn as dark lines (contour, brows, nose, eyes, lips) and dots. The shape is the
mean shape of the bootstrap labels placed by a random similarity transform, so the landmarks are
known exactly and a network has something to learn. Everything is TensorFlow ops with stateless
random numbers: `synthetic_faces(n, seed)` is deterministic and its iterator checkpointable.
"""

import math

import numpy as np
import tensorflow as tf

from crct_tf.data import augment
from crct_tf.geometry.landmarks import MEAN_SHAPE_UNIT_BOX

# The mean face of the bootstrap labels, in its own landmark box.
MEAN_SHAPE = MEAN_SHAPE_UNIT_BOX


def _polyline(indices, closed=False):
    pairs = list(zip(indices[:-1], indices[1:]))
    return pairs + [(indices[-1], indices[0])] if closed else pairs


# The strokes of the drawing, as pairs of landmark indices.
SEGMENTS = np.array(
    _polyline(range(0, 17)) + _polyline(range(17, 22)) + _polyline(range(22, 27))
    + _polyline(range(27, 31)) + _polyline(range(31, 36)) + _polyline(range(36, 42), True)
    + _polyline(range(42, 48), True) + _polyline(range(48, 60), True)
    + _polyline(range(60, 68), True), dtype=np.int32)

IMAGE_SIZE = 160
FACE_SIDE = (0.35, 0.6)      # face box side as a fraction of the image side
FACE_OFFSET = 0.12           # face centre offset from the image centre, fraction of the side
FACE_DEGREES = 15.0          # in-plane turn of the drawn face (augmentations add up to 45)
LINE_WIDTH = 0.9             # pixels (Gaussian sigma of the strokes)


def _pixel_grid(height, width):
    ys, xs = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32),
                         indexing="ij")
    return tf.stack([xs, ys], axis=-1)  # [H, W, 2] as (x, y)


def _squared_distance_to_points(height, width, points):
    """Squared distance [H, W] from each pixel to the nearest of points [N, 2]."""
    xs = tf.range(width, dtype=tf.float32)[None, :, None]
    ys = tf.range(height, dtype=tf.float32)[:, None, None]
    points = tf.cast(points, tf.float32)
    return tf.reduce_min(tf.square(xs - points[:, 0]) + tf.square(ys - points[:, 1]), axis=-1)


def render_dots(points, height, width, sigma=1.0, value=255.0):
    """Gaussian dots of peak `value` at points [N, 2] on black: float32 [H, W, 3].

    Used by the tests to check that augmentations move image content where they move points.
    Dots are assumed apart (each pixel shows its nearest dot).
    """
    d2 = _squared_distance_to_points(height, width, points)
    image = value * tf.exp(-0.5 * d2 / sigma ** 2)
    return tf.tile(image[..., None], [1, 1, 3])


def measure_dots(image, points, radius=3):
    """Intensity centroids [N, 2] (numpy) of the dots of `image` expected near `points` [N, 2].

    Each centroid is taken over the (2 radius + 1)^2 pixels around the rounded expected point,
    on the first channel: with `render_dots` dots it recovers a dot's centre to ~0.05 px.
    """
    image = np.asarray(image, np.float64)[..., 0]
    height, width = image.shape
    out = np.full((len(points), 2), np.nan)
    for k, (x, y) in enumerate(np.asarray(points, np.float64)):
        cx, cy = int(round(x)), int(round(y))
        x0, x1 = max(cx - radius, 0), min(cx + radius + 1, width)
        y0, y1 = max(cy - radius, 0), min(cy + radius + 1, height)
        window = image[y0:y1, x0:x1]
        if window.size and window.sum() > 0:
            ys, xs = np.mgrid[y0:y1, x0:x1]
            out[k] = (xs * window).sum() / window.sum(), (ys * window).sum() / window.sum()
    return out


def _squared_distance_to_segments(height, width, starts, ends):
    """Squared distance [H, W] from each pixel to the nearest segment starts[k] -> ends[k]."""
    xs = tf.range(width, dtype=tf.float32)[None, :, None]
    ys = tf.range(height, dtype=tf.float32)[:, None, None]
    ax, ay = starts[:, 0], starts[:, 1]
    dx, dy = ends[:, 0] - ax, ends[:, 1] - ay
    length2 = tf.maximum(dx * dx + dy * dy, 1e-6)
    t = tf.clip_by_value(((xs - ax) * dx + (ys - ay) * dy) / length2, 0.0, 1.0)
    return tf.reduce_min(tf.square(xs - ax - t * dx) + tf.square(ys - ay - t * dy), axis=-1)


def face_landmarks(seed, image_size=IMAGE_SIZE):
    """The 68 points [68, 2] of a randomly placed mean shape, and its (centre, side, angle)."""
    seeds = augment.split_seed(seed, 3)
    side = image_size * tf.random.stateless_uniform([], seeds[0], *FACE_SIDE)
    centre = image_size / 2.0 - 0.5 + image_size * tf.random.stateless_uniform(
        [2], seeds[1], -FACE_OFFSET, FACE_OFFSET)
    limit = FACE_DEGREES * math.pi / 180.0
    angle = tf.random.stateless_uniform([], seeds[2], -limit, limit)
    unit = tf.constant(MEAN_SHAPE) - 0.5
    matrix = augment.similarity_matrix([0.0, 0.0], angle, side, centre)
    return augment.transform_points(unit, matrix), centre, side, angle


def render_face(seed, image_size=IMAGE_SIZE):
    """One generated example {"image": uint8 [S, S, 3], "landmarks": float32 [68, 2]}."""
    seeds = augment.split_seed(seed, 5)
    points, centre, side, angle = face_landmarks(seeds[0], image_size)
    grid = _pixel_grid(image_size, image_size)
    background = tf.random.stateless_uniform([3], seeds[1], 0.0, 255.0)
    gradient = tf.random.stateless_uniform([2], seeds[2], -0.4, 0.4)
    image = background + 60.0 * tf.reduce_sum((grid / image_size - 0.5) * gradient, -1,
                                              keepdims=True)
    # The face ellipse, in the face's own frame (unit = face box side).
    local = augment.transform_points(
        grid - centre, augment.similarity_matrix([0.0, 0.0], -angle, 1.0 / side))
    inside = tf.square(local[..., 0] / 0.56) + tf.square((local[..., 1] + 0.05) / 0.62) <= 1.0
    skin = tf.random.stateless_uniform([3], seeds[3], 90.0, 240.0)
    image = tf.where(inside[..., None], skin, image)
    ink = tf.random.stateless_uniform([3], seeds[4], 0.0, 60.0)
    segments = tf.constant(SEGMENTS)
    d2 = _squared_distance_to_segments(image_size, image_size, tf.gather(points, segments[:, 0]),
                                       tf.gather(points, segments[:, 1]))
    stroke = tf.exp(-0.5 * d2 / LINE_WIDTH ** 2)
    dots = tf.exp(-0.5 * _squared_distance_to_points(image_size, image_size, points) / 1.2 ** 2)
    alpha = tf.maximum(stroke * 0.8, dots)[..., None]
    image = image * (1.0 - alpha) + ink * alpha
    return {"image": tf.saturate_cast(tf.round(image), tf.uint8), "landmarks": points}


def synthetic_faces(num_examples, seed=0, image_size=IMAGE_SIZE):
    """A `tf.data.Dataset` of `num_examples` generated {image, landmarks}, the same each time.

    Example i is drawn from the seed (seed, i), so any pipeline can consume it like a TFDS split.
    """
    base = tf.constant([seed, 0], tf.int64)
    return tf.data.Dataset.range(num_examples).map(
        lambda i: render_face(tf.random.experimental.stateless_fold_in(base, i), image_size),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
