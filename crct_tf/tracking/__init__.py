"""The CRCT tracker (Algorithm 1) and what runs it on videos.

    state.py       per-face state (box, LSTM state, SeqT, redetect) and eq. 8's distance
    frame_step.py  the per-frame network work as one tf.function; SavedModel loading
    tracker.py     Algorithm 1's loop: modes, MTCNN calls, eq. 8, state resets
    video_io.py    frame sources (video, image folder, webcam) and output writers
    drawing.py     box, landmarks, status and FPS drawn on frames

Importing this package does not import TensorFlow or any model-building code; `frame_step`
imports TensorFlow and the shared geometry only.
"""

from crct_tf.tracking.tracker import (LOST, MODES, REDETECT_ON, SEARCHING, TRACKED, FrameResult,
                                      Tracker, TrackerConfig, select_detection)

__all__ = ["Tracker", "TrackerConfig", "FrameResult", "select_detection", "MODES",
           "REDETECT_ON", "TRACKED", "LOST", "SEARCHING"]
