"""The driver side of corpus tracking: what to do, the run with its progress bar, the summary.

    plan = make_plan("videos/", "out", video=False, pts=False, table=False, overwrite=False)
    summary = run_plan(plan, args, options, worker_threads=1)

`make_plan` lists the videos and sorts them into those to track and those whose outputs are
complete (skipped). `run_plan` writes the work list, runs the Beam pipeline while a progress
bar counts the records the workers leave, and writes OUT/corpus_summary.json:

    {"videos": n, "tracked": done in this run, "skipped": already complete,
     "failed": [{"input": path, "error": one line}], ...}
"""

import dataclasses
import json
import os
import signal
import sys
import threading
import time

from crct_tf.corpus import files, pipeline


@dataclasses.dataclass
class Plan:
    input_spec: str
    output_dir: str
    base: str
    todo: list          # work items to track: {"input", "relative", "track": True}
    skipped: list       # complete already; {"track": False} items when their table part is missing
    table: bool
    stale: list = dataclasses.field(default_factory=list)  # partial files beside complete outputs

    @property
    def videos(self):
        return len(self.todo) + len(self.skipped)


def make_plan(input_spec, output_dir, video, pts, table, overwrite):
    """Lists the videos of `input_spec` and sorts them by what is left to do. CorpusError."""
    base, paths = files.find_videos(input_spec, exclude=None if files.is_remote(output_dir)
                                    else output_dir)
    if not paths:
        raise files.CorpusError(f"{input_spec}: no video files "
                                f"({', '.join(files.VIDEO_EXTENSIONS)}) found")
    files.check_writable(output_dir)
    owners = {}
    for path in paths:
        relative = files.relative_stem(path, base)
        if relative in owners:
            raise files.CorpusError(f"{owners[relative]} and {path} would both write "
                                    f"{files.join(output_dir, relative)}.csv; rename one")
        owners[relative] = path
    existing = set() if overwrite else files.existing_outputs(output_dir)
    wanted = files.output_suffixes(video, pts)
    todo, skipped, stale = [], [], []
    for relative, path in owners.items():
        item = {"input": path, "relative": relative}
        if all(relative + suffix in existing for suffix in wanted):
            part = f"{files.TABLE_DIR}/{files.table_part_name(relative)}"
            skipped.append(dict(item, track=False, table_missing=table and part not in existing))
            stale += [relative + s for s in files.PARTIAL_SUFFIXES if relative + s in existing]
        else:
            todo.append(dict(item, track=True))     # its partial files are replaced or removed
    return Plan(input_spec, output_dir, base, todo, skipped, table, stale)


def _sizes(items):
    sizes = {}
    for item in items:
        try:
            sizes[item["relative"]] = 0 if files.is_remote(item["input"]) else \
                os.path.getsize(item["input"])
        except OSError:
            sizes[item["relative"]] = 0
    return sizes


def work_items(plan):
    """The items the pipeline processes, largest file first, each with its `order` (the
    balancing key: the local runner deals keys out to its workers in turn)."""
    items = plan.todo + [i for i in plan.skipped if i.get("table_missing")]
    sizes = _sizes(items)
    items = sorted(items, key=lambda i: (-sizes[i["relative"]], i["relative"]))
    return [dict({k: v for k, v in item.items() if k != "table_missing"}, order=n)
            for n, item in enumerate(items)]


def _children(pid):
    """The process ids of `pid`'s children and their descendants (Linux /proc; else [])."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found += kids
            queue += kids
    return found


def _stop_workers(before):
    """Terminates the processes this run started (the local runner's workers): the ones among
    our descendants that were not there before the run."""
    for pid in reversed([p for p in _children(os.getpid()) if p not in before]):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


def _quiet_after_interruption(previous):
    def hook(hook_args):
        if not isinstance(hook_args.exc_value, Exception):
            previous(hook_args)
    return hook


def _run_with_progress(options, worklist, do_fn, run_dir, total, label, every):
    """Runs the pipeline in a thread while this one counts records into a progress bar.

    Returns the runner's exception or None. On KeyboardInterrupt (and the command's SIGTERM
    exception) the local runner's worker processes are stopped and the exception is raised.
    """
    from tqdm import tqdm
    outcome = {}

    def target():
        try:
            pipeline.run(options, worklist, do_fn)
        except BaseException as e:   # noqa: BLE001 -- handed to the caller
            outcome["error"] = e

    before = set(_children(os.getpid()))
    runner = threading.Thread(target=target, name="beam-pipeline", daemon=True)
    with tqdm(total=total, unit="video", file=sys.stderr, desc=label, dynamic_ncols=True,
              mininterval=0, smoothing=0) as bar:
        try:
            runner.start()
            while runner.is_alive():
                runner.join(every)
                done = min(pipeline.count_records(run_dir), total)
                if done != bar.n:
                    bar.update(done - bar.n)
        except BaseException:
            # The runner's threads report the stopped workers as errors, now or while the
            # process exits: expected after an interruption, so not printed.
            threading.excepthook = _quiet_after_interruption(threading.excepthook)
            _stop_workers(before)
            runner.join(10)
            raise
    return outcome.get("error")


def run_plan(plan, do_fn_args, options, worker_threads=None, progress_label="track_corpus",
             progress_every=None):
    """Runs the pipeline over the plan's work items and writes the corpus summary.

    Args:
      plan: from `make_plan`.
      do_fn_args: the tracking flags (argparse.Namespace) for `pipeline.TrackVideos`.
      options: Beam PipelineOptions.
      worker_threads: TF threads per worker (None: TensorFlow's default).

    Returns:
      The summary dict (also written to OUT/corpus_summary.json).

    Raises:
      The runner's exception when the pipeline itself fails, or KeyboardInterrupt (the summary
      is written first, with what the workers recorded and the error).
    """
    run_dir = files.join(plan.output_dir, files.RUN_DIR)
    files.remove_tree(run_dir)                          # records of an interrupted run
    for relative in plan.stale:                         # an interrupted --overwrite run's
        files.remove_path(files.join(plan.output_dir, relative))
    items = work_items(plan)
    started = time.monotonic()
    error = None
    if items:
        worklist = files.join(run_dir, pipeline.WORKLIST)
        files.write_bytes_atomic(
            worklist, "".join(json.dumps(i) + "\n" for i in items).encode("utf-8"))
        do_fn = pipeline.TrackVideos(do_fn_args, plan.output_dir, run_dir, table=plan.table,
                                     worker_threads=worker_threads)
        every = progress_every or (15.0 if files.is_remote(plan.output_dir) else 1.0)
        try:
            error = _run_with_progress(options, worklist, do_fn, run_dir, len(items),
                                       progress_label, every)
        except BaseException as e:   # noqa: BLE001 -- an interruption: summarized, raised again
            error = e
    records = pipeline.read_records(run_dir)
    summary = summarize(plan, records, time.monotonic() - started, error)
    files.write_bytes_atomic(files.join(plan.output_dir, files.SUMMARY),
                             (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    files.remove_tree(run_dir)
    if error is not None:
        raise error
    return summary


def summarize(plan, records, seconds, error=None):
    tracked = [r for r in records.values() if r["status"] == "tracked"]
    failed = sorted(({"input": r["input"], "error": r["error"]}
                     for r in records.values() if r["status"] == "failed"),
                    key=lambda f: f["input"])
    summary = {"videos": plan.videos, "tracked": len(tracked), "skipped": len(plan.skipped),
               "failed": failed, "input": plan.input_spec, "output_dir": plan.output_dir,
               "seconds": round(seconds, 1),
               "videos_per_minute": round(60.0 * len(tracked) / seconds, 2)
               if tracked and seconds > 0 else None,
               "frames": sum(r["frames"] or 0 for r in tracked),
               "video_seconds": round(sum(r.get("seconds") or 0 for r in records.values()), 1)}
    if error is not None:
        processed = {r["relative"] for r in records.values()}
        summary["error"] = pipeline.one_line(error) if isinstance(error, Exception) else \
            f"interrupted ({type(error).__name__}); rerun to continue"  # done videos are kept
        summary["not_processed"] = sum(1 for i in plan.todo if i["relative"] not in processed)
    return summary
