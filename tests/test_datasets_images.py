"""The `ibug300w` and `menpo2d` TFDS builders and the build CLI, on tiny image trees."""

import logging
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

import crct_tf.datasets  # noqa: F401  (registers the builders)
from crct_tf.datasets import build, image_files
from crct_tf.datasets.manual_dir import DatasetError
from crct_tf.geometry.landmarks import PtsError

from helpers import FACE_H as H, FACE_W as W, landmarks_for, make_300w, make_menpo, write_face


def prepare(name, manual_dir, data_dir, decoders=None):
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder, {split: sorted(tfds.as_numpy(builder.as_dataset(split=split,
                                                                      decoders=decoders)),
                                   key=lambda e: e["image/filename"])
                     for split in builder.info.splits}


def check_face(example, filename, value, gray=False):
    assert example["image/filename"] == filename.encode()
    image = example["image"]
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    expected = (value, value, value) if gray else (value, 60, 90)  # RGB
    np.testing.assert_allclose(image.reshape(-1, 3).mean(0), expected, atol=3)
    np.testing.assert_array_equal(example["landmarks"], landmarks_for(value))


@pytest.fixture(scope="module")
def ibug(tmp_path_factory):
    """300-W prepared from `manual/ibug300w/` with manual_dir = `manual/` (a parent folder)."""
    manual = tmp_path_factory.mktemp("manual")
    make_300w(str(manual / "ibug300w"))
    return prepare("ibug300w", manual, tmp_path_factory.mktemp("tfds"))


def test_ibug300w_splits_and_counts(ibug):
    builder, splits = ibug
    assert set(splits) == {"train", "test_common", "test_challenging", "test_full"}
    counts = {split: len(examples) for split, examples in splits.items()}
    assert counts == {"train": 4, "test_common": 2, "test_challenging": 1, "test_full": 3}
    assert builder.info.splits["train"].num_examples == 4


def test_ibug300w_images_and_landmarks(ibug):
    _, splits = ibug
    train = splits["train"]
    check_face(train[0], "afw/111_1.jpg", 10)
    check_face(train[1], "afw/111_2.png", 20)
    check_face(train[2], "helen/trainset/222_1.jpg", 30)
    check_face(train[3], "lfpw/trainset/image_0001.png", 40)  # 16-bit scaled to 8-bit
    full = splits["test_full"]
    check_face(full[0], "helen/testset/333_1.jpg", 50)
    check_face(full[1], "ibug/image_003_1.png", 70)  # RGBA: alpha dropped
    check_face(full[2], "lfpw/testset/image_0001.png", 60, gray=True)


def test_jpeg_files_are_stored_without_recompression(tmp_path):
    make_300w(str(tmp_path / "data"))
    _, splits = prepare("ibug300w", tmp_path / "data", tmp_path / "tfds",
                        decoders={"image": tfds.decode.SkipDecoding()})
    with open(tmp_path / "data" / "afw" / "111_1.jpg", "rb") as f:
        assert splits["train"][0]["image"] == f.read()


def test_ibug300w_official_test_split_and_skipped_images(tmp_path, caplog):
    make_300w(str(tmp_path / "data"), official_test=True)
    with caplog.at_level(logging.WARNING):
        _, splits = prepare("ibug300w", tmp_path / "data", tmp_path / "tfds")
    assert len(splits["test_300w"]) == 2
    check_face(splits["test_300w"][0], "300W/01_Indoor/indoor_001.png", 80)
    assert "1 images without a .pts file skipped" in caplog.text
    assert "trainset" in caplog.text


def test_ibug300w_partial_copy_and_empty_folder(tmp_path, caplog):
    write_face(str(tmp_path / "data" / "ibug"), "image_003_1", 70)
    with caplog.at_level(logging.WARNING):
        _, splits = prepare("ibug300w", tmp_path / "data", tmp_path / "tfds")
    assert set(splits) == {"test_challenging", "test_full"}
    assert "test_full is incomplete" in caplog.text and "helen/testset" in caplog.text
    os.makedirs(tmp_path / "empty" / "other")
    with pytest.raises(DatasetError, match="none of the folders.*empty"):
        prepare("ibug300w", tmp_path / "empty", tmp_path / "tfds2")


def test_list_image_pairs_and_read_image(tmp_path):
    write_face(str(tmp_path), "a", 10)
    write_face(str(tmp_path), "b", 20, kind="gray", pts=False)
    pairs, without_pts = image_files.list_image_pairs(str(tmp_path))
    assert pairs == [(str(tmp_path / "a.jpg"), str(tmp_path / "a.pts"))] and without_pts == 1
    assert image_files.read_image_rgb(str(tmp_path / "b.png")).shape == (H, W, 3)
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="broken.jpg"):
        image_files.read_image_rgb(str(tmp_path / "broken.jpg"))


def test_menpo2d_skips_profile_faces(tmp_path, caplog):
    make_menpo(str(tmp_path / "data"))
    with caplog.at_level(logging.WARNING):
        _, splits = prepare("menpo2d", tmp_path / "data", tmp_path / "tfds")
    assert {s: len(e) for s, e in splits.items()} == {"train": 2, "test": 1}
    check_face(splits["train"][0], "trainset/aflw__face_1.jpg", 10)
    check_face(splits["train"][1], "trainset/aflw__face_2.png", 20, gray=True)
    check_face(splits["test"][0], "testset/test_1.jpg", 40)
    assert "1 of 3 images skipped: profile faces (39 points)" in caplog.text


def test_menpo2d_train_only_and_malformed_pts(tmp_path):
    root = make_menpo(str(tmp_path / "data"), test=False)
    _, splits = prepare("menpo2d", root, tmp_path / "tfds")
    assert list(splits) == ["train"]
    write_face(os.path.join(root, "trainset"), "bad", 50, num_points=50)
    with pytest.raises(PtsError, match="bad.pts"):
        prepare("menpo2d", root, tmp_path / "tfds2")


def test_build_cli(tmp_path, capsys):
    make_menpo(str(tmp_path / "data"))
    assert build.main(["menpo2d", "--manual_dir", str(tmp_path / "data"),
                       "--data_dir", str(tmp_path / "tfds")]) == 0
    assert "train: 2" in capsys.readouterr().out
    assert build.main(["nope", "--manual_dir", str(tmp_path)]) == 2
    assert build.main(["vw300", "--manual_dir", str(tmp_path / "missing")]) == 2
    assert build.main(["ibug300w", "--manual_dir", str(tmp_path), "--config", "3d"]) == 2
    assert build.main(["vw300", "--manual_dir", str(tmp_path / "data"),
                       "--data_dir", str(tmp_path / "tfds2")]) == 2  # no 300-VW video there
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("error: ") for line in errors)
    assert "unknown dataset 'nope'" in errors[0] and "missing" in errors[1]
    assert "unknown config '3d' for ibug300w; expected: 2d, 3da2d" in errors[2]
    with pytest.raises(SystemExit) as exit_info:
        build.main(["menpo2d", "--bogus"])
    assert exit_info.value.code == 2
