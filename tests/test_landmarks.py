import glob
import os

import cv2
import numpy as np
import pytest

from crct_tf.geometry import landmarks as lm


def test_regions_cover_all_68_points_once():
    indices = sorted(i for region in lm.REGIONS.values() for i in region)
    assert indices == list(range(68))


def test_pts_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 500, size=(68, 2)).astype(np.float32)
    path = tmp_path / "000001.pts"
    lm.write_pts(path, points)
    text = path.read_text().splitlines()
    assert text[:3] == ["version: 1", "n_points: 68", "{"] and text[-1] == "}"
    # 1-based on disk.
    first = [float(v) for v in text[3].split()]
    np.testing.assert_allclose(first, points[0] + 1.0, atol=1e-3)
    np.testing.assert_allclose(lm.read_pts(path), points, atol=1e-3)


@pytest.mark.parametrize("body,problem", [
    ("version: 1\nn_points: 67\n{\n" + "1 2\n" * 67 + "}\n", "expected 68 points, found 67"),
    ("version: 1\nn_points: 68\n{\n" + "1 2\n" * 67 + "nan 3\n}\n", "NaN or infinite"),
    ("version: 1\nn_points: 68\n{\n" + "1 2\n" * 67 + "inf 3\n}\n", "NaN or infinite"),
    ("version: 1\nn_points: 68\n" + "1 2\n" * 68, "no '{'"),
    ("version: 1\nn_points: 68\n{\n" + "1 2\n" * 67 + "a b\n}\n", "malformed point line"),
])
def test_bad_pts_files_name_the_file_and_the_problem(tmp_path, body, problem):
    path = tmp_path / "bad.pts"
    path.write_text(body)
    with pytest.raises(lm.PtsError) as info:
        lm.read_pts(path)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_flip_is_an_involution():
    perm = np.array(lm.FLIP_PERMUTATION)
    assert np.array_equal(perm[perm], np.arange(68))
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 99, size=(68, 2)).astype(np.float32)
    np.testing.assert_allclose(lm.flip_landmarks(lm.flip_landmarks(points, 100), 100), points,
                               atol=1e-5)
    for fixed in (27, 28, 29, 30, 33, 51, 57, 62, 66):
        assert perm[fixed] == fixed
    assert perm[36] == 45 and perm[0] == 16 and perm[48] == 54 and perm[65] == 67


def test_flip_moves_the_left_eye_corner_onto_the_right_of_a_real_face(facenet_photos,
                                                                      mtcnn_detector):
    """On a real photo and its mirror image, the flipped eye points land on the detected eyes."""
    path = sorted(glob.glob(os.path.join(facenet_photos, "val", "madonna", "*.jpg")))[0]
    image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    mirrored = image[:, ::-1].copy()
    face = max(mtcnn_detector.detect_faces(image), key=lambda f: f["confidence"])
    face_m = max(mtcnn_detector.detect_faces(mirrored), key=lambda f: f["confidence"])
    # Point 36 is the eye on the image's left, 45 the eye on its right (iBUG scheme); MTCNN's
    # "left_eye" is also the one on the image's left.
    points = np.zeros((68, 2), np.float32)
    points[36] = face["keypoints"]["left_eye"]
    points[45] = face["keypoints"]["right_eye"]
    flipped = lm.flip_landmarks(points, image.shape[1])
    eye_distance = np.linalg.norm(points[45] - points[36])
    assert np.linalg.norm(flipped[36] - face_m["keypoints"]["left_eye"]) < 0.15 * eye_distance
    assert np.linalg.norm(flipped[45] - face_m["keypoints"]["right_eye"]) < 0.15 * eye_distance
    assert flipped[36][0] < flipped[45][0]


def test_box_from_landmarks_and_diagonal():
    points = np.array([[1.0, 2.0], [4.0, 6.0], [2.0, 3.0]])
    np.testing.assert_allclose(lm.box_from_landmarks(points), [1, 2, 4, 6])
    assert lm.box_diagonal([1, 2, 4, 6]) == pytest.approx(5.0)
