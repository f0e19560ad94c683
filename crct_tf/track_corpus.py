r"""Tracks every video of a corpus with CRCT on Apache Beam: `python -m crct_tf.track_corpus`.

    python -m crct_tf.track_corpus --input videos/ --output_dir tracks/       # all local cores
    python -m crct_tf.track_corpus --input 'videos/**/*.mp4' --output_dir tracks/ --num_workers 2
    python -m crct_tf.track_corpus --input videos/ --output_dir tracks/ --mode fll_mt --table
    python -m crct_tf.track_corpus --input gs://b/videos --output_dir gs://b/tracks \
        --runner DataflowRunner --project P --region R --temp_location gs://b/tmp \
        --setup_file ./pyproject.toml                       # docs/scale_out.md

Each video (a file with a video extension under --input, a folder searched recursively, or a
glob) is one work item; a worker builds the tracker once and tracks its videos one after the
other into OUT/<relative path without extension>.csv and .json: exactly what
`python -m crct_tf.track` writes for that video (and .mp4 with --video, S/annot/*.pts with
--save_pts). Every tracking flag of `python -m crct_tf.track` is accepted (--mode, --weights,
--saved_model, --runtime, --tflite_dir, --threads, --max_frames, ...); other flags go to Beam
as pipeline options (--runner, --direct_running_mode, --project, --setup_file, ...).

Outputs are written atomically; a rerun skips every video whose outputs are complete and redoes
the others (--overwrite redoes all). A video that cannot be tracked is listed as failed in
OUT/corpus_summary.json and the others go on. --table adds OUT/corpus_table/, every row of every
CSV as one Parquet dataset. Exit codes: 0 the pipeline ran (failed videos are in the summary),
2 bad arguments (one line on stderr: no input, no video found, an output folder that cannot be
written), 1 the pipeline itself failed, 130 / 143 interrupted (finished videos are kept; rerun).
"""

import argparse
import os
import signal
import sys

from crct_tf import track

PROG = "track_corpus"
DIRECT = "DirectRunner"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise track.UsageError(message)


def parse_args(argv):
    """(args, beam_argv): this command's and the tracking flags, and Beam's pipeline options."""
    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--input", help="folder of videos (searched recursively), a glob such as "
                   "'videos/**/*.mp4' (quoted), or one video; local or a Beam URL (gs://...)")
    p.add_argument("--output_dir", help="output folder OUT (local or a Beam URL)")
    p.add_argument("--num_workers", type=int, help="workers: processes of the local runner "
                   "(default: the number of cores), Dataflow's --num_workers, Flink's "
                   "--parallelism")
    p.add_argument("--runner", default=DIRECT, help="Beam runner (default: DirectRunner, local "
                   "and embedded, in multi-processing mode); FlinkRunner, SparkRunner, "
                   "DataflowRunner, PortableRunner with their pipeline options")
    p.add_argument("--worker_threads", type=int, help="TensorFlow / LiteRT threads per worker "
                   "(default with the local runner: cores / workers, also for --threads; else "
                   "the runtime's default)")
    p.add_argument("--table", action="store_true", help="also write OUT/corpus_table/, one "
                   "Parquet dataset of every CSV row (video, frame, face_id, status, score, box, "
                   "68 points)")
    p.add_argument("--video", dest="no_video", action="store_false",
                   help="also write the annotated S.mp4 of every video (off by default here)")
    track.add_tracking_arguments(p)
    p.set_defaults(no_video=True)
    args, beam_argv = p.parse_known_args(argv)
    if not args.input:
        raise track.UsageError("--input is required: a folder of videos, a glob, or a video")
    if not args.output_dir:
        raise track.UsageError("--output_dir is required")
    if args.num_workers is not None and args.num_workers < 1:
        raise track.UsageError(f"--num_workers must be at least 1, got {args.num_workers}")
    if args.worker_threads is not None and args.worker_threads < 1:
        raise track.UsageError(f"--worker_threads must be at least 1, got {args.worker_threads}")
    track.check_tracking_args(args)
    _check_beam_flags(beam_argv)
    return args, beam_argv


def _check_beam_flags(beam_argv):
    """Every flag that is not ours must be a Beam pipeline option (a typo is an error here,
    not a warning that Beam prints and ignores)."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    class Parser(_BeamArgumentParser):
        def error(self, message):
            raise track.UsageError(message)

    parser = Parser(allow_abbrev=False)
    classes = {}
    for cls in PipelineOptions.__subclasses__():
        classes.setdefault(str(cls), cls)
    for cls in classes.values():
        cls._add_argparse_args(parser)  # noqa: SLF001 -- as PipelineOptions.get_all_options
    _, unknown = parser.parse_known_args(beam_argv)
    if unknown:
        raise track.UsageError(f"unrecognized arguments: {' '.join(unknown)} (neither a flag of "
                               f"{PROG} nor a Beam pipeline option)")


def _given(beam_argv, name):
    return any(a == f"--{name}" or a.startswith(f"--{name}=") for a in beam_argv)


def pipeline_options(args, beam_argv):
    """(PipelineOptions, worker_threads) for the runner, with --num_workers mapped onto it."""
    from apache_beam.options.pipeline_options import PipelineOptions
    runner = DIRECT if args.runner.lower() in ("direct", "directrunner") else args.runner
    flags = [f"--runner={runner}"] + list(beam_argv)
    workers, threads = args.num_workers, args.worker_threads
    if runner == DIRECT:
        cores = os.cpu_count() or 1
        workers = workers or cores
        if not _given(beam_argv, "direct_running_mode"):
            flags.append("--direct_running_mode=multi_processing")
        if not _given(beam_argv, "direct_num_workers"):
            flags.append(f"--direct_num_workers={workers}")
        threads = threads or max(1, cores // workers)
    elif workers and runner.lower().startswith("dataflow") and not _given(beam_argv, "num_workers"):
        flags.append(f"--num_workers={workers}")
    elif workers and runner.lower().startswith("flink") and not _given(beam_argv, "parallelism"):
        flags.append(f"--parallelism={workers}")
    if not _given(beam_argv, "default_sdk_harness_log_level"):
        flags.append("--default_sdk_harness_log_level=ERROR")
    return PipelineOptions(flags), threads, runner, workers


def run(args, beam_argv):
    from crct_tf.corpus import driver, files
    track.check_weights(args)
    try:
        plan = driver.make_plan(args.input, args.output_dir, video=not args.no_video,
                                pts=args.save_pts, table=args.table, overwrite=args.overwrite)
    except files.CorpusError as e:
        raise track.UsageError(str(e)) from None
    options, threads, runner, workers = pipeline_options(args, beam_argv)
    left = len(plan.todo)
    sys.stderr.write(f"{PROG}: {plan.videos} videos in {args.input}: {left} to track, "
                     f"{len(plan.skipped)} complete already -> {args.output_dir} "
                     f"({runner}{f', {workers} workers' if workers else ''}, mode {args.mode})\n")
    try:
        summary = driver.run_plan(plan, args, options, worker_threads=threads,
                                  progress_label=PROG)
    except Exception as e:     # noqa: BLE001 -- the pipeline itself failed (not a video)
        sys.stderr.write(f"{PROG}: error: the pipeline failed: "
                         f"{' '.join(str(e).split())[:500] or type(e).__name__}; rerun to "
                         f"continue (finished videos are kept)\n")
        return 1
    for failure in summary["failed"][:20]:
        sys.stderr.write(f"{PROG}: failed: {failure['input']}: {failure['error']}\n")
    rate = summary["videos_per_minute"]
    print(f"{PROG}: {summary['videos']} videos: {summary['tracked']} tracked, "
          f"{summary['skipped']} skipped, {len(summary['failed'])} failed"
          + (f", {rate:.1f} videos/min" if rate else "")
          + f" -> {files.join(args.output_dir, files.SUMMARY)}", flush=True)
    return 0


def _on_sigterm(signum, frame):
    raise track.Terminated()


def main(argv=None):
    """Runs the command; returns the exit code (0, 1, 2, 130 / 143)."""
    import logging as python_logging

    from absl import logging
    logging.set_verbosity(logging.WARNING)
    # Beam's own chatter (workers' start-up warnings forwarded by the local runner) hides the
    # progress bar; its errors still show.
    python_logging.getLogger("apache_beam").setLevel(python_logging.ERROR)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run(*parse_args(sys.argv[1:] if argv is None else argv))
    except track.UsageError as e:
        sys.stderr.write(f"{PROG}: error: {' '.join(str(e).split())}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted; finished videos are kept, rerun to continue\n")
        return 130
    except track.Terminated:
        sys.stderr.write(f"{PROG}: terminated; finished videos are kept, rerun to continue\n")
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
