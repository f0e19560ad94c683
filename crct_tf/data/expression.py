"""Synthetic expressions for FLL's training faces: brows raised or lowered, the mouth opened and
rounded (not in the paper; `--fll_expression`).

The training faces are mostly neutral or smiling. People raise a brow, pout and talk, and a
regressor that has seldom seen an open, rounded mouth closes it. `expression_warp` moves the
brow, lip and jaw points as those expressions move them and carries the picture with them by a
piecewise-affine warp of a fixed triangle mesh over the 68 points and a ring of fixed points
around the face (the technique of face morphing). The points stay exact: they are the mesh's
vertices. A mouth opened wider than the photo's is filled with a painted mouth: dark inside,
with teeth below the upper lip on half of the examples.

Faces the mesh does not fit (a profile, whose contour crosses the nose, or a tilted head whose
triangles fold) are left as they are: a triangle whose orientation differs from the mean face's,
before or after the move, turns the warp off for that example.

Everything here is NumPy and OpenCV on one example; `maybe_expression_warp` wraps it for the
tf.data pipeline with the same stateless seeds as `augment`.
"""

import math

import cv2
import numpy as np
import tensorflow as tf

from crct_tf.data import augment
from crct_tf.geometry import landmarks as lm

EXPRESSION_SALT = 105  # the warp's seed, folded in: the other draws stay what they were

# Moves, as fractions of the side of the face's mean-shape frame (about its landmark box side).
BROW_RAISE = (-0.02, 0.07)   # both brows, from a slight frown to surprise
BROW_APART = 0.03            # each brow's own extra raise, up to this either way
BROW_TILT = 0.5              # the brow's outer end raised up to this much more or less than its inner
MOUTH_OPEN = (0.0, 0.12)     # the lower lip dropped by this much; the chin with it
MOUTH_ROUND = 0.25           # the corners drawn in by up to this share of the mouth's width
BROW_PROBABILITY = 0.7
MOUTH_PROBABILITY = 0.7
TEETH_PROBABILITY = 0.5

# How far each point follows the dropped lower lip (1) or stays (0): the jaw opens about its
# hinges, so the chin drops with the lip and the contour less and less towards the ears.
_JAW_FOLLOW = {8: 0.85, 7: 0.75, 9: 0.75, 6: 0.55, 10: 0.55, 5: 0.3, 11: 0.3, 4: 0.1, 12: 0.1}
_LOWER_LIP = (55, 56, 57, 58, 59, 65, 66, 67)
_CORNERS = (48, 54, 60, 64)
_INNER_LIPS = tuple(range(60, 68))
_UPPER_INNER = (60, 61, 62, 63, 64)
_BROWS = ((17, 18, 19, 20, 21), (26, 25, 24, 23, 22))  # each from its outer end to its inner


def _ring(count_per_side=4, half_side=1.0):
    """Fixed points on a square about the mean face's centre, `half_side` x its side from it."""
    t = np.linspace(-half_side, half_side, count_per_side + 1)[:-1]
    top = [(x, -half_side) for x in t]
    right = [(half_side, y) for y in t]
    bottom = [(-x, half_side) for x in t]
    left = [(-half_side, -y) for y in t]
    return np.array(top + right + bottom + left, np.float64) + 0.5


RING = _ring()


def _template():
    """The mesh's template: the mean face with its mouth a little open (so that the inner lips
    have triangles between them), then the ring."""
    face = lm.MEAN_SHAPE_UNIT_BOX.astype(np.float64).copy()
    face[list(_LOWER_LIP)] += (0.0, 0.05)
    return np.concatenate([face, RING])


def _triangulate(points):
    """Delaunay triangles [T, 3] of vertex indices over `points` [N, 2]."""
    lo, hi = points.min(0) - 1.0, points.max(0) + 1.0
    subdiv = cv2.Subdiv2D((float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])))
    for x, y in points:
        subdiv.insert((float(x), float(y)))
    triangles = []
    for t in subdiv.getTriangleList().reshape(-1, 3, 2):
        distances = np.linalg.norm(points[None, :, :] - t[:, None, :], axis=2)
        index = distances.argmin(1)
        if distances[np.arange(3), index].max() < 1e-4 and len(set(index)) == 3:
            triangles.append(index)
    return np.array(triangles, np.int64)


TEMPLATE = _template()
TRIANGLES = _triangulate(TEMPLATE)
_INSIDE_MOUTH = np.array([set(t) <= set(_INNER_LIPS) for t in TRIANGLES])


def _signed_areas(vertices):
    a, b, c = (vertices[TRIANGLES[:, i]] for i in range(3))
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


_TEMPLATE_SIGNS = np.sign(_signed_areas(TEMPLATE))


def fit_similarity(source, target):
    """The least-squares similarity [2, 3] taking `source` [N, 2] onto `target` [N, 2]."""
    s_mean, t_mean = source.mean(0), target.mean(0)
    s, t = source - s_mean, target - t_mean
    norm = (s ** 2).sum()
    a = (s * t).sum() / norm
    b = (s[:, 0] * t[:, 1] - s[:, 1] * t[:, 0]).sum() / norm
    rotation = np.array([[a, -b], [b, a]])
    return np.concatenate([rotation, (t_mean - rotation @ s_mean)[:, None]], axis=1)


def _folds(vertices):
    """True where a triangle outside the mouth has turned over against the template."""
    return bool(np.any((np.sign(_signed_areas(vertices)) != _TEMPLATE_SIGNS) & ~_INSIDE_MOUTH))


def expression_moves(points, frame, rng):
    """New positions [68, 2] of `points` [68, 2] for a drawn expression, and whether the mouth
    was opened. The moves are drawn in the face's own `frame` (the similarity [2, 3] from the
    mean face onto `points`), so that "up" is up the face however the head is turned."""
    scale = math.hypot(frame[0, 0], frame[1, 0])   # pixels per side of the mean face
    down, along = frame[:, 1], frame[:, 0]          # its axes in the picture, `scale` long
    moved = points.copy()
    if rng.uniform() < BROW_PROBABILITY:
        raise_both = rng.uniform(*BROW_RAISE)
        for brow in _BROWS:
            lift = raise_both + rng.uniform(-BROW_APART, BROW_APART)
            tilt = rng.uniform(-BROW_TILT, BROW_TILT)
            for k, i in enumerate(brow):                    # k = 0 at the outer end
                moved[i] -= down * lift * (1.0 + tilt * (1.0 - k / 2.0))
    opened = rng.uniform() < MOUTH_PROBABILITY
    if opened:
        drop = rng.uniform(*MOUTH_OPEN)
        for i in _LOWER_LIP:
            moved[i] += down * drop
        for i in _CORNERS:
            moved[i] += down * drop * 0.4
        for i, share in _JAW_FOLLOW.items():
            moved[i] += down * drop * share
        centre = points[list(range(48, 68))].mean(0)
        width = np.linalg.norm(points[54] - points[48])
        draw_in = rng.uniform(0.0, MOUTH_ROUND) * width / 2.0
        for i in _CORNERS:
            inward = centre - points[i]
            inward -= down * (inward @ down) / (down @ down)   # along the mouth only
            moved[i] += inward / max(np.linalg.norm(inward), 1e-6) * draw_in
        for i in (49, 53, 55, 59):
            inward = np.sign((centre - points[i]) @ along) * along / scale
            moved[i] += inward * draw_in * 0.5
    return moved.astype(np.float32), opened


def warp_to(image, source, target):
    """`image` [H, W, 3] with the mesh's vertices at `source` [N, 2] moved to `target` [N, 2]:
    each target triangle shows the source triangle's pixels (piecewise affine). Pixels outside
    the mesh are kept."""
    height, width = image.shape[:2]
    lo = np.maximum(np.floor(target.min(0)).astype(int), 0)
    hi = np.minimum(np.ceil(target.max(0)).astype(int) + 1, [width, height])
    if np.any(hi <= lo):
        return image
    index = np.full((hi[1] - lo[1], hi[0] - lo[0]), -1, np.int32)
    for t, triangle in enumerate(TRIANGLES):
        corners = np.round((target[triangle] - lo) * 16).astype(np.int32)
        cv2.fillConvexPoly(index, corners, t, lineType=cv2.LINE_8, shift=4)
    backward = np.stack([cv2.getAffineTransform(target[tri].astype(np.float32),
                                                source[tri].astype(np.float32))
                         for tri in TRIANGLES])                          # [T, 2, 3]
    ys, xs = np.mgrid[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float32)
    matrices = backward[np.maximum(index, 0)]
    map_x = matrices[..., 0, 0] * xs + matrices[..., 0, 1] * ys + matrices[..., 0, 2]
    map_y = matrices[..., 1, 0] * xs + matrices[..., 1, 1] * ys + matrices[..., 1, 2]
    outside = index < 0
    map_x = np.where(outside, xs, map_x).astype(np.float32)
    map_y = np.where(outside, ys, map_y).astype(np.float32)
    out = image.copy()
    out[lo[1]:hi[1], lo[0]:hi[0]] = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR,
                                              borderMode=cv2.BORDER_REPLICATE)
    return out


def paint_mouth(image, points, rng):
    """Fills the inner-lip polygon of `points` [68, 2] with a mouth's inside: dark red, darker in
    the middle, with a band of teeth under the upper lip on TEETH_PROBABILITY of the calls."""
    height, width = image.shape[:2]
    lips = points[list(_INNER_LIPS)]
    lo = np.maximum(np.floor(lips.min(0)).astype(int) - 2, 0)
    hi = np.minimum(np.ceil(lips.max(0)).astype(int) + 3, [width, height])
    if np.any(hi <= lo):
        return image
    mask = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.uint8)
    cv2.fillPoly(mask, [np.round((lips - lo) * 16).astype(np.int32)], 255,
                 lineType=cv2.LINE_AA, shift=4)
    if not mask.any():
        return image
    depth = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 3)
    depth = depth / max(float(depth.max()), 1.0)
    colour = np.array([rng.uniform(35, 110), rng.uniform(5, 40), rng.uniform(10, 45)])
    inside = colour[None, None, :] * (1.0 - 0.6 * depth[..., None])
    if rng.uniform() < TEETH_PROBABILITY:
        upper = points[list(_UPPER_INNER)] - lo
        gap = np.linalg.norm(points[66] - points[62])
        band = rng.uniform(0.2, 0.5) * gap
        ys, xs = np.mgrid[0:mask.shape[0], 0:mask.shape[1]].astype(np.float32)
        order = np.argsort(upper[:, 0])
        line_y = np.interp(xs, upper[order, 0], upper[order, 1])   # the upper lip's lower edge
        teeth = (ys >= line_y) & (ys <= line_y + band)
        shade = rng.uniform(150, 235)
        inside = np.where(teeth[..., None], [shade, shade * 0.97, shade * 0.88], inside)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (3, 3), 0.8)[..., None]
    noise = rng.normal(0.0, 6.0, mask.shape)[..., None]
    region = image[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float32)
    out = image.copy()
    out[lo[1]:hi[1], lo[0]:hi[0]] = np.clip(region * (1 - alpha) + (inside + noise) * alpha,
                                            0, 255).astype(image.dtype)
    return out


def expression_warp(image, points, seed):
    """(image, points) with a drawn expression (see the module's doc), or both unchanged where
    the mesh does not fit the face. `image` [H, W, 3] uint8 or float, `points` [68, 2] float32,
    `seed` an integer or an array of integers (negative ones too)."""
    rng = np.random.default_rng(np.asarray(seed, np.int64).ravel().astype(np.uint64).tolist())
    points = np.asarray(points, np.float32)
    frame = fit_similarity(lm.MEAN_SHAPE_UNIT_BOX.astype(np.float64), points.astype(np.float64))
    ring = RING @ frame[:, :2].T + frame[:, 2]
    moved, opened = expression_moves(points.astype(np.float64), frame, rng)
    source = np.concatenate([points, ring]).astype(np.float64)
    target = np.concatenate([moved, ring]).astype(np.float64)
    if _folds(source) or _folds(target):
        return image, points
    out = warp_to(image, source, target)
    if opened:
        out = paint_mouth(out, moved, rng)
    return out, moved


def maybe_expression_warp(example, seed, probability):
    """`expression_warp` on `probability` of the examples (0: none), drawn from `seed` folded with
    EXPRESSION_SALT, so that adding it leaves every other draw of the same seed as it was."""
    def warp(example, seed):
        image, points = tf.numpy_function(expression_warp,
                                          [example["image"], example["landmarks"], seed],
                                          [example["image"].dtype, tf.float32], stateful=False)
        image.set_shape(example["image"].shape)
        points.set_shape([lm.NUM_LANDMARKS, 2])
        return dict(example, image=image, landmarks=points, box=augment.landmark_box(points))
    return augment.maybe_salted(example, seed, probability, EXPRESSION_SALT, warp)
