"""The Python API: a ready tracker that takes RGB frames and returns the faces in them.

    import crct_tf
    tracker = crct_tf.load_tracker()                 # the bundled weights
    for rgb in frames:                               # RGB uint8 [H, W, 3], e.g. from OpenCV + cvtColor
        for face in tracker.track(rgb):
            print(face.face_id, face.status, face.face_score, face.box, face.landmarks.shape)

A frame with no face gives an empty list (the tracker is searching). A face the validator has
just rejected is reported with status `lost` and no box or landmarks; the tracker re-detects it.
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
    """
    face_id: int
    status: str
    face_score: float = None
    box: np.ndarray = None
    landmarks: np.ndarray = None


class FaceTracker:
    """Tracks faces frame by frame; see the module docstring. Built by `load_tracker`."""

    def __init__(self, tracker, label):
        self.tracker = tracker        # the Algorithm 1 loop (`crct_tf.tracking.Tracker`)
        self.weights = label          # where the networks came from

    def track(self, rgb):
        """Tracks one RGB frame (grayscale, RGBA and 16-bit are converted); a list of `Face`."""
        result = self.tracker.track(rgb)
        if result.status == SEARCHING:
            return []
        return [Face(0, result.status, result.face_score, result.box, result.landmarks)]

    def reset(self, init_box=None):
        """Starts a new video (forgets the face), optionally from a known first box."""
        self.tracker.reset(init_box)

    @property
    def counts(self):
        """Frames per status so far, re-detections and detector calls."""
        return dict(self.tracker.counts)


def load_tracker(weights=None, runtime=None, mode="crct", redetect_on="next", init_box=None,
                 saved_model=None, tflite_dir=None, threads=None, jit_compile=False):
    """A ready `FaceTracker`.

    Args:
      weights: a weights bundle folder (default: the bundled weights).
      runtime: `tf` (default) or `tflite` (needs `tflite_dir`).
      mode: `crct` (the full tracker), `fll_mt` (detection + landmarks every frame) or `bt`
        (box tracking from `init_box`).
      redetect_on: after a rejection, re-detect on the `next` frame (the paper) or the `same`.
      init_box: the first box `[x0, y0, x1, y1]` instead of a detection (required by `bt`).
      saved_model: a SavedModel from `python -m crct_tf.export` instead of `weights`.
      tflite_dir: a TFLite export from `python -m crct_tf.export --format tflite`.
      threads: TFLite interpreter threads.
      jit_compile: run a bundle's networks under XLA (worth it for long videos).

    Raises:
      RuntimeLoadError: weights or an export that cannot be used (one-line message).
      ValueError: a bad option.
    """
    runtime = runtime or "tf"
    if runtime not in runtimes.RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {runtimes.RUNTIMES}")
    if runtime == "tflite" and tflite_dir is None:
        raise ValueError("runtime tflite needs tflite_dir (python -m crct_tf.export --format "
                         "tflite)")
    loaded = runtimes.load_runtime(weights=weights, saved_model=saved_model,
                                   tflite_dir=tflite_dir if runtime == "tflite" else None,
                                   threads=threads, jit_compile=jit_compile)
    tracker = Tracker.from_constants(loaded.steps, loaded.constants, init_box=init_box,
                                     mode=mode, redetect_on=redetect_on)
    return FaceTracker(tracker, loaded.label)
