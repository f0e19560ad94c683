"""Face detection with MTCNN and the map from its boxes to landmark boxes.

`mtcnn` 1.0 returns `[x, y, w, h]` boxes around the whole head-and-forehead region it was trained
on; the networks of this project are trained on landmark boxes (min/max of the 68 points, eq. 4),
which are lower and narrower. Every (re-)initialisation therefore goes through `MtcnnBoxMap`: a
fixed centre offset and size scale, fitted once on the bootstrap photos
(`tools/label_with_teacher.py`) and saved with the weights.

MTCNN takes RGB images: BGR silently lowers its recall. Building an `MTCNN()`
loads three networks: build one with `make_detector()` and reuse it.
"""

import dataclasses

import numpy as np


def make_detector():
    """One `mtcnn.MTCNN()` (on CPU), to be reused for every frame."""
    from mtcnn import MTCNN  # imported here: loading it costs seconds and most callers never do
    return MTCNN()


# The order of MTCNN's five keypoints in `detect_faces_with_keypoints`.
MTCNN_KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def detect_faces(detector, rgb_image):
    """Runs MTCNN on one RGB image.

    Args:
      detector: an `mtcnn.MTCNN` instance (see `make_detector`).
      rgb_image: uint8 [H, W, 3] RGB image (not BGR).

    Returns:
      (boxes, scores): float32 [N, 4] boxes `[x0, y0, x1, y1]` in pixels and float32 [N]
      confidences, most confident first. N may be 0.
    """
    boxes, scores, _ = detect_faces_with_keypoints(detector, rgb_image)
    return boxes, scores


def detect_faces_with_keypoints(detector, rgb_image, thresholds=None):
    """`detect_faces` plus MTCNN's five keypoints, float32 [N, 5, 2] (`MTCNN_KEYPOINTS` order).
    `thresholds`: the P-, R- and O-Net score thresholds (None: the package's defaults)."""
    image = np.asarray(rgb_image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"detect_faces expects an [H, W, 3] RGB image, got shape {image.shape}")
    options = {} if thresholds is None else dict(zip(
        ("threshold_pnet", "threshold_rnet", "threshold_onet"), thresholds))
    faces = detector.detect_faces(image.astype(np.uint8), box_format="xywh", output_type="json",
                                  **options)
    if not faces:
        return (np.zeros([0, 4], np.float32), np.zeros([0], np.float32),
                np.zeros([0, len(MTCNN_KEYPOINTS), 2], np.float32))
    xywh = np.array([face["box"] for face in faces], dtype=np.float32).reshape(-1, 4)
    scores = np.array([face["confidence"] for face in faces], dtype=np.float32)
    keypoints = np.array([[face["keypoints"][k] for k in MTCNN_KEYPOINTS] for face in faces],
                         dtype=np.float32)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order], keypoints[order]


def largest_box_index(boxes):
    """Index of the box of largest area in [N, 4] boxes (N >= 1)."""
    boxes = np.asarray(boxes, dtype=np.float32)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return int(np.argmax(areas))


def _centres_and_sizes(boxes):
    boxes = np.asarray(boxes, dtype=np.float64)
    return (boxes[..., :2] + boxes[..., 2:]) / 2.0, boxes[..., 2:] - boxes[..., :2]


@dataclasses.dataclass(frozen=True)
class MtcnnBoxMap:
    """Maps an MTCNN box to the landmark box expected inside it.

    With an MTCNN box of centre (cx, cy) and size (w, h), the estimate is the box of centre
    (cx + dx * w, cy + dy * h) and size (sx * w, sy * h).

    Attributes:
      dx, dy: centre offset as fractions of the MTCNN box's width and height.
      sx, sy: width and height of the landmark box over those of the MTCNN box.
    """
    dx: float = 0.0
    dy: float = 0.0
    sx: float = 1.0
    sy: float = 1.0

    def apply(self, boxes):
        """Landmark-box estimates [..., 4] (float32 numpy) for MTCNN boxes [..., 4]."""
        centre, size = _centres_and_sizes(boxes)
        centre = centre + size * np.array([self.dx, self.dy])
        half = size * np.array([self.sx, self.sy]) / 2.0
        return np.concatenate([centre - half, centre + half], axis=-1).astype(np.float32)

    @classmethod
    def fit(cls, mtcnn_boxes, landmark_boxes):
        """Fits the map on pairs of boxes [N, 4] (N >= 1).

        Each pair gives its own (dx, dy, sx, sy); the fit takes the median of each over the
        pairs. The median, rather than the least-squares mean, keeps one bad pair (a wrong face,
        a teacher failure) from pulling the map; on clean pairs the two agree closely.
        """
        m_centre, m_size = _centres_and_sizes(mtcnn_boxes)
        l_centre, l_size = _centres_and_sizes(landmark_boxes)
        if m_centre.ndim != 2 or len(m_centre) == 0 or m_centre.shape != l_centre.shape:
            raise ValueError(f"fit needs two [N, 4] arrays of boxes with N >= 1, got "
                             f"{np.shape(mtcnn_boxes)} and {np.shape(landmark_boxes)}")
        offset = np.median((l_centre - m_centre) / m_size, axis=0)
        scale = np.median(l_size / m_size, axis=0)
        return cls(dx=float(offset[0]), dy=float(offset[1]),
                   sx=float(scale[0]), sy=float(scale[1]))

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown MTCNN box map keys {sorted(unknown)}")
        return cls(**{k: float(v) for k, v in values.items()})


def box_iou(a, b):
    """IoU of boxes [..., 4] with boxes [..., 4] (broadcast), float64 numpy."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)


def box_map_error(box_map, mtcnn_boxes, landmark_boxes):
    """How well `box_map` predicts landmark boxes: a dict of summary numbers.

    Returns:
      {"mean_iou", "min_iou", "mean_centre_error", "mean_size_error"}: the IoU of each mapped box
      with its landmark box, and the centre distance and |size difference| divided by the
      landmark box's diagonal (so 0.05 is 5 % of the face), averaged over the pairs.
    """
    mapped = box_map.apply(mtcnn_boxes)
    target = np.asarray(landmark_boxes, dtype=np.float64)
    iou = box_iou(mapped, target)
    m_centre, m_size = _centres_and_sizes(mapped)
    t_centre, t_size = _centres_and_sizes(target)
    diagonal = np.hypot(t_size[:, 0], t_size[:, 1])
    return {
        "mean_iou": float(iou.mean()),
        "min_iou": float(iou.min()),
        "mean_centre_error": float((np.linalg.norm(m_centre - t_centre, axis=1) / diagonal).mean()),
        "mean_size_error": float((np.linalg.norm(m_size - t_size, axis=1) / diagonal).mean()),
    }
