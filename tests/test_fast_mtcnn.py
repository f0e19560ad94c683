"""The fast MTCNN (`crct_tf.tracking.fast_mtcnn`) against the `mtcnn` package it reimplements.

Parity: on the demo clip and the bootstrap photos, every detection of one has a detection of the
other with IoU >= 0.9 (the package's pyramid: the same boxes; the tracker's reduced-scale
search: the same boxes for every face at least its smallest face size).
"""

import glob
import os

import cv2
import numpy as np
import pytest

from crct_tf.tracking import detection, fast_mtcnn
from crct_tf.tracking.video_io import open_source

PARITY_IOU = 0.9


def _photos(root, per_person=None):
    files = []
    for person in sorted(glob.glob(os.path.join(root, "*", "*"))):
        files += sorted(glob.glob(os.path.join(person, "*")))[:per_person]
    return [np.ascontiguousarray(cv2.imread(f)[:, :, ::-1]) for f in files]


def _demo_frames(clip, step):
    source = open_source(clip)
    frames = [f.rgb for f in source]
    source.close()
    return frames[::step]


def _check_parity(fast, package, images, smallest=0.0):
    """Every package detection (at the fast detector's thresholds) of a face >= `smallest` (x
    the fast detector's smallest face) has a fast one with IoU >= 0.9, and every fast detection
    a package one. Returns the number of package detections matched and the worst IoU."""
    matched, worst = 0, 1.0
    for image in images:
        expected, expected_scores, _ = detection.detect_faces_with_keypoints(
            package, image, thresholds=fast.thresholds)
        got, got_scores, keypoints = fast.detect(image)
        assert got.dtype == np.float32 and keypoints.shape == (len(got), 5, 2)
        assert np.all(np.diff(got_scores) <= 0)                       # best first
        min_face = fast.min_face(*image.shape[:2]) * smallest
        for box in expected:
            if min(box[2] - box[0], box[3] - box[1]) < min_face:
                continue
            best = max((detection.box_iou(box, b) for b in got), default=0.0)
            assert best >= PARITY_IOU, (box, got)
            matched, worst = matched + 1, min(worst, best)
        for box in got:
            best = max((detection.box_iou(box, b) for b in expected), default=0.0)
            assert best >= PARITY_IOU, (box, expected)
    return matched, worst


@pytest.fixture(scope="module")
def fast():
    return fast_mtcnn.FastMtcnn(num_threads=2)


def test_package_pyramid_gives_the_package_detections(fast, mtcnn_detector, demo_clip,
                                                      facenet_photos):
    images = _demo_frames(demo_clip, 6) + _photos(facenet_photos, per_person=2)
    matched, worst = _check_parity(fast, mtcnn_detector, images)
    assert matched >= len(images) - 2                  # (nearly) every image has its face
    assert worst >= PARITY_IOU


def test_tracker_detector_finds_the_same_faces(mtcnn_detector, demo_clip, facenet_photos):
    """The tracker's search policy (faces from a tenth of the frame): the same boxes for the
    faces it searches for, on the demo clip, its 640x360 version and the photos."""
    detector = fast_mtcnn.default_detector(num_threads=2)
    frames = _demo_frames(demo_clip, 10)
    images = frames + [cv2.resize(f, (640, 360)) for f in frames[::3]] + \
        _photos(facenet_photos, per_person=2)
    matched, _ = _check_parity(detector, mtcnn_detector, images, smallest=1.0)
    assert matched >= len(images) - 2
    assert detector.min_face(360, 640) == pytest.approx(36.0)
    assert detector.thresholds == fast_mtcnn.TRACKER_THRESHOLDS == (0.6, 0.7, 0.7)
    boxes, scores = detector(images[0])                 # the tracker's detect(rgb) interface
    assert boxes.shape == (len(scores), 4)


@pytest.mark.slow
def test_parity_on_every_photo_and_frame(fast, mtcnn_detector, demo_clip, facenet_photos):
    images = _demo_frames(demo_clip, 1) + _photos(facenet_photos)
    matched, worst = _check_parity(fast, mtcnn_detector, images)
    assert matched >= len(images) - 5 and worst >= PARITY_IOU


def test_nms_is_the_packages(rng=np.random.default_rng(3)):
    from mtcnn.utils.bboxes import smart_nms_from_bboxes
    centres = rng.uniform(0, 100, (300, 2))
    sizes = rng.uniform(10, 30, (300, 1))
    boxes = np.concatenate([np.zeros((300, 1)), centres - sizes / 2, centres + sizes / 2,
                            rng.uniform(0, 1, (300, 1))], axis=1)
    for method in ("union", "min"):
        for threshold in (0.5, 0.7):
            expected = smart_nms_from_bboxes(boxes, threshold=threshold, method=method)
            ordered = fast_mtcnn._sort_desc(boxes)
            got = ordered[fast_mtcnn.package_nms(ordered, threshold, method, block=64)]
            np.testing.assert_array_equal(got, expected)


def test_crops_sample_like_crop_and_resize(rng=np.random.default_rng(4)):
    import tensorflow as tf
    image = rng.integers(0, 256, (50, 70, 3)).astype(np.uint8)
    boxes = np.array([[0, 10.3, 5.2, 40.7, 35.6, 1], [0, -8, -4, 30, 34, 1],
                      [0, 50, 30, 80, 60, 1]], np.float64)
    normalized = (image.astype(np.float64) - 127.5) / 128
    coords = boxes[:, [2, 1, 4, 3]] / np.array([50, 70, 50, 70])
    expected = tf.image.crop_and_resize(normalized[None], coords, np.zeros(3, np.int32),
                                        (24, 24)).numpy()
    exact = fast_mtcnn.crop_and_resize(image, boxes, 24, exact=True)
    np.testing.assert_allclose(exact, expected, atol=1e-5)
    fast = fast_mtcnn.crop_and_resize(image, boxes, 24)         # cv2.remap: 1/32 pixel weights
    np.testing.assert_allclose(fast, expected, atol=0.03)
    on_float = fast_mtcnn.crop_and_resize(normalized.astype(np.float32), boxes, 24,
                                          normalized=True)
    np.testing.assert_allclose(on_float, expected, atol=0.01)


def test_no_face_and_bad_input(fast):
    flat = np.full((120, 160, 3), 128, np.uint8)
    boxes, scores, keypoints = fast.detect(flat)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and keypoints.shape == (0, 5, 2)
    tiny = np.zeros((8, 8, 3), np.uint8)                       # smaller than P-Net's window
    assert len(fast.detect(tiny)[0]) == 0
    with pytest.raises(ValueError, match="RGB image"):
        fast.detect(np.zeros((10, 10), np.uint8))


def test_pyramid_is_the_packages_minus_the_finest_levels():
    from mtcnn.utils.images import build_scale_pyramid
    for height, width in ((144, 176), (360, 640), (720, 1280), (300, 300)):
        expected = build_scale_pyramid(width, height, min_face_size=20, scale_factor=0.709)
        np.testing.assert_allclose(fast_mtcnn.scale_pyramid(height, width), expected)
        reduced = fast_mtcnn.scale_pyramid(height, width, smallest_face=0.1 * min(height, width))
        assert set(np.round(reduced, 9)) <= set(np.round(expected, 9))
        assert reduced.max() <= 12 / max(20, 0.1 * min(height, width)) + 1e-9


def test_models_are_rebuilt_when_a_cached_file_is_altered(tmp_path):
    lines = []
    folder = fast_mtcnn.ensure_models(cache_dir=str(tmp_path), progress=lines.append)
    assert len(lines) == 1 and "converting the MTCNN networks" in lines[0]
    assert fast_mtcnn.ensure_models(cache_dir=str(tmp_path), progress=lines.append) == folder
    assert len(lines) == 1                                       # cached: no conversion
    with open(os.path.join(folder, "rnet.tflite"), "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02\x03")
    fast_mtcnn.ensure_models(cache_dir=str(tmp_path), progress=lines.append)
    assert len(lines) == 2 and "stale" in lines[1]
    detector = fast_mtcnn.FastMtcnn(models_dir=folder, num_threads=1)
    assert len(detector.detect(np.full((60, 60, 3), 128, np.uint8))[0]) == 0
