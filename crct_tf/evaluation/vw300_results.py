"""Reads tracker outputs and 300-VW ground truth, matches them frame by frame, and scores them.

Both trees use the 300-VW layout `ROOT/NNN/<annot_dir>/000001.pts` (1-based, six digits). A
tracker writes `.pts` files only for tracked frames, so a ground-truth frame with
no prediction is a failure (NME = inf, IoU = 0). With boxes, predictions are `track_video` CSVs
`ROOT/NNN.csv` whose 0-based row `frame` f is ground-truth file f + 1.

Mismatches are logged (absl) and counted, never silent: predictions without ground truth are
ignored, ground truth without predictions is scored as failures.
"""

import csv
import dataclasses
import gzip
import zlib
from pathlib import Path

import numpy as np
from absl import logging

from crct_tf.geometry import landmarks as lm
from crct_tf.evaluation import metrics
from crct_tf.evaluation.vw300_categories import VW300_TEST_CATEGORIES, category_of


# The folder `python -m crct_tf.track --save_pts` writes its `.pts` into: NNN/annot/.
TRACKER_ANNOT_DIR = "annot"


class EvaluationError(Exception):
    """Bad input (missing folder, empty tree, malformed file); the message is one line."""


@dataclasses.dataclass
class Mismatches:
    """What did not match between one method's predictions and the ground truth."""
    extra_frames: int = 0                 # prediction frames with no ground truth (ignored)
    missing_frames: int = 0               # ground-truth frames with no prediction (failures)
    videos_without_predictions: list = dataclasses.field(default_factory=list)
    videos_without_ground_truth: list = dataclasses.field(default_factory=list)


def frame_key(stem):
    """The frame number of a file stem ("000001" -> 1); non-numeric stems stay strings."""
    return int(stem) if stem.isdigit() else stem


def _sorted_keys(keys):
    return sorted(keys, key=lambda k: (isinstance(k, str), k))


def _pts_files(folder):
    return {frame_key(p.stem): p for p in Path(folder).glob("*.pts")}


def _video_folders(root, annot_dir, flag):
    root = Path(root)
    if not root.is_dir():
        raise EvaluationError(f"{flag} {root}: no such folder")
    return {d.name: d / annot_dir for d in sorted(root.iterdir()) if (d / annot_dir).is_dir()}


# --------------------------------------------------------------------------------------------
# Ground truth and the choice of videos.
# --------------------------------------------------------------------------------------------

def read_ground_truth(gt_dir, annot_dir="annot", categories=None):
    """Reads every ground-truth video (or those of the given test categories).

    Args:
      gt_dir: root of a 300-VW-layout tree.
      annot_dir: the annotation subfolder of each video.
      categories: None for every video present, or an iterable of test categories (1, 2, 3).

    Returns:
      {video_id: {frame_number: [68, 2] float32 landmarks}}, in video order.

    Raises:
      EvaluationError: no such folder, or no video with `.pts` files (of those categories).
      PtsError: a malformed ground-truth file (the message names it).
    """
    folders = _video_folders(gt_dir, annot_dir, "--gt_dir")
    if categories is not None:
        wanted = {v for c in categories for v in VW300_TEST_CATEGORIES[c]}
        folders = {v: f for v, f in folders.items() if v in wanted}
    truth = {}
    for video, folder in folders.items():
        files = _pts_files(folder)
        if not files:
            logging.warning("ground truth: video %s has no .pts files in %s; skipped", video,
                            folder)
            continue
        truth[video] = {k: lm.read_pts(files[k]) for k in _sorted_keys(files)}
    if not truth:
        which = "" if categories is None else f" of categories {sorted(categories)}"
        raise EvaluationError(f"--gt_dir {gt_dir}: no video{which} with .pts files under "
                              f"NNN/{annot_dir}/")
    return truth


def category_groups(video_ids, categories=None):
    """Groups of videos to tabulate: "cat1".."cat3" (those present or requested) and "all".

    Returns:
      {group_name: [video ids]} with the category groups first and "all" last.
    """
    groups = {}
    for category in sorted(VW300_TEST_CATEGORIES if categories is None else categories):
        members = [v for v in video_ids if category_of(v) == category]
        if members:
            groups[f"cat{category}"] = members
        elif categories is not None:
            logging.warning("category %d: no ground-truth video present; not tabulated", category)
    groups["all"] = list(video_ids)
    return groups


# --------------------------------------------------------------------------------------------
# Per-video scores of one method.
# --------------------------------------------------------------------------------------------

def _match_videos(name, predicted, truth, mismatches):
    for video in predicted:
        if video not in truth:
            mismatches.videos_without_ground_truth.append(video)
            logging.warning("%s: video %s has predictions but no ground truth; ignored", name,
                            video)
    for video in truth:
        if video not in predicted:
            mismatches.videos_without_predictions.append(video)
            logging.warning("%s: video %s has ground truth but no predictions; its %d frames count"
                            " as failures", name, video, len(truth[video]))


def _count_frames(name, video, gt_frames, predicted_frames, mismatches, describe):
    """Logs and counts extra and missing frames; `describe(key)` names an extra frame."""
    extra = [k for k in predicted_frames if k not in gt_frames]
    missing = sum(1 for k in gt_frames if k not in predicted_frames)
    if extra:
        mismatches.extra_frames += len(extra)
        logging.warning("%s: video %s: %d predicted frames have no ground truth (e.g. %s); "
                        "ignored", name, video, len(extra), describe(extra[0]))
    if missing:
        mismatches.missing_frames += missing
        logging.warning("%s: video %s: %d of %d ground-truth frames have no prediction; counted"
                        " as failures", name, video, missing, len(gt_frames))


def landmark_errors(name, pred_dir, truth, annot_dir="annot"):
    """Per-frame NME (box diagonal) of one method's `.pts` predictions against the ground truth.

    Args:
      annot_dir: the subfolder of each prediction video folder holding the `.pts` files.

    Returns:
      ({video_id: float64 [frames] NME, inf where no prediction}, Mismatches).
    """
    folders = _video_folders(pred_dir, annot_dir, "--pred_dir")
    predicted = {v: _pts_files(f) for v, f in folders.items()}
    predicted = {v: files for v, files in predicted.items() if files}
    if not predicted:
        # The tracker writes NNN/annot/ whatever the ground truth it will be scored against.
        hint = (f" (predictions in NNN/{TRACKER_ANNOT_DIR}/: pass --pred_annot_dir "
                f"{TRACKER_ANNOT_DIR})" if annot_dir != TRACKER_ANNOT_DIR
                and _video_folders(pred_dir, TRACKER_ANNOT_DIR, "--pred_dir") else "")
        raise EvaluationError(f"--pred_dir {pred_dir}: no video folder NNN/{annot_dir}/ with "
                              f".pts files{hint}")
    mismatches = Mismatches()
    _match_videos(name, predicted, truth, mismatches)
    errors = {}
    for video, gt_frames in truth.items():
        files = predicted.get(video, {})
        if video in predicted:
            _count_frames(name, video, gt_frames, files, mismatches, lambda k: files[k])
        errors[video] = np.array(
            [metrics.nme_box_diagonal(lm.read_pts(files[k]), gt) if k in files else np.inf
             for k, gt in gt_frames.items()], dtype=np.float64)
    return errors, mismatches


def read_track_csv_boxes(path):
    """The boxes of a `track_video` CSV: {0-based frame: float64 [4]} (NaN where cells are empty).

    Raises:
      EvaluationError: naming the file (and line) when the header or a cell is malformed.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise EvaluationError(f"{path}: cannot read the CSV ({e.__class__.__name__}: "
                              f"{e})") from None
    header = [c.strip() for c in rows[0]] if rows else []
    columns = ("frame", "x0", "y0", "x1", "y1")
    missing = [c for c in columns if c not in header]
    if missing:
        raise EvaluationError(f"{path}: not a track_video CSV (header lacks {', '.join(missing)})")
    index = [header.index(c) for c in columns]
    boxes = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            cells = [row[i].strip() for i in index]
            frame = int(cells[0])
            box = np.array([float(c) if c else np.nan for c in cells[1:]], dtype=np.float64)
        except (IndexError, ValueError):
            raise EvaluationError(f"{path}, line {line}: malformed frame or box cells") from None
        if frame in boxes:
            raise EvaluationError(f"{path}, line {line}: frame {frame} appears twice")
        boxes[frame] = box
    return boxes


def box_ious(name, pred_dir, truth):
    """Per-frame IoU of one method's CSV boxes against the ground-truth landmark boxes.

    Returns:
      ({video_id: float64 [frames] IoU, NaN (scored as 0) where no box}, Mismatches).
    """
    if not Path(pred_dir).is_dir():
        raise EvaluationError(f"--pred_dir {pred_dir}: no such folder")
    paths = {p.stem: p for p in sorted(Path(pred_dir).glob("*.csv"))}
    if not paths:
        raise EvaluationError(f"--pred_dir {pred_dir}: no NNN.csv track files (--boxes)")
    mismatches = Mismatches()
    _match_videos(name, paths, truth, mismatches)
    ious = {}
    for video, gt_frames in truth.items():
        # CSV frame f (0-based) is ground-truth file f + 1.
        boxes = ({f + 1: b for f, b in read_track_csv_boxes(paths[video]).items()}
                 if video in paths else {})
        if video in paths:
            _count_frames(name, video, gt_frames, boxes, mismatches,
                          lambda k: f"frame {k - 1} of {paths[video]}")
        gt_boxes = np.array([lm.box_from_landmarks(gt) for gt in gt_frames.values()])
        pred_boxes = np.array([boxes.get(k, [np.nan] * 4) for k in gt_frames], dtype=np.float64)
        # NaN marks a frame without a box: an IoU of 0 that the summary also counts as missing.
        missing = np.isnan(pred_boxes).any(axis=1)
        ious[video] = np.where(missing, np.nan, metrics.box_iou(pred_boxes, gt_boxes))
    return ious, mismatches


def errors_txt_stem(path):
    """A method name for an errors file: its name without `.txt`, `.gz` or `.txt.gz`."""
    name = Path(path).name
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).stem


def read_errors_txt(path):
    """Per-frame errors from a text file, one number a line (nan/inf = failure); float64 [N].

    A name ending in `.gz` is read through gzip.
    """
    values = []
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for line_number, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        values.append(float(line))
                    except ValueError:
                        raise EvaluationError(f"{path}, line {line_number}: not a number: "
                                              f"{line.strip()[:40]!r}") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise EvaluationError(f"{path}: cannot read the errors file ({e.__class__.__name__}: "
                              f"{e})") from None
    if not values:
        raise EvaluationError(f"{path}: no errors in the file")
    if any(v < 0 for v in values):
        raise EvaluationError(f"{path}: negative error values")
    return np.array(values, dtype=np.float64)
