"""Frame sources and output writers of `python -m crct_tf.track`.

Sources stream frames one at a time, never a whole video in memory: a video file, a folder of
images (sorted by name, numbers in names compared as numbers), or a webcam (`0`, `1`, ...).
Every frame comes out as RGB uint8 [H, W, 3] whatever it was stored as (grayscale, RGBA,
16-bit): `as_rgb_uint8`. Problems with the input raise `InputError` with one line naming it.

Outputs, for the name S: `S.csv` rows written (and flushed) as they come (one per face per
frame, `CSV_COLUMNS`), `S.json`, `S.mp4`, and `S/annot/000001.pts ...` (one face) or
`S/face_<id>/annot/000001.pts ...` (several faces: `pts_folder`); each is written under a
`.partial` name (`S.partial.csv`, `S.partial.mp4`, `S.partial/`) and renamed when the run
completes. An interrupted run keeps the `.partial` files (rows so far); a failed one removes them.
"""

import csv
import dataclasses
import json
import os
import re
import shutil
import time

import cv2
import numpy as np
from crct_tf.geometry.landmarks import NUM_LANDMARKS, write_pts

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
FOLDER_FPS = 30.0       # time_s of image folders (300-VW frames are ~30 frames/s)
FALLBACK_FPS = 25.0     # when a video does not say
# The first 8 + 136 columns are those of the one-face tracker (same places); face_id and the head
# pose follow the landmarks.
CSV_COLUMNS = (["frame", "time_s", "status", "face_score", "x0", "y0", "x1", "y1"]
               + [f"l{axis}{i}" for i in range(NUM_LANDMARKS) for axis in "xy"]
               + ["face_id", "yaw", "pitch", "roll"])


class InputError(ValueError):
    """An input that cannot be tracked; the message is one line naming it."""


class OutputError(ValueError):
    """An output that cannot be written (exists without overwrite, unwritable folder)."""


def as_rgb_uint8(image, bgr=False):
    """Any image array as contiguous RGB uint8 [H, W, 3].

    Accepts [H, W], [H, W, 1], [H, W, 3] and [H, W, 4] (alpha dropped); uint8, uint16 (scaled
    by 1/257), other integers (0-255, or 16-bit when larger) and float (0-1 if its maximum is
    at most 1, else 0-255). `bgr`: the channels are
    in OpenCV's BGR(A) order.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise InputError(f"cannot use an image of shape {image.shape} as a frame")
    if image.dtype == np.uint8:
        pass
    elif np.issubdtype(image.dtype, np.integer):
        values = image.astype(np.float32)
        if image.dtype == np.uint16 or (values.size and values.max() > 255):
            values /= 257.0                                      # 16-bit range
        image = np.clip(np.round(values), 0, 255).astype(np.uint8)
    elif np.issubdtype(image.dtype, np.floating) or image.dtype == bool:
        values = image.astype(np.float32)
        scale = 255.0 if values.size and np.nanmax(values) <= 1.0 else 1.0
        image = np.clip(np.round(np.nan_to_num(values) * scale), 0, 255).astype(np.uint8)
    else:
        raise InputError(f"cannot use an image of type {image.dtype} as a frame")
    if image.ndim == 2:
        return np.ascontiguousarray(np.stack([image] * 3, axis=-1))
    image = image[:, :, :3]
    return np.ascontiguousarray(image[:, :, ::-1] if bgr else image)


@dataclasses.dataclass
class Frame:
    index: int       # 0-based
    time_s: float
    rgb: np.ndarray  # uint8 [H, W, 3]


def _natural_key(name):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_webcam(spec):
    return str(spec).isdigit() and not os.path.exists(str(spec))


class VideoSource:
    """Frames of a video file or a webcam, read one at a time with OpenCV."""

    def __init__(self, spec):
        self.webcam = is_webcam(spec)
        self.description = f"webcam {spec}" if self.webcam else str(spec)
        self._capture = cv2.VideoCapture(int(spec) if self.webcam else str(spec))
        if not self._capture.isOpened():
            raise InputError(f"{self.description}: cannot open it as a video"
                             + ("" if self.webcam else " (unreadable or not a video file)"))
        ok, self._first = self._capture.read()
        if not ok or self._first is None:
            self._capture.release()
            raise InputError(f"{self.description}: the video holds no readable frame")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else FALLBACK_FPS
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = None if self.webcam or count <= 0 else count

    def __iter__(self):
        start, index, image = time.monotonic(), 0, self._first
        self._first = None
        while image is not None:
            seconds = time.monotonic() - start if self.webcam else index / self.fps
            yield Frame(index, seconds, as_rgb_uint8(image, bgr=True))
            ok, image = self._capture.read()
            image, index = (image if ok else None), index + 1

    def close(self):
        self._capture.release()


class FolderSource:
    """Frames of a folder of images in natural name order (000002.png before 000010.png)."""

    def __init__(self, folder):
        self.description = str(folder)
        names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)]
        if not names:
            raise InputError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) in the folder")
        self._paths = [os.path.join(folder, n) for n in sorted(names, key=_natural_key)]
        self._read(self._paths[0])          # fail now, not after loading the networks
        self.fps = FOLDER_FPS
        self.frame_count = len(self._paths)

    @staticmethod
    def _read(path):
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise InputError(f"{path}: cannot read the image")
        return as_rgb_uint8(image, bgr=True)

    def __iter__(self):
        for index, path in enumerate(self._paths):
            yield Frame(index, index / self.fps, self._read(path))

    def close(self):
        pass


def open_source(spec):
    """A frame source for `--input`: a video file, an image folder, or a webcam number.

    Raises:
      InputError: missing path, unreadable or empty video, folder without images.
    """
    spec = str(spec)
    if is_webcam(spec):
        return VideoSource(spec)
    if os.path.isdir(spec):
        return FolderSource(spec)
    if not os.path.exists(spec):
        raise InputError(f"{spec}: no such file or folder")
    if os.path.getsize(spec) == 0:
        raise InputError(f"{spec}: the file is empty")
    return VideoSource(spec)


def output_name(spec):
    """The run's name S: the input's stem; a 300-VW `NNN/vid.avi` is named `NNN`."""
    spec = str(spec)
    if is_webcam(spec):
        return f"webcam{spec}"
    path = os.path.abspath(spec)
    if os.path.isdir(path):
        return os.path.basename(path.rstrip(os.sep))
    stem = os.path.splitext(os.path.basename(path))[0]
    parent = os.path.basename(os.path.dirname(path))
    return parent if stem == "vid" and parent else stem


def _cell(value, digits):
    return "" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def pts_folder(face_id=None):
    """The .pts folder of a face under S/: `annot` (one face), `face_<id>/annot` (several)."""
    return "annot" if face_id is None else os.path.join(f"face_{int(face_id)}", "annot")


def write_json_atomic(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


class TrackOutputs:
    """The output files of one run for name S in `output_dir`, written atomically.

    Use: `check()` (before the slow work), `open()`, then per frame `write_row` /
    `write_video_frame` / `write_pts`, and finally `finish(summary)`, `interrupt()` or
    `discard()`.
    """

    def __init__(self, output_dir, name, video=True, pts=False, overwrite=False):
        self.output_dir, self.name, self.overwrite = output_dir, name, overwrite
        base = os.path.join(output_dir, name)
        self.final = {"csv": base + ".csv", "json": base + ".json"}
        self.partial = {"csv": base + ".partial.csv"}
        if video:
            self.final["mp4"], self.partial["mp4"] = base + ".mp4", base + ".partial.mp4"
        if pts:
            self.final["pts"], self.partial["pts"] = base, base + ".partial"
        self._csv_file = self._csv = self._video = None
        self._video_size = None
        self.per_face_pts = False     # set by the frame loop when it tracks several faces

    def check(self):
        """Raises OutputError when an output exists and overwrite is off."""
        if self.overwrite:
            return
        for path in self.final.values():
            if os.path.exists(path):
                raise OutputError(f"{path} exists; pass --overwrite to replace it")

    def open(self, fps):
        try:
            os.makedirs(self.output_dir, exist_ok=True)
            if "pts" in self.partial:
                shutil.rmtree(self.partial["pts"], ignore_errors=True)   # an old partial run
                os.makedirs(os.path.join(self.partial["pts"], "annot"))
            self._csv_file = open(self.partial["csv"], "w", newline="", encoding="utf-8")
        except OSError as e:
            raise OutputError(f"cannot write into {self.output_dir}: {e.strerror or e}") from None
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(CSV_COLUMNS)
        self._fps = fps

    def write_row(self, frame, time_s, status, face_score=None, box=None, landmarks=None,
                  face_id=None, pose=None):
        """One CSV row; empty cells for a missing score, box, landmarks, id or pose (yaw, pitch,
        roll in degrees). Flushed at once."""
        box = [None] * 4 if box is None else [float(v) for v in box]
        points = ([None] * (2 * NUM_LANDMARKS) if landmarks is None
                  else [float(v) for v in np.asarray(landmarks).reshape(-1)])
        angles = [None] * 3 if pose is None else [float(v) for v in pose]
        self._csv.writerow([frame, f"{time_s:.3f}", status, _cell(face_score, 4)]
                           + [_cell(v, 3) for v in box + points]
                           + ["" if face_id is None else str(int(face_id))]
                           + [_cell(v, 2) for v in angles])
        self._csv_file.flush()

    def write_video_frame(self, bgr):
        if "mp4" not in self.partial:
            return
        if self._video is None:
            self._video_size = (bgr.shape[1], bgr.shape[0])
            self._video = cv2.VideoWriter(self.partial["mp4"], cv2.VideoWriter_fourcc(*"mp4v"),
                                          self._fps, self._video_size)
            if not self._video.isOpened():
                raise OutputError(f"{self.partial['mp4']}: OpenCV cannot write an mp4v video")
        if (bgr.shape[1], bgr.shape[0]) != self._video_size:      # image folders may vary
            bgr = cv2.resize(bgr, self._video_size, interpolation=cv2.INTER_AREA)
        self._video.write(bgr)

    def write_pts(self, frame, landmarks, face_id=None):
        """`S/annot/NNNNNN.pts` (1-based: frame + 1), in the 300-VW layout; with a `face_id`,
        `S/face_<id>/annot/NNNNNN.pts` (one 300-VW-like video folder per face)."""
        if "pts" in self.partial:
            folder = os.path.join(self.partial["pts"], pts_folder(face_id))
            if face_id is not None:
                os.makedirs(folder, exist_ok=True)
            write_pts(os.path.join(folder, f"{frame + 1:06d}.pts"), landmarks)

    def _close(self):
        if self._csv_file is not None:
            self._csv_file.close()
            self._csv_file = None
        if self._video is not None:
            self._video.release()
            self._video = None

    def finish(self, summary):
        """Closes everything, writes S.json and renames every partial output to its name."""
        self._close()
        if "mp4" in self.partial and not os.path.exists(self.partial["mp4"]):
            self.partial.pop("mp4")          # no frame was ever written
        if "pts" in self.partial:
            annot = os.path.join(self.partial["pts"], "annot")
            per_face = [n for n in os.listdir(self.partial["pts"]) if n.startswith("face_")]
            if (per_face or self.per_face_pts) and os.path.isdir(annot) and not os.listdir(annot):
                os.rmdir(annot)              # several faces: S/face_<id>/annot/ only
        for key, partial in self.partial.items():
            final = self.final[key]
            if os.path.isdir(final) and key == "pts":
                shutil.rmtree(final)
            os.replace(partial, final)
        write_json_atomic(self.final["json"], summary)
        return [self.final[k] for k in ("csv", "json", "mp4", "pts") if k in self.final]

    def interrupt(self):
        """Closes the files and keeps the partial ones (rows so far); returns their paths."""
        self._close()
        return [p for p in self.partial.values() if os.path.exists(p)]

    def discard(self):
        """Closes and removes the partial files (after an error)."""
        self._close()
        for path in self.partial.values():
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)
