"""The iBUG 68-point landmark scheme, `.pts` files and boxes from landmarks (SPEC section 1).

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


# A mean face in its own landmark box (x and y in [0, 1]): the mean of dlib's 68 points on the 88
# facenet `train` photos its frontal detector finds, each normalised to its landmark box, made
# left-right symmetric. Used to initialise the landmark heads, so training starts from a face.
MEAN_SHAPE_UNIT_BOX = np.array([
    (0.0000, 0.1819), (0.0027, 0.3151), (0.0153, 0.4489), (0.0390, 0.5814),
    (0.0883, 0.7052), (0.1675, 0.8125), (0.2645, 0.9036), (0.3746, 0.9787),
    (0.5000, 1.0000), (0.6254, 0.9787), (0.7355, 0.9036), (0.8325, 0.8125),
    (0.9117, 0.7052), (0.9610, 0.5814), (0.9847, 0.4489), (0.9973, 0.3151),
    (1.0000, 0.1819), (0.1046, 0.0719), (0.1652, 0.0180), (0.2501, 0.0000),
    (0.3382, 0.0134), (0.4202, 0.0491), (0.5798, 0.0491), (0.6618, 0.0134),
    (0.7499, 0.0000), (0.8348, 0.0180), (0.8954, 0.0719), (0.5000, 0.1432),
    (0.5000, 0.2302), (0.5000, 0.3181), (0.5000, 0.4064), (0.4036, 0.4659),
    (0.4494, 0.4848), (0.5000, 0.5024), (0.5506, 0.4848), (0.5964, 0.4659),
    (0.2037, 0.1608), (0.2554, 0.1259), (0.3208, 0.1265), (0.3746, 0.1691),
    (0.3156, 0.1811), (0.2531, 0.1818), (0.6254, 0.1691), (0.6792, 0.1265),
    (0.7446, 0.1259), (0.7963, 0.1608), (0.7469, 0.1818), (0.6844, 0.1811),
    (0.3005, 0.6295), (0.3732, 0.5974), (0.4455, 0.5829), (0.5000, 0.5967),
    (0.5545, 0.5829), (0.6268, 0.5974), (0.6995, 0.6295), (0.6294, 0.7002),
    (0.5585, 0.7326), (0.5000, 0.7399), (0.4415, 0.7326), (0.3706, 0.7002),
    (0.3320, 0.6335), (0.4442, 0.6275), (0.5000, 0.6320), (0.5558, 0.6275),
    (0.6680, 0.6335), (0.5557, 0.6667), (0.5000, 0.6730), (0.4443, 0.6667),
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
    """Length of the diagonal of [..., 4] boxes, the NME normaliser of 300-VW (SPEC section 5)."""
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
