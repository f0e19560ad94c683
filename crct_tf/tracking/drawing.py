"""Draws a tracker result on a frame with OpenCV: box, 68 landmarks, status, score and FPS."""

import cv2
import numpy as np

# BGR colours per status.
COLOURS = {"tracked": (80, 220, 60), "lost": (40, 40, 230), "searching": (0, 200, 240)}
TEXT_COLOUR = (255, 255, 255)


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
