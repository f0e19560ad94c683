"""The Beam pipeline of corpus tracking: one work item per video, one tracker per worker.

    work list (OUT/.track_corpus/worklist.jsonl, written by the driver)
      -> read by one worker -> GroupByKey on a balancing key -> TrackVideos (ParDo)

`TrackVideos.setup` builds the tracker once per worker (networks and MTCNN, from the tracking
command's flags through `crct_tf.track.build_tracker`); `process` resets it for each video and
writes exactly the files `python -m crct_tf.track` writes for it (`crct_tf.track.track_into`),
each under a `.partial` name renamed at the end (local output), or tracked on the worker's disk
and uploaded with S.json last (a remote output folder). A video that cannot be tracked is
recorded as failed and the worker goes on. Each processed video leaves one small record in
OUT/.track_corpus/records/, which the driver counts for its progress bar and reads for the
summary. Processing a video again (a runner's retry) rewrites the same files: the step is
idempotent.
"""

import hashlib
import json
import os
import shutil
import tempfile
import time

import apache_beam as beam

from crct_tf.corpus import files, table

RECORDS = "records"
WORKLIST = "worklist.jsonl"


class VideoError(RuntimeError):
    """A video that cannot be tracked (the message is one line naming it)."""


def record_name(relative):
    return hashlib.sha1(relative.encode("utf-8")).hexdigest() + ".json"


def one_line(error):
    """An exception as one line: its message (or its type when it has none)."""
    text = " ".join(str(error).split())
    return text if text else type(error).__name__


def read_worklist(path):
    """The work items of the work-list file: one JSON object per line."""
    for line in files.read_bytes(path).decode("utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def _key(item):
    return item["order"], item


def _values(keyed):
    return keyed[1]


class TrackVideos(beam.DoFn):
    """Tracks one video per element into OUT/<relative>.*; yields a record per video.

    Args:
      args: the parsed tracking flags (an argparse.Namespace of `crct_tf.track`'s
        `add_tracking_arguments`, checked).
      output_dir: OUT, a local folder or a URL.
      run_dir: OUT/.track_corpus, where records go.
      table: also write the video's Parquet part of the corpus table.
      worker_threads: TensorFlow (and TFLite) threads of this worker, or None for the default.
    """

    def __init__(self, args, output_dir, run_dir, table=False, worker_threads=None):
        self.args, self.output_dir, self.run_dir = args, output_dir, run_dir
        self.table, self.worker_threads = table, worker_threads
        self._trackers = None

    def setup(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from crct_tf import track
        self._track = track
        if self.worker_threads:
            if self.args.threads is None:          # the LiteRT interpreters' threads
                self.args.threads = self.worker_threads
            if getattr(self.args, "runtime", "tf") == "tf":
                track._import_tensorflow_quietly()
                import tensorflow as tf
                try:
                    tf.config.threading.set_intra_op_parallelism_threads(self.worker_threads)
                    tf.config.threading.set_inter_op_parallelism_threads(self.worker_threads)
                except RuntimeError:   # TensorFlow already running here (the in-memory runner)
                    pass
        self._trackers = {}
        self._tracker_for(1)           # the tracker of short clips, built before the first video

    def _tracker_for(self, frames):
        """The worker's tracker for a video of `frames` frames (one per network variant)."""
        variant = self._track.tracker_variant(frames)
        if variant not in self._trackers:
            self._trackers[variant] = self._track.build_tracker(self.args, frames)
        return self._trackers[variant]

    def process(self, item):
        start = time.monotonic()
        record = {"input": item["input"], "relative": item["relative"], "status": "tracked",
                  "error": None, "frames": None}
        try:
            if item["track"]:
                record["frames"] = self._track_video(item)
            else:
                record["status"] = "skipped"
            if self.table:
                self._write_table_part(item)
        except Exception as e:   # noqa: BLE001 -- one broken video never stops the others
            record.update(status="failed", error=one_line(e))
            beam.metrics.Metrics.counter("crct_tf", "videos_failed").inc()
        else:
            if record["status"] == "tracked":
                beam.metrics.Metrics.counter("crct_tf", "videos_tracked").inc()
        record["seconds"] = round(time.monotonic() - start, 3)
        files.write_bytes_atomic(
            files.join(self.run_dir, f"{RECORDS}/{record_name(item['relative'])}"),
            json.dumps(record).encode("utf-8"))
        yield record

    def _track_video(self, item):
        from crct_tf.tracking import video_io, video_run
        args, remote_out = self.args, files.is_remote(self.output_dir)
        scratch = tempfile.mkdtemp(prefix="crct_corpus_")
        spec = item["input"]
        try:
            spec = files.stage_input(item["input"], scratch)
            source = video_io.open_source(spec)
            try:
                frames = video_run.expected_frames(source, args.max_frames)
                tracker, weights_label = self._tracker_for(frames)
                tracker.reset(init_box=args.init_box)
                final = files.join(self.output_dir, item["relative"])
                folder = scratch if remote_out else os.path.dirname(final)
                name = os.path.basename(item["relative"])
                outputs = video_io.TrackOutputs(folder, name, video=not args.no_video,
                                                pts=args.save_pts, overwrite=True)
                outputs.open(source.fps)
                try:
                    summary = self._track.track_into(
                        tracker, source, spec, video_io.output_name(item["input"]), outputs,
                        args, weights_label, progress=None)
                    if files.is_remote(item["input"]):
                        summary["input"] = item["input"]
                    written = outputs.finish(summary)
                except BaseException:
                    outputs.discard()
                    raise
            finally:
                source.close()
            if remote_out:               # S.json last: its presence marks a complete video
                for path in sorted(written, key=lambda p: p.endswith(".json")):
                    suffix = path[len(os.path.join(scratch, name)):]
                    files.publish(path, files.join(self.output_dir, item["relative"]) + suffix)
            return summary["frames"]
        except Exception as e:
            if spec != item["input"]:    # name the video, not its copy on this worker
                raise VideoError(one_line(e).replace(spec, item["input"])) from None
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _write_table_part(self, item):
        csv_path = files.join(self.output_dir, item["relative"]) + ".csv"
        data = table.table_bytes(files.read_bytes(csv_path), item["relative"])
        part = f"{files.TABLE_DIR}/{files.table_part_name(item['relative'])}"
        files.write_bytes_atomic(files.join(self.output_dir, part), data)


def build(pipeline, worklist, do_fn):
    """Adds the corpus steps to `pipeline`; returns the PCollection of records."""
    return (pipeline
            | "Work list" >> beam.Create([worklist])
            | "Read work list" >> beam.FlatMap(read_worklist)
            | "Balance" >> beam.Map(_key)
            | "Spread" >> beam.GroupByKey()
            | "Items" >> beam.FlatMap(_values)
            | "Track" >> beam.ParDo(do_fn))


def run(options, worklist, do_fn):
    """Runs the pipeline to its end (blocking)."""
    pipeline = beam.Pipeline(options=options)
    build(pipeline, worklist, do_fn)
    result = pipeline.run()
    result.wait_until_finish()
    return result


def read_records(run_dir):
    """The records written so far: {relative: record}."""
    records = {}
    for path in files.list_files(files.join(run_dir, RECORDS)):
        if not path.endswith(".json") or os.path.basename(path).startswith("."):
            continue
        try:
            record = json.loads(files.read_bytes(path))
        except (OSError, ValueError):
            continue
        records[record["relative"]] = record
    return records


def count_records(run_dir):
    return sum(1 for p in files.list_files(files.join(run_dir, RECORDS))
               if p.endswith(".json") and not os.path.basename(p).startswith("."))

