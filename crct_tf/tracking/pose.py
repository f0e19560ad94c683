"""Head pose (yaw, pitch, roll in degrees) from a face's 68 landmarks.

    pose = estimate_pose(landmarks, image_shape)     # HeadPose(yaw, pitch, roll, ...) or None

`cv2.solvePnP` fits the 3D mean face `MEAN_FACE_3D` to the 68 points, with a pinhole camera whose
focal length is the frame's larger side (in pixels) and whose principal point is the frame's
centre: about a 53-degree field of view across the larger side, a common webcam's. No lens
distortion.

Axes and signs (camera and head frames, right-handed, OpenCV's):

    camera  x to the right of the image, y down, z away from the camera into the scene
    head    x from the face's right eye to its left eye (to the image's right on a frontal
            face), y from the brows to the chin, z from the face into the head; a frontal face
            looking straight into the camera has the head frame of the camera: yaw = pitch =
            roll = 0.

    yaw    > 0  the face turns toward the image's right (its nose points right in the picture)
    pitch  > 0  the face looks up
    roll   > 0  the face leans clockwise in the picture: the eye on the image's right is the
                lower one. Roll is the in-plane angle of the head's x axis, which a frontal face
                shows as its eye line: roll = atan2(y45 - y36, x45 - x36) for the outer eye
                corners of the iBUG scheme, on a face without yaw or pitch.

With the face's direction d = R (0, 0, -1) (R: head to camera) and its x axis e = R (1, 0, 0):
yaw = atan2(d_x, -d_z), pitch = atan2(-d_y, hypot(d_x, d_z)), roll = atan2(e_y, e_x). These are
not an Euler decomposition (there is no gimbal order to remember) and each reads as described.
"""

import dataclasses
import math

import numpy as np

from crct_tf.geometry.landmarks import FLIP_PERMUTATION, NUM_LANDMARKS

# The 68-point 3D mean face, in millimetres, head frame as above, origin at the points' centroid.
#
# Where it comes from: this project's own teacher labels (crct_tf/datasets/bootstrap_labels.json,
# 108 photos of five people, the 68 points of each). Seen by a distant camera, every photo is a
# rotated, scaled and shifted view of one rigid face (plus each person's own shape and
# expression, which act as noise). Stacking the centred 2D points of all photos gives a matrix of
# rank about three whose factors are the cameras and the 3D shape (rigid factorisation, as in
# Tomasi and Kanade's structure from motion); requiring each camera's two rows to be orthogonal
# and of equal length fixes the shape up to a rotation and a mirror image in depth. The shape was
# then turned to face the camera (eye line level, as the 2D mean face MEAN_SHAPE_UNIT_BOX), made
# left-right symmetric (averaged with its mirror image), given the depth sign with the nose in
# front, and scaled to an outer-eye-corner distance of 90 mm, an adult's typical. The result: a
# face 149 mm wide at the jaw line's upper ends, the nose tip 33 mm in front of the centroid and
# the jaw line's upper ends 42 mm behind it. `mean_face_from_labels` recomputes it.
MEAN_FACE_3D = np.array([
    (-74.7, -36.7, 41.8), (-74.0, -17.7, 39.7), (-72.0, 1.1, 37.8), (-68.5, 20.1, 36.4),
    (-61.4, 37.9, 31.5), (-49.8, 53.5, 23.7), (-35.2, 66.9, 14.8), (-18.7, 77.8, 5.4),
    (-0.0, 80.7, 2.4), (18.7, 77.8, 5.4), (35.2, 66.9, 14.8), (49.8, 53.5, 23.7),
    (61.4, 37.9, 31.5), (68.5, 20.1, 36.4), (72.0, 1.1, 37.8), (74.0, -17.7, 39.7),
    (74.7, -36.7, 41.8), (-60.2, -51.3, 9.9), (-50.7, -58.9, 0.7), (-37.7, -61.4, -6.9),
    (-24.4, -59.4, -13.3), (-11.9, -54.4, -16.6), (11.9, -54.4, -16.6), (24.4, -59.4, -13.3),
    (37.7, -61.4, -6.9), (50.7, -58.9, 0.7), (60.2, -51.3, 9.9), (-0.0, -41.2, -15.8),
    (-0.0, -28.6, -20.9), (-0.0, -16.2, -27.5), (-0.0, -3.5, -33.0), (-14.4, 4.7, -17.0),
    (-7.5, 7.3, -19.9), (-0.0, 9.7, -21.4), (7.5, 7.3, -19.9), (14.4, 4.7, -17.0),
    (-45.0, -38.9, 2.8), (-37.2, -43.6, -0.8), (-27.3, -43.6, -2.2), (-19.2, -37.7, -2.3),
    (-28.1, -35.9, -2.9), (-37.6, -35.9, -1.3), (19.2, -37.7, -2.3), (27.3, -43.6, -2.2),
    (37.2, -43.6, -0.8), (45.0, -38.9, 2.8), (37.6, -35.9, -1.3), (28.1, -35.9, -2.9),
    (-30.5, 27.4, -0.1), (-19.2, 23.3, -10.6), (-8.2, 21.3, -16.1), (-0.0, 23.3, -16.8),
    (8.2, 21.3, -16.1), (19.2, 23.3, -10.6), (30.5, 27.4, -0.1), (19.7, 37.8, -7.0),
    (8.9, 42.5, -12.3), (-0.0, 43.5, -12.8), (-8.9, 42.5, -12.3), (-19.7, 37.8, -7.0),
    (-25.7, 28.1, -1.7), (-8.3, 27.4, -14.9), (-0.0, 28.4, -15.4), (8.3, 27.4, -14.9),
    (25.7, 28.1, -1.7), (8.6, 33.1, -11.9), (-0.0, 34.2, -12.4), (-8.6, 33.1, -11.9),
], dtype=np.float64)

NOSE_TIP = 30
AXIS_LENGTH_MM = 60.0                 # drawn pose axes


@dataclasses.dataclass(frozen=True)
class HeadPose:
    """One face's head pose.

    Attributes:
      yaw, pitch, roll: degrees, signs as in the module docstring.
      rotation: [3, 3] head-to-camera rotation R.
      translation: [3] the head frame's origin in camera coordinates (millimetres).
      camera: [3, 3] the camera matrix used (focal length from the frame size).
    """
    yaw: float
    pitch: float
    roll: float
    rotation: np.ndarray
    translation: np.ndarray
    camera: np.ndarray

    @property
    def angles(self):
        """(yaw, pitch, roll) in degrees."""
        return (self.yaw, self.pitch, self.roll)


def camera_matrix(image_shape):
    """The pinhole camera of a frame [H, W, ...]: focal length max(W, H), centred."""
    height, width = image_shape[:2]
    focal = float(max(width, height))
    return np.array([[focal, 0.0, (width - 1) / 2.0],
                     [0.0, focal, (height - 1) / 2.0],
                     [0.0, 0.0, 1.0]])


def angles_from_rotation(rotation):
    """(yaw, pitch, roll) in degrees of a head-to-camera rotation matrix (module docstring)."""
    r = np.asarray(rotation, np.float64)
    d = -r[:, 2]                                   # where the face looks
    e = r[:, 0]                                    # the head's x axis (eye line)
    yaw = math.degrees(math.atan2(d[0], -d[2]))
    pitch = math.degrees(math.atan2(-d[1], math.hypot(d[0], d[2])))
    roll = math.degrees(math.atan2(e[1], e[0]))
    return yaw, pitch, roll


def estimate_pose(landmarks, image_shape, model=MEAN_FACE_3D):
    """The head pose of one face from its [68, 2] landmarks (pixels) in a frame [H, W, ...].

    Returns:
      A `HeadPose`, or None when the points are not finite or the fit fails.
    """
    import cv2
    points = np.asarray(landmarks, np.float64).reshape(-1, 2)
    if points.shape != (NUM_LANDMARKS, 2) or not np.all(np.isfinite(points)):
        return None
    camera = camera_matrix(image_shape)
    try:
        ok, rvec, tvec = cv2.solvePnP(model, points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
        if ok:
            ok, rvec, tvec = cv2.solvePnP(model, points, camera, None, rvec, tvec, True,
                                          flags=cv2.SOLVEPNP_ITERATIVE)
    except cv2.error:
        return None
    if not ok or not np.all(np.isfinite(rvec)) or not tvec[2, 0] > 0:
        return None
    rotation = cv2.Rodrigues(rvec)[0]
    yaw, pitch, roll = angles_from_rotation(rotation)
    return HeadPose(yaw, pitch, roll, rotation, tvec.reshape(3), camera)


def axis_points(pose, model=MEAN_FACE_3D, length=AXIS_LENGTH_MM):
    """Image points [4, 2] of the pose axes: the nose tip, then the ends of the head's x axis,
    y axis and facing direction (-z), each `length` mm long."""
    import cv2
    origin = model[NOSE_TIP]
    ends = np.array([origin, origin + [length, 0, 0], origin + [0, length, 0],
                     origin + [0, 0, -length]], np.float64)
    rvec = cv2.Rodrigues(np.asarray(pose.rotation, np.float64))[0]
    points, _ = cv2.projectPoints(ends, rvec, np.asarray(pose.translation, np.float64),
                                  pose.camera, None)
    return points.reshape(-1, 2)


def eye_line_angle(landmarks):
    """The in-plane angle (degrees) of the outer-eye-corner line, atan2(y45 - y36, x45 - x36)."""
    points = np.asarray(landmarks, np.float64)
    dx, dy = points[..., 45, :] - points[..., 36, :]
    return math.degrees(math.atan2(dy, dx))


def mean_face_from_labels(shapes):
    """A 3D mean face from 2D shapes of one face kind seen in many poses (see MEAN_FACE_3D).

    Args:
      shapes: [N, 68, 2] landmarks of N photos (N >= 3, varied poses).

    Returns:
      float64 [68, 3] in the head frame, millimetres (outer eye corners 90 mm apart).
    """
    shapes = np.asarray(shapes, np.float64)
    count = len(shapes)
    centred = shapes - shapes.mean(axis=1, keepdims=True)
    centred /= np.sqrt((centred ** 2).sum(axis=(1, 2), keepdims=True))
    stacked = np.concatenate([centred[:, :, 0], centred[:, :, 1]], axis=0)     # [2N, 68]
    u, s, vt = np.linalg.svd(stacked, full_matrices=False)
    cameras, shape = u[:, :3] * s[:3], vt[:3]

    def pair(a, b):         # the coefficients of a^T L b in L's six distinct entries
        return np.array([a[0] * b[0], a[0] * b[1] + a[1] * b[0], a[0] * b[2] + a[2] * b[0],
                         a[1] * b[1], a[1] * b[2] + a[2] * b[1], a[2] * b[2]])
    rows, values = [], []
    for i in range(count):
        a, b = cameras[i], cameras[count + i]
        rows += [pair(a, a) - pair(b, b), pair(a, b)]
        values += [0.0, 0.0]
    rows.append(pair(cameras[0], cameras[0]))
    values.append(1.0)
    l = np.linalg.lstsq(np.array(rows), np.array(values), rcond=None)[0]
    gram = np.array([[l[0], l[1], l[2]], [l[1], l[3], l[4]], [l[2], l[4], l[5]]])
    w, v = np.linalg.eigh(gram)
    upgrade = v @ np.diag(np.sqrt(np.clip(w, 1e-12, None)))
    points = (np.linalg.inv(upgrade) @ shape).T
    points -= points.mean(axis=0)
    # Turn it to face the camera: align its x, y with the mean 2D shape, depth free.
    mean2d = centred.mean(axis=0)
    target = np.c_[mean2d, np.zeros(NUM_LANDMARKS)]
    for _ in range(20):
        h = points.T @ (target - target.mean(axis=0))
        uu, _, vv = np.linalg.svd(h)
        fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(uu @ vv))])
        rotation = (uu @ fix @ vv).T
        turned = points @ rotation.T
        target = np.c_[mean2d * np.linalg.norm(turned[:, :2]) / np.linalg.norm(mean2d),
                       turned[:, 2]]
    turned = points @ rotation.T
    mirrored = turned * [-1.0, 1.0, 1.0]
    symmetric = (turned + mirrored[list(FLIP_PERMUTATION)]) / 2.0
    if symmetric[NOSE_TIP, 2] > symmetric[:, 2].mean():       # the nose in front: -z
        symmetric[:, 2] *= -1.0
    symmetric -= symmetric.mean(axis=0)
    return symmetric * 90.0 / np.linalg.norm(symmetric[36] - symmetric[45])
