"""The bootstrap set (real photos + teacher labels), its TFDS builder, and the MTCNN box map."""

import hashlib
import importlib.util
import os
import re

import numpy as np
import pytest
import tensorflow_datasets as tfds

import crct_tf.datasets  # noqa: F401  (registers the builders)
from crct_tf.tracking import detection
from crct_tf.geometry import landmarks as lm
from crct_tf.datasets import crct_bootstrap

from helpers import load_tool

PHOTOS_PER_SPLIT = {"train": 93, "val": 25}  # the facenet_photos asset


@pytest.fixture(scope="module")
def labels():
    return crct_bootstrap.load_labels()


@pytest.fixture(scope="module")
def examples(facenet_photos):
    return {split: crct_bootstrap.load_bootstrap_examples(split, facenet_photos)
            for split in crct_bootstrap.SPLITS}




def test_label_file_names_its_teacher_and_counts(labels):
    teacher = labels["teacher"]
    assert "dlib" in teacher["name"] and "non-commercial" in teacher["name"]
    assert teacher["dlib_version"] and teacher["face_recognition_models_version"]
    assert re.fullmatch(r"[0-9a-f]{64}", teacher["predictor_sha256"])
    dropped = 0
    for split, count in labels["counts"].items():
        assert count["photos"] == PHOTOS_PER_SPLIT[split]
        entries = crct_bootstrap.split_entries(labels, split)
        assert count["labelled"] == len(entries)
        failures = count["photos"] - count["labelled"]
        assert failures == sum(v for k, v in count.items() if k not in ("photos", "labelled"))
        dropped += failures
    assert dropped == len(labels["dropped"])
    assert len(crct_bootstrap.split_entries(labels, "train")) >= 75
    assert len(crct_bootstrap.split_entries(labels, "val")) >= 20


def test_predictor_checksum_matches_the_installed_teacher(labels):
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        pytest.skip("the teacher extra is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "models",
                        "shape_predictor_68_face_landmarks.dat")
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == labels["teacher"]["predictor_sha256"]


def test_no_val_photo_is_in_train(labels, facenet_photos):
    paths = {s: [e["path"] for e in crct_bootstrap.split_entries(labels, s)]
             for s in crct_bootstrap.SPLITS}
    assert all(p.startswith("train/") for p in paths["train"])
    assert all(p.startswith("val/") for p in paths["val"])

    def digests(split):
        out = set()
        for path in paths[split]:
            with open(os.path.join(facenet_photos, path), "rb") as f:
                out.add(hashlib.sha256(f.read()).hexdigest())
        return out
    assert not digests("train") & digests("val")  # same people, never the same photo
    people = {s: {e["person"] for e in crct_bootstrap.split_entries(labels, s)}
              for s in crct_bootstrap.SPLITS}
    assert people["train"] == people["val"] and len(people["val"]) == 5


def test_landmarks_lie_inside_their_photos(examples):
    for split, items in examples.items():
        for ex in items:
            h, w = ex["image"].shape[:2]
            points = ex["landmarks"]
            assert ex["image"].dtype == np.uint8 and points.shape == (68, 2)
            assert points.min() >= 0 and points[:, 0].max() <= w - 1
            assert points[:, 1].max() <= h - 1, ex["image/filename"]
            box = lm.box_from_landmarks(points)
            assert detection.box_iou(detection.MtcnnBoxMap().apply(ex["mtcnn_box"]), box) > 0.3


def test_tfds_builder_prepares_both_splits(tmp_path, examples):
    builder = tfds.builder("crct_bootstrap", data_dir=str(tmp_path))
    builder.download_and_prepare()
    assert builder.info.version == "1.0.0"
    assert {s: builder.info.splits[s].num_examples for s in ("train", "val")} == \
        {s: len(examples[s]) for s in ("train", "val")}
    by_name = {ex["image/filename"]: ex for ex in examples["val"]}
    for record in tfds.as_numpy(builder.as_dataset(split="val")):
        reference = by_name[record["image/filename"].decode()]
        assert record["image"].dtype == np.uint8
        assert record["image"].shape == reference["image"].shape
        assert np.abs(record["image"].astype(int) - reference["image"]).mean() < 2.0
        np.testing.assert_array_equal(record["landmarks"], reference["landmarks"])
        np.testing.assert_array_equal(record["mtcnn_box"], reference["mtcnn_box"])
        assert record["person"].decode() == reference["person"]


def test_box_map_fit_recovers_a_known_map_and_round_trips():
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 100, (20, 2))
    mtcnn = np.concatenate([corner, corner + rng.uniform(40, 120, (20, 2))], axis=1)
    truth = detection.MtcnnBoxMap(dx=-0.02, dy=0.15, sx=1.05, sy=0.77)
    fitted = detection.MtcnnBoxMap.fit(mtcnn, truth.apply(mtcnn))
    np.testing.assert_allclose([fitted.dx, fitted.dy, fitted.sx, fitted.sy],
                               [-0.02, 0.15, 1.05, 0.77], atol=1e-5)
    assert detection.MtcnnBoxMap.from_dict(fitted.to_dict()) == fitted
    np.testing.assert_allclose(detection.MtcnnBoxMap().apply(mtcnn), mtcnn, atol=1e-4)
    with pytest.raises(ValueError):
        detection.MtcnnBoxMap.from_dict({"dx": 0.0, "scale": 1.0})


def test_stored_box_map_is_the_fit_on_train_labels(labels):
    train = crct_bootstrap.split_entries(labels, "train")
    mtcnn = np.array([e["mtcnn_box"] for e in train], np.float32)
    boxes = lm.box_from_landmarks(np.array([e["landmarks"] for e in train], np.float32))
    stored = crct_bootstrap.mtcnn_box_map(labels)
    assert detection.MtcnnBoxMap.fit(mtcnn, boxes) == stored
    assert 0.0 < stored.dy < 0.3 and stored.sy < 1.0  # landmark boxes sit low in MTCNN's
    assert detection.box_map_error(stored, mtcnn, boxes)["mean_iou"] > 0.8


class _FakeMtcnn:
    def detect_faces(self, image, **kwargs):
        del image, kwargs
        keypoints = {k: (1.0, 2.0) for k in detection.MTCNN_KEYPOINTS}
        return [{"box": [10, 20, 30, 40], "confidence": 0.7, "keypoints": keypoints},
                {"box": [1, 2, 3, 4], "confidence": 0.9, "keypoints": keypoints}]


def test_detect_faces_converts_xywh_and_sorts_by_score():
    boxes, scores = detection.detect_faces(_FakeMtcnn(), np.zeros((50, 60, 3), np.uint8))
    np.testing.assert_array_equal(boxes, [[1, 2, 4, 6], [10, 20, 40, 60]])
    np.testing.assert_allclose(scores, [0.9, 0.7])
    assert detection.largest_box_index(boxes) == 1


def test_mtcnn_on_real_photos_maps_to_the_landmark_box(mtcnn_detector, examples, labels):
    box_map = crct_bootstrap.mtcnn_box_map(labels)
    for ex in examples["val"][:2]:
        boxes, scores = detection.detect_faces(mtcnn_detector, ex["image"])
        best = detection.largest_box_index(boxes)
        np.testing.assert_allclose(boxes[best], ex["mtcnn_box"], atol=1.0)
        assert scores[best] > 0.8
        iou = detection.box_iou(box_map.apply(boxes[best]), lm.box_from_landmarks(ex["landmarks"]))
        assert iou > 0.6


def test_keypoint_disagreement_is_zero_for_matching_points():
    tool = load_tool("label_with_teacher")
    points = np.zeros((68, 2), np.float32)
    points[36:42], points[42:48] = (10, 10), (30, 10)
    points[30], points[48], points[54] = (20, 20), (12, 30), (28, 30)
    keypoints = [(30, 10), (10, 10), (20, 20), (28, 30), (12, 30)]  # other left/right order
    assert tool.keypoint_disagreement(points, keypoints, [0, 0, 40, 40]) == pytest.approx(0.0)
    assert tool.keypoint_disagreement(points + 4, keypoints, [0, 0, 40, 30]) == pytest.approx(
        np.hypot(4, 4) / 50.0)


def test_teacher_labels_video_frames_in_300vw_layout(tmp_path, demo_clip, mtcnn_detector, labels):
    pytest.importorskip("dlib")
    tool = load_tool("label_with_teacher")
    teacher_map = detection.MtcnnBoxMap.from_dict(labels["teacher"]["teacher_box_map"])
    written, read = tool.label_video(demo_clip, str(tmp_path), mtcnn_detector,
                                     tool.predictor_path(), teacher_map, max_frames=2)
    assert (written, read) == (2, 2)
    assert sorted(os.listdir(tmp_path / "annot")) == ["000001.pts", "000002.pts"]
    points = lm.read_pts(str(tmp_path / "annot" / "000001.pts"))
    assert points.min() >= 0 and points[:, 0].max() < 176 and points[:, 1].max() < 144
