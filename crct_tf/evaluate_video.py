r"""Tracks every video of a 300-VW-layout folder and evaluates the result in one go.

    python -m crct_tf.evaluate_video --gt_dir /data/300VW --output_dir outputs/eval \
        [--modes crct,fll_mt,bt] [--init gt|mtcnn] [--categories 1,2,3] [--weights DIR]

For each video `NNN/vid.avi` with `NNN/<annot_dir>/` under `--gt_dir` (restricted to the test
categories given), and each mode, the tracker runs in this process (as `python -m crct_tf.track --save_pts --no_video`) into
`OUTPUT/preds/<MODE>/`, starting from the ground truth box of the first annotated frame (`--init
gt`, the paper's benchmark protocol) or from MTCNN (`--init mtcnn`; not possible for `bt`). Then
the landmark modes are scored as `python -m crct_tf.evaluate` does (NME, CED, AUC, FR per 300-VW
category) and `bt` by box IoU and OPE success (the paper's Table I), into `OUTPUT/landmarks/` and
`OUTPUT/boxes/`. Exit codes: 0, or 2 with one line on bad input.
"""

import os
import sys

import numpy as np
from absl import app, flags, logging

from crct_tf import absl_command
from crct_tf.geometry import landmarks as lm
from crct_tf.geometry.cropping import FLL_BOX_RULES
from crct_tf.evaluation import report, vw300_results
from crct_tf.evaluation.vw300_categories import VW300_TEST_CATEGORIES

FLAGS = flags.FLAGS
flags.DEFINE_string("gt_dir", None, "300-VW-layout root: NNN/vid.avi and NNN/<annot_dir>/.")
flags.DEFINE_string("output_dir", "outputs/evaluate_video", "Where predictions and results go.")
flags.DEFINE_list("modes", ["crct", "fll_mt"], "Tracker modes: crct, fll_mt, bt.")
flags.DEFINE_enum("init", "gt", ["gt", "mtcnn"], "First box: ground truth or MTCNN.")
flags.DEFINE_string("categories", None, "Test categories, e.g. 1,2,3 (default: every video).")
flags.DEFINE_string("annot_dir", "annot", "Ground-truth annotation folder (annot2: 3DA-2D).")
flags.DEFINE_string("weights", None, "Weights bundle (default: the bundled weights).")
flags.DEFINE_string("saved_model", None, "Or a SavedModel from python -m crct_tf.export.")
flags.DEFINE_enum("fll_box", None, list(FLL_BOX_RULES), "Where FLL's crop goes: bt (around BT's "
                  "box, Algorithm 1), bt_centre (BT's centre, the previous box's size), "
                  "bt_centre_corrected (BT's centre less its running offset from FLL's) or "
                  "bt_capped (BT's box no larger than the previous box); "
                  "default: the weights' own.")
flags.DEFINE_enum("fll_flip", None, ["on", "off"], "on: FLL also on the mirrored crop, the two "
                  "point sets averaged; default: the weights' own.")
flags.DEFINE_enum("fll_upright", None, ["on", "off"], "on: FLL's crop turned by the roll of BT's "
                  "points (needs fll_box bt); default: the weights' own.")
flags.DEFINE_enum("fll_turn", None, ["on", "off"], "on: FLL also on its crop turned by the roll "
                  "of BT's points, the point sets averaged; default: the weights' own.")
flags.DEFINE_integer("max_frames", None, "Track at most this many frames per video.")

VIDEO_FILE = "vid.avi"


class EvaluateVideoError(Exception):
    """Bad input; the message is one line."""


def videos_to_track(gt_dir, annot_dir, categories):
    """[(video_id, video_path, first ground-truth box)] of the videos to track."""
    truth = vw300_results.read_ground_truth(gt_dir, annot_dir, categories)
    videos = []
    for video_id, frames in truth.items():
        path = os.path.join(gt_dir, video_id, VIDEO_FILE)
        if not os.path.isfile(path):
            logging.warning("%s: no %s; video skipped", os.path.join(gt_dir, video_id),
                            VIDEO_FILE)
            continue
        first = frames[min(k for k in frames if isinstance(k, int))]
        videos.append((video_id, path, lm.box_from_landmarks(first)))
    if not videos:
        raise EvaluateVideoError(f"--gt_dir {gt_dir}: no NNN/{VIDEO_FILE} beside its annotations")
    return videos


def track(runtime, video_id, path, first_box, mode, pred_dir, init, max_frames, detect=None):
    """Tracks one video in `mode` into `pred_dir` (CSV, JSON and .pts); returns True on success.

    A video that cannot be read or written is reported as a warning and skipped: its frames
    count as failures when scored.
    """
    from crct_tf.tracking import Tracker, video_io, video_run
    tracker = Tracker.from_constants(runtime.steps, runtime.constants, detect=detect,
                                     init_box=np.asarray(first_box) if init == "gt" else None,
                                     mode=mode)
    outputs = video_io.TrackOutputs(pred_dir, video_id, video=False, pts=True, overwrite=True)
    try:
        source = video_io.open_source(path)
    except video_io.InputError as e:
        logging.warning("%s %s: not tracked: %s", mode, video_id, e)
        return False
    try:
        outputs.check()
        outputs.open(source.fps)
        summary = video_run.track_source(tracker, source, outputs, max_frames, save_pts=True,
                                         draw=False)
        summary.update(weights=runtime.label, mode=mode, input=os.path.abspath(path),
                       name=video_id)
        outputs.finish(summary)
        return True
    except (video_io.InputError, video_io.OutputError, OSError) as e:
        outputs.discard()
        logging.warning("%s %s: not tracked: %s", mode, video_id, e)
        return False
    finally:
        source.close()


def _score(pred_dirs, boxes, categories, output_dir):
    evaluation = report.evaluate(pred_dirs, FLAGS.gt_dir, categories, FLAGS.annot_dir,
                                 boxes=boxes, pred_annot_dir="annot")
    summary = report.summarize(evaluation)
    print(report.format_tables(evaluation, summary), flush=True)
    report.prepare_output_dir(output_dir)
    return report.write_outputs(evaluation, output_dir, summary)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        if not FLAGS.gt_dir:
            raise EvaluateVideoError("--gt_dir is required")
        unknown = [m for m in FLAGS.modes if m not in ("crct", "fll_mt", "bt")]
        if unknown or not FLAGS.modes:
            raise EvaluateVideoError(f"--modes: unknown {unknown}; choose crct, fll_mt, bt")
        if "bt" in FLAGS.modes and FLAGS.init != "gt":
            raise EvaluateVideoError("--modes bt tracks from the ground-truth box: use --init gt")
        categories = None
        if FLAGS.categories:
            try:
                categories = [int(c) for c in FLAGS.categories.split(",")]
            except ValueError:
                raise EvaluateVideoError(f"--categories {FLAGS.categories}: expected e.g. 1,2,3")
            if any(c not in VW300_TEST_CATEGORIES for c in categories):
                raise EvaluateVideoError(f"--categories {FLAGS.categories}: 1, 2 or 3")
        videos = videos_to_track(FLAGS.gt_dir, FLAGS.annot_dir, categories)
        from crct_tf.tracking import runtime as runtimes
        from crct_tf.tracking.tracker import default_detector
        try:
            runtime = runtimes.load_runtime(weights=FLAGS.weights, saved_model=FLAGS.saved_model,
                                            fll_box=FLAGS.fll_box,
                                            fll_flip=runtimes.flag_on_off(FLAGS.fll_flip),
                                            fll_upright=runtimes.flag_on_off(FLAGS.fll_upright),
                                            fll_turn=runtimes.flag_on_off(FLAGS.fll_turn))
        except runtimes.RuntimeLoadError as e:
            raise EvaluateVideoError(str(e)) from None
        detect = default_detector() if set(FLAGS.modes) - {"bt"} else None
        pred_dirs = {}
        for mode in FLAGS.modes:
            pred_dirs[mode] = os.path.join(FLAGS.output_dir, "preds", mode.upper())
            for video_id, path, first_box in videos:
                logging.info("%s: tracking %s", mode, video_id)
                track(runtime, video_id, path, first_box, mode, pred_dirs[mode], FLAGS.init,
                      FLAGS.max_frames, None if mode == "bt" else detect)
        landmark_modes = [pred_dirs[m] for m in FLAGS.modes if m != "bt"]
        if landmark_modes:
            _score(landmark_modes, False, categories, os.path.join(FLAGS.output_dir, "landmarks"))
        if "bt" in pred_dirs:
            _score([pred_dirs["bt"]], True, categories, os.path.join(FLAGS.output_dir, "boxes"))
    except (EvaluateVideoError, report.EvaluationError, lm.PtsError, OSError) as e:
        sys.stderr.write(f"crct_tf.evaluate_video: error: {' '.join(str(e).split())}\n")
        sys.exit(2)


if __name__ == "__main__":
    absl_command.run(main, "crct_tf.evaluate_video")
