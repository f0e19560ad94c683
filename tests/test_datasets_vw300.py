"""The 300-VW reader and the `vw300` TFDS builder, on tiny videos written here with OpenCV."""

import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from crct_tf import datasets
from crct_tf.datasets import vw300
from crct_tf.datasets.manual_dir import DatasetError, ordered_key
from crct_tf.geometry.landmarks import PtsError, write_pts

from helpers import (HEIGHT, NO_ANNOT2, NUM_FRAMES, WIDTH, expected_landmarks, frame_value,
                     make_vw300_tree)

def load_split(manual_dir, data_dir, split, config="2d"):
    dataset = tfds.load(
        f"vw300/{config}", split=split, data_dir=str(data_dir),
        download_and_prepare_kwargs={
            "download_config": tfds.download.DownloadConfig(manual_dir=str(manual_dir))})
    return list(tfds.as_numpy(dataset))


def check_frames(examples, video_id, indices, annot2=False):
    assert [e["frame_index"] for e in examples] == list(indices)
    for example, index in zip(examples, indices):
        assert example["video_id"] == video_id.encode()
        assert example["image"].shape == (HEIGHT, WIDTH, 3)
        assert example["image"].dtype == np.uint8
        assert abs(example["image"][..., 0].mean() - frame_value(index)) < 6
        np.testing.assert_array_equal(example["landmarks"],
                                      expected_landmarks(video_id, index, annot2))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_vw300_tree(str(tmp_path_factory.mktemp("vw300")))


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory):
    """The data_dir of a `vw300/2d` and `vw300/3da2d` prepared from `tree`."""
    data_dir = tmp_path_factory.mktemp("tfds")
    for config in ("2d", "3da2d"):
        load_split(tree, data_dir, "train", config)
    return data_dir


def test_registered():
    for name in datasets.BUILDER_NAMES:
        # The project's own registry-fetched sets need no manual_dir.
        if name not in ("crct_bootstrap", "crct_registry_faces", "crct_video_frames"):
            assert tfds.builder_cls(name).MANUAL_DOWNLOAD_INSTRUCTIONS
    for name in ("vw300", "ibug300w", "menpo2d"):
        assert set(tfds.builder_cls(name).builder_configs) == {"2d", "3da2d"}
        assert tfds.builder(name).builder_config.name == "2d"


def test_iter_video_reads_annotated_frames_in_order(tree):
    frames = list(datasets.iter_vw300_video(os.path.join(tree, "001")))
    assert [f[0] for f in frames] == list(range(NUM_FRAMES))
    for index, rgb, points in frames:
        assert rgb.shape == (HEIGHT, WIDTH, 3) and rgb.dtype == np.uint8
        assert abs(rgb[..., 0].mean() - frame_value(index)) < 6  # RGB, not BGR
        np.testing.assert_array_equal(points, expected_landmarks("001", index))


def test_iter_video_frame_step_start_stop_and_annot2(tree):
    video = os.path.join(tree, "001")
    assert [f[0] for f in vw300.iter_vw300_video(video, frame_step=3)] == [0, 3]
    assert [f[0] for f in vw300.iter_vw300_video(video, frame_step=2, start=1)] == [1, 3, 5]
    assert [f[0] for f in vw300.iter_vw300_video(video, start=2, stop=4)] == [2, 3]
    index, rgb, points = next(vw300.iter_vw300_video(video, annot_dir="annot2", start=4))
    assert index == 4 and abs(rgb[..., 0].mean() - frame_value(4)) < 6
    np.testing.assert_array_equal(points, expected_landmarks("001", 4, annot2=True))


def test_iter_video_skips_and_counts_frame_without_pts(tree, caplog):
    with caplog.at_level(logging.WARNING):
        frames = list(vw300.iter_vw300_video(os.path.join(tree, "114")))
    assert [f[0] for f in frames] == [0, 1, 3, 4, 5]
    for index, rgb, points in frames:  # later frames stay aligned with their .pts
        assert abs(rgb[..., 0].mean() - frame_value(index)) < 6
        np.testing.assert_array_equal(points, expected_landmarks("114", index))
    assert "1 frames without a .pts" in caplog.text and "114" in caplog.text


def test_iter_video_warns_about_pts_beyond_the_last_frame(tmp_path, caplog):
    root = make_vw300_tree(str(tmp_path))
    write_pts(os.path.join(root, "203", "annot", vw300.pts_name(NUM_FRAMES)),
              expected_landmarks("203", NUM_FRAMES))
    with caplog.at_level(logging.WARNING):
        frames = list(vw300.iter_vw300_video(os.path.join(root, "203")))
    assert len(frames) == NUM_FRAMES
    assert "1 .pts files" in caplog.text and "beyond the 6 decoded frames" in caplog.text


def test_list_videos_warns_about_missing_videos(tree, caplog):
    with caplog.at_level(logging.WARNING):
        entries = vw300.list_vw300_videos(tree, "train")
    assert [e.video_id for e in entries] == ["001", "002"]
    assert entries[0].video_path == os.path.join(tree, "001", "vid.avi")
    assert entries[1].video_dir == os.path.join(tree, "002")
    assert "48 of 50 videos missing" in caplog.text and "003 004 007" in caplog.text
    assert [e.video_id for e in vw300.list_vw300_videos(tree, "test")] == ["114", "203", "410"]


def test_list_videos_skips_video_without_annot_dir(tree, caplog):
    with caplog.at_level(logging.WARNING):
        entries = vw300.list_vw300_videos(tree, "train", annot_dir="annot2")
    assert [e.video_id for e in entries] == ["001"]
    assert os.path.join(tree, NO_ANNOT2) in caplog.text and "annot2" in caplog.text


def test_list_videos_accepts_parent_folder(tmp_path):
    make_vw300_tree(str(tmp_path / "vw300"))
    assert [e.video_id for e in vw300.list_vw300_videos(tmp_path, "test_cat2")] == ["203"]


def test_split_without_video_is_an_error(tmp_path):
    root = make_vw300_tree(str(tmp_path / "data"))
    shutil.rmtree(os.path.join(root, "410"))
    with pytest.raises(DatasetError, match=r"test_cat3.*no video found in .*data"):
        vw300.list_vw300_videos(root, "test_cat3")
    builder = tfds.builder("vw300", data_dir=str(tmp_path / "tfds"))
    with pytest.raises(DatasetError, match="test_cat3"):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=root))


def test_builder_2d_splits_frames_and_landmarks(tree, prepared):
    builder = tfds.builder("vw300/2d", data_dir=str(prepared))
    assert builder.info.splits["train"].num_examples == 2 * NUM_FRAMES
    assert builder.info.splits["test_cat1"].num_examples == NUM_FRAMES - 1
    train = load_split(tree, prepared, "train")
    check_frames(train[:NUM_FRAMES], "001", range(NUM_FRAMES))
    check_frames(train[NUM_FRAMES:], "002", range(NUM_FRAMES))
    check_frames(load_split(tree, prepared, "test_cat1"), "114", [0, 1, 3, 4, 5])
    check_frames(load_split(tree, prepared, "test_cat2"), "203", range(NUM_FRAMES))
    check_frames(load_split(tree, prepared, "test_cat3"), "410", range(NUM_FRAMES))


def test_builder_3da2d_reads_annot2(tree, prepared):
    train = load_split(tree, prepared, "train", "3da2d")
    check_frames(train, "001", range(NUM_FRAMES), annot2=True)  # 002 has no annot2/
    test = load_split(tree, prepared, "test_cat1+test_cat2", "3da2d")
    check_frames(test[:NUM_FRAMES], "114", range(NUM_FRAMES), annot2=True)
    check_frames(test[NUM_FRAMES:], "203", range(NUM_FRAMES), annot2=True)


def test_custom_config_with_a_subset_of_splits(tree, tmp_path):
    config = vw300.Vw300Config(name="cat3_annot2", annot_dir="annot2", splits=("test_cat3",))
    builder = tfds.builder("vw300", config=config, data_dir=str(tmp_path))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=tree))
    assert list(builder.info.splits) == ["test_cat3"]
    examples = list(tfds.as_numpy(builder.as_dataset(split="test_cat3")))
    check_frames(examples, "410", range(NUM_FRAMES), annot2=True)


def _prepare_cat2(root, data_dir):
    config = vw300.Vw300Config(name="cat2", splits=("test_cat2",))
    builder = tfds.builder("vw300", config=config, data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=root))


def test_malformed_pts_is_an_error_naming_the_file(tmp_path):
    root = make_vw300_tree(str(tmp_path / "data"))
    bad = os.path.join(root, "203", "annot", vw300.pts_name(3))
    with open(bad, "w") as f:
        f.write("version: 1\nn_points: 68\n{\n1.0 oops\n}\n")
    with pytest.raises(PtsError, match="000004.pts"):
        _prepare_cat2(root, tmp_path / "tfds")


def test_unreadable_video_is_an_error_naming_the_file(tmp_path):
    root = make_vw300_tree(str(tmp_path / "data"))
    with open(os.path.join(root, "203", "vid.avi"), "wb") as f:
        f.write(b"not a video" * 100)
    with pytest.raises(DatasetError, match=r"203.vid\.avi"):
        _prepare_cat2(root, tmp_path / "tfds")
    with pytest.raises(DatasetError, match=r"203.vid\.avi"):
        next(vw300.iter_vw300_video(os.path.join(root, "203")))


def test_order_kept_through_disk_buckets_and_shards(tree, tmp_path, monkeypatch):
    """Beyond 1 GB TFDS sorts on disk, bucket by bucket: force that path and several shards."""
    from tensorflow_datasets.core import shuffle
    monkeypatch.setattr(shuffle, "MAX_MEM_BUFFER_SIZE", 0)
    config = vw300.Vw300Config(name="train_only", splits=("train",))
    builder = tfds.builder("vw300", config=config, data_dir=str(tmp_path))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=tree, num_shards=3))
    assert len(builder.info.splits["train"].shard_lengths) == 3
    train = list(tfds.as_numpy(builder.as_dataset(split="train")))
    check_frames(train[:NUM_FRAMES], "001", range(NUM_FRAMES))
    check_frames(train[NUM_FRAMES:], "002", range(NUM_FRAMES))


def test_ordered_key_keeps_order_and_spreads_videos():
    keys = [ordered_key(g, 3, i) for g in range(3) for i in (0, 1, 5000)]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert max(keys) < 2 ** 128
    assert ordered_key(1, 3, 0) >= 2 ** 126  # the second of 3 videos starts a quarter up
    with pytest.raises(ValueError):
        ordered_key(3, 3, 0)
