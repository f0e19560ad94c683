"""The CRCT tracker: Algorithm 1 of the paper (section III-D), frame by frame.

    tracker = Tracker(steps, TrackerConfig.from_constants(bundle.tracker), box_map=...)
    for rgb in frames:
        result = tracker.track(rgb)      # FrameResult: status, face_score, box, landmarks

`steps` does the network work of a frame (`frame_step.FrameSteps`, or `SavedSteps` restored from
an export, or a stand-in with the same methods); this module only decides, per frame, what runs:
when to call the detector (MTCNN), which detection to accept (eq. 8), when to reset BT's state,
and what to report. Line numbers in comments are Algorithm 1's.

Modes:
  crct    the full tracker: BT -> FV -> FLL, MTCNN re-detection when FV rejects.
  fll_mt  tracking by detection: MTCNN every frame, FLL on the accepted detection.
  bt      BT alone from a given first box, b_t = b_t^BT (the paper's Table I); no FV, no FLL.

Statuses: `tracked` (landmarks valid), `lost` (FV rejected BT's estimate: no landmarks),
`searching` (no face yet, or no accepted detection in fll_mt: no landmarks).
"""

import dataclasses
import functools

import numpy as np
from absl import logging

from crct_tf.tracking.detection import MtcnnBoxMap
from crct_tf.geometry.landmarks import box_from_landmarks
from crct_tf.tracking.state import FaceStates, centre_distance_ratios, is_usable_box
from crct_tf.tracking.video_io import as_rgb_uint8

MODES = ("crct", "fll_mt", "bt")
REDETECT_ON = ("next", "same")
TRACKED, LOST, SEARCHING = "tracked", "lost", "searching"


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
    """
    mode: str = "crct"
    seq_bt: int = 2
    t_b: float = 1.0
    t_c: float = 0.5
    redetect_on: str = "next"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if self.redetect_on not in REDETECT_ON:
            raise ValueError(f"unknown redetect_on {self.redetect_on!r}; expected next or same")
        if self.seq_bt < 1 or self.t_b <= 0 or not 0 <= self.t_c <= 1:
            raise ValueError(f"bad tracker constants SeqBT={self.seq_bt} T_B={self.t_b} "
                             f"T_C={self.t_c}")

    @classmethod
    def from_constants(cls, tracker_constants, **overrides):
        """From the weights' `tracker` constants ({seq_bt, t_b, t_c}); None overrides ignored."""
        values = {"seq_bt": int(tracker_constants.get("seq_bt", cls.seq_bt)),
                  "t_b": float(tracker_constants.get("t_b", cls.t_b)),
                  "t_c": float(tracker_constants.get("t_c", cls.t_c))}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclasses.dataclass
class FrameResult:
    """What the tracker reports for one frame.

    Attributes:
      status: `tracked`, `lost` or `searching`.
      face_score: FV's p(face) (crct), the MTCNN confidence (fll_mt), None (bt, or no score).
      box: [4] b_t when tracked, else None.
      landmarks: [68, 2] l_t in image pixels when tracked, else None.
      detector_calls: MTCNN calls made for this frame.
      reinitialised: the track restarted from a detection after losing the face.
    """
    status: str
    face_score: float = None
    box: np.ndarray = None
    landmarks: np.ndarray = None
    detector_calls: int = 0
    reinitialised: bool = False


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


def default_detector():
    """MTCNN (one instance, reused) as a `detect(rgb) -> (boxes, scores)` callable."""
    from crct_tf.tracking import detection
    return functools.partial(detection.detect_faces, detection.make_detector())


class Tracker:
    """Algorithm 1 over a stream of frames, one face (F = 1).

    Args:
      steps: object with `step`, `bt_step`, `fll_step` and `state_shape` (see frame_step).
      config: `TrackerConfig`.
      detect: `detect(rgb) -> (boxes [N, 4] x0y0x1y1, scores [N])` (MTCNN boxes); default one
        MTCNN built on first use.
      box_map: `MtcnnBoxMap` from detector boxes to landmark boxes (from the weights).
      init_box: b_0 `[x0, y0, x1, y1]`, or None to start from a detection (required by `bt`).
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
          **config: `TrackerConfig` overrides (mode, redetect_on, seq_bt, t_b, t_c).
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
        self.state = FaceStates.create(1, self.steps.state_shape,
                                       None if init_box is None else [init_box])
        self._previous = None
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
            self.steps.step(rgb, rgb, box, lstm)
        elif self.config.mode == "bt":
            self.steps.bt_step(rgb, rgb, box, lstm)
        else:
            self.steps.fll_step(rgb, box)
        if self.config.mode != "bt" and self._detect is None:
            self._detect = default_detector()

    def track(self, image):
        """Tracks one frame (RGB; grayscale, RGBA, 16-bit accepted) and returns a FrameResult."""
        rgb = as_rgb_uint8(image)
        previous = rgb if self._previous is None else self._previous   # X_{t-1} (X_0 at t = 0)
        track = {"crct": self._track_crct, "fll_mt": self._track_fll_mt,
                 "bt": self._track_bt}[self.config.mode]
        self._calls = 0
        result = track(rgb, previous)
        result.detector_calls = self._calls
        self._previous = rgb if rgb is not image else rgb.copy()   # the caller may reuse it
        self.counts[result.status] += 1
        self.counts["detector_calls"] += self._calls
        self.counts["redetections"] += int(result.reinitialised)
        return result

    # -- detection (Algorithm 1, lines 3-8; eq. 8) ----------------------------------------------

    def _detections(self, rgb):
        """Detector boxes mapped to landmark boxes, and their scores."""
        if self._detect is None:
            logging.info("building the MTCNN face detector")
            self._detect = default_detector()
        self._calls += 1
        boxes, scores = self._detect(rgb)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        return self.box_map.apply(boxes).reshape(-1, 4), np.asarray(scores, np.float32)

    def _redetect(self, rgb):
        """Lines 4-8: MTCNN, eq. 8; re-initialises from the accepted detection.

        Returns True when a detection was accepted. Otherwise P_b stays b_t (line 8).
        """
        s = self.state
        boxes, scores = self._detections(rgb)
        index = select_detection(s.box[0] if s.has_face[0] else None, boxes, scores,
                                 self.config.t_b)
        if index is None:
            return False
        s.reinitialise(0, boxes[index])
        return True

    def _ensure_box(self, rgb):
        """Lines 9-10: with no usable box, fall back to b_0 (re-initialising). False: none."""
        s = self.state
        if is_usable_box(s.box[0], rgb.shape):
            return True
        if not is_usable_box(s.initial[0], rgb.shape):
            return False
        s.box[0] = s.initial[0]
        s.reset_lstm(0)
        return True

    # -- the modes ------------------------------------------------------------------------------

    def _track_crct(self, rgb, previous):
        s, cfg = self.state, self.config
        had_face, reinitialised = bool(s.has_face[0]), False
        # Lines 3-8. With --redetect_on same, MTCNN runs right after a rejection instead (below),
        # and at the start of a frame only while no face was ever found.
        if s.redetect[0] and (cfg.redetect_on == "next" or not had_face):
            reinitialised = self._redetect(rgb) and had_face
        if not self._ensure_box(rgb):                                   # lines 9-10
            return FrameResult(SEARCHING)
        if s.redetect[0] or s.seq_t[0] > cfg.seq_bt:                    # lines 11-12
            s.reset_lstm(0)
        out = self._step(rgb, previous)                                 # lines 13-15, 18
        if (out["p_face"][0] < cfg.t_c and cfg.redetect_on == "same" and self._calls == 0
                and self._redetect(rgb)):
            # The authors' code: re-detect on the rejected frame and run the step again.
            reinitialised = True
            out = self._step(rgb, previous)
        p_face = float(out["p_face"][0])
        if p_face < cfg.t_c:                                            # lines 15-16
            s.redetect[0] = True
            return FrameResult(LOST, face_score=p_face, reinitialised=reinitialised)
        s.accept(0, out["box"][0], out["state"][0])                     # lines 19-21
        return FrameResult(TRACKED, p_face, out["box"][0], out["landmarks"][0],
                           reinitialised=reinitialised)

    def _step(self, rgb, previous):
        s = self.state
        out = self.steps.step(rgb, previous, s.box, s.lstm)
        return {k: np.asarray(v) for k, v in out.items()}

    def _track_fll_mt(self, rgb, previous):
        """Tracking by detection: MTCNN (eq. 8 against the last box), then FLL (eq. 7)."""
        s = self.state
        boxes, scores = self._detections(rgb)
        index = select_detection(s.box[0] if s.has_face[0] else None, boxes, scores,
                                 self.config.t_b)
        if index is None:
            s.redetect[0] = True
            return FrameResult(SEARCHING)
        reinitialised = bool(s.has_face[0] and s.redetect[0])
        s.reinitialise(0, boxes[index])
        out = {k: np.asarray(v) for k, v in self.steps.fll_step(rgb, boxes[index][None]).items()}
        s.accept(0, out["box"][0], s.lstm[0])
        return FrameResult(TRACKED, float(scores[index]), out["box"][0], out["landmarks"][0],
                           reinitialised=reinitialised)

    def _track_bt(self, rgb, previous):
        """BT alone (Table I): b_t = b_t^BT, with the state resets of lines 9-12."""
        s = self.state
        if not self._ensure_box(rgb):                                   # lines 9-10
            return FrameResult(SEARCHING)
        if s.seq_t[0] > self.config.seq_bt:                             # lines 11-12
            s.reset_lstm(0)
        out = self.steps.bt_step(rgb, previous, s.box, s.lstm)          # lines 13-14
        out = {k: np.asarray(v) for k, v in out.items()}
        s.accept(0, out["box"][0], out["state"][0])
        return FrameResult(TRACKED, None, out["box"][0], out["landmarks"][0])
