"""Shared fixtures. Real assets come from the package registry through crct_tf.assets (cached)."""

import os

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
