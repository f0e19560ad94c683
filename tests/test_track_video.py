"""python -m crct_tf.track: outputs, naming, bad inputs, interruption, and a real run on the demo clip.

Most tests run the tool in-process with the stand-in networks of helpers.py (fast);
one runs the real MTCNN and an untrained bundle on the first frames of the demo clip.
"""

import json
import os
import signal

import cv2
import numpy as np
import pytest

from helpers import BOX, CLIP, DARK, save_untrained_bundle
from helpers import csv_rows as _rows, detector_at_box as _detector, run_track as _main

from crct_tf.tracking import video_io

from crct_tf import track as track_video


def test_outputs_of_a_run(stand_ins, clip_dir, tmp_path):
    out = tmp_path / "out"
    assert _main("--input", clip_dir, "--output_dir", out, "--save_pts") == 0
    rows = _rows(out / "clip.csv")
    # The one-face columns in their places, then face_id and the head pose.
    assert rows[0] == video_io.CSV_COLUMNS and len(rows[0]) == 8 + 136 + 4
    assert rows[0][-4:] == ["face_id", "yaw", "pitch", "roll"]
    assert [int(r[0]) for r in rows[1:]] == list(range(len(CLIP)))      # one row per frame
    assert [r[2] for r in rows[1:]] == ["tracked", "tracked", "lost"] + ["tracked"] * 3
    assert [r[144] for r in rows[1:]] == ["0"] * len(CLIP)
    lost = rows[3]
    assert float(lost[3]) == pytest.approx(DARK / 255, abs=1e-3)
    assert all(cell == "" for cell in lost[4:144] + lost[145:])   # no box, landmarks, pose
    assert all(cell != "" for row in rows[1:] if row[2] == "tracked" for cell in row)
    np.testing.assert_allclose([float(v) for v in rows[1][4:8]], BOX, atol=1e-3)
    summary = json.loads((out / "clip.json").read_text())
    assert {"frames", "tracked", "lost", "searching", "redetections", "ms_per_frame",
            "weights", "max_faces", "faces", "smooth"} <= set(summary)
    assert (summary["frames"], summary["tracked"], summary["lost"], summary["searching"],
            summary["redetections"]) == (6, 5, 1, 0, 1)
    assert summary["faces"] == [{"face_id": 0, "first_frame": 0, "last_frame": 5,
                                 "frames_tracked": 5, "frames_lost": 1}]
    assert summary["max_faces"] == 1 and summary["smooth"] is None
    pts = sorted(p.name for p in (out / "clip" / "annot").iterdir())
    assert pts == ["000001.pts", "000002.pts", "000004.pts", "000005.pts", "000006.pts"]
    video = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == len(CLIP)
    assert not [p for p in out.iterdir() if ".partial" in p.name]


def test_max_frames_no_video_and_overwrite(stand_ins, clip_dir, tmp_path):
    out = tmp_path / "out"
    assert _main("--input", clip_dir, "--output_dir", out, "--no_video", "--max_frames", 2,
                 "--name", "short") == 0
    assert len(_rows(out / "short.csv")) == 3 and not (out / "short.mp4").exists()
    assert _main("--input", clip_dir, "--output_dir", out, "--no_video", "--name", "short",
                 "--overwrite") == 0
    assert len(_rows(out / "short.csv")) == len(CLIP) + 1


def test_bt_mode_from_a_given_box(stand_ins, clip_dir, tmp_path):
    out = tmp_path / "out"
    box = ",".join(str(v) for v in BOX)
    assert _main("--input", clip_dir, "--output_dir", out, "--mode", "bt", "--init_box", box,
                 "--no_video") == 0
    rows = _rows(out / "clip.csv")[1:]
    assert [r[2] for r in rows] == ["tracked"] * len(CLIP)      # no validator in bt mode
    assert all(r[3] == "" for r in rows)                         # no score
    assert json.loads((out / "clip.json").read_text())["detector_calls"] == 0


def test_output_names():
    assert video_io.output_name("/data/300VW/114/vid.avi") == "114"
    assert video_io.output_name("talk.show.mp4") == "talk.show"
    assert video_io.output_name("/data/frames/") == "frames"
    assert video_io.output_name("0") == "webcam0"


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupted_run_keeps_rows_in_a_partial_csv(stand_ins, clip_dir, tmp_path, signum, code):
    def interrupt(call):
        if call == 3:                                          # while tracking frame 2
            os.kill(os.getpid(), signum)
    stand_ins.setattr(track_video, "make_detector", lambda: _detector(interrupt))
    out = tmp_path / "out"
    # Python's own SIGINT handler, as in a foreground run (a test runner started in the
    # background by a shell ignores SIGINT).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert _main("--input", clip_dir, "--output_dir", out, "--mode", "fll_mt") == code
    finally:
        signal.signal(signal.SIGINT, previous)
    rows = _rows(out / "clip.partial.csv")
    assert len(rows) == 1 + 2 and rows[0][0] == "frame"
    assert not (out / "clip.csv").exists() and not (out / "clip.json").exists()
    assert signal.getsignal(signal.SIGTERM) is not track_video._on_sigterm


def _bad_bundle(tmp_path):
    folder = tmp_path / "bad_bundle"
    folder.mkdir()
    (folder / "fv.weights.h5").write_bytes(b"not the file the manifest describes")
    (folder / "manifest.json").write_text(json.dumps({
        "format_version": 1, "parts": {"fv": {"file": "fv.weights.h5", "sha256": "0" * 64}}}))
    return folder


def _bad_inputs(tmp_path, clip_dir):
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video\n" * 20)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    no_frames = tmp_path / "no_frames.mp4"
    cv2.VideoWriter(str(no_frames), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48)).release()
    no_images = tmp_path / "no_images"
    no_images.mkdir()
    (no_images / "notes.txt").write_text("no frames here")
    clip = ["--input", clip_dir]
    weights = ["--weights", _bad_bundle(tmp_path)]        # passes the first, cheap check
    return {
        "missing": (weights + ["--input", tmp_path / "nope.mp4"], "no such file or folder"),
        "unreadable": (weights + ["--input", junk], "cannot open it as a video"),
        "empty file": (weights + ["--input", empty], "the file is empty"),
        "no frames": (weights + ["--input", no_frames], "video"),
        "no images": (weights + ["--input", no_images], "no images"),
        "mode": (clip + ["--mode", "fast"], "unknown --mode 'fast'"),
        "redetect_on": (clip + ["--redetect_on", "later"], "unknown --redetect_on"),
        "bt without box": (clip + ["--mode", "bt"], "--init_box"),
        "bad box": (clip + ["--init_box", "1,2,0,5"], "--init_box"),
        "no weights": (clip + ["--weights", tmp_path / "nothing"], "not a weights bundle"),
        "corrupt weights": (clip + weights, "sha256 differs"),
        "no saved model": (clip + ["--saved_model", tmp_path], "not a SavedModel"),
    }


@pytest.mark.parametrize("case", ["missing", "unreadable", "empty file", "no frames", "no images",
                                  "mode", "redetect_on", "bt without box", "bad box",
                                  "no weights", "corrupt weights", "no saved model"])
def test_bad_input_exits_2_with_one_line(case, clip_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(track_video, "make_detector", _detector)
    args, message = _bad_inputs(tmp_path, clip_dir)[case]
    out = tmp_path / "out"
    assert _main(*args, "--output_dir", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("track: error: ") and message in err
    assert not out.exists() or not list(out.iterdir())


def test_existing_output_needs_overwrite(stand_ins, clip_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.json").write_text("{}")
    assert _main("--input", clip_dir, "--output_dir", out) == 2
    err = capsys.readouterr().err
    assert "clip.json exists; pass --overwrite" in err and err.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == ["clip.json"]


def test_default_run_without_bundled_weights(tmp_path, capsys, monkeypatch):
    from crct_tf.tracking import runtime
    monkeypatch.setattr(runtime, "bundled_weights_dir", lambda: str(tmp_path))
    assert _main() == 2
    err = capsys.readouterr().err
    assert "the bundled weights are missing" in err and err.count("\n") == 1


# -- the real networks ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def untrained_bundle_dir(tmp_path_factory):
    """An untrained bundle on the facenet-initialised backbone."""
    return save_untrained_bundle(tmp_path_factory.mktemp("weights") / "untrained")


def test_real_tracker_on_the_demo_clip(untrained_bundle_dir, demo_clip, tmp_path):
    out = tmp_path / "demo"
    # --runtime tf: the default (LiteRT) would first convert this one-off bundle to int8, which
    # takes minutes; the default runtime's own tests use the tiny backbone.
    assert _main("--input", demo_clip, "--weights", untrained_bundle_dir, "--output_dir", out,
                 "--max_frames", 12, "--name", "demo", "--save_pts", "--runtime", "tf") == 0
    rows = _rows(out / "demo.csv")[1:]
    assert [int(r[0]) for r in rows] == list(range(12))
    assert all(r[2] == "tracked" for r in rows)                 # found on the first frame
    box = np.array([float(v) for v in rows[0][4:8]])
    centre = (box[:2] + box[2:]) / 2
    assert 60 < centre[0] < 120 and 40 < centre[1] < 100       # the talking head's face
    assert 30 < box[2] - box[0] < 90
    summary = json.loads((out / "demo.json").read_text())
    assert summary["frames"] == 12 and summary["detector_calls"] == 1
    assert len(list((out / "demo" / "annot").iterdir())) == 12
