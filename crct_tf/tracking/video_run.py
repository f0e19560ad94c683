"""Tracks one frame source into the tracking command's outputs: the frame loop shared by
`python -m crct_tf.track`, `evaluate_video` and corpus tracking, so that each writes exactly
the same rows for the same video.
"""

import collections
import itertools
import sys
import time

from crct_tf.tracking import video_io
from crct_tf.tracking.tracker import TRACKED


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

    Returns:
      The summary counts: {frames, tracked, lost, searching, redetections, ms_per_frame,
      detector_calls}. `ms_per_frame` is the tracker's own time, after a warm-up call that
      traces the networks (decoding and writing excluded).

    Raises:
      video_io.InputError: when the source has no frame, or a frame cannot be read.
    """
    from tqdm import tqdm

    from crct_tf.tracking.drawing import draw_result
    frames = itertools.islice(source, max_frames)
    first = next(frames, None)
    if first is None:
        raise video_io.InputError(f"{source.description}: no frame to track")
    tracker.warm_up(first.rgb)                          # tracing and compiling, not timed
    recent = collections.deque(maxlen=10)     # bounded memory: nothing kept per frame
    count, total_s = 0, 0.0
    with tqdm(total=expected_frames(source, max_frames), unit="frame", file=sys.stderr,
              desc=progress, dynamic_ncols=True, disable=progress is None) as bar:
        for frame in itertools.chain([first], frames):
            start = time.perf_counter()
            result = tracker.track(frame.rgb)
            recent.append(time.perf_counter() - start)
            count, total_s = count + 1, total_s + recent[-1]
            landmarks = result.landmarks if result.status == TRACKED else None
            outputs.write_row(frame.index, frame.time_s, result.status, result.face_score,
                              result.box, landmarks)
            if save_pts and landmarks is not None:
                outputs.write_pts(frame.index, landmarks)
            if draw:
                outputs.write_video_frame(draw_result(
                    frame.rgb[:, :, ::-1], result.status, result.box, landmarks,
                    result.face_score, fps=len(recent) / max(sum(recent), 1e-9)))
            bar.update(1)
    counts = tracker.counts
    return {"frames": count, "tracked": counts["tracked"], "lost": counts["lost"],
            "searching": counts["searching"], "redetections": counts["redetections"],
            "ms_per_frame": round(1000.0 * total_s / count, 2),
            "detector_calls": counts["detector_calls"]}
