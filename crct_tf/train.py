r"""Trains BT, FV or FLL: `python -m crct_tf.train --flagfile=configs/X.cfg`.

Every flag is defined here and only here; library code takes plain arguments. A run writes to
`--model_dir` (checkpoints, TensorBoard logs, `flags.cfg` with the resolved flags, and
`run.json`, what `python -m crct_tf.export --format bundle` reads) and resumes from it when run
again. Exit codes: 0 done, 2 bad input or a failed run (one line on stderr), 130/143 when
interrupted by SIGINT/SIGTERM after saving a checkpoint.

    python -m crct_tf.train --flagfile=configs/smoke.cfg          # seconds, generated data
    python -m crct_tf.train --flagfile=configs/fll.cfg --manual_dir=/data/300W,/data/menpo
    python -m crct_tf.train --mode=eval --model_dir=runs/fll --dataset=crct_bootstrap --split=val
"""

import json
import os
import sys

# TensorFlow's C++ log level, set before it is imported: without an NVIDIA driver its start-up
# error "failed call to cuInit" (after which it runs on the CPU as intended) is noise; with a
# driver its errors stay visible. TF_CPP_MIN_LOG_LEVEL set by the user wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL",
                      "2" if os.path.exists("/proc/driver/nvidia") else "3")

from absl import flags, logging  # noqa: E402

from crct_tf import absl_command  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_enum("model", None, ["bt", "fv", "fll"], "Sub-network to train.")
flags.DEFINE_string("model_dir", None, "Run folder (checkpoints, flags, TensorBoard); default "
                    "runs/<model>. A rerun resumes from it.")
flags.DEFINE_enum("mode", "train", ["train", "eval"], "Train, or report NME of a trained run.")
flags.DEFINE_list("dataset", ["crct_bootstrap"], "Source(s): synthetic, crct_bootstrap, "
                  "crct_registry_faces, crct_video_frames, vw300, ibug300w, menpo2d, with a "
                  "builder config as NAME/CONFIG (e.g. vw300/3da2d); several are mixed "
                  "round-robin.")
flags.DEFINE_list("manual_dir", [], "Dataset root per --dataset entry (users' 300-VW/300-W/Menpo "
                  "copies), or one folder holding one subfolder per builder name.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir for prepared datasets.")
flags.DEFINE_string("split", "train", "Split to train (or evaluate) on.")
flags.DEFINE_integer("steps", 1000, "Training steps in total (BT: over all curriculum stages).")
flags.DEFINE_integer("steps_per_stage", None, "BT: steps per curriculum stage; sets --steps.")
flags.DEFINE_integer("batch_size", 16, "Global batch size (split over replicas).")
flags.DEFINE_float("learning_rate", 1e-4, "Adam's initial learning rate (authors' code: 1e-4).")
flags.DEFINE_integer("lr_decay_steps", 10_000, "Multiply the learning rate by 0.1 every N steps.")
flags.DEFINE_integer("seq_len", 2, "BT: SeqBT, the longest unroll of the curriculum 2, 4, ...")
flags.DEFINE_string("init_from", None, "A run folder whose backbone initialises this run's "
                    "(BT from a trained FLL, paper III-E); only without a checkpoint.")
flags.DEFINE_enum("backbone", "facenet", ["facenet", "random", "tiny"], "Backbone: facenet's "
                  "Inception-ResNet-v1 with its weights, the same untrained, or a tiny stand-in.")
flags.DEFINE_bool("freeze_backbone", False, "Train only the sub-network's own layers (BT on a "
                  "fine-tuned FLL's backbone, so that a bundle can share one backbone).")
flags.DEFINE_enum("strategy", "mirrored", ["mirrored", "multi_worker", "one_device"],
                  "tf.distribute strategy.")
flags.DEFINE_integer("input_size", 128, "BT/FLL crop side (paper III-A).")
flags.DEFINE_integer("fll_input_size", None, "FLL crop side when it differs from BT's (not in "
                     "the paper; default: --input_size). docs/training.md.", lower_bound=1)
flags.DEFINE_float("bt_context", 2.0, "BT crop: square of this x the box's larger side.")
flags.DEFINE_float("fll_context", 2.0, "FLL crop: square of this x the box's larger side.")
flags.DEFINE_integer("frame_step", 3, "BT on vw300: use every Nth frame (authors' code: 3).")
flags.DEFINE_bool("augment", True, "Flips, rotations, strips, light, box jitter.")
flags.DEFINE_bool("hard_conditions", False, "BT and FLL from stills: examples with an occluder, "
                  "light 0.4-1.4x, motion blur or a small face (not in the paper; "
                  "docs/robustness.md).")
flags.DEFINE_enum("fll_loss", "l2", ["l2", "wing"], "FLL's loss: l2 (the paper's, eq. 7) or wing "
                  "(Feng et al. 2018; not in the paper, docs/training.md).")
flags.DEFINE_list("fll_region_weights", None, "FLL: weights of facial regions' points in the "
                  "loss, e.g. eyebrows=2,mouth=1.5 (regions: contour, eyebrows, nose, eyes, "
                  "mouth; the others 1; default: all alike, the paper's; docs/training.md).")
flags.DEFINE_list("fll_box_jitter", None, "FLL: largest centre shift and rescale of the "
                  "training box, fractions of its size (default 0.05,0.10: augment.BOX_SHIFT, "
                  "BOX_SCALE); larger teaches FLL to bring points back from a crop further off.")
flags.DEFINE_float("fll_fringe", 0.0, "FLL: hair over the brows on this fraction of the "
                   "training examples (augment.fringe; 0: none, the paper's; docs/robustness.md).")
flags.DEFINE_float("fll_upright", 0.0, "FLL: this fraction of the training crops turned upright "
                   "by the face's roll, as the tracker cuts them with fll_upright on (0: none, "
                   "the paper's; docs/robustness.md).")
flags.DEFINE_float("fll_mouth_cover", 0.0, "FLL: something held over the mouth (food, a cup, a "
                   "hand) on this fraction of the training examples (augment.mouth_cover; 0: "
                   "none, the paper's; docs/robustness.md).")
flags.DEFINE_float("fll_shape_warp", 0.0, "FLL: the face given other proportions (a continuous "
                   "warp of its region, the points moved with it) on this fraction of the training "
                   "examples (augment.shape_warp; 0: none, the paper's; docs/robustness.md).")
flags.DEFINE_integer("fll_shape_warp_nodes", 4, "FLL: the shape warp's control points a side (4: "
                     "the face's proportions; 8: the mouth, each brow and each eye move on their "
                     "own too, as in expressions; at most 12).")
flags.DEFINE_float("fll_expression", 0.0, "FLL: brows raised or lowered and the mouth opened and "
                   "rounded (a warp of the face's mesh, the points moved with it, an open mouth "
                   "painted) on this fraction of the training examples (expression."
                   "expression_warp; 0: none, the paper's; docs/robustness.md).")
flags.DEFINE_float("fv_point_noise", 0.0, "FV: the jittered positives' points each moved on "
                   "their own by up to this fraction of the face box's side, as a localiser's "
                   "points miss (0: not at all, as before; at most 0.1; docs/robustness.md).")
flags.DEFINE_float("fv_decolour", 0.0, "FV: colour taken away (grey, a faded sepia print, or "
                   "colour half gone), as in old photographs and black-and-white video, on this "
                   "fraction of the training examples, faces and not-faces alike (augment."
                   "decolour; 0: none, as before; docs/robustness.md).")
flags.DEFINE_integer("seed", 0, "Seed of the stateless augmentations and sampling.")
flags.DEFINE_integer("log_every", 10, "Steps between log lines and TensorBoard scalars.")
flags.DEFINE_integer("checkpoint_every", 200, "Steps between checkpoints.")
flags.DEFINE_integer("image_every", 200, "Steps between TensorBoard prediction images.")
flags.DEFINE_integer("eval_examples", 0, "Eval: at most this many examples (0: the split).")

# Flags written to flags.cfg: everything defined above (not absl's own).
RUN_FLAGS = ("model", "model_dir", "mode", "dataset", "manual_dir", "data_dir", "split", "steps",
             "steps_per_stage", "batch_size", "learning_rate", "lr_decay_steps", "seq_len",
             "init_from", "backbone", "freeze_backbone", "strategy", "input_size", "fll_input_size",
             "bt_context", "fll_context", "frame_step", "augment", "hard_conditions", "fll_loss",
             "fll_region_weights", "fll_box_jitter", "fll_fringe", "fll_upright",
             "fll_mouth_cover", "fll_shape_warp", "fll_shape_warp_nodes", "fll_expression",
             "fv_point_noise", "fv_decolour", "seed",
             "log_every", "checkpoint_every", "image_every", "eval_examples")


def _fail(message, code=2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def _box_jitter(values):
    """--fll_box_jitter as (shift, scale), or None; one line and exit 2 if malformed."""
    if values is None:
        return None
    try:
        shift, scale = (float(v) for v in values)
    except ValueError:
        _fail(f"--fll_box_jitter {','.join(values)}: expected two numbers, e.g. 0.1,0.15")
    if not (0 <= shift < 0.5 and 0 <= scale < 0.5):
        _fail(f"--fll_box_jitter {','.join(values)}: shift and scale must be in [0, 0.5)")
    return shift, scale


def _region_weights(values):
    """--fll_region_weights as {region: weight}, or None; one line and exit 2 if malformed."""
    if not values:
        return None
    from crct_tf.training import losses
    flag = f"--fll_region_weights {','.join(values)}"
    weights = {}
    for item in values:
        region, _, weight = item.partition("=")
        try:
            weights[region.strip()] = float(weight)
        except ValueError:
            _fail(f"{flag}: expected REGION=WEIGHT pairs, e.g. eyebrows=2,mouth=1.5")
    try:
        losses.region_point_weights(weights)
    except ValueError as error:
        _fail(f"{flag}: {error}")
    return weights


def _write_run_files(model_dir, settings, steps):
    """flags.cfg (reusable as --flagfile) and run.json (read when packing a bundle)."""
    os.makedirs(model_dir, exist_ok=True)
    lines = []
    for name in RUN_FLAGS:
        value = FLAGS[name].value
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(value)
        if isinstance(value, bool):
            lines.append(f"--{'' if value else 'no'}{name}")
        else:
            lines.append(f"--{name}={value}")
    run = {"model": FLAGS.model, "backbone": FLAGS.backbone, "crop_settings": settings.to_dict(),
           "seq_bt": FLAGS.seq_len, "steps": steps, "dataset": FLAGS.dataset,
           "split": FLAGS.split, "batch_size": FLAGS.batch_size,
           "learning_rate": FLAGS.learning_rate, "init_from": FLAGS.init_from,
           "freeze_backbone": FLAGS.freeze_backbone, "fll_box_jitter": FLAGS.fll_box_jitter,
           "fll_fringe": FLAGS.fll_fringe, "fll_upright": FLAGS.fll_upright,
           "fll_mouth_cover": FLAGS.fll_mouth_cover, "fll_shape_warp": FLAGS.fll_shape_warp,
           "fll_shape_warp_nodes": FLAGS.fll_shape_warp_nodes,
           "fll_expression": FLAGS.fll_expression, "fv_point_noise": FLAGS.fv_point_noise,
           "fv_decolour": FLAGS.fv_decolour}
    for name, text in (("flags.cfg", "\n".join(lines) + "\n"), ("run.json", json.dumps(run, indent=2))):
        tmp = os.path.join(model_dir, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(model_dir, name))


def main(argv):
    del argv
    box_jitter = _box_jitter(FLAGS.fll_box_jitter)
    region_weights = _region_weights(FLAGS.fll_region_weights)
    for name in ("fll_fringe", "fll_upright", "fll_mouth_cover", "fll_shape_warp",
                 "fll_expression", "fv_decolour"):
        if not 0.0 <= FLAGS[name].value <= 1.0:
            _fail(f"--{name} {FLAGS[name].value}: a fraction of the examples, from 0 to 1")
    if not 0.0 <= FLAGS.fv_point_noise <= 0.1:
        _fail(f"--fv_point_noise {FLAGS.fv_point_noise}: a fraction of the face box's side, "
              "from 0 to 0.1")
    # Imports after flag parsing: `--help` stays fast and TF's start-up is paid only for work.
    import tensorflow as tf

    from crct_tf import assets
    from crct_tf.weights import bundle
    from crct_tf.geometry.crop_settings import CropSettings
    from crct_tf.data import augment
    from crct_tf.training import inputs, loop, run_setup, tasks

    try:
        augment.shape_warp_steps(nodes=FLAGS.fll_shape_warp_nodes)
    except ValueError as error:
        _fail(f"--fll_shape_warp_nodes {FLAGS.fll_shape_warp_nodes}: {error}")

    if FLAGS.mode == "eval" and not FLAGS.model_dir:
        _fail("--mode=eval needs --model_dir, the run to evaluate")
    if FLAGS.mode == "train" and FLAGS.model is None:
        _fail("--model is required (bt, fv or fll), usually through --flagfile=configs/X.cfg")
    model_dir = FLAGS.model_dir or os.path.join("runs", FLAGS.model)
    settings = CropSettings(input_size=FLAGS.input_size, fll_input_size=FLAGS.fll_input_size,
                            bt_context=FLAGS.bt_context, fll_context=FLAGS.fll_context)
    try:
        sources = inputs.SourceSpec(FLAGS.dataset, FLAGS.manual_dir, FLAGS.data_dir, FLAGS.split,
                                    FLAGS.frame_step)
        if FLAGS.mode == "eval":
            result = run_setup.evaluate_run(model_dir, sources, FLAGS.eval_examples)
            print(json.dumps(result, indent=2))
            return
        task = tasks.get_task(
            FLAGS.model, settings, lambda size: run_setup.backbone_for(FLAGS.backbone, size),
            seq_bt=FLAGS.seq_len, freeze_backbone=FLAGS.freeze_backbone, sources=sources,
            augment=FLAGS.augment, hard_conditions=FLAGS.hard_conditions,
            fll_loss=FLAGS.fll_loss, fll_region_weights=region_weights,
            fll_box_jitter=box_jitter, fll_fringe=FLAGS.fll_fringe,
            fll_upright=FLAGS.fll_upright, fll_mouth_cover=FLAGS.fll_mouth_cover,
            fll_shape_warp=FLAGS.fll_shape_warp, fll_shape_warp_nodes=FLAGS.fll_shape_warp_nodes,
            fll_expression=FLAGS.fll_expression, fv_point_noise=FLAGS.fv_point_noise,
            fv_decolour=FLAGS.fv_decolour)
        steps = task.total_steps(FLAGS.steps, FLAGS.steps_per_stage)
        strategy = loop.make_strategy(FLAGS.strategy)
        config = loop.LoopConfig(
            model_dir=model_dir, steps=steps, batch_size=FLAGS.batch_size,
            learning_rate=FLAGS.learning_rate, lr_decay_steps=FLAGS.lr_decay_steps,
            log_every=FLAGS.log_every, checkpoint_every=FLAGS.checkpoint_every,
            image_every=FLAGS.image_every, seed=FLAGS.seed)
        if strategy.extended.should_checkpoint:     # the chief, or the only worker
            _write_run_files(model_dir, settings, steps)
        result = loop.train(
            task, config, strategy,
            init_fn=lambda task: run_setup.initialise(task, FLAGS.backbone, FLAGS.init_from),
            summary_images=True)
    except loop.Interrupted as e:
        logging.warning("%s", e)
        sys.exit(128 + e.signum)
    except (loop.TrainingError, inputs.InputError, bundle.BundleError, assets.AssetError,
            ValueError, tf.errors.OpError) as e:
        _fail(str(e).splitlines()[0] if str(e) else repr(e))
    except OSError as e:        # a full disk or an unwritable --model_dir: the file and the problem
        _fail(f"cannot write {e.filename or model_dir}: {e.strerror or e}")
    if result["trained"] == 0:
        logging.info("nothing left to train: %s is at step %d of %d (raise --steps to train on)",
                     model_dir, result["step"], steps)
    else:
        logging.info("done: step %d, loss %.4f, weights sha256 %s; checkpoints in %s",
                     result["step"], result["loss"], loop.weights_digest(task.model), model_dir)


if __name__ == "__main__":
    absl_command.run(main, "crct_tf.train")
