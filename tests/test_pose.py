"""Head pose from 68 points: the 3D mean face, the axes and signs, roll against the eye line."""

import math

import numpy as np
import pytest

from crct_tf.tracking import pose

SIZE = (480, 640)          # H, W


def rotation(yaw=0.0, pitch=0.0, roll=0.0):
    """Head-to-camera rotation for a face turned right by `yaw`, up by `pitch`, leaning
    clockwise by `roll` (degrees): roll about z after yaw about y after pitch about x."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    ry = np.array([[math.cos(-y), 0, math.sin(-y)], [0, 1, 0], [-math.sin(-y), 0, math.cos(-y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(-p), -math.sin(-p)], [0, math.sin(-p), math.cos(-p)]])
    return rz @ ry @ rx


def project(r, distance=700.0, shift=(30.0, -20.0)):
    camera = pose.camera_matrix(SIZE)
    points = pose.MEAN_FACE_3D @ r.T + [shift[0], shift[1], distance]
    points = points @ camera.T
    return points[:, :2] / points[:, 2:]


@pytest.mark.parametrize("yaw, pitch, roll", [(0, 0, 0), (25, 0, 0), (-25, 0, 0), (0, 20, 0),
                                              (0, -20, 0), (0, 0, 30), (0, 0, -30)])
def test_angles_and_signs_on_a_projected_mean_face(yaw, pitch, roll):
    points = project(rotation(yaw, pitch, roll))
    found = pose.estimate_pose(points, SIZE)
    assert found.angles == pytest.approx((yaw, pitch, roll), abs=0.5)


def test_signs_read_in_the_picture():
    right = project(rotation(yaw=25))
    assert right[pose.NOSE_TIP, 0] > project(rotation())[pose.NOSE_TIP, 0]   # nose to the right
    up = project(rotation(pitch=20))
    assert up[pose.NOSE_TIP, 1] < project(rotation())[pose.NOSE_TIP, 1]      # nose up
    clockwise = project(rotation(roll=20))
    assert clockwise[45, 1] > clockwise[36, 1]          # the eye on the image's right is lower
    assert pose.eye_line_angle(clockwise) == pytest.approx(20.0, abs=0.5)


def test_roll_follows_the_eye_line_of_real_faces_under_in_plane_rotation():
    """The teacher's 68 points of the bootstrap photos, rotated in the image plane by known
    angles: roll tracks the eye-line angle (|corr| >= 0.95, MAE after the mean offset <= 3)."""
    from crct_tf.datasets.crct_bootstrap import load_labels
    labels = load_labels()
    faces = [np.asarray(e["landmarks"], np.float64) for e in labels["examples"]
             if e["split"] == "val"]
    angles = np.linspace(-40.0, 40.0, 17)
    for points in faces:
        centre = points.mean(0)
        truth, roll = [], []
        for angle in angles:
            a = math.radians(angle)
            r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            moved = (points - centre) @ r.T + [320.0, 240.0]
            truth.append(pose.eye_line_angle(moved))
            roll.append(pose.estimate_pose(moved, SIZE).roll)
        truth, roll = np.array(truth), np.array(roll)
        assert abs(np.corrcoef(truth, roll)[0, 1]) >= 0.95
        error = roll - truth
        assert np.abs(error - error.mean()).mean() <= 3.0


def test_bad_points_give_no_pose():
    points = project(rotation())
    points[3] = np.nan
    assert pose.estimate_pose(points, SIZE) is None
    assert pose.estimate_pose(points[:5], SIZE) is None


def test_the_mean_face_is_what_the_labels_give():
    from crct_tf.datasets.crct_bootstrap import load_labels
    shapes = np.array([e["landmarks"] for e in load_labels()["examples"]], np.float64)
    np.testing.assert_allclose(pose.mean_face_from_labels(shapes), pose.MEAN_FACE_3D, atol=0.1)
    face = pose.MEAN_FACE_3D
    assert np.linalg.norm(face[36] - face[45]) == pytest.approx(90.0, abs=0.1)
    assert face[pose.NOSE_TIP, 2] == face[:, 2].min()          # the nose is nearest the camera
    np.testing.assert_allclose(face[:, 0], -face[list(pose.FLIP_PERMUTATION), 0], atol=0.11)


def test_axes_start_at_the_nose_tip():
    points = project(rotation(yaw=10))
    found = pose.estimate_pose(points, SIZE)
    axes = pose.axis_points(found)
    np.testing.assert_allclose(axes[0], points[pose.NOSE_TIP], atol=0.5)
    assert axes[1, 0] > axes[0, 0] and axes[2, 1] > axes[0, 1]     # x right, y down
