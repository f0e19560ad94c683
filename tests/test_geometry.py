import numpy as np
import pytest
import tensorflow as tf

from crct_tf.geometry import cropping, tf_cropping


def _random_case(seed):
    rng = np.random.default_rng(seed)
    box = np.array([30.0, 20.0, 90.0, 110.0]) + rng.uniform(-10, 10, 4)
    crop_box = cropping.square_context_box(box)
    points = rng.uniform(box[:2], box[2:], size=(68, 2)).astype(np.float32)
    return crop_box, points


def test_square_context_box_is_square_and_centred():
    crop_box = cropping.square_context_box([10, 20, 30, 60], context=2.0)
    np.testing.assert_allclose(crop_box, [-20, 0, 60, 80])
    np.testing.assert_allclose(tf_cropping.tf_square_context_box([[10, 20, 30, 60]]).numpy(),
                               [[-20, 0, 60, 80]])


@pytest.mark.parametrize("seed", range(3))
def test_points_round_trip_numpy_and_tf(seed):
    crop_box, points = _random_case(seed)
    back = cropping.points_from_crop(cropping.points_to_crop(points, crop_box, 128), crop_box, 128)
    np.testing.assert_allclose(back, points, atol=1e-4)
    tf_box, tf_points = tf.constant(crop_box, tf.float32), tf.constant(points)
    in_crop = cropping.points_to_crop(tf_points, tf_box, 128)
    np.testing.assert_allclose(in_crop.numpy(), cropping.points_to_crop(points, crop_box, 128),
                               atol=1e-4)
    np.testing.assert_allclose(cropping.points_from_crop(in_crop, tf_box, 128).numpy(), points,
                               atol=1e-4)


def test_round_trip_inside_tf_data():
    crop_box, points = _random_case(7)
    ds = tf.data.Dataset.from_tensors((crop_box.astype(np.float32), points)).map(
        lambda b, p: cropping.points_from_crop(cropping.points_to_crop(p, b, 128), b, 128),
        num_parallel_calls=2)
    np.testing.assert_allclose(next(iter(ds)).numpy(), points, atol=1e-4)


def _dot_image(height, width, centre, sigma=2.0):
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    blob = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma ** 2))
    return np.repeat((255 * blob)[..., None], 3, axis=-1)


def _centroid(image):
    weights = image[..., 0].astype(np.float64)
    weights = np.where(weights > 0.2 * weights.max(), weights, 0)
    y, x = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    return np.array([(weights * x).sum(), (weights * y).sum()]) / weights.sum()


@pytest.mark.parametrize("crop_box", [[20.3, 10.7, 100.3, 90.7], [-30.0, -12.5, 70.0, 87.5]])
def test_numpy_and_tf_crops_put_a_dot_where_the_point_map_says(crop_box):
    """Both crop implementations sample the same place: a rendered dot lands on the mapped point."""
    crop_box = np.array(crop_box, np.float32)
    dot = np.array([47.25, 38.5], np.float32)
    image = _dot_image(120, 140, dot, sigma=4.0)
    expected = cropping.points_to_crop(dot[None], crop_box, 64)[0]
    crop_np = cropping.crop_image(image, crop_box, 64)
    crop_tf = tf_cropping.tf_crop_images(image[None], crop_box[None], 64)[0].numpy()
    assert crop_np.shape == crop_tf.shape == (64, 64, 3)
    np.testing.assert_allclose(_centroid(crop_np), expected, atol=0.1)
    np.testing.assert_allclose(_centroid(crop_tf), expected, atol=0.1)
    np.testing.assert_allclose(crop_np, crop_tf, atol=2.0)


def test_outside_the_image_is_zero():
    image = np.full((50, 50, 3), 200.0, np.float32)
    crop_box = np.array([-50.0, -50.0, 50.0, 50.0], np.float32)  # top-left quarter is outside
    for crop in (cropping.crop_image(image, crop_box, 32),
                 tf_cropping.tf_crop_images(image[None], crop_box[None], 32)[0].numpy()):
        assert crop[:14, :14].max() == 0.0 and crop[20:, 20:].min() == 200.0


def test_landmark_patches_are_centred_on_the_landmarks():
    dot = np.array([60.0, 45.0], np.float32)
    image = _dot_image(100, 120, dot, sigma=1.5)
    landmarks = np.array([[dot, [20.0, 20.0]]], np.float32)          # [1, 2, 2]
    face_box = np.array([[40.0, 25.0, 88.0, 73.0]], np.float32)       # side 48 -> window 120
    patches = tf_cropping.tf_landmark_patches(image[None], landmarks, face_box).numpy()
    assert patches.shape == (1, 2, 12, 12, 3)
    np.testing.assert_allclose(_centroid(patches[0, 0]), [5.5, 5.5], atol=0.1)
    assert patches[0, 1].max() < 1.0                                  # far from the dot
    boxes = cropping.landmark_patch_boxes(landmarks, face_box)
    np.testing.assert_allclose(boxes[0, 0], [dot[0] - 3.75, dot[1] - 3.75, dot[0] + 3.75,
                                             dot[1] + 3.75])           # 12 * 120 / 192 = 7.5 px
