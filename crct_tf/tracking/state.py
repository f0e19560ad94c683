"""The tracker's per-face state: Algorithm 1's variables, with a leading face dimension F.

Everything Algorithm 1 carries from one frame to the next, for F face slots (F = the
tracker's `max_faces`; a slot holds one track at a time):

    box        [F, 4]  b_{t-1}, the last accepted box (NaN: none yet)
    initial    [F, 4]  b_0, the box the track started from (NaN: not known yet)
    lstm       [F, ...] h, BT's recurrent state
    seq_t      [F]     SeqT, frames since the last state reset
    redetect   [F]     Algorithm 1's `redetect` flag
    has_face   [F]     the slot holds a track: a face has been found (or given)
    face_id    [F]     the track's id (-1: none yet, or a free slot)
    lost_run   [F]     consecutive frames the track has not been tracked (it ends after M)
    bt_offset  [F, 2]  running mean of BT's box centre minus FLL's, in b_{t-1}'s larger side
                       (for the `bt_centre_corrected` FLL crop; not in the paper)

plus the box helpers the tracker's decisions need (is a box usable, centre distance of eq. 8).
"""

import dataclasses
import math

import numpy as np

MIN_USABLE_SIDE = 1.0   # a box narrower or lower than one pixel gives no meaningful crop
# The weight of the newest frame in `bt_offset`'s running mean (about the last 10 frames; the
# demo clip's AUC against dlib moved by less than 0.0015 between 0.05 and 0.2: docs/robustness.md).
BT_OFFSET_RATE = 0.1


@dataclasses.dataclass
class FaceStates:
    """Per-face tracker state; arrays share the leading face dimension F."""
    box: np.ndarray
    initial: np.ndarray
    lstm: np.ndarray
    seq_t: np.ndarray
    redetect: np.ndarray
    has_face: np.ndarray
    face_id: np.ndarray = None
    lost_run: np.ndarray = None
    bt_offset: np.ndarray = None

    def __post_init__(self):
        if self.face_id is None:
            self.face_id = np.full([len(self.box)], -1, np.int64)
        if self.lost_run is None:
            self.lost_run = np.zeros([len(self.box)], np.int64)
        if self.bt_offset is None:
            self.bt_offset = np.zeros([len(self.box), 2], np.float32)

    @classmethod
    def create(cls, faces, state_shape, initial_boxes=None):
        """Algorithm 1, line 1: redetect <- FALSE, SeqT <- 0, b_t <- b_0 (h <- h_0).

        Without an initial box the faces start unknown and flagged for detection, so the first
        frames search with the detector. `initial_boxes` may give fewer boxes than slots: the
        first slots get them, the others start free.
        """
        box = np.full([faces, 4], np.nan, np.float32)
        if initial_boxes is not None:
            given = np.asarray(initial_boxes, np.float32).reshape(-1, 4)
            if len(given) > faces:
                raise ValueError(f"{len(given)} initial boxes for {faces} face slots")
            box[:len(given)] = given
        known = np.all(np.isfinite(box), axis=1)
        return cls(box=box, initial=box.copy(),
                   lstm=np.zeros([faces, *state_shape], np.float32),
                   seq_t=np.zeros([faces], np.int64),
                   redetect=~known,
                   has_face=known)

    @property
    def faces(self):
        return len(self.box)

    def live(self):
        """Indices of the slots that hold a track, in slot order."""
        return np.flatnonzero(self.has_face)

    def free_slots(self):
        """Indices of the slots that hold no track."""
        return np.flatnonzero(~self.has_face)

    def release(self, i):
        """Ends the track in slot i: the slot is free again (as at line 1, with no b_0)."""
        self.box[i] = np.nan
        self.initial[i] = np.nan
        self.reset_lstm(i)
        self.redetect[i] = True
        self.has_face[i] = False
        self.face_id[i] = -1
        self.lost_run[i] = 0
        self.bt_offset[i] = 0.0

    def fll_shifts(self, slots):
        """[len(slots), 2] pixels: `bt_offset` in the units of the slots' boxes b_{t-1}, the
        step's `fll_shift`."""
        return np.stack([self.bt_offset[i] * box_side(self.box[i]) for i in slots]
                        ).astype(np.float32).reshape(-1, 2)

    def reset_lstm(self, i):
        """Algorithm 1, line 12: h_t <- h_0 and SeqT <- 0."""
        self.lstm[i] = 0.0
        self.seq_t[i] = 0

    def reinitialise(self, i, box):
        """Starts face i again from `box` (a detection, or b_0): new box, state reset.

        The first box a face gets becomes its b_0 (the fall-back of Algorithm 1, lines 9-10).
        """
        self.box[i] = box
        self.bt_offset[i] = 0.0
        if not self.has_face[i]:
            self.initial[i] = box
            self.has_face[i] = True
            self.lost_run[i] = 0
        self.reset_lstm(i)

    def accept(self, i, box, lstm, bt_box=None):
        """Algorithm 1, lines 19-21: b_t <- FLL's box, SeqT + 1, redetect <- FALSE; with BT's
        box of the frame, `bt_offset` takes in how far BT's centre lay from FLL's."""
        if bt_box is not None:
            side = box_side(self.box[i])
            offset = (box_centre(bt_box) - box_centre(box)) / side
            self.bt_offset[i] += BT_OFFSET_RATE * (offset - self.bt_offset[i])
        self.box[i] = box
        self.lstm[i] = lstm
        self.seq_t[i] += 1
        self.redetect[i] = False
        self.lost_run[i] = 0


def is_usable_box(box, image_shape):
    """True for a finite box at least a pixel wide and high that overlaps the image.

    Args:
      box: [4] `[x0, y0, x1, y1]` (or None).
      image_shape: (H, W, ...) of the frame; pixel centres run from 0 to W-1 / H-1.
    """
    if box is None:
        return False
    box = np.asarray(box, np.float64)
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        return False
    height, width = image_shape[:2]
    if box[2] - box[0] < MIN_USABLE_SIDE or box[3] - box[1] < MIN_USABLE_SIDE:
        return False
    return box[2] > -0.5 and box[3] > -0.5 and box[0] < width - 0.5 and box[1] < height - 0.5


def centre_distance_ratios(previous_box, boxes):
    """Eq. 8's d(b_{t-1}, b) / ||b_{t-1}||: centre distances over the previous box's diagonal.

    Args:
      previous_box: [4] b_{t-1}.
      boxes: [N, 4] candidate boxes.

    Returns:
      float64 [N].
    """
    previous = np.asarray(previous_box, np.float64)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    diagonal = math.hypot(previous[2] - previous[0], previous[3] - previous[1])
    distance = np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2.0
                              - (previous[:2] + previous[2:]) / 2.0, axis=1)
    return distance / max(diagonal, 1e-6)


def box_centre(box):
    """[2] the centre of a [4] box."""
    box = np.asarray(box, np.float32)
    return (box[:2] + box[2:]) / 2.0


def box_side(box):
    """The larger side of a [4] box (at least MIN_USABLE_SIDE; NaN boxes give MIN_USABLE_SIDE)."""
    box = np.asarray(box, np.float32)
    side = float(np.max(box[2:] - box[:2]))
    return side if side >= MIN_USABLE_SIDE else MIN_USABLE_SIDE
