"""The iBUG 68-point landmark scheme, `.pts` files and boxes from landmarks.

Indices are 0-based in code. In memory, landmarks are float arrays of shape [68, 2] holding
(x, y) in 0-based pixel coordinates, where integer coordinates are pixel centres. `.pts` files
store the same points 1-based.
"""

import math
import os

import numpy as np

NUM_LANDMARKS = 68

# The five facial regions of the BT heads (paper section III-A, modification 2), as index ranges.
REGIONS = {
    "contour": tuple(range(0, 17)),
    "eyebrows": tuple(range(17, 27)),
    "nose": tuple(range(27, 36)),
    "eyes": tuple(range(36, 48)),
    "mouth": tuple(range(48, 68)),
}
REGION_NAMES = tuple(REGIONS)

# Outer eye corners, for the inter-ocular normalisation of 300-W.
LEFT_EYE_OUTER = 36
RIGHT_EYE_OUTER = 45


# A mean face in its own landmark box (x and y in [0, 1]): the mean 68-point shape of the bootstrap
# labels (crct_tf/datasets/bootstrap_labels.json, 108 photos) after generalised Procrustes
# alignment with the eye line level, scaled to the unit box. It initialises the landmark heads
# (training starts from a face) and draws the generated faces of crct_tf.data.synthetic.
MEAN_SHAPE_UNIT_BOX = np.array([
    (0.0000, 0.1762), (0.0041, 0.3107), (0.0178, 0.4427), (0.0409, 0.5763), (0.0896, 0.7009),
    (0.1693, 0.8106), (0.2677, 0.9037), (0.3811, 0.9800), (0.5075, 1.0000), (0.6318, 0.9792),
    (0.7397, 0.9024), (0.8358, 0.8084), (0.9116, 0.6995), (0.9586, 0.5746), (0.9814, 0.4415),
    (0.9956, 0.3095), (1.0000, 0.1773), (0.1038, 0.0756), (0.1686, 0.0227), (0.2565, 0.0050),
    (0.3467, 0.0190), (0.4313, 0.0538), (0.5905, 0.0499), (0.6739, 0.0136), (0.7616, 0.0000),
    (0.8480, 0.0172), (0.9088, 0.0714), (0.5139, 0.1441), (0.5159, 0.2326), (0.5191, 0.3197),
    (0.5210, 0.4090), (0.4181, 0.4662), (0.4657, 0.4846), (0.5167, 0.5015), (0.5665, 0.4850),
    (0.6106, 0.4665), (0.2064, 0.1607), (0.2598, 0.1278), (0.3261, 0.1282), (0.3795, 0.1691),
    (0.3206, 0.1823), (0.2564, 0.1821), (0.6363, 0.1692), (0.6914, 0.1275), (0.7571, 0.1282),
    (0.8083, 0.1613), (0.7600, 0.1822), (0.6964, 0.1817), (0.3040, 0.6253), (0.3821, 0.5958),
    (0.4575, 0.5833), (0.5129, 0.5966), (0.5676, 0.5831), (0.6390, 0.5976), (0.7114, 0.6262),
    (0.6405, 0.6985), (0.5704, 0.7318), (0.5095, 0.7386), (0.4509, 0.7312), (0.3764, 0.6989),
    (0.3352, 0.6302), (0.4566, 0.6258), (0.5119, 0.6327), (0.5680, 0.6266), (0.6798, 0.6316),
    (0.5677, 0.6656), (0.5102, 0.6729), (0.4528, 0.6656),
], dtype=np.float32)


def _flip_permutation():
    pairs = [(i, 16 - i) for i in range(8)]                       # contour
    pairs += [(17 + i, 26 - i) for i in range(5)]                 # eyebrows
    pairs += [(31, 35), (32, 34)]                                 # nose wings
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58),   # mouth
              (60, 64), (61, 63), (65, 67)]
    perm = list(range(NUM_LANDMARKS))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


# After mirroring an image, the point that was index FLIP_PERMUTATION[i] becomes index i.
FLIP_PERMUTATION = _flip_permutation()


class PtsError(ValueError):
    """A `.pts` file that cannot be read as 68 finite points; the message names the file."""


def read_pts(path, num_points=NUM_LANDMARKS):
    """Reads a `.pts` file into a [num_points, 2] float32 array of 0-based pixel coordinates.

    Raises:
      PtsError: naming the file, when it is unreadable, malformed, holds another number of
        points, or holds a NaN or infinite coordinate.
    """
    try:
        with open(path, "r", encoding="utf-8", errors="strict") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise PtsError(f"{path}: cannot read the .pts file ({e.__class__.__name__}: {e})") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    try:
        start, end = lines.index("{"), lines.index("}")
    except ValueError:
        raise PtsError(f"{path}: not a .pts file (no '{{' ... '}}' block)") from None
    declared = None
    for line in lines[:start]:
        if line.lower().startswith("n_points"):
            try:
                declared = int(line.split(":")[1])
            except (IndexError, ValueError):
                raise PtsError(f"{path}: malformed header line {line!r}") from None
    rows = []
    for line in lines[start + 1:end]:
        parts = line.split()
        try:
            rows.append((float(parts[0]), float(parts[1])))
        except (IndexError, ValueError):
            raise PtsError(f"{path}: malformed point line {line!r}") from None
    if declared is not None and declared != len(rows):
        raise PtsError(f"{path}: header says {declared} points but the file holds {len(rows)}")
    if len(rows) != num_points:
        raise PtsError(f"{path}: expected {num_points} points, found {len(rows)}")
    points = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(points)):
        raise PtsError(f"{path}: contains a NaN or infinite coordinate")
    return (points - 1.0).astype(np.float32)


def write_pts(path, landmarks):
    """Writes [N, 2] 0-based landmarks as a 1-based `.pts` file, atomically (temp file, rename)."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or not np.all(np.isfinite(points)):
        raise ValueError(f"{path}: landmarks must be a finite [N, 2] array, got {points.shape}")
    lines = ["version: 1", f"n_points: {len(points)}", "{"]
    lines += [f"{x + 1.0:.3f} {y + 1.0:.3f}" for x, y in points]
    lines += ["}", ""]
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)


def box_from_landmarks(landmarks):
    """The landmark box [x0, y0, x1, y1] (eq. 4): min and max of the points; works on [..., N, 2]."""
    points = np.asarray(landmarks, dtype=np.float32)
    return np.concatenate([points.min(axis=-2), points.max(axis=-2)], axis=-1)


def box_diagonal(box):
    """Length of the diagonal of [..., 4] boxes, the NME normaliser of 300-VW."""
    box = np.asarray(box, dtype=np.float64)
    return np.hypot(box[..., 2] - box[..., 0], box[..., 3] - box[..., 1])


def flip_landmarks(landmarks, image_width):
    """Mirrors [..., 68, 2] landmarks of an image `image_width` pixels wide, permuting indices.

    With pixel centres at integer coordinates, column x maps to column (width - 1 - x).
    """
    points = np.asarray(landmarks, dtype=np.float32)
    mirrored = np.stack([(image_width - 1) - points[..., 0], points[..., 1]], axis=-1)
    return mirrored[..., list(FLIP_PERMUTATION), :]


def is_finite_box(box):
    return box is not None and len(box) == 4 and all(math.isfinite(float(v)) for v in box)
