"""Augmentations move image content and landmarks together, eagerly and inside tf.data."""

import math

import numpy as np
import pytest
import tensorflow as tf

from crct_tf.geometry import landmarks as lm
from crct_tf.data import augment, synthetic

SIZE = 160
TOLERANCE = 0.25  # pixels: a dot must land within this of where its landmark says (measured: 0.04)


def dot_points(offset_seed=0):
    """68 points on a 12 x 6 grid 8 px apart with sub-pixel offsets, centred in the image."""
    rng = np.random.default_rng(offset_seed)
    grid = np.stack(np.meshgrid(np.arange(12), np.arange(6)), -1).reshape(-1, 2)[:68]
    points = grid * 8.0 + [SIZE / 2 - 44, SIZE / 2 - 20] + rng.uniform(-0.4, 0.4, (68, 2))
    return points.astype(np.float32)


def dot_example(dtype=tf.float32, offset_seed=0):
    points = dot_points(offset_seed)
    image = synthetic.render_dots(points, SIZE, SIZE, sigma=1.0)
    image = tf.saturate_cast(tf.round(image), dtype) if dtype.is_integer else image
    return {"image": image, "landmarks": tf.constant(points),
            "box": augment.landmark_box(points)}


def assert_dots_at(image, points):
    found = synthetic.measure_dots(np.asarray(image), np.asarray(points))
    error = np.linalg.norm(found - np.asarray(points), axis=1)
    assert np.all(np.isfinite(error)), "a dot is missing"
    assert error.max() < TOLERANCE, f"dot {error.argmax()} is {error.max():.2f} px off"


SEED = tf.constant([3, 7], tf.int64)


def test_measure_dots_recovers_rendered_dots():
    example = dot_example()
    found = synthetic.measure_dots(example["image"].numpy(), example["landmarks"].numpy())
    assert np.abs(found - example["landmarks"].numpy()).max() < 0.05


@pytest.mark.parametrize("dtype", [tf.float32, tf.uint8])
def test_flip_moves_dots_with_points_and_keeps_dtype(dtype):
    example = dot_example(dtype)
    flipped = augment.flip(example)
    assert flipped["image"].dtype == dtype
    assert_dots_at(flipped["image"], flipped["landmarks"])
    np.testing.assert_allclose(flipped["landmarks"],
                               lm.flip_landmarks(example["landmarks"].numpy(), SIZE), atol=1e-5)
    np.testing.assert_allclose(flipped["box"], augment.landmark_box(flipped["landmarks"]),
                               atol=1e-4)


def test_flip_is_an_involution():
    example = dot_example(tf.uint8)
    twice = augment.flip(augment.flip(example))
    np.testing.assert_array_equal(twice["image"], example["image"])
    for key in ("landmarks", "box"):  # W-1-(W-1-x) is x up to float rounding
        np.testing.assert_allclose(twice[key], example[key], atol=1e-4)


@pytest.mark.parametrize("degrees", [-45.0, -10.0, 30.0, 45.0])
def test_rotation_moves_dots_with_points(degrees):
    example = dot_example()
    turned = augment.rotate(example, degrees * math.pi / 180.0)
    assert_dots_at(turned["image"], turned["landmarks"])


def test_rotation_by_plus_then_minus_returns_points():
    example = dot_example()
    angle = 0.6
    back = augment.rotate(augment.rotate(example, angle), -angle)
    np.testing.assert_allclose(back["landmarks"], example["landmarks"], atol=1e-3)
    assert_dots_at(back["image"], back["landmarks"])


def test_strips_paint_near_the_face_only_and_keep_points():
    example = dot_example(tf.uint8)
    image = tf.fill([SIZE, SIZE, 3], tf.constant(128, tf.uint8))
    example = dict(example, image=image)
    occluded = augment.strip_occlusion(example, SEED)
    np.testing.assert_array_equal(occluded["landmarks"], example["landmarks"])
    changed = np.any(occluded["image"].numpy() != 128, axis=-1)
    assert changed.sum() > 20
    x0, y0, x1, y1 = example["box"].numpy()
    side = max(x1 - x0, y1 - y0)
    ys, xs = np.nonzero(changed)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # A bar is centred in the box and at most 1.5 sides long: it stays within ~1.3 sides.
    assert np.all(np.hypot(xs - cx, ys - cy) <= 1.35 * side)


def test_photometric_keeps_geometry_and_range():
    example = dot_example(tf.uint8)
    out = augment.photometric(example, SEED, blur_probability=1.0)
    assert out["image"].dtype == tf.uint8 and out["image"].shape == example["image"].shape
    np.testing.assert_array_equal(out["landmarks"], example["landmarks"])
    assert not np.array_equal(out["image"], example["image"])


def test_jitter_box_moves_the_box_only_within_limits():
    example = dot_example()
    box = example["box"].numpy()
    size = box[2:] - box[:2]
    for k in range(20):
        out = augment.jitter_box(example, tf.constant([k, 1], tf.int64), 0.05, 0.1)
        np.testing.assert_array_equal(out["image"], example["image"])
        np.testing.assert_array_equal(out["landmarks"], example["landmarks"])
        new = out["box"].numpy()
        shift = (new[:2] + new[2:]) / 2 - (box[:2] + box[2:]) / 2
        assert np.all(np.abs(shift) <= 0.05 * size + 1e-4)
        ratio = (new[2:] - new[:2]) / size
        assert np.all(ratio >= 0.9 - 1e-5) and np.all(ratio <= 1.1 + 1e-5)
        assert abs(ratio[0] - ratio[1]) < 1e-4


def test_smooth_motion_moves_dots_with_points_smoothly():
    example = dot_example()
    motion = augment.smooth_motion(example, SEED, 5, max_degrees=20.0)
    assert motion["frames"].shape == (5, SIZE, SIZE, 3)
    np.testing.assert_allclose(motion["landmarks"][0], example["landmarks"], atol=1e-4)
    for frame, points in zip(motion["frames"], motion["landmarks"]):
        assert_dots_at(frame, points)
    step = np.diff(motion["landmarks"].numpy(), axis=0)
    assert np.abs(step).max() > 0.5  # it moves ...
    assert np.abs(np.diff(step, axis=0)).max() < 0.2 * np.abs(step).max()  # ... smoothly


RANDOM_AUGMENTATIONS = {
    "random_flip": augment.random_flip,
    "random_rotate": augment.random_rotate,
    "strip_occlusion": augment.strip_occlusion,
    "photometric": augment.photometric,
    "jitter_box": augment.jitter_box,
    "augment_still": augment.augment_still,
}


@pytest.mark.parametrize("name", sorted(RANDOM_AUGMENTATIONS))
def test_random_augmentation_is_reproducible_eagerly_and_in_tf_data(name):
    fn = RANDOM_AUGMENTATIONS[name]
    example = dot_example(tf.uint8, offset_seed=1)
    eager = fn(example, SEED)
    dataset = tf.data.Dataset.from_tensors(example).map(lambda ex: fn(ex, SEED))
    in_data = next(iter(dataset))
    for key in ("image", "landmarks", "box"):
        np.testing.assert_allclose(np.asarray(in_data[key], np.float32),
                                   np.asarray(eager[key], np.float32), atol=1e-3)
    again = fn(example, SEED)
    np.testing.assert_array_equal(again["image"], eager["image"])
    differs = [not np.array_equal(fn(example, tf.constant([s, 11], tf.int64))[key], eager[key])
               for s in range(4) for key in ("image", "box")]
    assert any(differs), f"{name} gives the same output for different seeds"


def test_geometric_augmentations_inside_tf_data_keep_dots_on_points():
    example = dot_example()
    dataset = tf.data.Dataset.from_tensors(example).repeat(3).enumerate().map(
        lambda i, ex: augment.random_rotate(augment.random_flip(ex, [i, 0]), [i, 1]))
    for out in dataset:
        assert_dots_at(out["image"], out["landmarks"])


def _mean_face_example(image_value=128):
    """A grey image with the mean face's 68 points over its middle."""
    points = (lm.MEAN_SHAPE_UNIT_BOX * 80.0 + 40.0).astype(np.float32)
    image = tf.fill([SIZE, SIZE, 3], tf.constant(image_value, tf.uint8))
    return {"image": image, "landmarks": tf.constant(points)}, points


def test_fringe_hides_the_brows_not_the_eyes_or_mouth():
    example, points = _mean_face_example()
    out = augment.fringe(example, SEED)
    np.testing.assert_array_equal(out["landmarks"], example["landmarks"])
    changed = np.any(out["image"].numpy() != 128, axis=-1)
    at = lambda idx: changed[np.round(points[idx, 1]).astype(int),
                             np.round(points[idx, 0]).astype(int)]
    assert at(range(17, 27)).all()                     # brows (and the forehead above them)
    assert not at(range(36, 48)).any()                 # eyes
    assert not at(range(48, 68)).any() and not at(range(0, 17)).any()
    assert changed[:int(points[17:27, 1].min())].any()  # it comes down from above


def test_mouth_cover_hides_the_mouth_not_the_eyes_or_brows():
    example, points = _mean_face_example()
    for seed in range(8):
        out = augment.mouth_cover(example, tf.constant([seed, 3], tf.int64))
        np.testing.assert_array_equal(out["landmarks"], example["landmarks"])
        changed = np.any(out["image"].numpy() != 128, axis=-1)
        at = lambda idx: changed[np.round(points[idx, 1]).astype(int),  # noqa: E731
                                 np.round(points[idx, 0]).astype(int)]
        assert at(range(60, 68)).mean() >= 0.75, seed           # the lips' inner points
        assert not at([*range(17, 31), *range(36, 48)]).any(), seed  # brows, nose bridge, eyes
        assert not at([0, 16]).any(), seed                      # the jaw's top ends


@pytest.mark.parametrize("maybe, paint, salt", [
    (augment.maybe_mouth_cover, augment.mouth_cover, augment.MOUTH_COVER_SALT),
    (augment.maybe_shape_warp, augment.shape_warp, augment.SHAPE_WARP_SALT),
    (augment.maybe_decolour, augment.decolour, augment.DECOLOUR_SALT)])
def test_maybe_augmentation_has_its_own_seed(maybe, paint, salt):
    """Off (0) it is the identity; at 1 it is the augmentation on the salted seed."""
    example, _ = _mean_face_example()
    seed = tf.constant([4, 2], tf.int64)
    assert maybe(example, seed, 0.0) is example
    expected = paint(example, augment.split_seed(
        tf.random.experimental.stateless_fold_in(seed, salt), 2)[1])
    out = maybe(example, seed, 1.0)
    np.testing.assert_array_equal(out["image"], expected["image"])
    np.testing.assert_array_equal(out["landmarks"], expected["landmarks"])


@pytest.mark.parametrize("seed, nodes", [(0, 4), (1, 4), (2, 4), (0, 8), (1, 8)])
def test_shape_warp_moves_the_dots_and_the_points_together(seed, nodes):
    """Other proportions, not a similarity: the points move by different amounts, each dot
    lands where its point says, and the image far from the face is untouched; on the default
    grid and on the finer one, whose steeper warp needs more fixed-point steps. (A dot that
    straddles a seam of the piecewise-bilinear warp is bent a little, so its centre may be a few
    tenths of a pixel off; measured at this strength: median 0.03 px, at most 0.36; on the finer
    grid, whose seams bend more, median 0.05, at most 0.79.)"""
    example = dot_example()
    out = augment.shape_warp(example, tf.constant([seed, 5], tf.int64), strength=0.05,
                             nodes=nodes)
    moved = out["landmarks"].numpy()
    shift = np.linalg.norm(moved - dot_points(), axis=1)
    assert shift.max() > 2.0 and shift.max() - shift.min() > 1.5, shift
    found = synthetic.measure_dots(out["image"].numpy(), moved)
    error = np.linalg.norm(found - moved, axis=1)
    assert np.median(error) < 0.1 and error.max() < (0.5 if nodes == 4 else 1.0), error
    np.testing.assert_allclose(out["box"], augment.landmark_box(moved))
    np.testing.assert_array_equal(out["image"].numpy()[:5], example["image"].numpy()[:5])


def test_shape_warp_steps_follow_the_grid_and_refuse_a_folding_warp():
    """The default grid keeps the 6 steps it was trained with; a finer grid is steeper and gets
    more; a grid whose slope reaches 1 (it could fold the image) or has no point is refused."""
    assert augment.shape_warp_steps() == augment.SHAPE_WARP_ITERATIONS == 6
    assert augment.shape_warp_steps(nodes=8) == 9 > augment.shape_warp_steps()
    for nodes in (0, 16):
        with pytest.raises(ValueError, match="shape warp"):
            augment.shape_warp_steps(nodes=nodes)


def test_a_finer_shape_warp_moves_the_mouth_against_the_eyes():
    """8 control points a side move the parts of a face on their own (expressions): the mouth's
    width against the eyes' spacing varies more over seeds than with the default 4, which moves
    the face's proportions as a whole (measured: standard deviation 0.050 against 0.038);
    maybe_shape_warp passes the grid on."""
    example, _ = _mean_face_example()

    def ratios(nodes):
        out = []
        for seed in range(12):
            points = augment.shape_warp(example, tf.constant([seed, 9], tf.int64),
                                        nodes=nodes)["landmarks"].numpy()
            out.append(np.linalg.norm(points[54] - points[48]) /
                       np.linalg.norm(points[45] - points[36]))
        return np.array(out)

    assert ratios(8).std() > 1.2 * ratios(4).std()
    seed = tf.constant([4, 2], tf.int64)
    expected = augment.shape_warp(example, augment.split_seed(
        tf.random.experimental.stateless_fold_in(seed, augment.SHAPE_WARP_SALT), 2)[1], nodes=8)
    out = augment.maybe_shape_warp(example, seed, 1.0, nodes=8)
    np.testing.assert_array_equal(out["landmarks"], expected["landmarks"])


def test_hard_conditions_fringe_leaves_the_other_draws_as_they_were():
    """The fringe has a seed of its own: with it on, every pixel outside the fringe is what the
    same seed gave without it (the occluder, light, blur and size draws did not move)."""
    example, points = _mean_face_example()
    example["image"] = tf.cast(synthetic.render_dots(points, SIZE, SIZE, sigma=1.5) + 60.0,
                               tf.uint8)
    for seed in range(6):
        s = tf.constant([seed, 11], tf.int64)
        plain = augment.hard_conditions(example, s)["image"].numpy()
        both = augment.hard_conditions(example, s, fringe_probability=1.0)["image"].numpy()
        fringe_only = augment.fringe(example, augment.split_seed(
            tf.random.experimental.stateless_fold_in(s, augment.FRINGE_SALT), 2)[1])
        hair = np.any(fringe_only["image"].numpy() != example["image"].numpy(), axis=-1)
        assert hair.any()
        # Outside the fringe (grown by the blur's reach) the two agree.
        from scipy.ndimage import binary_dilation
        outside = ~binary_dilation(hair, iterations=augment.MAX_MOTION_BLUR)
        np.testing.assert_array_equal(plain[outside], both[outside])


def test_decolour_takes_colour_away_and_keeps_the_points():
    """Grey (OpenCV's luma, equal channels), a faded warm print (less contrast than the grey,
    red over blue) or colour half gone (channels halfway to the grey); every kind appears, the
    points and dtype stay."""
    import cv2
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 255, (30, 40, 3)).astype(np.uint8)
    landmarks = tf.constant(rng.uniform(0, 30, (68, 2)), tf.float32)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    kinds = set()
    for seed in range(12):
        out = augment.decolour({"image": tf.constant(image), "landmarks": landmarks},
                               tf.constant([seed, 1], tf.int64))
        got = out["image"].numpy().astype(np.float32)
        assert out["image"].dtype == tf.uint8
        np.testing.assert_array_equal(out["landmarks"], landmarks)
        if np.all(got[..., 0] == got[..., 1]) and np.all(got[..., 1] == got[..., 2]):
            kinds.add("grey")
            assert np.abs(got[..., 0] - grey).max() <= 1.0
        elif np.all(got[..., 0] >= got[..., 2]):
            kinds.add("faded")
            assert got[..., 1].std() < 0.85 * grey.std()
            assert got[..., 1].min() > 20.0                     # lifted: no deep black
        else:
            kinds.add("half")
            np.testing.assert_allclose(got, (image + grey[..., None]) / 2.0, atol=1.0)
    assert kinds == {"grey", "faded", "half"}
