"""The Python API: a ready tracker that takes RGB frames and returns the faces in them.

    import crct_tf
    tracker = crct_tf.load_tracker()                 # the bundled weights, one face
    tracker = crct_tf.load_tracker(max_faces=4, smooth=True)
    for rgb in frames:                               # RGB uint8 [H, W, 3] (OpenCV: cvtColor)
        for face in tracker.track(rgb):              # or tracker.track(rgb, time_s)
            print(face.face_id, face.status, face.face_score, face.box, face.landmarks.shape,
                  face.pose)                         # pose: (yaw, pitch, roll) in degrees

A frame with no face gives an empty list (the tracker is searching). A face the validator has
just rejected is reported with status `lost` and no box, landmarks or pose; the tracker
re-detects it, and it keeps its id when it is found again near where it was. Ids are 0, 1, ...
in the order faces are found, never reused. Options, axes and signs: docs/multi_face.md.
"""

import dataclasses

import numpy as np

from crct_tf.tracking import runtime as runtimes
from crct_tf.tracking.tracker import SEARCHING, Tracker


@dataclasses.dataclass
class Face:
    """One face in one frame.

    Attributes:
      face_id: the track's id, stable while the face is followed (0 for the first face).
      status: `tracked` (landmarks valid) or `lost` (the validator rejected the estimate).
      face_score: the validator's p(face) (`crct`), MTCNN's confidence (`fll_mt`), None (`bt`).
      box: [4] float32 `[x0, y0, x1, y1]` in pixels when tracked, else None.
      landmarks: [68, 2] float32 (x, y) pixels, iBUG order, when tracked, else None.
      pose: (yaw, pitch, roll) in degrees when tracked, else None: yaw > 0 turned toward the
        image's right, pitch > 0 looking up, roll > 0 leaning clockwise in the picture.
    """
    face_id: int
    status: str
    face_score: float = None
    box: np.ndarray = None
    landmarks: np.ndarray = None
    pose: tuple = None


class FaceTracker:
    """Tracks faces frame by frame; see the module docstring. Built by `load_tracker`."""

    def __init__(self, tracker, label):
        self.tracker = tracker        # the Algorithm 1 loop (`crct_tf.tracking.Tracker`)
        self.weights = label          # where the networks came from

    def track(self, rgb, time_s=None):
        """Tracks one RGB frame (grayscale, RGBA and 16-bit are converted); a list of `Face`,
        by id (empty while searching).

        Args:
          rgb: the frame.
          time_s: its time in seconds, for smoothing (default: frame number / 30).
        """
        result = self.tracker.track(rgb, time_s)
        return [Face(f.face_id, f.status, f.face_score, f.box, f.landmarks,
                     None if f.pose is None else tuple(float(a) for a in f.pose.angles))
                for f in result.faces if f.status != SEARCHING]

    def reset(self, init_box=None):
        """Starts a new video (forgets the faces), optionally from a known first box."""
        self.tracker.reset(init_box)

    @property
    def counts(self):
        """Frames per status so far, re-detections and detector calls."""
        return dict(self.tracker.counts)


def load_tracker(weights=None, runtime=None, mode="crct", redetect_on="next", init_box=None,
                 saved_model=None, tflite_dir=None, threads=None, jit_compile=False,
                 max_faces=1, smooth=False, detect_every=None, max_lost=None,
                 iou_threshold=None, detect=None, fll_box=None, fll_flip=None,
                 fll_upright=None, fll_turn=None, recheck_fll=None):
    """A ready `FaceTracker`.

    Args:
      weights: a weights bundle folder (default: the bundled weights).
      runtime: `litert` (default: the weights' LiteRT models, converted on the first run and
        cached, or `tflite_dir`) or `tf` (the TF step; implied by `saved_model`); `tflite` is
        litert's former name.
      mode: `crct` (the full tracker), `fll_mt` (detection + landmarks every frame) or `bt`
        (box tracking from `init_box`).
      redetect_on: after a rejection, re-detect on the `next` frame (the paper) or the `same`.
      init_box: the first box `[x0, y0, x1, y1]` instead of a detection (required by `bt`).
      saved_model: a SavedModel from `python -m crct_tf.export` instead of `weights`.
      tflite_dir: a TFLite export from `python -m crct_tf.export --format tflite`.
      threads: LiteRT interpreter threads (default: all cores).
      jit_compile: on tf, run a bundle's networks under XLA (worth it for long videos).
      max_faces: follow up to this many faces (1: the paper's tracker).
      smooth: False (raw output), True (One-Euro filter with its default parameters) or a
        `crct_tf.tracking.smoothing.OneEuroParams`.
      detect_every: k, frames between detector calls while fewer than `max_faces` are tracked
        (default 5).
      max_lost: M, a face ends after M frames without landmarks (default 15 with max_faces > 1,
        never with 1).
      iou_threshold: a detection overlapping a followed face this much starts no new face
        (default 0.3).
      detect: a `detect(rgb) -> (boxes, scores)` face detector (default: MTCNN).
      fll_box: where FLL's crop goes, `bt` (Algorithm 1), `bt_centre`,
        `bt_centre_corrected` or `bt_capped` (default: the weights' own; docs/robustness.md).
      fll_flip: True: FLL also on the mirrored crop, the two point sets averaged; False: the
        paper's single pass (default: the weights' own; docs/robustness.md).
      fll_upright: True: FLL's crop turned upright by the roll of BT's points; False: the
        paper's upright crop (default: the weights' own; docs/robustness.md).
      fll_turn: True: FLL also on its crop turned by the roll of BT's points, the point
        sets averaged; False: the crop as it is (default: the weights' own; docs/robustness.md).
      recheck_fll: True: when the validator rejects BT's points, it also checks FLL's, and the
        face stays tracked if it accepts them; False: BT's alone (Algorithm 1); default: the
        weights' own (none: on with max_faces > 1, off with 1; docs/robustness.md).

    Raises:
      RuntimeLoadError: weights or an export that cannot be used (one-line message).
      ValueError: a bad option.
    """
    try:
        runtime = runtimes.resolve_runtime(runtime, saved_model, tflite_dir,
                                           default=runtimes.DEFAULT_RUNTIME)
    except runtimes.RuntimeLoadError as e:
        raise ValueError(str(e)) from None
    loaded = runtimes.load_runtime(weights=weights, saved_model=saved_model,
                                   tflite_dir=tflite_dir, threads=threads,
                                   jit_compile=jit_compile, runtime=runtime, fll_box=fll_box,
                                   fll_flip=fll_flip, fll_upright=fll_upright,
                                   fll_turn=fll_turn)
    tracker = Tracker.from_constants(loaded.steps, loaded.constants, detect=detect,
                                     init_box=init_box, mode=mode, redetect_on=redetect_on,
                                     **tracker_options(max_faces, smooth, detect_every, max_lost,
                                                       iou_threshold, recheck_fll))
    return FaceTracker(tracker, loaded.label)


def tracker_options(max_faces=1, smooth=False, detect_every=None, max_lost=None,
                    iou_threshold=None, recheck_fll=None):
    """`TrackerConfig` overrides from the API's arguments (None: the default)."""
    from crct_tf.tracking.smoothing import OneEuroParams
    if smooth is True:
        smoothing = OneEuroParams()
    elif smooth is False or smooth is None:
        smoothing = None
    elif isinstance(smooth, OneEuroParams):
        smoothing = smooth
    else:
        raise ValueError(f"smooth must be True, False or OneEuroParams, got {smooth!r}")
    return {"max_faces": max_faces, "smoothing": smoothing, "detect_every": detect_every,
            "max_lost": max_lost, "iou_threshold": iou_threshold, "recheck_fll": recheck_fll}
