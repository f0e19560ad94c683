"""python -m crct_tf.track_corpus: a nested folder of real clips plus a text file named .mp4.

The clips are the demo clip's first frames; the networks are an untrained bundle on the tiny
backbone (real MTCNN), loaded by the local runner's worker processes exactly as the command's
users load theirs (--weights, on the TF runtime: no conversion). One test, marked slow, runs
the bundled weights and compares every output with `python -m crct_tf.track`'s.
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from apache_beam.io.filesystem import FileMetadata, FileSystem

from helpers import REPO, csv_rows, run_track, save_untrained_bundle

from crct_tf import track_corpus
from crct_tf.corpus import driver

CLIPS = {"a.mp4": (0, 8), "sub/b.avi": (10, 6), "sub/deeper/c.mp4": (20, 7), "d.mp4": (30, 5)}
BROKEN = "sub/broken.mp4"
TIMING = ("ms_per_frame",)          # the summary fields that differ between two runs


def _demo_frames(demo_clip, count):
    capture = cv2.VideoCapture(str(demo_clip))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def _write_clip(path, frames):
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, 30.0, (frames[0].shape[1], frames[0].shape[0]))
    for image in frames:
        writer.write(image)
    writer.release()


def make_corpus(folder, demo_clip, clips=CLIPS):
    """The clips of `clips` ({relative path: (first frame, frames)}), the broken file, a text
    file and a hidden video, which is not part of the corpus."""
    frames = _demo_frames(demo_clip, max(first + n for first, n in clips.values()))
    for relative, (first, count) in clips.items():
        _write_clip(folder / relative, frames[first:first + count])
    (folder / BROKEN).parent.mkdir(parents=True, exist_ok=True)
    (folder / BROKEN).write_text("this is a text file, not a video\n")
    (folder / "notes.txt").write_text("not a video either\n")
    _write_clip(folder / ".hidden.mp4", frames[:2])
    return folder


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return save_untrained_bundle(tmp_path_factory.mktemp("weights") / "tiny", backbone="tiny")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, demo_clip):
    return make_corpus(tmp_path_factory.mktemp("corpus") / "videos", demo_clip)


def _run(*args):
    return track_corpus.main([str(a) for a in args])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, corpus, tiny_weights):
    """The corpus tracked once by 2 local worker processes."""
    out = tmp_path_factory.mktemp("first") / "out"
    code = _run("--input", corpus, "--output_dir", out, "--num_workers", 2,
                "--weights", tiny_weights, "--runtime", "tf")
    return code, out


def _stem(relative):
    return os.path.splitext(relative)[0]


def _all_files(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def assert_same_track(path, expected_path):
    """Two CSVs of one video: the same frames, statuses and faces; box and landmark coordinates
    to 0.02 px, p(face) to 0.002, head angles to 0.1 degree. (Worker processes run with different
    thread counts, and a thread count changes float summation order, so the last written digit
    may differ; the angles, fitted to the points, move by more than one of their 0.01 digits.)"""
    rows, expected = csv_rows(path), csv_rows(expected_path)
    assert rows[0] == expected[0] and len(rows) == len(expected), (path, len(rows), len(expected))
    header = expected[0]
    exact = {"frame", "time_s", "status", "face_id"}
    tolerances = {"face_score": 0.002, "yaw": 0.1, "pitch": 0.1, "roll": 0.1}
    for got, want in zip(rows[1:], expected[1:]):
        for name, a, b in zip(header, got, want):
            if name in exact or not a or not b:
                assert a == b, (path, got[0], name, a, b)
            else:
                tolerance = tolerances.get(name, 0.02) + 1e-9    # (decimal text, binary floats)
                assert abs(float(a) - float(b)) <= tolerance, (path, got[0], name, a, b)


def _json_without_timing(path):
    data = json.loads(Path(path).read_text())
    return {k: v for k, v in data.items() if k not in TIMING}


def test_outputs_mirror_the_input_and_the_broken_file_is_listed(first_run, corpus):
    code, out = first_run
    assert code == 0
    expected = {_stem(r) + ext for r in CLIPS for ext in (".csv", ".json")}
    outputs = {f for f in _all_files(out) if (out / f).is_file()}
    assert outputs == expected | {"corpus_summary.json"}          # no partial, no bookkeeping
    summary = json.loads((out / "corpus_summary.json").read_text())
    assert (summary["videos"], summary["tracked"], summary["skipped"]) == (5, 4, 0)
    assert [f["input"] for f in summary["failed"]] == [str(corpus / BROKEN)]
    error = summary["failed"][0]["error"]
    assert "\n" not in error and "cannot open it as a video" in error
    for relative, (_, frames) in CLIPS.items():
        rows = csv_rows(out / (_stem(relative) + ".csv"))
        assert rows[0][:4] == ["frame", "time_s", "status", "face_score"]
        assert sorted({int(r[0]) for r in rows[1:]}) == list(range(frames))
        per_video = json.loads((out / (_stem(relative) + ".json")).read_text())
        assert per_video["frames"] == frames
        assert per_video["input"] == str(corpus / relative)


def test_outputs_equal_the_tracking_command(first_run, corpus, tiny_weights, tmp_path):
    _, out = first_run
    relative = "sub/b.avi"
    assert run_track("--input", corpus / relative, "--output_dir", tmp_path, "--no_video",
                     "--weights", tiny_weights, "--runtime", "tf") == 0
    assert_same_track(tmp_path / "b.csv", out / "sub/b.csv")
    assert _json_without_timing(tmp_path / "b.json") == _json_without_timing(out / "sub/b.json")


def test_rerun_skips_complete_videos_redoes_interrupted_ones_and_writes_the_table(
        first_run, corpus, tiny_weights, tmp_path, capsys):
    import pandas as pd
    import pyarrow.dataset as ds

    _, first = first_run
    out = tmp_path / "out"
    shutil.copytree(first, out)
    # a.mp4 as an interrupted run leaves it: its rows so far in a.partial.csv, no a.json.
    (out / "a.json").unlink()
    (out / "a.csv").rename(out / "a.partial.csv")
    # An interrupted --overwrite run of a complete video: its partial file is stale.
    (out / "d.partial.csv").write_text("frame\n0\n")
    assert _run("--input", corpus, "--output_dir", out, "--num_workers", 1,
                "--weights", tiny_weights, "--runtime", "tf", "--table") == 0
    summary = json.loads((out / "corpus_summary.json").read_text())
    assert (summary["videos"], summary["tracked"], summary["skipped"]) == (5, 1, 3)
    assert [f["input"] for f in summary["failed"]] == [str(corpus / BROKEN)]
    assert_same_track(out / "a.csv", first / "a.csv")
    assert not [f for f in _all_files(out) if ".partial" in f or ".track_corpus" in f]
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("track_corpus: 5 videos: 1 tracked, 3 skipped, 1 failed")

    # The corpus table: one Parquet part per video, read as one table by pyarrow and pandas.
    assert sorted(os.listdir(out / "corpus_table")) == sorted(
        _stem(r).replace("/", "%2F") + ".parquet" for r in CLIPS)
    frame = pd.read_parquet(out / "corpus_table")
    assert list(frame.columns[:7]) == ["video", "frame", "face_id", "time_s", "status",
                                       "face_score", "x0"]
    assert {"lx0", "ly67"} <= set(frame.columns)
    assert sorted(frame["video"].unique()) == sorted(_stem(r) for r in CLIPS)
    table = ds.dataset(out / "corpus_table").to_table()
    assert table.num_rows == len(frame) == sum(len(csv_rows(out / (_stem(r) + ".csv"))) - 1
                                               for r in CLIPS)
    rows = csv_rows(out / "sub/deeper/c.csv")
    header, first_row = rows[0], rows[1]
    mine = frame[(frame["video"] == "sub/deeper/c") & (frame["frame"] == 0)].iloc[0]
    assert mine["status"] == first_row[header.index("status")]
    for column in ("x0", "lx0", "ly67"):
        cell = first_row[header.index(column)]
        assert (pd.isna(mine[column]) if cell == "" else
                mine[column] == pytest.approx(float(cell), abs=1e-3))


def _one_error_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("track_corpus: error: ")
    assert "Traceback" not in captured.err
    return lines[0]


def test_bad_arguments_exit_2_with_one_line(corpus, tiny_weights, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run("--output_dir", out) == 2
    assert "--input is required" in _one_error_line(capsys)
    assert _run("--input", tmp_path / "missing", "--output_dir", out) == 2
    assert "no such file or folder" in _one_error_line(capsys)
    empty = tmp_path / "no_videos"
    (empty / "deeper").mkdir(parents=True)
    (empty / "deeper" / "notes.txt").write_text("x")
    assert _run("--input", empty, "--output_dir", out) == 2
    assert "no video files" in _one_error_line(capsys)
    assert _run("--input", str(empty / "*.mp4"), "--output_dir", out) == 2
    assert "no video files" in _one_error_line(capsys)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert _run("--input", corpus, "--output_dir", blocker / "out") == 2
    assert "cannot write into" in _one_error_line(capsys)
    assert _run("--input", corpus, "--output_dir", out, "--mdoe", "crct") == 2
    assert "unrecognized arguments: --mdoe" in _one_error_line(capsys)
    assert _run("--input", corpus, "--output_dir", out, "--mode", "nope") == 2
    assert "unknown --mode" in _one_error_line(capsys)
    assert _run("--input", corpus, "--output_dir", out, "--weights", tmp_path) == 2
    assert "not a weights bundle" in _one_error_line(capsys)
    assert _run("--input", corpus, "--output_dir", out, "--num_workers", 0) == 2
    assert "--num_workers" in _one_error_line(capsys)
    twins = tmp_path / "twins"
    shutil.copytree(corpus, twins)
    shutil.copy(twins / "a.mp4", twins / "a.avi")
    assert _run("--input", twins, "--output_dir", out) == 2
    assert "would both write" in _one_error_line(capsys)
    assert not out.exists() or not any(out.iterdir())


def test_a_glob_selects_the_videos_and_names_them_from_its_folder(corpus):
    from crct_tf.corpus import files
    base, paths = files.find_videos(str(corpus / "sub" / "**" / "*.mp4"))
    assert base == str(corpus / "sub")
    assert [files.relative_stem(p, base) for p in paths] == ["broken", "deeper/c"]
    base, paths = files.find_videos(str(corpus))
    assert [files.relative_stem(p, base) for p in paths] == ["a", "d", "sub/b", "sub/broken",
                                                             "sub/deeper/c"]


FRAMES_PER_VIDEO = 24       # long enough that the interrupt lands while the second is tracked


def test_interrupted_run_keeps_finished_videos_and_a_rerun_completes_it(
        tmp_path, demo_clip, tiny_weights):
    corpus = make_corpus(tmp_path / "videos", demo_clip,
                         {f"v{i}.mp4": (0, FRAMES_PER_VIDEO) for i in range(3)})
    (corpus / BROKEN).unlink()
    out = tmp_path / "out"
    command = [sys.executable, "-m", "crct_tf.track_corpus", "--input", str(corpus),
               "--output_dir", str(out), "--num_workers", "1", "--weights", str(tiny_weights),
               "--runtime", "tf"]
    # SIG_DFL in the child, so that Python installs its SIGINT handler there even when this
    # test runner was started in the background by a shell (which ignores SIGINT).
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        while process.poll() is None and not list(out.glob("*.json")):
            time.sleep(0.2)
        workers = driver._children(process.pid)                 # the local runner's worker
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err[-2000:]
    assert "interrupted; finished videos are kept" in err
    assert "Traceback" not in err
    done = sorted(p.stem for p in out.glob("*.json") if p.stem != "corpus_summary")
    assert done and len(done) < 3                             # stopped in the middle
    for stem in done:                                         # complete under final names
        assert len(csv_rows(out / f"{stem}.csv")) == FRAMES_PER_VIDEO + 1
    summary = json.loads((out / "corpus_summary.json").read_text())
    assert summary["tracked"] == len(done) and "interrupted" in summary["error"]
    _wait_until_gone(workers)
    assert _run("--input", corpus, "--output_dir", out, "--num_workers", 1,
                "--weights", tiny_weights, "--runtime", "tf") == 0
    summary = json.loads((out / "corpus_summary.json").read_text())
    assert (summary["tracked"], summary["skipped"]) == (3 - len(done), len(done))
    assert sorted(f for f in _all_files(out)) == ["corpus_summary.json"] + sorted(
        f"v{i}{ext}" for i in range(3) for ext in (".csv", ".json"))


def _wait_until_gone(pids, timeout=60):
    """The interrupted run's worker processes were stopped, not left running."""
    assert pids
    deadline = time.monotonic() + timeout
    while any(os.path.exists(f"/proc/{pid}") and not _zombie(pid) for pid in pids):
        assert time.monotonic() < deadline, "the interrupted run's workers are still running"
        time.sleep(0.5)


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class _Bucket(FileSystem):
    """A Beam file system with object-store semantics (no folders, like gs://) kept in a local
    folder: `crcttest://a/b` is `root/a/b`. It stands in for Dataflow's gs:// in a test that
    runs the DoFn in this process (the in-memory runner)."""
    root = None

    @classmethod
    def scheme(cls):
        return "crcttest"

    def _local(self, url):
        return os.path.join(self.root, url[len("crcttest://"):])

    def join(self, base, *paths):
        return "/".join([base.rstrip("/")] + [p.strip("/") for p in paths])

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def mkdirs(self, path):
        pass

    def has_dirs(self):
        return False

    def _list(self, prefix):
        for folder, _, names in os.walk(self.root):
            for name in names:
                local = os.path.join(folder, name)
                url = "crcttest://" + os.path.relpath(local, self.root).replace(os.sep, "/")
                if url.startswith(prefix):
                    yield FileMetadata(url, os.path.getsize(local), os.path.getmtime(local))

    def create(self, path, mime_type=None, compression_type=None):
        os.makedirs(os.path.dirname(self._local(path)), exist_ok=True)
        return open(self._local(path), "wb")

    def open(self, path, mime_type=None, compression_type=None):
        return open(self._local(path), "rb")

    def copy(self, sources, destinations):
        for source, destination in zip(sources, destinations):
            shutil.copyfile(self._local(source), self._local(destination))

    def rename(self, sources, destinations):
        for source, destination in zip(sources, destinations):
            os.replace(self._local(source), self._local(destination))

    def exists(self, path):
        return os.path.isfile(self._local(path))

    def size(self, path):
        return os.path.getsize(self._local(path))

    def last_updated(self, path):
        return os.path.getmtime(self._local(path))

    def metadata(self, path):
        return FileMetadata(path, self.size(path), self.last_updated(path))

    def delete(self, paths):
        for path in paths:
            if os.path.isfile(self._local(path)):
                os.remove(self._local(path))


def test_remote_folders_through_beam_file_systems(first_run, corpus, tiny_weights, tmp_path,
                                                  monkeypatch):
    """gs://-like input and output: each video is copied to the worker, tracked there and its
    outputs (here also S.mp4 and S/annot/*.pts) uploaded, S.json last; the CSVs equal those of
    local folders."""
    _, local_out = first_run
    monkeypatch.setattr(_Bucket, "root", str(tmp_path / "bucket"))
    shutil.copytree(corpus, tmp_path / "bucket" / "videos")
    args = ("--input", "crcttest://videos", "--output_dir", "crcttest://tracks",
            "--num_workers", 1, "--direct_running_mode", "in_memory", "--weights", tiny_weights,
            "--runtime", "tf", "--table", "--video", "--save_pts")
    assert _run(*args) == 0
    out = tmp_path / "bucket" / "tracks"
    summary = json.loads((out / "corpus_summary.json").read_text())
    assert (summary["videos"], summary["tracked"], summary["skipped"]) == (5, 4, 0)
    assert [f["input"] for f in summary["failed"]] == ["crcttest://videos/sub/broken.mp4"]
    for relative in CLIPS:
        stem = _stem(relative)
        assert_same_track(out / f"{stem}.csv", local_out / f"{stem}.csv")
        assert json.loads((out / f"{stem}.json").read_text())["input"] == \
            f"crcttest://videos/{relative}"
        assert (out / "corpus_table" / (stem.replace("/", "%2F") + ".parquet")).is_file()
        assert (out / f"{stem}.mp4").stat().st_size > 0
        assert list((out / stem).rglob("*.pts"))
    assert not [f for f in _all_files(out) if (".track_corpus" in f or ".partial" in f)
                and (out / f).is_file()]       # (object stores have no folders; this one does)
    assert summary["failed"][0]["error"].startswith("crcttest://videos/sub/broken.mp4: ")
    assert _run(*args) == 0
    summary = json.loads((out / "corpus_summary.json").read_text())
    assert (summary["tracked"], summary["skipped"], len(summary["failed"])) == (0, 4, 1)


@pytest.mark.slow
def test_bundled_weights_give_the_tracking_commands_outputs(tmp_path, demo_clip):
    """Done when: 2 workers on a nested folder of real clips plus a text file named .mp4 give
    the CSVs of python -m crct_tf.track for each clip; exactly the broken file fails; a rerun
    skips the 4 clips; no partial file is left."""
    corpus = make_corpus(tmp_path / "videos", demo_clip,
                         {"a.mp4": (0, 30), "sub/b.avi": (30, 30), "sub/deeper/c.mp4": (60, 30),
                          "d.mp4": (90, 30)})
    out = tmp_path / "out"
    assert _run("--input", corpus, "--output_dir", out, "--num_workers", 2) == 0
    summary = json.loads((out / "corpus_summary.json").read_text())
    assert [f["input"] for f in summary["failed"]] == [str(corpus / BROKEN)]
    assert summary["tracked"] == 4
    for relative in ("a.mp4", "sub/b.avi", "sub/deeper/c.mp4", "d.mp4"):
        single = tmp_path / "single" / _stem(relative)
        assert run_track("--input", corpus / relative, "--output_dir", single,
                         "--no_video") == 0
        name = os.path.basename(_stem(relative))
        assert_same_track(single / f"{name}.csv", out / f"{_stem(relative)}.csv")
        assert _json_without_timing(single / f"{name}.json") == \
            _json_without_timing(out / f"{_stem(relative)}.json")
        with open(out / f"{_stem(relative)}.csv", newline="") as f:
            statuses = [row["status"] for row in csv.DictReader(f)]
        assert statuses.count("tracked") > len(statuses) // 2      # the real face is followed
    assert _run("--input", corpus, "--output_dir", out, "--num_workers", 2) == 0
    summary = json.loads((out / "corpus_summary.json").read_text())
    assert (summary["tracked"], summary["skipped"], len(summary["failed"])) == (0, 4, 1)
    assert not [f for f in _all_files(out) if ".partial" in f or ".track_corpus" in f]
