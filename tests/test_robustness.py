"""The robustness benchmark's sequences, and the paper's claim on a short occluded sequence with
the bundled weights: the full tracker fails no more often than tracking by detection (FLL_MT).

The sequences are real: a bootstrap `val` photo (never trained on) with its teacher (dlib)
landmarks, moved, blurred, dimmed and partly hidden; the ground truth moves with it.
"""

import numpy as np
import pytest

from helpers import load_tool

from crct_tf.evaluation import robustness
from crct_tf.evaluation.robustness import Occlusion, SequenceSpec

# A hand over the mouth, then a bright strip across the upper lip: MTCNN still finds the face
# under both, so FLL_MT keeps it; the full tracker keeps it only if FV accepts the hidden face.
OCCLUDED = SequenceSpec("test_hand_and_strip", "frontal", "ben_afflek/httpafilesbiography",
                        max_degrees=20, light=(0.6, 1.2),
                        occlusions=(Occlusion("hand", 8, 22), Occlusion("lip_strip", 28, 40)),
                        phase=2.7)
EYE_BAR = SequenceSpec("test_eye_bar", "frontal", "elton_john/httpafilesbiography",
                       max_degrees=25, light=(0.7, 1.3), occlusions=(Occlusion("eye_bar", 5, 30),),
                       phase=3.5)
FRAMES = 44


@pytest.fixture(scope="module")
def val_examples():
    from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples
    return load_bootstrap_examples("val")


@pytest.fixture(scope="module")
def runtime():
    from crct_tf.tracking.runtime import load_runtime
    return load_runtime()


def _tool(name):
    return load_tool(name)


def test_sequences_are_deterministic_and_keep_points_on_the_face(val_examples):
    a = robustness.build_sequence(OCCLUDED, val_examples, FRAMES)
    b = robustness.build_sequence(OCCLUDED, val_examples, FRAMES)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.landmarks, b.landmarks)
    assert a.frames.shape == (FRAMES, 240, 320, 3) and a.landmarks.shape == (FRAMES, 68, 2)
    # Occluders only in their frames, never over more than 30 % of the face.
    assert set(a.occluded_frames()) == set(range(8, 22)) | set(range(28, 40))
    assert a.occluded.max() <= robustness.MAX_OCCLUDED + 0.02
    # The ground truth follows the motion: every point inside the frame, the face turns.
    assert (a.landmarks >= 0).all() and (a.landmarks[..., 0] < 320).all()
    eyes = a.landmarks[:, 45] - a.landmarks[:, 36]
    angles = np.degrees(np.arctan2(eyes[:, 1], eyes[:, 0]))
    assert np.ptp(angles) > 15
    assert 0.55 <= a.light.min() and a.light.max() <= 1.25


def test_every_benchmark_sequence_builds(val_examples):
    sequences = robustness.build_sequences(frames=24, examples=val_examples)
    assert len(sequences) >= 6
    assert {s.spec.category for s in sequences} == {"frontal", "semi-profile"}
    assert any(s.spec.second_face for s in sequences)
    kinds = {o.kind for s in sequences for o in s.spec.occlusions}
    assert {"lip_strip", "hand", "eye_bar"} <= kinds


def test_scores_count_failures_and_status_changes(val_examples):
    sequence = robustness.build_sequence(OCCLUDED, val_examples, FRAMES)
    perfect = [{"status": "tracked", "landmarks": p, "calls": 0} for p in sequence.landmarks]
    row = robustness.score(perfect, sequence, "crct")
    assert row["auc"] == pytest.approx(1.0) and row["fr"] == 0 and row["status_changes"] == 0
    lost = list(perfect)
    for t in range(10, 14):
        lost[t] = {"status": "lost", "landmarks": None, "calls": 1}
    row = robustness.score(lost, sequence, "crct")
    assert row["fr"] == pytest.approx(100 * 4 / FRAMES)
    assert row["status_changes"] == 2 and row["max_changes_per_event"] == 2
    assert row["detector_per_100"] == pytest.approx(100 * 4 / FRAMES)


def test_the_table_shows_the_claim_and_the_paired_interval():
    rows = [{"sequence": "s", "mode": "crct", "auc": 0.70, "fr": 0.0, "median_nme": 0.02,
             "status_changes": 0, "max_changes_per_event": 0, "detector_per_100": 1.0,
             "fv_reject_truth": 0.0, "fv_reject_truth_occluded": None,
             "auc_minus_fll_mt": [-0.002, -0.011, 0.006]},
            {"sequence": "s", "mode": "fll_mt", "auc": 0.702, "fr": 0.0, "median_nme": 0.02,
             "status_changes": 0, "max_changes_per_event": 0, "detector_per_100": 100.0}]
    line = robustness.format_table(rows).splitlines()[-1]
    assert line.endswith("| fails | -0.002 (-0.011 to +0.006) |")
    assert not robustness.claim_holds(rows)


# The FV bundled before the robust scheme (the authors' example scheme) rejected about half of
# the eye-bar frames at the TRUE points; this fails on it.
def test_validator_accepts_true_points_of_hidden_faces(runtime, val_examples):
    t_c = runtime.constants["tracker"]["t_c"]
    for spec in (OCCLUDED, EYE_BAR):
        sequence = robustness.build_sequence(spec, val_examples, FRAMES)
        p_face = robustness.fv_on_truth(runtime, sequence)[sequence.occluded_frames()]
        assert np.mean(p_face >= t_c) >= 0.9, (spec.name, np.round(p_face, 2))


def test_full_tracker_fails_no_more_than_tracking_by_detection(runtime, val_examples,
                                                               mtcnn_detector):
    from crct_tf.tracking import detection
    sequence = robustness.build_sequence(OCCLUDED, val_examples, FRAMES)
    detect = robustness.CachedDetector(
        lambda rgb: detection.detect_faces(mtcnn_detector, rgb))
    rows = {mode: robustness.score(robustness.run_mode(runtime, sequence, mode, detect),
                                   sequence, mode) for mode in ("crct", "fll_mt")}
    crct, fll_mt = rows["crct"], rows["fll_mt"]
    assert crct["fr"] <= fll_mt["fr"], rows
    assert crct["max_changes_per_event"] <= 2, rows
    # Algorithm 1: the detector runs only after a rejection, not on every frame.
    assert crct["detector_per_100"] < 20, rows


@pytest.mark.slow
def test_benchmark_on_the_litert_runtime(tmp_path):
    """`--runtime litert`: the benchmark scores the tracking command's default LiteRT int8
    models (converted once, cached), says so in its JSON, and the claim holds there too."""
    import json
    rows, _ = robustness.run_benchmark(names=["frontal_lip_strip"], modes=("crct", "fll_mt"),
                                       with_dlib=False, frames=40, out_dir=str(tmp_path),
                                       runtime_kind="litert", log=lambda line: None)
    saved = json.load(open(tmp_path / "robustness.json"))
    assert saved["runtime"] == "litert"
    by = {row["mode"]: row for row in rows}
    assert by["crct"]["fr"] <= by["fll_mt"]["fr"] and by["crct"]["auc"] > 0.7, rows


def test_tracker_detector_finds_the_face_behind_tinted_glasses(val_examples):
    """The eye-bar sequence's face (tinted glasses) on its first frame: found at MTCNN's original
    O-Net threshold (0.7, the tracker's), missed at the `mtcnn` package's 0.8, which left the
    tracker searching for 9 frames."""
    from crct_tf.tracking import fast_mtcnn
    sequence = robustness.build_sequences(["eye_bar"], examples=val_examples)[0]
    first, truth = sequence.frames[0], sequence.landmarks[0]
    tracker_boxes, _ = fast_mtcnn.default_detector(num_threads=2)(first)
    package_boxes, _ = fast_mtcnn.FastMtcnn(
        num_threads=2, min_face_ratio=fast_mtcnn.DEFAULT_MIN_FACE_RATIO,
        thresholds=fast_mtcnn.THRESHOLDS)(first)
    assert len(package_boxes) == 0
    assert len(tracker_boxes) == 1
    x0, y0, x1, y1 = tracker_boxes[0]
    assert x0 < truth[:, 0].mean() < x1 and y0 < truth[:, 1].mean() < y1     # on the face


def test_human_label_check_and_multi_face_name_a_folder_that_is_not_weights(tmp_path, capsys):
    """Weights that are not a bundle: one line naming the folder, exit code 2, no traceback."""
    from crct_tf.evaluation import multi_face
    not_weights = tmp_path / "not_weights"
    not_weights.mkdir()
    for main in (_tool("human_label_check").main, multi_face.main):
        assert main(["--weights", str(not_weights)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(not_weights) in err, err
        assert "manifest.json" in err and "Traceback" not in err


@pytest.mark.slow
def test_bundled_tracker_against_human_labels():
    """The five 300-W photos with human-made points (`human_300w` asset, fetched by pip): every
    face found by both modes, mean box-diagonal NME under 0.03 (measured 0.025; dlib 0.019)."""
    from crct_tf.tracking.runtime import load_runtime
    tool = _tool("human_label_check")
    from crct_tf.evaluation import metrics
    from crct_tf.tracking.tracker import default_detector
    runtime, detect = load_runtime(None), default_detector()
    photos = tool.load_photos()
    assert len(photos) == 5
    for mode in ("fll_mt", "crct"):
        errors = []
        for _, rgb, truth in photos:
            points = tool.track_first_frame(runtime, rgb, mode, detect)
            assert points is not None
            errors.append(float(metrics.nme_box_diagonal(points, truth)))
        assert np.mean(errors) < 0.03, (mode, errors)


@pytest.mark.slow
def test_human_labelled_sequences_move_peoples_points_with_the_face():
    """`--labels human`: the sequences of the five 300-W photos (asset fetched by pip) carry the
    people's points through the same motion, so the frames' points match a warped photo."""
    from crct_tf.datasets.human_300w import load_human_300w_examples
    examples = load_human_300w_examples()
    sequences = robustness.build_sequences(frames=24, examples=examples, labels="human")
    assert [s.name for s in sequences] == [s.name for s in robustness.HUMAN_SEQUENCES]
    photos = {e["image/filename"]: e["landmarks"] for e in examples}
    for sequence in sequences:
        truth = photos[sequence.spec.photo + ".png"]
        # Frame t's points are the photo's under one similarity: distances scale uniformly.
        d_photo = np.linalg.norm(truth[36] - truth[45])
        d_frames = np.linalg.norm(sequence.landmarks[:, 36] - sequence.landmarks[:, 45], axis=1)
        d_jaw = np.linalg.norm(sequence.landmarks[:, 0] - sequence.landmarks[:, 16], axis=1)
        ratio = d_jaw / d_frames
        np.testing.assert_allclose(ratio, np.linalg.norm(truth[0] - truth[16]) / d_photo,
                                   rtol=1e-4)
        assert (sequence.landmarks >= 0).all() and (sequence.landmarks[..., 0] < 320).all()
    with pytest.raises(ValueError, match="human_rotation_35"):
        robustness.build_sequences(["rotation_35"], examples=examples, labels="human")


def test_fll_on_jittered_true_boxes(runtime, val_examples):
    """tools/fll_jittered_crops.py: its boxes stay within ±5 % of the true box (centre and size),
    repeat at one seed, and the bundled FLL is precise on them (median NME measured 0.013)."""
    tool = _tool("fll_jittered_crops")
    from crct_tf.geometry.landmarks import box_from_landmarks
    truth = val_examples[0]["landmarks"]
    box = box_from_landmarks(truth)
    size = box[2] - box[0]
    boxes = tool.jittered_boxes(truth, 50, np.random.default_rng(3))
    np.testing.assert_array_equal(boxes, tool.jittered_boxes(truth, 50, np.random.default_rng(3)))
    centres, sizes = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2] - boxes[:, 0]
    assert np.all(np.abs(centres - (box[:2] + box[2:]) / 2) <= 0.05 * size + 1e-3)
    assert np.all(np.abs(sizes / size - 1) <= 0.05 + 1e-5) and sizes.std() > 0.01 * size
    errors = tool.photo_errors(runtime.steps, val_examples[:3], trials=2, seed=0)
    assert errors.shape == (6,) and np.median(errors) < 0.025, errors
    # `--regions`: per-point errors whose row means are the NME of the evaluation's metric.
    from crct_tf.evaluation import metrics
    point_errors = tool.photo_point_errors(runtime.steps, val_examples[:1], trials=1, seed=5)
    box = tool.jittered_boxes(truth.astype(np.float32), 1, np.random.default_rng(5))[0]
    points = np.asarray(runtime.steps.fll_step(val_examples[0]["image"], box[None])["landmarks"])
    assert point_errors[0].mean() == pytest.approx(metrics.nme_box_diagonal(points[0], truth))
    means = tool.region_means(point_errors)
    assert list(means) == ["contour", "eyebrows", "nose", "eyes", "mouth"]
    assert means["mouth"] == pytest.approx(point_errors[0, 48:].mean())


def test_fll_on_turned_photos_with_the_upright_crop(runtime, val_examples):
    """`--turn` / `--upright`: a photo turned by 30 degrees carries its points (their roll moves
    by 30), and the bundled FLL is more precise on the upright crop of the turned photo than on
    the paper's crop (measured on these three photos, TF: mean NME 0.0105 against 0.0133 with the
    bundled weights, 0.0122 against 0.0137 with the bundle before)."""
    import math
    tool = _tool("fll_jittered_crops")
    from crct_tf.geometry import cropping
    example = val_examples[0]
    image, points = tool.turned_photo(example, 30.0)
    assert image.shape == example["image"].shape
    assert math.degrees(cropping.shape_roll(points) - cropping.shape_roll(
        example["landmarks"].astype(np.float32))) == pytest.approx(30.0, abs=1e-3)
    upright = tool.photo_errors(runtime.steps, val_examples[:3], 2, 0, degrees=30.0,
                                upright=True)
    paper = tool.photo_errors(runtime.steps, val_examples[:3], 2, 0, degrees=30.0)
    assert upright.shape == (6,) and np.median(upright) < 0.02, upright
    assert upright.mean() < paper.mean() - 0.0008, (upright.mean(), paper.mean())
