"""The CRCT tracker: Algorithm 1 of the paper (section III-D), frame by frame, for one face or
several.

    tracker = Tracker(steps, TrackerConfig.from_constants(bundle.tracker), box_map=...)
    for rgb in frames:
        result = tracker.track(rgb)      # FrameResult: .faces, and the first face's fields

`steps` does the network work of a frame (`frame_step.FrameSteps`, or `SavedSteps` restored from
an export, or a stand-in with the same methods); this module only decides, per frame, what runs:
when to call the detector (MTCNN), which detection goes to which face (eq. 8), when to reset BT's
state, and what to report. Line numbers in comments are Algorithm 1's.

Modes:
  crct    the full tracker: BT -> FV -> FLL, MTCNN re-detection when FV rejects.
  fll_mt  tracking by detection: MTCNN every frame, FLL on the accepted detection.
  bt      BT alone from a given first box, b_t = b_t^BT (the paper's Table I); no FV, no FLL.

Statuses: `tracked` (landmarks valid), `lost` (FV rejected BT's estimate: no landmarks),
`searching` (no face yet, or no accepted detection in fll_mt: no landmarks).

Several faces (`max_faces` N > 1). The state has one slot per face (`state.FaceStates`); each
track runs Algorithm 1 on its own, and all of them go through BT, FV and FLL in one batched step
per frame. On top of it:
  - the detector runs whenever a track is lost (its `redetect` flag), while no face is tracked,
    and every `detect_every` (k) frames while a slot is free, to find new faces;
  - detections are matched to the tracks by eq. 8 (the centre distance over the track's last
    box diagonal, below T_B) under one global assignment (`linear_sum_assignment`); a lost track
    re-initialises from its match, a tracked one keeps its own box (the match only keeps the
    detection from starting a second track on the same face);
  - an unmatched detection starts a new track (most confident first, while slots are free)
    unless it overlaps a live track's box by IoU >= `iou_threshold`; the new track is reported,
    and gets its id, from its first frame that FV accepts (a detection FV rejects at once is
    dropped: no id is spent on it);
  - when FV rejects BT's estimate of a face, FV also checks FLL's landmarks (FLL runs in the
    step anyway; one more FV pass, about 2 ms) and the face is tracked with them if FV accepts:
    a face partly hidden by another pulls BT's points off (FV rejects them) long before FLL's
    (`recheck_fll`);
  - two tracked faces whose new boxes overlap by IoU >= `duplicate_iou` are one face: the track
    that moved more to get there (relative to its last box) is marked `lost` (it keeps its last
    box and re-detects, as after a rejection);
  - a track ends after M (`max_lost`) consecutive frames without landmarks, or when its box
    leaves the frame; its slot is free again, its id never reused in the run.
With N = 1 (the default) none of this changes Algorithm 1: the detector runs exactly when it did,
FV judges BT's estimate alone, the track never ends (unless `max_lost` is given) and falls back
to b_0 (lines 9-10).
"""

import dataclasses

import numpy as np
from absl import logging

from crct_tf.geometry.landmarks import box_from_landmarks
from crct_tf.tracking.detection import MtcnnBoxMap, box_iou
from crct_tf.tracking.state import FaceStates, centre_distance_ratios, is_usable_box
from crct_tf.tracking.video_io import as_rgb_uint8

MODES = ("crct", "fll_mt", "bt")
REDETECT_ON = ("next", "same")
TRACKED, LOST, SEARCHING = "tracked", "lost", "searching"

DEFAULT_DETECT_EVERY = 5       # k: frames between detector calls while a face slot is free
DEFAULT_MAX_LOST = 15          # M: frames without landmarks before a track ends (max_faces > 1)
DEFAULT_IOU_THRESHOLD = 0.3    # a detection overlapping a live track this much starts no track
DEFAULT_DUPLICATE_IOU = 0.6    # two tracked boxes overlapping this much are one face
DEFAULT_FPS = 30.0             # time stamps of frames given without one: index / 30 s


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    """Algorithm 1's constants and the tracker's options.

    Attributes:
      mode: `crct`, `fll_mt` or `bt`.
      seq_bt: SeqBT, BT's temporal window (frames); fixed at training time (from the weights).
      t_b: T_B of eq. 8, the largest accepted centre distance over the previous box's diagonal.
      t_c: T_C, FV's acceptance threshold on p(face).
      redetect_on: `next` (Algorithm 1: FV rejects at t => MTCNN at t+1) or `same` (the
        authors' code: MTCNN on the rejected frame itself, then the step runs again).
      max_faces: N, the most faces followed at once (1: the paper's tracker).
      detect_every: k, the detector runs every k frames while fewer than N faces are tracked.
      max_lost: M, a track ends after M consecutive frames without landmarks; None: 15 with
        max_faces > 1, never with max_faces = 1 (Algorithm 1 keeps looking near the last box).
      iou_threshold: a detection whose IoU with a live track's box is at least this starts no
        new track.
      duplicate_iou: two tracked faces whose boxes overlap this much are one face.
      recheck_fll: when FV rejects BT's estimate, FV checks FLL's landmarks too and the face is
        tracked if it accepts them; None: on with max_faces > 1, off with 1 (Algorithm 1).
        Weights may carry their own choice in their `tracker` constants (`from_constants`).
      smoothing: `smoothing.OneEuroParams` to smooth each face's landmarks (and box), or None
        for the raw output.
      pose: compute each tracked face's head pose (`pose.estimate_pose`).
    """
    mode: str = "crct"
    seq_bt: int = 2
    t_b: float = 1.0
    t_c: float = 0.5
    redetect_on: str = "next"
    max_faces: int = 1
    detect_every: int = DEFAULT_DETECT_EVERY
    max_lost: int = None
    iou_threshold: float = DEFAULT_IOU_THRESHOLD
    duplicate_iou: float = DEFAULT_DUPLICATE_IOU
    recheck_fll: bool = None
    smoothing: object = None
    pose: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if self.redetect_on not in REDETECT_ON:
            raise ValueError(f"unknown redetect_on {self.redetect_on!r}; expected next or same")
        if self.seq_bt < 1 or self.t_b <= 0 or not 0 <= self.t_c <= 1:
            raise ValueError(f"bad tracker constants SeqBT={self.seq_bt} T_B={self.t_b} "
                             f"T_C={self.t_c}")
        if int(self.max_faces) != self.max_faces or self.max_faces < 1:
            raise ValueError(f"max_faces must be a whole number >= 1, got {self.max_faces}")
        if int(self.detect_every) != self.detect_every or self.detect_every < 1:
            raise ValueError(f"detect_every must be a whole number >= 1, got "
                             f"{self.detect_every}")
        if self.max_lost is not None and (int(self.max_lost) != self.max_lost
                                          or self.max_lost < 1):
            raise ValueError(f"max_lost must be a whole number >= 1, got {self.max_lost}")
        if not 0 < self.iou_threshold <= 1 or not 0 < self.duplicate_iou <= 1:
            raise ValueError(f"IoU thresholds must be in (0, 1], got {self.iou_threshold} and "
                             f"{self.duplicate_iou}")
        if self.mode == "bt" and self.max_faces > 1:
            raise ValueError("mode bt follows the one face of its initial box: use max_faces 1")

    @property
    def fll_recheck(self):
        """`recheck_fll` in force."""
        return self.max_faces > 1 if self.recheck_fll is None else bool(self.recheck_fll)

    @property
    def lost_limit(self):
        """M in force: `max_lost`, or its default for `max_faces` (None: never)."""
        if self.max_lost is not None:
            return int(self.max_lost)
        return DEFAULT_MAX_LOST if self.max_faces > 1 else None

    @classmethod
    def from_constants(cls, tracker_constants, **overrides):
        """From the weights' `tracker` constants ({seq_bt, t_b, t_c}, and `recheck_fll` where
        the weights chose it); None overrides ignored."""
        values = {"seq_bt": int(tracker_constants.get("seq_bt", cls.seq_bt)),
                  "t_b": float(tracker_constants.get("t_b", cls.t_b)),
                  "t_c": float(tracker_constants.get("t_c", cls.t_c))}
        if tracker_constants.get("recheck_fll") is not None:
            values["recheck_fll"] = bool(tracker_constants["recheck_fll"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclasses.dataclass
class FaceResult:
    """One face in one frame.

    Attributes:
      face_id: the track's id: 0, 1, ... in the order faces were found, never reused in a run.
      status: `tracked`, `lost`, or `searching` (fll_mt: no detection matched this frame).
      face_score: FV's p(face) (crct), the MTCNN confidence (fll_mt), None (bt, or no score).
      box: [4] b_t when tracked, else None (smoothed with `smoothing`).
      landmarks: [68, 2] l_t in image pixels when tracked, else None (smoothed with `smoothing`).
      reinitialised: the track restarted from a detection after losing the face.
      pose: `pose.HeadPose` of a tracked face (from the reported landmarks), else None.
    """
    face_id: int
    status: str
    face_score: float = None
    box: np.ndarray = None
    landmarks: np.ndarray = None
    reinitialised: bool = False
    pose: object = None


@dataclasses.dataclass
class FrameResult:
    """What the tracker reports for one frame.

    `faces` holds every face followed in the frame, by id; the other fields are the first
    face's (with max_faces 1: the face), or `searching` with nothing when there is none.

    Attributes:
      status: `tracked`, `lost` or `searching`.
      face_score: FV's p(face) (crct), the MTCNN confidence (fll_mt), None (bt, or no score).
      box: [4] b_t when tracked, else None.
      landmarks: [68, 2] l_t in image pixels when tracked, else None.
      detector_calls: MTCNN calls made for this frame.
      reinitialised: the track restarted from a detection after losing the face.
      faces: [FaceResult], sorted by face_id; empty while searching.
      pose: the first face's `pose.HeadPose`, or None.
    """
    status: str
    face_score: float = None
    box: np.ndarray = None
    landmarks: np.ndarray = None
    detector_calls: int = 0
    reinitialised: bool = False
    faces: list = dataclasses.field(default_factory=list)
    pose: object = None

    @classmethod
    def of_faces(cls, faces, detector_calls=0):
        faces = sorted(faces, key=lambda f: f.face_id)
        if not faces:
            return cls(SEARCHING, detector_calls=detector_calls)
        first = faces[0]
        return cls(first.status, first.face_score, first.box, first.landmarks, detector_calls,
                   first.reinitialised, faces, first.pose)


def select_detection(previous_box, boxes, scores, t_b):
    """Eq. 8: the index of the detection to re-initialise from, or None.

    With a valid previous box b_{t-1}: the detection minimising d(b_{t-1}, b) / ||b_{t-1}||,
    accepted only when that ratio is below T_B (a far-away face is not taken for the tracked
    one). With no valid previous box: the most confident detection.
    """
    if len(boxes) == 0:
        return None
    previous = None if previous_box is None else np.asarray(previous_box, np.float64)
    if previous is None or not np.all(np.isfinite(previous)) or \
            previous[2] <= previous[0] or previous[3] <= previous[1]:
        return int(np.argmax(scores))
    ratios = centre_distance_ratios(previous, boxes)
    best = int(np.argmin(ratios))
    return best if ratios[best] < t_b else None


def assign_detections(track_boxes, boxes, t_b):
    """Eq. 8 per track under one global assignment: {track index: detection index}.

    The cost of a (track, detection) pair is eq. 8's ratio d(b_{t-1}, b) / ||b_{t-1}||; pairs at
    or above T_B are not allowed. `scipy.optimize.linear_sum_assignment` picks the pairs of least
    total cost among the allowed ones (as many as possible), so that a detection goes to at most
    one track and a track takes the detection nearest to it unless another track needs it more.
    With one track this is `select_detection`.

    Args:
      track_boxes: [T, 4] the tracks' last boxes b_{t-1} (finite).
      boxes: [D, 4] detections (landmark boxes).
      t_b: T_B.
    """
    track_boxes = np.asarray(track_boxes, np.float64).reshape(-1, 4)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(track_boxes) == 0 or len(boxes) == 0:
        return {}
    from scipy.optimize import linear_sum_assignment
    ratios = np.stack([centre_distance_ratios(b, boxes) for b in track_boxes])
    allowed = ratios < t_b
    if not allowed.any():
        return {}
    # Forbidden pairs cost more than any set of allowed ones, so they are used only where
    # nothing else is left, and dropped below.
    cost = np.where(allowed, ratios, t_b * (1 + len(track_boxes) + len(boxes)))
    rows, cols = linear_sum_assignment(cost)
    return {int(r): int(c) for r, c in zip(rows, cols) if allowed[r, c]}


def default_detector():
    """MTCNN as a `detect(rgb) -> (boxes, scores)` callable: the `mtcnn` package's networks on
    LiteRT with its search policy (`fast_mtcnn.default_detector`)."""
    from crct_tf.tracking import fast_mtcnn
    return fast_mtcnn.default_detector()


class Tracker:
    """Algorithm 1 over a stream of frames, for up to `config.max_faces` faces.

    Args:
      steps: object with `step`, `bt_step`, `fll_step` and `state_shape` (see frame_step).
      config: `TrackerConfig`.
      detect: `detect(rgb) -> (boxes [N, 4] x0y0x1y1, scores [N])` (MTCNN boxes); default one
        MTCNN built on first use.
      box_map: `MtcnnBoxMap` from detector boxes to landmark boxes (from the weights).
      init_box: b_0 `[x0, y0, x1, y1]` of the first face, or None to start from a detection
        (required by `bt`).
      init_landmarks: [68, 2] points whose box is b_0 (instead of init_box).
    """

    def __init__(self, steps, config=TrackerConfig(), detect=None, box_map=None, init_box=None,
                 init_landmarks=None):
        self.steps, self.config = steps, config
        self.box_map = box_map if box_map is not None else MtcnnBoxMap()
        self._detect = detect
        self.reset(init_box, init_landmarks)

    @classmethod
    def from_constants(cls, steps, constants, detect=None, init_box=None, init_landmarks=None,
                       **config):
        """A tracker with the constants saved with the weights.

        Args:
          constants: {"tracker": {seq_bt, t_b, t_c}, "mtcnn_box_map": {dx, dy, sx, sy}}, e.g.
            `SavedSteps.constants`, or a Bundle's `tracker` and `mtcnn_box_map` in a dict.
          **config: `TrackerConfig` overrides (mode, redetect_on, max_faces, smoothing, ...).
        """
        return cls(steps, TrackerConfig.from_constants(constants["tracker"], **config),
                   detect=detect, box_map=MtcnnBoxMap.from_dict(constants["mtcnn_box_map"]),
                   init_box=init_box, init_landmarks=init_landmarks)

    def reset(self, init_box=None, init_landmarks=None):
        """Algorithm 1, line 1, for a new stream."""
        if init_landmarks is not None:
            init_box = box_from_landmarks(init_landmarks)
        if init_box is not None and not is_usable_box(init_box, (np.inf, np.inf)):
            raise ValueError(f"initial box {list(init_box)} is not a box x0,y0,x1,y1 with "
                             f"x1 > x0 and y1 > y0")
        if self.config.mode == "bt" and init_box is None:
            raise ValueError("mode bt needs an initial box (--init_box x0,y0,x1,y1)")
        self.state = FaceStates.create(self.config.max_faces, self.steps.state_shape,
                                       None if init_box is None else [init_box])
        self._next_id = 0
        for i in self.state.live():
            self._give_id(i)
        self._previous = None
        self._frame = 0
        self._last_detection = None
        self._smoother = None
        if self.config.smoothing is not None:
            from crct_tf.tracking.smoothing import FaceSmoother
            self._smoother = FaceSmoother(self.config.smoothing)
        self.counts = {TRACKED: 0, LOST: 0, SEARCHING: 0, "redetections": 0,
                       "detector_calls": 0}

    def warm_up(self, image):
        """Traces (and compiles) the networks this mode uses on a frame like `image`, and builds
        the detector, so that the first tracked frame is not slow. The state is not changed."""
        rgb = as_rgb_uint8(image)
        height, width = rgb.shape[:2]
        box = np.array([[0.25 * width, 0.25 * height, 0.75 * width, 0.75 * height]], np.float32)
        lstm = np.zeros([1, *self.steps.state_shape], np.float32)
        if self.config.mode == "crct":
            self.steps.step(rgb, rgb, box, lstm, np.zeros([1, 2], np.float32))
        elif self.config.mode == "bt":
            self.steps.bt_step(rgb, rgb, box, lstm)
        else:
            self.steps.fll_step(rgb, box)
        if self.config.mode != "bt" and self._detect is None:
            self._detect = default_detector()

    def track(self, image, time_s=None):
        """Tracks one frame (RGB; grayscale, RGBA, 16-bit accepted) and returns a FrameResult.

        Args:
          image: the frame.
          time_s: its time stamp in seconds (for smoothing); default frame index / 30.
        """
        rgb = as_rgb_uint8(image)
        previous = rgb if self._previous is None else self._previous   # X_{t-1} (X_0 at t = 0)
        track = {"crct": self._track_crct, "fll_mt": self._track_fll_mt,
                 "bt": self._track_bt}[self.config.mode]
        self._calls = 0
        faces = track(rgb, previous)
        self._end_tracks(rgb)
        faces = self._finish(faces, rgb.shape,
                             self._frame / DEFAULT_FPS if time_s is None else float(time_s))
        result = FrameResult.of_faces(faces, self._calls)
        self._previous = rgb if rgb is not image else rgb.copy()   # the caller may reuse it
        self._frame += 1
        for face in result.faces:
            self.counts[face.status] += 1
            self.counts["redetections"] += int(face.reinitialised)
        if not result.faces:
            self.counts[SEARCHING] += 1
        self.counts["detector_calls"] += self._calls
        return result

    @property
    def faces_seen(self):
        """How many tracks have been reported so far (ids 0 .. faces_seen - 1)."""
        return self._next_id

    # -- ids, track ends, smoothing and pose ----------------------------------------------------

    @property
    def _confirm_new(self):
        """With several faces, a new track is reported from its first FV-accepted frame."""
        return self.config.max_faces > 1

    def _give_id(self, i):
        if self.state.face_id[i] < 0:
            self.state.face_id[i] = self._next_id
            self._next_id += 1

    def _end_tracks(self, rgb):
        """Ends the tracks lost for M frames, or (several faces) whose box left the frame."""
        s, limit = self.state, self.config.lost_limit
        for i in s.live():
            gone = limit is not None and s.lost_run[i] >= limit
            if self.config.max_faces > 1 and not is_usable_box(s.box[i], rgb.shape):
                gone = True
            if gone:
                s.release(i)

    def _finish(self, faces, image_shape, time_s):
        """Smoothing (per face id) and head pose of the tracked faces."""
        if self._smoother is not None:
            tracked = [f for f in faces if f.status == TRACKED and f.landmarks is not None]
            for face in tracked:
                face.landmarks = self._smoother.smooth(face.face_id, time_s, face.landmarks)
                face.box = box_from_landmarks(face.landmarks)
            self._smoother.keep([f.face_id for f in tracked])
        if self.config.pose:
            from crct_tf.tracking.pose import estimate_pose
            for face in faces:
                if face.status == TRACKED and face.landmarks is not None:
                    face.pose = estimate_pose(face.landmarks, image_shape)
        return faces

    # -- detection (Algorithm 1, lines 3-8; eq. 8) ----------------------------------------------

    def _detections(self, rgb):
        """Detector boxes mapped to landmark boxes, and their scores."""
        if self._detect is None:
            logging.info("building the MTCNN face detector")
            self._detect = default_detector()
        self._calls += 1
        self._last_detection = self._frame
        boxes, scores = self._detect(rgb)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        return self.box_map.apply(boxes).reshape(-1, 4), np.asarray(scores, np.float32)

    def _detection_due(self):
        """Lines 3-4, and the periodic search for new faces while a slot is free."""
        s, cfg = self.state, self.config
        live = s.live()
        if len(live) == 0:
            return True                                         # searching
        if cfg.redetect_on == "next" and s.redetect[live].any():
            return True                                         # a lost track
        if len(s.free_slots()) and (self._last_detection is None
                                    or self._frame - self._last_detection >= cfg.detect_every):
            return True
        return False

    def _match(self, boxes, scores, candidates):
        """Eq. 8 under the global assignment; re-initialises the matched `candidates`.

        Every live track takes part (so a tracked face keeps its own detection), but only the
        tracks in `candidates` (lost ones) re-initialise from their match (lines 5-7); the others
        keep their box (line 8). Returns (re-initialised slots, matched detection indices).
        """
        s = self.state
        live = s.live()
        pairs = assign_detections(s.box[live], boxes, self.config.t_b)
        restarted = []
        for row, column in pairs.items():
            i = int(live[row])
            if i in candidates:
                s.reinitialise(i, boxes[column])
                restarted.append(i)
        return restarted, set(pairs.values())

    def _start_tracks(self, boxes, scores, used):
        """Unmatched detections start tracks in free slots, most confident first, unless they
        overlap a live track's box (IoU >= iou_threshold). Returns {new slot: detection}."""
        s = self.state
        started = {}
        occupied = [s.box[i] for i in s.live()]
        for j in np.argsort(-np.asarray(scores), kind="stable"):
            free = s.free_slots()
            if not len(free):
                break
            if j in used:
                continue
            if occupied and np.max(box_iou(np.asarray(occupied), boxes[j])) >= \
                    self.config.iou_threshold:
                continue
            i = int(free[0])
            s.reinitialise(i, boxes[j])
            s.redetect[i] = True              # a new track: BT starts from a reset state
            if not self._confirm_new:
                self._give_id(i)
            started[i] = int(j)
            occupied.append(boxes[j])
        return started

    def _detect_and_assign(self, rgb, candidates):
        """MTCNN, eq. 8 for the `candidates`, new tracks. Returns (re-initialised, new) slots."""
        boxes, scores = self._detections(rgb)
        restarted, used = self._match(boxes, scores, set(int(i) for i in candidates))
        return restarted, self._start_tracks(boxes, scores, used)

    def _ensure_box(self, i, rgb):
        """Lines 9-10: with no usable box, fall back to b_0 (re-initialising). False: none."""
        s = self.state
        if is_usable_box(s.box[i], rgb.shape):
            return True
        if self.config.max_faces > 1 or not is_usable_box(s.initial[i], rgb.shape):
            return False
        s.box[i] = s.initial[i]
        s.reset_lstm(i)
        return True

    # -- the modes ------------------------------------------------------------------------------

    def _step(self, rgb, previous, slots):
        s = self.state
        out = self.steps.step(rgb, previous, s.box[slots], s.lstm[slots], s.fll_shifts(slots))
        return {k: np.asarray(v) for k, v in out.items()}

    def _track_crct(self, rgb, previous):
        s, cfg = self.state, self.config
        had_face = s.has_face.copy()
        reinitialised, new = set(), set()
        # Lines 3-8. With --redetect_on same, MTCNN runs right after a rejection instead (below),
        # and at the start of a frame only to search for faces.
        if self._detection_due():
            lost = [i for i in s.live() if s.redetect[i]] if cfg.redetect_on == "next" else []
            restarted, started = self._detect_and_assign(rgb, lost)
            reinitialised.update(i for i in restarted if had_face[i])
            new.update(started)
        active = [int(i) for i in s.live() if self._ensure_box(i, rgb)]    # lines 9-10
        if not active:
            return []
        for i in active:                                                   # lines 11-12
            if s.redetect[i] or s.seq_t[i] > cfg.seq_bt:
                s.reset_lstm(i)
        out = self._step(rgb, previous, active)                            # lines 13-15, 18
        rejected = [k for k, i in enumerate(active) if out["p_face"][k] < cfg.t_c]
        if rejected and cfg.redetect_on == "same" and self._calls == 0:
            # The authors' code: re-detect on the rejected frame and run the step again.
            restarted, started = self._detect_and_assign(rgb, [active[k] for k in rejected])
            rerun = [i for i in restarted] + [i for i in started if i not in active]
            if rerun:
                for i in rerun:
                    s.reset_lstm(i)
                again = self._step(rgb, previous, rerun)
                out = self._merge(out, active, again, rerun)
                active = active + [i for i in rerun if i not in active]
                reinitialised.update(restarted)
                new.update(started)
        return self._decide(rgb, out, active, reinitialised, new)

    @staticmethod
    def _merge(out, active, again, rerun):
        """The step's outputs for `active` slots, replaced or extended by those of `rerun`."""
        merged = {}
        for key, value in out.items():
            rows = list(value)
            for k, i in enumerate(rerun):
                if i in active:
                    rows[active.index(i)] = again[key][k]
                else:
                    rows.append(again[key][k])
            merged[key] = np.stack(rows) if rows else value
        return merged

    def _decide(self, rgb, out, active, reinitialised, new):
        """Lines 15-21 for every stepped slot, duplicates, ids; the FaceResults to report."""
        s, cfg = self.state, self.config
        p_faces = np.asarray(out["p_face"], np.float64).copy()
        rejected = [k for k in range(len(active)) if p_faces[k] < cfg.t_c]
        if rejected and cfg.fll_recheck and hasattr(self.steps, "fv_step"):
            # FV's second look, at FLL's landmarks of the rejected faces.
            second = self.steps.fv_step(rgb, out["landmarks"][rejected], out["box"][rejected])
            second = np.asarray(second["p_face"], np.float64).reshape(-1)
            for k, p in zip(rejected, second):
                if p >= cfg.t_c:
                    p_faces[k] = p
        accepted = [k for k in range(len(active)) if p_faces[k] >= cfg.t_c]
        for k in self._duplicates(out, active, accepted):
            accepted.remove(k)
        faces = []
        for k, i in enumerate(active):
            p_face = float(p_faces[k])
            if k not in accepted:                                        # lines 15-16
                s.redetect[i] = True
                if self._confirm_new and s.face_id[i] < 0:
                    s.release(i)                  # a new detection FV rejects: no track
                    continue
                s.lost_run[i] += 1
                faces.append(FaceResult(int(s.face_id[i]), LOST, face_score=p_face,
                                        reinitialised=i in reinitialised))
                continue
            s.accept(i, out["box"][k], out["state"][k], out["bt_box"][k])  # lines 19-21
            self._give_id(i)
            faces.append(FaceResult(int(s.face_id[i]), TRACKED, p_face, out["box"][k],
                                    out["landmarks"][k], reinitialised=i in reinitialised))
        return faces

    def _duplicates(self, out, active, accepted):
        """Accepted rows whose box duplicates another's (IoU >= duplicate_iou): of each such
        pair, the track that moved more (centre shift over its last box's diagonal)."""
        s = self.state
        if len(accepted) < 2:
            return []
        boxes = out["box"]
        moved = {k: float(centre_distance_ratios(s.box[active[k]], boxes[k][None])[0])
                 for k in accepted}
        dropped = set()
        for a in accepted:
            for b in accepted:
                if a < b and a not in dropped and b not in dropped and \
                        box_iou(boxes[a], boxes[b]) >= self.config.duplicate_iou:
                    dropped.add(a if moved[a] > moved[b] else b)
        return sorted(dropped)

    def _track_fll_mt(self, rgb, previous):
        """Tracking by detection: MTCNN (eq. 8 against the last boxes), then FLL (eq. 7)."""
        s = self.state
        live_before = [int(i) for i in s.live()]
        boxes, scores = self._detections(rgb)
        pairs = assign_detections(s.box[live_before], boxes, self.config.t_b)
        matched = {live_before[row]: column for row, column in pairs.items()}
        reinitialised = {i for i in matched if s.redetect[i]}
        for i, column in matched.items():
            s.reinitialise(i, boxes[column])
        matched.update(self._start_tracks(boxes, scores, set(pairs.values())))
        faces = []
        for i in live_before:
            if i not in matched:
                s.redetect[i] = True
                s.lost_run[i] += 1
                faces.append(FaceResult(int(s.face_id[i]), SEARCHING))
        order = sorted(matched)
        if order:
            out = {k: np.asarray(v) for k, v in
                   self.steps.fll_step(rgb, np.stack([s.box[i] for i in order])).items()}
            for k, i in enumerate(order):
                s.accept(i, out["box"][k], s.lstm[i])
                self._give_id(i)
                faces.append(FaceResult(int(s.face_id[i]), TRACKED, float(scores[matched[i]]),
                                        out["box"][k], out["landmarks"][k],
                                        reinitialised=i in reinitialised))
        return faces

    def _track_bt(self, rgb, previous):
        """BT alone (Table I): b_t = b_t^BT, with the state resets of lines 9-12."""
        s = self.state
        if not self._ensure_box(0, rgb):                                # lines 9-10
            return []
        if s.seq_t[0] > self.config.seq_bt:                             # lines 11-12
            s.reset_lstm(0)
        out = self.steps.bt_step(rgb, previous, s.box[:1], s.lstm[:1])  # lines 13-14
        out = {k: np.asarray(v) for k, v in out.items()}
        s.accept(0, out["box"][0], out["state"][0])
        return [FaceResult(int(s.face_id[0]), TRACKED, None, out["box"][0], out["landmarks"][0])]
