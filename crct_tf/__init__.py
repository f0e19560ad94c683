"""crct_tf: the CRCT face tracker (Aspandi et al., FG 2019) in TensorFlow 2 / Keras 3.

    import crct_tf
    tracker = crct_tf.load_tracker()
    faces = tracker.track(rgb)       # [Face(face_id, status, face_score, box, landmarks)]
"""

__version__ = "0.1.0"


def load_tracker(*args, **kwargs):
    """A ready face tracker; see `crct_tf.tracking.face_tracker.load_tracker`."""
    from crct_tf.tracking.face_tracker import load_tracker as _load_tracker
    return _load_tracker(*args, **kwargs)
