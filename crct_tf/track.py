r"""Tracks faces in a video with CRCT and writes their landmarks.

    python -m crct_tf.track                          # the demo clip -> outputs/demo/
    python -m crct_tf.track --input talk.mp4 --output_dir out --save_pts
    python -m crct_tf.track --input frames/ --mode fll_mt --no_video
    python -m crct_tf.track --input 0 --max_frames 300          # webcam 0
    python -m crct_tf.track --input 300VW/114/vid.avi --mode bt --init_box 120,80,260,240
    python -m crct_tf.track --saved_model exported/crct --input talk.mp4
    python -m crct_tf.track --runtime tf --input talk.mp4   # the TF step instead of LiteRT
    python -m crct_tf.track --tflite_dir exported/tflite --threads 2
    python -m crct_tf.track --input meeting.mp4 --max_faces 4 --smooth     # several faces

Writes, for the name S (the input's stem; `NNN` for a 300-VW `NNN/vid.avi`; `--name`):
S.csv (one row per face per frame, one `searching` row for a frame with no face:
frame,time_s,status,face_score,x0,y0,x1,y1,lx0,ly0,...,lx67,ly67,face_id,yaw,pitch,roll),
S.json (counts, ms/frame, weights, one entry per face id), S.mp4 (drawn frames, unless
--no_video) and with --save_pts S/annot/000001.pts ... for tracked frames (with --max_faces
above 1: S/face_<id>/annot/...; docs/multi_face.md). Outputs are written under `.partial`
names and renamed at the end; existing ones are replaced only with --overwrite (the default
demo run replaces its own). Bad input: one line on stderr, exit code 2. Interrupted (Ctrl-C,
SIGTERM): the rows so far stay in S.partial.csv, exit code 130 / 143.

The networks run on LiteRT by default (`--runtime litert`: int8 models with XNNPACK, crops cut
in OpenCV, the fast MTCNN; docs/speed.md): the first run of a weights bundle converts them once
(one progress line, a few minutes) into the cache folder, later runs load them in well under a
second. `--runtime tf` runs the TF step on the weights (XLA from JIT_MIN_FRAMES frames on).
With --saved_model the networks come from `python -m crct_tf.export`'s SavedModel (on tf), and
no model-building or training code of crct_tf is imported; the same holds for --tflite_dir (TFLite
models from `python -m crct_tf.export --format tflite`) and for cached LiteRT models.
"""

import argparse
import os
import signal
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")   # FFmpeg's own messages on bad videos
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

from absl import logging  # noqa: E402

from crct_tf.geometry.cropping import FLL_BOX_RULES  # noqa: E402
from crct_tf.tracking import MODES, REDETECT_ON, Tracker  # noqa: E402
from crct_tf.tracking import runtime as runtimes  # noqa: E402
from crct_tf.tracking import video_io, video_run  # noqa: E402

DEMO_OUTPUT_DIR = os.path.join("outputs", "demo")
DEFAULT_OUTPUT_DIR = os.path.join("outputs", "tracks")
# XLA-compiling the networks (--weights) costs 10-20 s once and saves 10-20 ms per frame on a
# 2-core CPU (docs/speed.md): worth it from about a thousand frames, or with no known end.
JIT_MIN_FRAMES = 1000
PROG = "track"


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


class Terminated(BaseException):
    """Raised by the SIGTERM handler, so the run stops like on Ctrl-C."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def add_tracking_arguments(p):
    """The flags of how to track (networks, mode, outputs per video), shared with
    `python -m crct_tf.track_corpus`; --input, --output_dir and --name are the command's own."""
    p.add_argument("--mode", default="crct", help=f"one of {', '.join(MODES)}")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--weights", help="weights bundle folder (default: the bundled weights)")
    weights.add_argument("--saved_model", help="SavedModel folder from python -m crct_tf.export")
    p.add_argument("--runtime", choices=runtimes.RUNTIMES,
                   help="litert (default: LiteRT models of the weights, converted once and "
                        "cached; or --tflite_dir) or tf (the TF step; implied by --saved_model); "
                        "tflite is litert's former name")
    p.add_argument("--tflite_dir", help="TFLite export folder from python -m crct_tf.export "
                   "--format tflite (instead of the cached conversion of --weights)")
    p.add_argument("--threads", type=int, help="LiteRT interpreter threads (default: all cores)")
    p.add_argument("--max_frames", type=int, help="stop after this many frames")
    p.add_argument("--no_video", action="store_true", help="do not write S.mp4")
    p.add_argument("--save_pts", action="store_true", help="write S/annot/NNNNNN.pts (several faces: S/face_<id>/annot/)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--init_box", help="first box x0,y0,x1,y1 (required by --mode bt)")
    p.add_argument("--fll_box", choices=FLL_BOX_RULES,
                   help="where FLL's crop goes: bt (around BT's box, Algorithm 1), bt_centre "
                        "(BT's centre, the previous box's size), bt_centre_corrected (BT's "
                        "centre less its running offset from FLL's) or bt_capped (BT's box no "
                        "larger than the previous box); default: the weights' own "
                        "(docs/robustness.md)")
    p.add_argument("--fll_flip", choices=("on", "off"),
                   help="on: FLL also on the mirrored crop, the two point sets averaged (one more "
                        "FLL pass per frame, steadier points); default: the weights' own "
                        "(docs/robustness.md)")
    p.add_argument("--fll_upright", choices=("on", "off"),
                   help="on: FLL's crop turned by the roll of BT's points, the face upright in "
                        "it (needs --fll_box bt); default: the weights' own (docs/robustness.md)")
    p.add_argument("--fll_turn", choices=("on", "off"),
                   help="on: FLL also on its crop turned by the roll of BT's points, the "
                        "point sets averaged (one more FLL pass per frame); default: the "
                        "weights' own (docs/robustness.md)")
    p.add_argument("--redetect_on", default="next",
                   help="after FV rejects frame t, run MTCNN on t+1 (next, the paper) or on t "
                        "itself and run the step again (same, the authors' code)")
    _add_multi_face_arguments(p)


def _add_multi_face_arguments(p):
    """Several faces, smoothing (docs/multi_face.md)."""
    from crct_tf.tracking import smoothing, tracker
    p.add_argument("--max_faces", type=int, default=1,
                   help="follow up to N faces (default 1: the paper's tracker)")
    p.add_argument("--detect_every", type=int, default=tracker.DEFAULT_DETECT_EVERY,
                   help="k: run the detector every k frames while fewer than --max_faces faces "
                        f"are tracked (default {tracker.DEFAULT_DETECT_EVERY})")
    p.add_argument("--max_lost", type=int,
                   help=f"M: a face ends after M frames without landmarks (default "
                        f"{tracker.DEFAULT_MAX_LOST} with --max_faces above 1, never with 1)")
    p.add_argument("--iou_threshold", type=float, default=tracker.DEFAULT_IOU_THRESHOLD,
                   help="a detection overlapping a followed face's box by this IoU starts no "
                        f"new face (default {tracker.DEFAULT_IOU_THRESHOLD})")
    p.add_argument("--recheck_fll", choices=("on", "off"),
                   help="on: when the validator rejects BT's points, it also checks FLL's, and "
                        "the face stays tracked if it accepts them; default: the weights' own "
                        "(none: on with --max_faces above 1, off with 1, Algorithm 1)")
    p.add_argument("--smooth", action="store_true",
                   help="One-Euro filter on each face's landmarks and box (default: raw)")
    defaults = smoothing.OneEuroParams()
    p.add_argument("--smooth_min_cutoff", type=float, default=defaults.min_cutoff,
                   help=f"--smooth: cut-off (Hz) of a still face (default {defaults.min_cutoff})")
    p.add_argument("--smooth_beta", type=float, default=defaults.beta,
                   help=f"--smooth: speed coefficient (default {defaults.beta})")
    p.add_argument("--smooth_d_cutoff", type=float, default=defaults.d_cutoff,
                   help=f"--smooth: cut-off (Hz) of the speed (default {defaults.d_cutoff})")


def _check_multi_face_args(args):
    from crct_tf.tracking import smoothing
    if args.max_faces < 1:
        raise UsageError(f"--max_faces must be at least 1, got {args.max_faces}")
    if args.detect_every < 1:
        raise UsageError(f"--detect_every must be at least 1, got {args.detect_every}")
    if args.max_lost is not None and args.max_lost < 1:
        raise UsageError(f"--max_lost must be at least 1, got {args.max_lost}")
    if not 0 < args.iou_threshold <= 1:
        raise UsageError(f"--iou_threshold must be in (0, 1], got {args.iou_threshold}")
    if args.mode == "bt" and args.max_faces > 1:
        raise UsageError("--mode bt follows the one face of --init_box: use --max_faces 1")
    args.smoothing = None
    if args.smooth:
        try:
            args.smoothing = smoothing.OneEuroParams(
                args.smooth_min_cutoff, args.smooth_beta, args.smooth_d_cutoff)
        except ValueError as e:
            raise UsageError(f"--smooth: {e}") from None


def tracker_options(args):
    """The TrackerConfig options of the multi-face and smoothing flags."""
    return {"max_faces": args.max_faces, "detect_every": args.detect_every,
            "max_lost": args.max_lost, "iou_threshold": args.iou_threshold,
            "recheck_fll": runtimes.flag_on_off(getattr(args, "recheck_fll", None)),
            "smoothing": getattr(args, "smoothing", None)}


def check_tracking_args(args):
    """Checks the flags of `add_tracking_arguments` (UsageError) and parses --init_box."""
    if args.mode not in MODES:
        raise UsageError(f"unknown --mode {args.mode!r}; expected one of {', '.join(MODES)}")
    if args.redetect_on not in REDETECT_ON:
        raise UsageError(f"unknown --redetect_on {args.redetect_on!r}; expected next or same")
    if args.max_frames is not None and args.max_frames < 1:
        raise UsageError(f"--max_frames must be at least 1, got {args.max_frames}")
    if args.tflite_dir and (args.weights or args.saved_model):
        raise UsageError("--tflite_dir holds its own networks: give it without --weights or "
                         "--saved_model")
    try:
        args.runtime = runtimes.resolve_runtime(args.runtime, args.saved_model, args.tflite_dir,
                                                default=runtimes.DEFAULT_RUNTIME)
    except runtimes.RuntimeLoadError as e:
        raise UsageError(f"--runtime: {e}") from None
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    args.init_box = _parse_box(args.init_box)
    if args.mode == "bt" and args.init_box is None:
        raise UsageError("--mode bt tracks from a given first box: pass --init_box x0,y0,x1,y1")
    _check_multi_face_args(args)
    return args


def parse_args(argv):
    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--input", help="video file, image folder, or webcam number (default: the "
                   "demo clip)")
    p.add_argument("--output_dir", help=f"output folder (default {DEMO_OUTPUT_DIR} for the demo, "
                   f"else {DEFAULT_OUTPUT_DIR})")
    p.add_argument("--name", help="output name S (default: from the input)")
    add_tracking_arguments(p)
    args = p.parse_args(argv)
    if args.name is not None and (not args.name.strip() or os.sep in args.name
                                  or args.name in (".", "..")):
        raise UsageError(f"--name {args.name!r} must be a plain file name")
    return check_tracking_args(args)


def _parse_box(text):
    if text is None:
        return None
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or not box[2] > box[0] or not box[3] > box[1]:
        raise UsageError(f"--init_box {text!r}: expected x0,y0,x1,y1 with x1 > x0 and y1 > y0")
    return box


# -- the networks (module-level seams: tests replace them with stand-ins) ------------------------

def _source(args):
    """The runtime's source arguments from the flags."""
    return {"weights": args.weights, "saved_model": args.saved_model,
            "tflite_dir": args.tflite_dir if getattr(args, "runtime", "tf") == "litert" else None}


def check_weights(args):
    """Cheap check that the weights exist, before anything slow is loaded."""
    try:
        runtimes.check_source(**_source(args))
    except runtimes.RuntimeLoadError as e:
        raise UsageError(str(e)) from None


def load_networks(args, frames=None):
    """(steps, constants, label): the per-frame functions and the tracker's constants.

    `frames`: how many frames will be tracked (None: unknown), to decide on XLA compilation.
    A SavedModel keeps the choice made at export.
    """
    runtime_name = getattr(args, "runtime", "tf")
    if runtime_name == "tf":                 # LiteRT needs TensorFlow only to convert, once
        _import_tensorflow_quietly()
    jit = tracker_variant(frames)
    try:
        runtime = runtimes.load_runtime(**_source(args), threads=args.threads, jit_compile=jit,
                                        runtime=runtime_name,
                                        fll_box=getattr(args, "fll_box", None),
                                        fll_flip=runtimes.flag_on_off(
                                            getattr(args, "fll_flip", None)),
                                        fll_upright=runtimes.flag_on_off(
                                            getattr(args, "fll_upright", None)),
                                        fll_turn=runtimes.flag_on_off(
                                            getattr(args, "fll_turn", None)))
    except runtimes.RuntimeLoadError as e:
        raise UsageError(str(e)) from None
    return runtime.steps, runtime.constants, runtime.label


def tracker_variant(frames):
    """Which networks `load_networks` loads for a run of `frames` frames: XLA-compiled or not.
    A process tracking several videos (corpus tracking) keeps one tracker per variant, so that
    each video gets exactly the networks the tracking command would use for it."""
    return frames is None or frames > JIT_MIN_FRAMES


def build_tracker(args, frames=None):
    """(tracker, weights label) from the tracking flags: the networks and, unless --mode bt,
    MTCNN. `frames` as for `load_networks`. Raises UsageError, ValueError."""
    steps, constants, weights_label = load_networks(args, frames)
    tracker = Tracker.from_constants(
        steps, constants, detect=None if args.mode == "bt" else make_detector(),
        init_box=args.init_box, mode=args.mode, redetect_on=args.redetect_on,
        **tracker_options(args))
    return tracker, weights_label


def make_detector():
    """MTCNN as `detect(rgb) -> (boxes, scores)`."""
    from crct_tf.tracking.tracker import default_detector
    return default_detector()


def _import_tensorflow_quietly():
    """Imports TensorFlow with its start-up chatter on stderr hidden (shown if it fails)."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as chatter:
        os.dup2(chatter.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            chatter.seek(0)
            sys.stderr.write(chatter.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# -- the run --------------------------------------------------------------------------------------

def _resolve_input(args):
    """(input, output_dir, overwrite): the demo clip and its folder when --input is not given."""
    if args.input is not None:
        return args.input, args.output_dir or DEFAULT_OUTPUT_DIR, args.overwrite
    from crct_tf import assets
    try:
        clip = assets.path("demo_clip")
    except assets.AssetError as e:
        raise UsageError(str(e)) from None
    output_dir = args.output_dir or DEMO_OUTPUT_DIR
    # The default demo run replaces its own previous outputs, so it can be run twice.
    return clip, output_dir, args.overwrite or args.output_dir is None


def run(args):
    check_weights(args)
    source_spec, output_dir, overwrite = _resolve_input(args)
    try:
        source = video_io.open_source(source_spec)
    except video_io.InputError as e:
        raise UsageError(str(e)) from None
    try:
        return _run_on(source, source_spec, output_dir, overwrite, args)
    finally:
        source.close()


def _run_on(source, source_spec, output_dir, overwrite, args):
    name = args.name or video_io.output_name(source_spec)
    outputs = video_io.TrackOutputs(output_dir, name, video=not args.no_video, pts=args.save_pts,
                                    overwrite=overwrite)
    try:
        outputs.check()
        tracker, weights_label = build_tracker(args, _expected_frames(source, args))
        outputs.open(source.fps)
    except (video_io.OutputError, ValueError) as e:
        raise UsageError(str(e)) from None
    sys.stderr.write(f"{PROG}: {source.description} -> {os.path.join(output_dir, name)}.* "
                     f"(mode {args.mode}, weights {weights_label})\n")
    try:
        summary = track_into(tracker, source, source_spec, name, outputs, args, weights_label)
    except video_io.InputError as e:          # e.g. an unreadable image in the middle of a folder
        outputs.discard()
        raise UsageError(str(e)) from None
    except (OSError, video_io.OutputError) as e:   # a full disk, a folder gone: no partial files
        outputs.discard()
        raise UsageError(_os_message(e, output_dir)) from None
    except BaseException:
        kept = outputs.interrupt()
        if kept:
            sys.stderr.write(f"{PROG}: interrupted; rows so far in {kept[0]}\n")
        raise
    try:
        written = outputs.finish(summary)
    except OSError as e:
        outputs.discard()
        raise UsageError(_os_message(e, output_dir)) from None
    print(f"{PROG}: {summary['frames']} frames, {summary['tracked']} tracked, "
          f"{summary['lost']} lost, {summary['searching']} searching, "
          f"{summary['ms_per_frame']:.1f} ms/frame -> {', '.join(written)}", flush=True)
    return 0


def _os_message(error, output_dir):
    """One line for an OSError (mostly while writing: a full disk): the file and the problem."""
    if not isinstance(error, OSError):
        return str(error)
    if error.filename:
        return f"{error.filename}: {error.strerror or error}"
    return f"cannot write into {output_dir}: {error.strerror or error}"


def _expected_frames(source, args):
    return video_run.expected_frames(source, args.max_frames)


def track_into(tracker, source, source_spec, name, outputs, args, weights_label, progress=PROG):
    """Tracks an opened source into opened outputs; returns the summary that S.json holds.
    Shared with corpus tracking, so that both write the same files for the same video."""
    summary = _track(tracker, source, outputs, args, progress)
    announced = _expected_frames(source, args)
    if announced is not None and summary["frames"] < announced:     # a truncated or damaged video
        sys.stderr.write(f"{PROG}: warning: {source.description} ended after {summary['frames']} "
                         f"of the {announced} frames its header announces\n")
        summary["frames_announced"] = announced
    summary.update(weights=weights_label, runtime=args.runtime, mode=args.mode,
                   redetect_on=args.redetect_on,
                   input=source_spec if video_io.is_webcam(source_spec)
                   else os.path.abspath(source_spec), name=name)
    return summary


def _track(tracker, source, outputs, args, progress=PROG):
    return video_run.track_source(tracker, source, outputs, args.max_frames, args.save_pts,
                                  draw=not args.no_video, progress=progress)


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv=None):
    """Runs the tool; returns the exit code (0, 2 bad input, 130 / 143 interrupted)."""
    logging.set_verbosity(logging.WARNING)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run(parse_args(sys.argv[1:] if argv is None else argv))
    except UsageError as e:
        sys.stderr.write(f"{PROG}: error: {' '.join(str(e).split())}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
