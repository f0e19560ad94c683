"""python -m crct_tf.track on bad input, full disks, odd paths and SIGTERM (issue 9, docs/errors.md).

Uses the stand-in networks of helpers.py (fast). Every bad case ends with exit 2 and one
line on stderr, or a run that completes; never a traceback, never a complete-looking partial file.
"""

import errno
import json
import os
import signal

import cv2
import numpy as np
import pytest

from helpers import BRIGHT, REPO, frame
from helpers import csv_rows as _rows, detector_at_box as _detector, run_track as _main

from crct_tf import track as track_video

from crct_tf.tracking import video_io


def _one_error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("track: error: "), err
    return lines[0]


def _no_complete_outputs(out, name="clip"):
    assert not (out / f"{name}.csv").exists() and not (out / f"{name}.json").exists()


def _write_avi(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25,
                             (frames[0].shape[1], frames[0].shape[0]))
    for image in frames:
        writer.write(image)
    writer.release()


def test_truncated_video_tracks_the_readable_frames_or_fails_cleanly(stand_ins, tmp_path, capsys):
    video = tmp_path / "truncated.avi"
    _write_avi(video, [frame(BRIGHT)[:, :, ::-1]] * 20)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    code = _main("--input", video, "--output_dir", out, "--no_video")
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 0:                          # OpenCV read the frames before the cut
        rows = _rows(out / "truncated.csv")
        assert 1 <= len(rows) - 1 < 20
        assert "ended after" in err and "of the 20 frames" in err      # and says so
        assert json.loads((out / "truncated.json").read_text())["frames_announced"] == 20
    else:
        assert code == 2 and "truncated.avi" in err
        _no_complete_outputs(out, "truncated")




def test_frames_that_change_size_grayscale_16bit_rgba_and_1x1(stand_ins, tmp_path, capsys):
    folder = tmp_path / "sizes"
    folder.mkdir()
    base = frame(BRIGHT)[:, :, ::-1]
    cv2.imwrite(str(folder / "1.png"), base)
    cv2.imwrite(str(folder / "2.png"), cv2.resize(base, None, fx=2, fy=2))       # larger
    cv2.imwrite(str(folder / "3.png"), base[:, :, 0])                               # grayscale
    cv2.imwrite(str(folder / "4.png"), base.astype(np.uint16) * 257)                # 16-bit
    cv2.imwrite(str(folder / "5.png"), np.dstack([base, np.full(base.shape[:2], 9, np.uint8)]))
    cv2.imwrite(str(folder / "6.png"), np.full((1, 1, 3), 200, np.uint8))          # 1x1
    out = tmp_path / "out"
    assert _main("--input", folder, "--output_dir", out) == 0, capsys.readouterr().err
    rows = _rows(out / "sizes.csv")
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3", "4", "5"]
    assert (out / "sizes.mp4").stat().st_size > 0


def test_an_8000x6000_frame(stand_ins, tmp_path, capsys):
    folder = tmp_path / "huge"
    folder.mkdir()
    big = np.zeros((6000, 8000, 3), np.uint8)
    big[2000:4000, 3000:5000] = BRIGHT
    assert cv2.imwrite(str(folder / "1.png"), big, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    out = tmp_path / "out"
    assert _main("--input", folder, "--output_dir", out, "--no_video") == 0, \
        capsys.readouterr().err
    assert len(_rows(out / "huge.csv")) == 2


def test_paths_with_spaces_and_non_ascii(stand_ins, clip_dir, tmp_path, capsys):
    folder = tmp_path / "clip ü 名前"
    clip_dir.rename(folder)
    out = tmp_path / "out dir é"
    assert _main("--input", folder, "--output_dir", out, "--save_pts") == 0, \
        capsys.readouterr().err
    assert len(_rows(out / "clip ü 名前.csv")) == 7
    assert (out / "clip ü 名前.mp4").exists() and (out / "clip ü 名前" / "annot").is_dir()


def test_output_dir_under_a_regular_file(stand_ins, clip_dir, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert _main("--input", clip_dir, "--output_dir", blocker / "out") == 2
    line = _one_error_line(capsys)
    assert "a_file" in line


def _full_disk_after(n_calls, real):
    calls = []

    def write(*args, **kwargs):
        calls.append(1)
        if len(calls) >= n_calls:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/full/disk/file")
        return real(*args, **kwargs)
    return write


def test_disk_full_while_writing_rows(stand_ins, clip_dir, tmp_path, capsys):
    stand_ins.setattr(video_io.TrackOutputs, "write_row",
                      _full_disk_after(3, video_io.TrackOutputs.write_row))
    out = tmp_path / "out"
    assert _main("--input", clip_dir, "--output_dir", out) == 2
    line = _one_error_line(capsys)
    assert "No space left on device" in line
    assert not out.exists() or not list(out.iterdir())        # partial files removed


def test_disk_full_while_renaming_at_the_end(stand_ins, clip_dir, tmp_path, capsys):
    stand_ins.setattr(video_io.os, "replace", _full_disk_after(1, os.replace))
    out = tmp_path / "out"
    assert _main("--input", clip_dir, "--output_dir", out, "--no_video") == 2
    assert "No space left on device" in _one_error_line(capsys)
    _no_complete_outputs(out)
    assert not (out / "clip.partial.csv").exists()


def test_disk_full_while_writing_pts(stand_ins, clip_dir, tmp_path, capsys):
    stand_ins.setattr(video_io, "write_pts", _full_disk_after(2, video_io.write_pts))
    out = tmp_path / "out"
    assert _main("--input", clip_dir, "--output_dir", out, "--save_pts", "--no_video") == 2
    assert "No space left on device" in _one_error_line(capsys)
    assert not out.exists() or not list(out.iterdir())


def test_sigterm_before_the_first_row_leaves_no_complete_output(stand_ins, clip_dir, tmp_path):
    def interrupt(call):
        os.kill(os.getpid(), signal.SIGTERM)
    stand_ins.setattr(track_video, "make_detector", lambda: _detector(interrupt))
    out = tmp_path / "out"
    assert _main("--input", clip_dir, "--output_dir", out, "--mode", "fll_mt") == 143
    _no_complete_outputs(out)
    rows = _rows(out / "clip.partial.csv") if (out / "clip.partial.csv").exists() else [[]]
    assert len(rows) <= 2


def test_a_saved_model_of_another_model(tmp_path, capsys):
    import tensorflow as tf

    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x):
            return 2 * x

    tf.saved_model.save(Other(), str(tmp_path / "other"))
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "1.png"), frame(BRIGHT))
    assert _main("--input", frames, "--saved_model", tmp_path / "other", "--output_dir",
                 tmp_path / "out", "--mode", "bt", "--init_box", "1,1,20,20") == 2
    assert "other" in _one_error_line(capsys)


class _ResizingCapture:
    """A stand-in cv2.VideoCapture whose frames change size mid-stream (some encoders do)."""

    def __init__(self, *args):
        base = frame(BRIGHT)[:, :, ::-1]
        self._frames = [base, base, cv2.resize(base, None, fx=1.5, fy=1.5), base[:100, :120]]

    def isOpened(self):
        return True

    def read(self):
        return (True, self._frames.pop(0)) if self._frames else (False, None)

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 25.0, cv2.CAP_PROP_FRAME_COUNT: 4}.get(prop, 0)

    def release(self):
        pass


def test_a_video_whose_frames_change_size(stand_ins, tmp_path, capsys):
    video = tmp_path / "resizing.mp4"
    video.write_bytes(b"\x00" * 100)
    stand_ins.setattr(video_io.cv2, "VideoCapture", _ResizingCapture)
    out = tmp_path / "out"
    assert _main("--input", video, "--output_dir", out) == 0, capsys.readouterr().err
    assert len(_rows(out / "resizing.csv")) == 5
    assert (out / "resizing.mp4").stat().st_size > 0


@pytest.mark.slow
def test_benchmark_memory_runs_and_memory_stays_flat():
    """tools/benchmark_memory.py on short clips (the figures in docs/errors.md are 1k / 10k)."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, str(REPO) + "/tools/benchmark_memory.py",
                           "--frames", "50,300", "--width", "320", "--height", "240"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.startswith("| 50 ")
            or line.startswith("| 300 ")]
    peaks = [float(row[3]) for row in rows]
    assert len(peaks) == 2 and abs(peaks[1] - peaks[0]) < 0.05 * peaks[0], proc.stdout
