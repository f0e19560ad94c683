"""Draws tracker results on a frame with OpenCV: per face its box, 68 landmarks, id, status,
score and head-pose axes, and the FPS.

`draw_faces` draws every face of a frame in its own colour (by face id, `FACE_COLOURS`), with
`id N` and its score above the box; a lost face (no box) is listed in the top-left corner. The
pose axes start at the nose tip: x (the head's eye line) red, y (down the face) green, and the
direction the face looks blue. `draw_result` is the one-face drawing (status colours).
"""

import cv2
import numpy as np

# BGR colours per status.
COLOURS = {"tracked": (80, 220, 60), "lost": (40, 40, 230), "searching": (0, 200, 240)}
TEXT_COLOUR = (255, 255, 255)
# BGR colours per face id (id modulo the list), easy to tell apart on video.
FACE_COLOURS = [(80, 220, 60), (0, 160, 255), (230, 90, 230), (255, 200, 0), (0, 230, 230),
                (255, 100, 60), (140, 140, 255), (60, 255, 180)]
AXIS_COLOURS = [(40, 40, 230), (60, 200, 60), (230, 120, 40)]       # x red, y green, z blue


def face_colour(face_id):
    return FACE_COLOURS[int(face_id) % len(FACE_COLOURS)]


def _scale(image):
    """Line width and font scale growing with the frame (readable from 176x144 to 1080p)."""
    side = min(image.shape[:2])
    return max(1, int(round(side / 240))), max(0.35, side / 600.0)


def draw_result(bgr, status, box=None, landmarks=None, face_score=None, fps=None):
    """A copy of the BGR frame with the result drawn on it.

    Args:
      bgr: uint8 [H, W, 3] frame in OpenCV's BGR order.
      status: `tracked`, `lost` or `searching`.
      box: [4] box in pixels, or None.
      landmarks: [68, 2] points in pixels, or None.
      face_score: the FV probability or MTCNN confidence shown next to the status, or None.
      fps: frames per second shown in the corner, or None.
    """
    out = np.ascontiguousarray(bgr).copy()
    colour = COLOURS.get(status, TEXT_COLOUR)
    thickness, font_scale = _scale(out)
    if box is not None and np.all(np.isfinite(box)):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
    if landmarks is not None:
        radius = max(1, thickness)
        for x, y in np.asarray(landmarks, np.float64):
            if np.isfinite(x) and np.isfinite(y):
                cv2.circle(out, (int(round(x)), int(round(y))), radius, colour, -1, cv2.LINE_AA)
    label = status if face_score is None or not np.isfinite(face_score) \
        else f"{status} {face_score:.2f}"
    _text(out, label, 0, colour, font_scale, thickness)
    if fps is not None and np.isfinite(fps):
        _text(out, f"{fps:.1f} fps", 1, TEXT_COLOUR, font_scale, thickness)
    return out


def _text(image, text, line, colour, font_scale, thickness):
    """Text on a dark band in the top-left corner, `line` lines down."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (w, h), base = cv2.getTextSize(text, font, font_scale, thickness)
    top = 2 + line * (h + base + 4)
    cv2.rectangle(image, (0, top), (w + 6, top + h + base + 2), (0, 0, 0), -1)
    cv2.putText(image, text, (3, top + h + 1), font, font_scale, colour, thickness, cv2.LINE_AA)


def draw_faces(bgr, faces, fps=None):
    """A copy of the BGR frame with every face drawn (see the module docstring).

    Args:
      bgr: uint8 [H, W, 3] frame in OpenCV's BGR order.
      faces: `tracker.FaceResult`s of the frame (empty: the tracker is searching).
      fps: frames per second shown in the corner, or None.
    """
    out = np.ascontiguousarray(bgr).copy()
    thickness, font_scale = _scale(out)
    line = 0
    if not faces:
        _text(out, "searching", line, COLOURS["searching"], font_scale, thickness)
        line += 1
    for face in faces:
        colour = face_colour(face.face_id)
        score = "" if face.face_score is None or not np.isfinite(face.face_score) \
            else f" {face.face_score:.2f}"
        if face.box is None or face.landmarks is None:
            _text(out, f"id {face.face_id} {face.status}{score}", line, colour, font_scale,
                  thickness)
            line += 1
            continue
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
        radius = max(1, thickness)
        for x, y in np.asarray(face.landmarks, np.float64):
            if np.isfinite(x) and np.isfinite(y):
                cv2.circle(out, (int(round(x)), int(round(y))), radius, colour, -1, cv2.LINE_AA)
        if face.pose is not None:
            _axes(out, face.pose, thickness)
        _label(out, f"id {face.face_id}{score}", (x0, y0), colour, font_scale, thickness)
    if fps is not None and np.isfinite(fps):
        _text(out, f"{fps:.1f} fps", line, TEXT_COLOUR, font_scale, thickness)
    return out


def _axes(image, pose, thickness):
    from crct_tf.tracking.pose import axis_points
    points = axis_points(pose)
    if not np.all(np.isfinite(points)) or np.abs(points).max() > 1e5:
        return
    origin = tuple(int(round(v)) for v in points[0])
    for end, colour in zip(points[1:], AXIS_COLOURS):
        cv2.line(image, origin, tuple(int(round(v)) for v in end), colour, thickness + 1,
                 cv2.LINE_AA)


def _label(image, text, corner, colour, font_scale, thickness):
    """Text on a dark band just above the box's top-left corner (inside the frame)."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (w, h), base = cv2.getTextSize(text, font, font_scale, thickness)
    x = min(max(corner[0], 0), max(image.shape[1] - w - 4, 0))
    y = max(corner[1] - h - base - 4, 0)
    cv2.rectangle(image, (x, y), (x + w + 4, y + h + base + 2), (0, 0, 0), -1)
    cv2.putText(image, text, (x + 2, y + h + 1), font, font_scale, colour, thickness, cv2.LINE_AA)
