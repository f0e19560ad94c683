r"""The multi-face benchmark: generated sequences of real teacher-labelled faces, and their scores.

    python -m crct_tf.evaluation.multi_face [--weights DIR] [--out DIR]
        [--parts sequence,smoothing,roll,speed] [--faces 1,2,4] [--video]
    python -m crct_tf.benchmark --faces 1,2,4            # ms/frame only

Sequences. Built deterministically (fixed sinusoids, a seeded noise generator) from photos of the
bootstrap `val` split, never trained on, whose 68 points come from the teacher (dlib, in
`crct_tf/datasets/bootstrap_labels.json`). Each face is cut from its photo as a soft ellipse
around its points and forehead, moved by a similarity (translation, rotation, scale) and pasted on
a real background: the stage photo of the val split (`BACKGROUND`) with its one face painted out
(OpenCV inpainting over the head), stretched to the frame. Every frame gets fresh sensor noise.
The ground truth of a face is its teacher points moved by the same similarity.

  `multi_face`  two residents in view throughout, moving gently; a visitor enters from the
                right, passes in front of the right-hand resident (their boxes overlap for about
                40 frames, the visitor hiding up to a third of the resident's face), and leaves.
  `still`       one face, still, fresh sensor noise in every frame (jitter of the output).
  `roll`        one face rotating in the image plane, +-35 degrees (head pose roll).
  `faces_N`     N faces in a row, moving gently (ms/frame with N faces).

Scores of `multi_face` (`score_sequence`): in every frame the tracked faces are matched to the
true faces in view (at least half their points inside the frame) by one global assignment on the
NME (box-diagonal normalised, as 300-VW), a pair counting only below `MATCH_NME` (faces with at
least a tenth of their points in the frame take part, so that a face half out of the picture
still owns its track). Per true face:
coverage (frames with a matched face of NME < 0.08, over its frames in view), the ids it was
given. In all: id switches (a true face matched to a different id than the last time it was
matched), false faces (tracked faces matched to no true face: rows and distinct ids), and the
frames the visitor took to be picked up (its first frame matched with NME < 0.08, counted from
its first frame fully in view; 0 if it was picked up before).
"""

import argparse
import dataclasses
import json
import math
import os
import sys
import time

import numpy as np

from crct_tf.evaluation import metrics

FRAME_SIZE = (384, 256)          # width, height
FPS = 30.0
FACE_WIDTH = 66.0                # landmark-box width of a face in the frame, pixels
NOISE_SIGMA = 2.0                # sensor noise, grey levels
STILL_NOISE_SIGMA = 3.0
MATCH_NME = 0.25                 # a tracked face further than this from every true face is false
COVERED_NME = metrics.NME_FAILURE_THRESHOLD        # 0.08
SEED = 17

# Photos of the val split, by person and a piece of their file name.
BACKGROUND = ("elton_john", "emmysperformance")
RESIDENTS = (("jerry_seinfeld", "biographycom"), ("madonna", "albumreview"))
VISITOR = ("mindy_kaling", "biographycom")
ROW = (("jerry_seinfeld", "biographycom"), ("madonna", "albumreview"),
       ("mindy_kaling", "biographycom"), ("ben_afflek", "absolumentgratuit"))


@dataclasses.dataclass
class Sequence:
    """A generated sequence.

    Attributes:
      name: `multi_face`, `still`, `roll` or `faces_N`.
      frames: uint8 [T, H, W, 3] RGB.
      truth: {face name: float32 [T, 68, 2]} the true points (also outside the frame).
      roles: {face name: `resident`, `visitor` or `face`}.
      times: [T] time stamps (s).
      angles: [T] in-plane rotation of the `roll` face (degrees), else None.
    """
    name: str
    frames: np.ndarray
    truth: dict
    roles: dict
    times: np.ndarray
    angles: np.ndarray = None

    def in_view(self, face):
        """[T] bool: at least half the face's points inside the frame."""
        return _inside(self.truth[face], self.frames.shape).mean(axis=1) >= 0.5

    def present(self, face):
        """[T] bool: at least a tenth of the face's points inside the frame (a tracked face
        there is this face, not a false one)."""
        return _inside(self.truth[face], self.frames.shape).mean(axis=1) >= 0.1

    def fully_in_view(self, face):
        """[T] bool: every point of the face inside the frame."""
        return _inside(self.truth[face], self.frames.shape).all(axis=1)


def _inside(points, shape):
    height, width = shape[1:3]
    return ((points[..., 0] >= 0) & (points[..., 0] <= width - 1)
            & (points[..., 1] >= 0) & (points[..., 1] <= height - 1))


# -- building ------------------------------------------------------------------------------------

def _find_photo(examples, key):
    person, piece = key
    found = [e for e in examples if e["person"] == person and piece in e["image/filename"]]
    if len(found) != 1:
        raise ValueError(f"no unique val photo of {person} named *{piece}*")
    return found[0]


def _similarity(centre_from, centre_to, degrees, scale):
    """2x3 matrix: rotate by `degrees` (clockwise in the picture) and scale about
    `centre_from`, which lands on `centre_to`."""
    a = math.radians(degrees)
    rotation = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    shift = np.asarray(centre_to, np.float64) - rotation @ np.asarray(centre_from, np.float64)
    return np.c_[rotation, shift]


def _apply(matrix, points):
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


def background(examples, size=FRAME_SIZE):
    """The stage photo of `BACKGROUND` with its face painted out, stretched to `size`."""
    import cv2
    example = _find_photo(examples, BACKGROUND)
    photo, points = example["image"], example["landmarks"].astype(np.float64)
    mask = np.zeros(photo.shape[:2], np.uint8)
    centre = points.mean(0)
    width, height = points.max(0) - points.min(0)
    cv2.ellipse(mask, (int(centre[0]), int(centre[1] - 0.25 * height)),
                (int(0.9 * width), int(1.05 * height)), 0, 0, 360, 255, -1)
    clean = cv2.inpaint(photo, mask, 9, cv2.INPAINT_TELEA)
    border = 3                                     # the photo has a thin coloured frame
    return cv2.resize(clean[border:-border, border:-border], size, interpolation=cv2.INTER_AREA)


class _Face:
    """One photo's face, ready to paste: the photo, its points and its soft head mask."""

    def __init__(self, example):
        import cv2
        self.photo = example["image"]
        self.points = example["landmarks"].astype(np.float64)
        self.centre = self.points.mean(0)
        width, height = self.points.max(0) - self.points.min(0)
        self.scale = FACE_WIDTH / width
        mask = np.zeros(self.photo.shape[:2], np.float32)
        cv2.ellipse(mask, (int(self.centre[0]), int(self.centre[1] - 0.12 * height)),
                    (int(0.62 * width), int(0.78 * height)), 0, 0, 360, 1.0, -1)
        self.mask = cv2.GaussianBlur(mask, (0, 0), 0.04 * width + 1)

    def paste(self, frame, centre, degrees=0.0, scale=1.0):
        """Pastes the face centred on `centre`; returns its true points in the frame."""
        import cv2
        matrix = _similarity(self.centre, centre, degrees, self.scale * scale)
        size = (frame.shape[1], frame.shape[0])
        warped = cv2.warpAffine(self.photo, matrix, size, flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(self.mask, matrix, size, flags=cv2.INTER_LINEAR)[..., None]
        frame[:] = (frame * (1 - alpha) + warped * alpha).astype(np.uint8)
        return _apply(matrix, self.points)


def _noisy(frame, rng, sigma):
    return np.clip(frame + rng.normal(0.0, sigma, frame.shape), 0, 255).astype(np.uint8)


def _wave(t, count, period, phase=0.0):
    return math.sin(2 * math.pi * t / count * period + phase)


def visitor_centre(t, count=150, size=FRAME_SIZE):
    """The visitor's path: in from the right (frames 15-55), in front of the right-hand resident
    (55-95), out to the right (95-135); outside the frame before and after."""
    width = size[0]
    outside, front = width + 70.0, 284.0
    stops = [(0, outside), (15, outside), (55, front), (95, front + 6.0), (135, outside),
             (count, outside)]
    for (t0, x0), (t1, x1) in zip(stops, stops[1:]):
        if t0 <= t <= t1:
            u = (t - t0) / max(t1 - t0, 1)
            u = 0.5 - 0.5 * math.cos(math.pi * u)          # eased
            x = x0 + (x1 - x0) * u
            return np.array([x, 142.0 + 4.0 * _wave(t, count, 1.7)])
    return np.array([outside, 142.0])


def build_multi_face(examples, frames=150, size=FRAME_SIZE, seed=SEED):
    """Two residents throughout, a visitor that enters, overlaps the right one, and leaves."""
    rng = np.random.default_rng(seed)
    base = background(examples, size).astype(np.float32)
    left, right = (_Face(_find_photo(examples, key)) for key in RESIDENTS)
    visitor = _Face(_find_photo(examples, VISITOR))
    out, truth = [], {"resident_left": [], "resident_right": [], "visitor": []}
    for t in range(frames):
        frame = base.copy()
        truth["resident_left"].append(left.paste(
            frame, (100 + 10 * _wave(t, frames, 1.3), 126 + 6 * _wave(t, frames, 0.9, 1.0)),
            6 * _wave(t, frames, 1.1), 1 + 0.05 * _wave(t, frames, 0.7)))
        truth["resident_right"].append(right.paste(
            frame, (245 + 8 * _wave(t, frames, 1.0, 2.0), 122 + 6 * _wave(t, frames, 1.4)),
            -5 * _wave(t, frames, 0.8), 1 + 0.04 * _wave(t, frames, 1.2, 0.5)))
        truth["visitor"].append(visitor.paste(frame, visitor_centre(t, frames, size),
                                              4 * _wave(t, frames, 2.0), 1.0))
        out.append(_noisy(frame, rng, NOISE_SIGMA))
    return Sequence("multi_face", np.stack(out),
                    {k: np.asarray(v, np.float32) for k, v in truth.items()},
                    {"resident_left": "resident", "resident_right": "resident",
                     "visitor": "visitor"}, np.arange(frames) / FPS)


def build_still(examples, frames=90, size=FRAME_SIZE, seed=SEED):
    """One still face with fresh sensor noise in every frame."""
    rng = np.random.default_rng(seed)
    frame = background(examples, size).astype(np.float32)
    points = _Face(_find_photo(examples, RESIDENTS[0])).paste(frame, (size[0] / 2, size[1] / 2),
                                                              0.0, 1.2)
    out = [_noisy(frame, rng, STILL_NOISE_SIGMA) for _ in range(frames)]
    return Sequence("still", np.stack(out), {"face": np.repeat(points[None], frames, 0)
                                             .astype(np.float32)}, {"face": "face"},
                    np.arange(frames) / FPS)


def build_roll(examples, frames=120, size=FRAME_SIZE, seed=SEED, amplitude=35.0):
    """One face rotating in the image plane by `amplitude` sin(...) degrees, drifting a little."""
    rng = np.random.default_rng(seed)
    base = background(examples, size).astype(np.float32)
    face = _Face(_find_photo(examples, RESIDENTS[1]))
    out, truth, angles = [], [], []
    for t in range(frames):
        frame = base.copy()
        angle = amplitude * _wave(t, frames, 1.0)
        truth.append(face.paste(frame, (size[0] / 2 + 12 * _wave(t, frames, 0.5),
                                        size[1] / 2 + 6 * _wave(t, frames, 0.7)), angle, 1.15))
        angles.append(angle)
        out.append(_noisy(frame, rng, NOISE_SIGMA))
    return Sequence("roll", np.stack(out), {"face": np.asarray(truth, np.float32)},
                    {"face": "face"}, np.arange(frames) / FPS, np.asarray(angles))


def build_row(examples, faces, frames=65, size=FRAME_SIZE, seed=SEED):
    """`faces` (1-4) faces in a row, moving gently."""
    rng = np.random.default_rng(seed)
    base = background(examples, size).astype(np.float32)
    people = [_Face(_find_photo(examples, key)) for key in ROW[:faces]]
    xs = np.linspace(0, size[0], faces + 2)[1:-1] if faces > 1 else [size[0] / 2]
    out, truth = [], {f"face_{i}": [] for i in range(faces)}
    for t in range(frames):
        frame = base.copy()
        for i, (person, x) in enumerate(zip(people, xs)):
            truth[f"face_{i}"].append(person.paste(
                frame, (x + 6 * _wave(t, frames, 1.0, i),
                        size[1] / 2 + 5 * _wave(t, frames, 1.3, i)),
                4 * _wave(t, frames, 0.9, i), 1.0))
        out.append(_noisy(frame, rng, NOISE_SIGMA))
    return Sequence(f"faces_{faces}", np.stack(out),
                    {k: np.asarray(v, np.float32) for k, v in truth.items()},
                    {k: "face" for k in truth}, np.arange(frames) / FPS)


# -- tracking -------------------------------------------------------------------------------------

def track_sequence(runtime, sequence, detect, **options):
    """Tracks a sequence with raw output; returns ([FrameResult], [seconds per frame])."""
    from crct_tf.tracking import Tracker
    tracker = Tracker.from_constants(runtime.steps, runtime.constants, detect=detect, **options)
    tracker.warm_up(sequence.frames[0])
    results, seconds = [], []
    for frame, time_s in zip(sequence.frames, sequence.times):
        start = time.perf_counter()
        results.append(tracker.track(frame, time_s))
        seconds.append(time.perf_counter() - start)
    return results, seconds


def tracks_of(results):
    """{face id: float32 [T, 68, 2]} of tracked frames (NaN elsewhere)."""
    ids = sorted({f.face_id for r in results for f in r.faces})
    out = {i: np.full([len(results), 68, 2], np.nan, np.float32) for i in ids}
    for t, result in enumerate(results):
        for face in result.faces:
            if face.status == "tracked" and face.landmarks is not None:
                out[face.face_id][t] = face.landmarks
    return out


def smooth_tracks(tracks, times, params):
    """Each face's track through the One-Euro filter, as `--smooth` does online."""
    from crct_tf.tracking.smoothing import smooth_track
    return {i: smooth_track(points, times, params) for i, points in tracks.items()}


# -- scoring --------------------------------------------------------------------------------------

def _nme(pred, truth):
    return float(metrics.nme_box_diagonal(pred, truth))


def match_frame(tracked, truths):
    """{face name: (track id, NME)} for one frame: one global assignment on the NME.

    Args:
      tracked: {track id: [68, 2]} the tracked faces of the frame.
      truths: {face name: [68, 2]} the true faces in view.
    """
    from scipy.optimize import linear_sum_assignment
    ids, names = list(tracked), list(truths)
    if not ids or not names:
        return {}
    cost = np.array([[_nme(tracked[i], truths[n]) for i in ids] for n in names])
    rows, cols = linear_sum_assignment(np.minimum(cost, 10.0))
    return {names[r]: (ids[c], float(cost[r, c])) for r, c in zip(rows, cols)
            if cost[r, c] < MATCH_NME}


def score_sequence(sequence, tracks):
    """Coverage, ids, id switches, false faces and the visitor's pickup (module docstring).

    Args:
      sequence: a `Sequence`.
      tracks: {track id: [T, 68, 2]} (NaN where not tracked), e.g. `tracks_of(results)`.
    """
    count = len(sequence.frames)
    in_view = {name: sequence.in_view(name) for name in sequence.truth}
    present = {name: sequence.present(name) for name in sequence.truth}
    matched = {name: [None] * count for name in sequence.truth}
    errors = {name: [] for name in sequence.truth}
    false_rows, false_ids = 0, set()
    for t in range(count):
        tracked = {i: p[t] for i, p in tracks.items() if np.all(np.isfinite(p[t]))}
        truths = {n: sequence.truth[n][t] for n in sequence.truth if present[n][t]}
        pairs = match_frame(tracked, truths)
        for name, (face_id, nme) in pairs.items():
            matched[name][t] = (face_id, nme)
            if in_view[name][t]:
                errors[name].append(nme)
        used = {face_id for face_id, _ in pairs.values()}
        for face_id in tracked:
            if face_id not in used:
                false_rows += 1
                false_ids.add(face_id)
    faces, switches = {}, 0
    for name in sequence.truth:
        covered = sum(1 for t in range(count) if in_view[name][t] and matched[name][t]
                      and matched[name][t][1] < COVERED_NME)
        ids, last, face_switches = [], None, 0
        for entry in matched[name]:
            if entry is None:
                continue
            if last is not None and entry[0] != last:
                face_switches += 1
            if entry[0] not in ids:
                ids.append(entry[0])
            last = entry[0]
        switches += face_switches
        frames_in_view = int(in_view[name].sum())
        faces[name] = {"role": sequence.roles[name], "frames_in_view": frames_in_view,
                       "coverage": covered / max(frames_in_view, 1),
                       "median_nme": float(np.median(errors[name])) if errors[name] else None,
                       "ids": ids, "id_switches": face_switches}
    out = {"faces": faces, "id_switches": switches, "false_face_rows": false_rows,
           "false_face_ids": sorted(int(i) for i in false_ids)}
    for name, role in sequence.roles.items():
        if role == "visitor":
            full = np.flatnonzero(sequence.fully_in_view(name))
            hits = [t for t in range(count) if matched[name][t] and
                    matched[name][t][1] < COVERED_NME]
            out["visitor_fully_in_view"] = int(full[0]) if len(full) else None
            out["visitor_first_tracked"] = hits[0] if hits else None
            out["visitor_pickup_frames"] = (None if not hits or not len(full)
                                            else max(0, hits[0] - int(full[0])))
    return out


def median_nme(sequence, tracks):
    """Median NME over every (true face, frame) matched (as `score_sequence` matches)."""
    scores = score_sequence(sequence, tracks)
    values = []
    in_view = {name: sequence.in_view(name) for name in sequence.truth}
    for t in range(len(sequence.frames)):
        tracked = {i: p[t] for i, p in tracks.items() if np.all(np.isfinite(p[t]))}
        truths = {n: sequence.truth[n][t] for n in sequence.truth if in_view[n][t]}
        values += [nme for _, nme in match_frame(tracked, truths).values()]
    return float(np.median(values)) if values else float("nan"), scores


def done_when(scores):
    """The issue's targets on `multi_face`: each resident >= 90 % covered, the visitor picked up
    within 10 frames of being fully in view, at most 1 id switch, no false faces."""
    residents = [f for f in scores["faces"].values() if f["role"] == "resident"]
    pickup = scores.get("visitor_pickup_frames")
    return (all(f["coverage"] >= 0.9 for f in residents) and pickup is not None
            and pickup <= 10 and scores["id_switches"] <= 1 and scores["false_face_rows"] == 0)


def jitter_figures(tracks, params):
    """Jitter (mean frame-to-frame landmark motion, px) of the still face, raw and smoothed."""
    from crct_tf.tracking.smoothing import jitter, smooth_track
    times = np.arange(len(next(iter(tracks.values())))) / FPS
    raw = max(tracks.values(), key=lambda p: np.isfinite(p[:, 0, 0]).sum())
    smoothed = smooth_track(raw, times, params)
    return {"raw_px": jitter(raw), "smoothed_px": jitter(smoothed),
            "ratio": jitter(smoothed) / jitter(raw)}


def roll_figures(sequence, results):
    """Roll of the tracked face against the true eye-line angle: correlation, MAE after the
    mean offset, and that offset (degrees); frames with a pose."""
    from crct_tf.tracking.pose import eye_line_angle
    truth, roll = [], []
    for t, result in enumerate(results):
        face = next((f for f in result.faces if f.pose is not None), None)
        if face is not None:
            truth.append(eye_line_angle(sequence.truth["face"][t]))
            roll.append(face.pose.roll)
    truth, roll = np.asarray(truth), np.asarray(roll)
    if len(truth) < 3:
        return {"frames": len(truth), "correlation": None, "mae_after_offset": None}
    error = roll - truth
    return {"frames": int(len(truth)), "correlation": float(np.corrcoef(truth, roll)[0, 1]),
            "mae_after_offset": float(np.abs(error - error.mean()).mean()),
            "offset": float(error.mean())}


def time_faces(runtime, detect, counts=(1, 2, 4), frames=60, warmup=5, examples=None):
    """ms/frame of the tracker (max_faces = N) on `faces_N`, N in `counts`; markdown rows and
    the figures. The warm-up frames (the first detection, tracing) are not timed."""
    examples = _examples(examples)
    rows, figures = [], {}
    for n in counts:
        sequence = build_row(examples, n, frames + warmup)
        results, seconds = track_sequence(runtime, sequence, detect, max_faces=n)
        timed = 1000.0 * np.asarray(seconds[warmup:])
        tracked = np.mean([sum(f.status == "tracked" for f in r.faces) for r in results[warmup:]])
        calls = sum(r.detector_calls for r in results[warmup:])
        figures[n] = {"median_ms": float(np.median(timed)),
                      "p90_ms": float(np.percentile(timed, 90)),
                      "mean_faces_tracked": float(tracked), "detector_calls": int(calls)}
        rows.append(f"| {n} | {np.median(timed):.1f} | {np.percentile(timed, 90):.1f} | "
                    f"{1000 / np.median(timed):.1f} | {tracked:.2f} | {calls} |")
    header = ["| faces | median ms/frame | p90 ms | frames/s | faces tracked per frame | "
              "detector calls |", "|---|---|---|---|---|---|"]
    return "\n".join(header + rows), figures


def _examples(examples):
    if examples is None:
        from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples
        examples = load_bootstrap_examples("val")
    return examples


def tune_smoothing(still_tracks, moving, grid):
    """The One-Euro parameters of `grid` against the measurements: jitter ratio on the still
    face and the median-NME cost on each moving sequence. Returns a list of dicts."""
    from crct_tf.tracking.smoothing import OneEuroParams
    rows = []
    for min_cutoff, beta in grid:
        params = OneEuroParams(min_cutoff, beta)
        row = {"min_cutoff": min_cutoff, "beta": beta,
               "jitter_ratio": jitter_figures(still_tracks, params)["ratio"]}
        for name, (sequence, tracks, raw_nme) in moving.items():
            smoothed = smooth_tracks(tracks, sequence.times, params)
            row[f"{name}_nme_cost"] = median_nme(sequence, smoothed)[0] - raw_nme
        rows.append(row)
    return rows


def save_video(sequence, results, path):
    """The sequence with the tracked faces drawn (as `python -m crct_tf.track` draws them)."""
    import cv2

    from crct_tf.tracking.drawing import draw_faces
    height, width = sequence.frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
    for frame, result in zip(sequence.frames, results):
        writer.write(draw_faces(frame[:, :, ::-1], result.faces))
    writer.release()


def save_strip(sequence, results, path, frames=(10, 40, 70, 100, 130)):
    """A PNG of a few frames side by side with the faces drawn (for the docs)."""
    import cv2

    from crct_tf.tracking.drawing import draw_faces
    tiles = [draw_faces(sequence.frames[t][:, :, ::-1], results[t].faces) for t in frames]
    for t, tile in zip(frames, tiles):
        cv2.putText(tile, f"frame {t}", (4, tile.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
    cv2.imwrite(path, np.concatenate(tiles, axis=1))


# -- the command ----------------------------------------------------------------------------------

PARTS = ("sequence", "smoothing", "roll", "speed")


def run(weights=None, out=None, parts=PARTS, faces=(1, 2, 4), video=False, detect=None,
        runtime=None, log=print):
    """Runs the parts of the benchmark; returns the results dict (also written to OUT)."""
    from crct_tf.tracking.smoothing import OneEuroParams
    if runtime is None:
        from crct_tf.tracking.runtime import load_runtime
        runtime = load_runtime(weights=weights)
    if detect is None:
        from crct_tf.tracking.tracker import default_detector
        detect = default_detector()
    examples = _examples(None)
    results = {"weights": runtime.label}
    moving = {}
    if "sequence" in parts or "smoothing" in parts:
        sequence = build_multi_face(examples)
        tracked, seconds = track_sequence(runtime, sequence, detect, max_faces=4)
        tracks = tracks_of(tracked)
        raw_nme, scores = median_nme(sequence, tracks)
        scores["median_nme"] = raw_nme
        scores["ms_per_frame"] = 1000.0 * float(np.mean(seconds[1:]))
        scores["done_when"] = done_when(scores)
        smoothed = smooth_tracks(tracks, sequence.times, OneEuroParams())
        scores["smoothed_median_nme"] = median_nme(sequence, smoothed)[0]
        results["multi_face"] = scores
        moving["multi_face"] = (sequence, tracks, raw_nme)
        log(format_scores(scores))
        if out and video:
            save_video(sequence, tracked, os.path.join(out, "multi_face.mp4"))
            save_strip(sequence, tracked, os.path.join(out, "multi_face_strip.png"))
    if "roll" in parts or "smoothing" in parts:
        sequence = build_roll(examples)
        tracked, _ = track_sequence(runtime, sequence, detect)
        results["roll"] = roll_figures(sequence, tracked)
        tracks = tracks_of(tracked)
        raw_nme = median_nme(sequence, tracks)[0]
        smoothed = smooth_tracks(tracks, sequence.times, OneEuroParams())
        results["roll"].update(median_nme=raw_nme,
                               smoothed_median_nme=median_nme(sequence, smoothed)[0])
        moving["roll"] = (sequence, tracks, raw_nme)
        log(f"roll: {json.dumps(results['roll'])}")
    if "smoothing" in parts:
        still = build_still(examples)
        tracked, _ = track_sequence(runtime, still, detect)
        still_tracks = tracks_of(tracked)
        results["still"] = jitter_figures(still_tracks, OneEuroParams())
        log(f"still: {json.dumps(results['still'])}")
        grid = [(c, b) for c in (0.3, 0.5, 1.0, 1.5, 2.0) for b in (0.5, 1.0, 2.0, 4.0, 8.0)]
        results["smoothing_grid"] = tune_smoothing(still_tracks, moving, grid)
        log(format_grid(results["smoothing_grid"]))
    if "speed" in parts:
        table, figures = time_faces(runtime, detect, faces, examples=examples)
        results["speed"] = figures
        log(table)
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "multi_face.json"), "w") as f:
            json.dump(results, f, indent=2, default=float)
    return results


def format_scores(scores):
    lines = ["| face | role | frames in view | coverage (NME < 0.08) | median NME | ids | "
             "id switches |", "|---|---|---|---|---|---|---|"]
    for name, face in scores["faces"].items():
        nme = "–" if face["median_nme"] is None else f"{face['median_nme']:.4f}"
        lines.append(f"| {name} | {face['role']} | {face['frames_in_view']} | "
                     f"{100 * face['coverage']:.1f} % | {nme} | "
                     f"{','.join(str(i) for i in face['ids'])} | {face['id_switches']} |")
    lines.append("")
    lines.append(f"id switches {scores['id_switches']}; false faces {scores['false_face_rows']} "
                 f"rows (ids {scores['false_face_ids']}); visitor fully in view at frame "
                 f"{scores.get('visitor_fully_in_view')}, first tracked at "
                 f"{scores.get('visitor_first_tracked')}: picked up after "
                 f"{scores.get('visitor_pickup_frames')} frames; done: {scores.get('done_when')}")
    return "\n".join(lines)


def format_grid(rows):
    keys = [k for k in rows[0] if k.endswith("_nme_cost")]
    lines = ["| min_cutoff | beta | jitter ratio | " + " | ".join(keys) + " |",
             "|---" * (3 + len(keys)) + "|"]
    for row in rows:
        lines.append(f"| {row['min_cutoff']} | {row['beta']} | {row['jitter_ratio']:.3f} | "
                     + " | ".join(f"{row[k]:+.4f}" for k in keys) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="multi_face", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="weights bundle (default: the bundled weights)")
    parser.add_argument("--out", help="folder for multi_face.json (and the video)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"of {', '.join(PARTS)}")
    parser.add_argument("--faces", default="1,2,4", help="face counts timed by `speed`")
    parser.add_argument("--video", action="store_true", help="write the drawn sequence to OUT")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    try:
        faces = [int(n) for n in args.faces.split(",")]
    except ValueError:
        faces = []
    if not parts or any(p not in PARTS for p in parts) or not faces or min(faces) < 1 \
            or max(faces) > len(ROW):
        sys.stderr.write(f"multi_face: error: --parts of {', '.join(PARTS)}; --faces between 1 "
                         f"and {len(ROW)}\n")
        return 2
    from crct_tf.tracking.runtime import RuntimeLoadError
    try:
        run(args.weights, args.out, parts, faces, args.video)
    except RuntimeLoadError as error:
        sys.stderr.write(f"multi_face: error: {error}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
