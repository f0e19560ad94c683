"""Tracks one frame source into the tracking command's outputs: the frame loop shared by
`python -m crct_tf.track`, `evaluate_video` and corpus tracking, so that each writes exactly
the same rows for the same video.
"""

import collections
import itertools
import sys
import time

from crct_tf.tracking import video_io
from crct_tf.tracking.tracker import SEARCHING, TRACKED


def expected_frames(source, max_frames=None):
    """Frames a run will track, or None when unknown (a webcam without `max_frames`)."""
    total = source.frame_count
    if max_frames is not None:
        total = max_frames if total is None else min(total, max_frames)
    return total


def track_source(tracker, source, outputs, max_frames=None, save_pts=False, draw=True,
                 progress=None):
    """Tracks the frames of `source` and writes each row (video frame, .pts) to `outputs`.

    Args:
      tracker: a `Tracker`, reset for this source.
      source: a frame source of `video_io.open_source`.
      outputs: an opened `video_io.TrackOutputs`.
      max_frames: stop after this many frames.
      save_pts: write a .pts file per tracked frame.
      draw: write the annotated frame to the video output.
      progress: a label for a progress bar on stderr, or None for no bar.

    Writes one CSV row per face per frame (tracked or lost; in fll_mt also `searching` for a
    known face no detection matched), and one `searching` row with an empty face_id for a frame
    with no face: with max_faces 1, exactly one row per frame.

    Returns:
      The summary: {frames, tracked, lost, searching, redetections, ms_per_frame,
      detector_calls, max_faces, smooth, faces}. tracked and lost count rows (faces x frames),
      searching the frames with no face; `faces` is one entry per face id: {face_id,
      first_frame, last_frame, frames_tracked, frames_lost}. `ms_per_frame` is the tracker's own
      time, after a warm-up call that traces the networks (decoding and writing excluded).

    Raises:
      video_io.InputError: when the source has no frame, or a frame cannot be read.
    """
    from tqdm import tqdm

    from crct_tf.tracking.drawing import draw_faces
    frames = itertools.islice(source, max_frames)
    first = next(frames, None)
    if first is None:
        raise video_io.InputError(f"{source.description}: no frame to track")
    several = tracker.config.max_faces > 1
    outputs.per_face_pts = several
    tracker.warm_up(first.rgb)                          # tracing and compiling, not timed
    recent = collections.deque(maxlen=10)     # bounded memory: nothing kept per frame
    faces = {}                                # per face id: first/last frame, counts
    count, total_s = 0, 0.0
    with tqdm(total=expected_frames(source, max_frames), unit="frame", file=sys.stderr,
              desc=progress, dynamic_ncols=True, disable=progress is None) as bar:
        for frame in itertools.chain([first], frames):
            start = time.perf_counter()
            result = tracker.track(frame.rgb, frame.time_s)
            recent.append(time.perf_counter() - start)
            count, total_s = count + 1, total_s + recent[-1]
            for face in result.faces:
                tracked = face.status == TRACKED
                pose = face.pose.angles if tracked and face.pose is not None else None
                outputs.write_row(frame.index, frame.time_s, face.status, face.face_score,
                                  face.box if tracked else None,
                                  face.landmarks if tracked else None, face.face_id, pose)
                if save_pts and tracked:
                    outputs.write_pts(frame.index, face.landmarks,
                                      face.face_id if several else None)
                _count_face(faces, face, frame.index)
            if not result.faces:
                outputs.write_row(frame.index, frame.time_s, SEARCHING)
            if draw:
                outputs.write_video_frame(draw_faces(
                    frame.rgb[:, :, ::-1], result.faces,
                    fps=len(recent) / max(sum(recent), 1e-9)))
            bar.update(1)
    counts = tracker.counts
    return {"frames": count, "tracked": counts["tracked"], "lost": counts["lost"],
            "searching": counts["searching"], "redetections": counts["redetections"],
            "ms_per_frame": round(1000.0 * total_s / count, 2),
            "detector_calls": counts["detector_calls"],
            "max_faces": tracker.config.max_faces,
            "smooth": _smoothing_summary(tracker.config.smoothing),
            "faces": [dict(face_id=k, **v) for k, v in sorted(faces.items())]}


def _count_face(faces, face, frame_index):
    entry = faces.setdefault(face.face_id, {"first_frame": frame_index, "last_frame": frame_index,
                                            "frames_tracked": 0, "frames_lost": 0})
    entry["last_frame"] = frame_index
    if face.status == TRACKED:
        entry["frames_tracked"] += 1
    else:
        entry["frames_lost"] += 1


def _smoothing_summary(params):
    import dataclasses
    return None if params is None else dataclasses.asdict(params)
