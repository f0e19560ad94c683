"""The FLL / FV / BT pipelines: geometry (dot tests), shapes, determinism, checkpointing."""

import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from crct_tf.geometry import cropping, tf_cropping
from crct_tf.geometry import landmarks as lm
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.data import augment, bt_pipeline, common, fll_pipeline, fv_pipeline, synthetic

SETTINGS = CropSettings()
SIZE = 160
SPACING = 12.0


def dot_points(offset_seed):
    """68 points of a 9 x 8 grid, SPACING apart with sub-pixel offsets: a roughly square face."""
    rng = np.random.default_rng(offset_seed)
    grid = np.stack(np.meshgrid(np.arange(9), np.arange(8)), -1).reshape(-1, 2)[:68]
    centre = SIZE / 2 - np.array([4.0, 3.5]) * SPACING
    return (grid * SPACING + centre + rng.uniform(-1, 1, (68, 2))).astype(np.float32)


def dots_source(count):
    """Dot-pattern examples: uint8 images whose dots sit exactly on the landmarks."""
    points = np.stack([dot_points(i) for i in range(count)])
    images = np.stack([synthetic.render_dots(p, SIZE, SIZE, sigma=1.5).numpy() for p in points])
    return tf.data.Dataset.from_tensor_slices(
        {"image": np.round(images).astype(np.uint8), "landmarks": points})


def assert_dots_at(image, points, tolerance, radius=3):
    found = synthetic.measure_dots(np.asarray(image), np.asarray(points), radius)
    error = np.linalg.norm(found - np.asarray(points), axis=1)
    assert np.all(np.isfinite(error)), "a dot is missing"
    assert error.max() < tolerance, f"dot {error.argmax()} is {error.max():.2f} px off"


def first_batches(dataset, count=2):
    return [tf.nest.map_structure(np.asarray, b) for b in dataset.take(count)]


def assert_same(a, b):
    for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b)):
        np.testing.assert_array_equal(x, y)


def differ(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b)))


@pytest.fixture(scope="module")
def photos():
    from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples
    return load_bootstrap_examples("val")[:4]


# --- FLL -----------------------------------------------------------------------------------------

def test_fll_inverse_crop_returns_landmarks_to_the_photo(photos):
    source = common.dataset_from_examples(photos)
    dataset = fll_pipeline.make_fll_dataset(source, SETTINGS, 4, augment=False, repeat=False,
                                            shuffle_buffer=0, with_windows=True)
    crops, points, windows = next(iter(dataset))
    assert crops.shape == (4, 128, 128, 3) and crops.dtype == tf.float32
    back = cropping.points_from_crop(points, windows, SETTINGS.input_size)
    np.testing.assert_allclose(back, np.stack([p["landmarks"] for p in photos]), atol=2e-3)
    # The crop is the tracker's crop: the OpenCV twin cuts the same pixels.
    reference = cropping.crop_image(photos[0]["image"], windows[0].numpy(), 128)
    assert np.abs(crops[0].numpy() - reference).mean() < 1.0


def test_fll_crops_show_dots_where_the_landmarks_say():
    crops, points = next(iter(fll_pipeline.make_fll_dataset(
        dots_source(2), SETTINGS, 2, augment=False, repeat=False, shuffle_buffer=0)))
    for crop, pts in zip(crops, points):
        assert_dots_at(crop, pts, 0.3)


def test_fll_is_deterministic_given_the_seed():
    def batches(seed):
        return first_batches(fll_pipeline.make_fll_dataset(
            synthetic.synthetic_faces(6), SETTINGS, 3, seed=seed))
    a, b, c = batches(5), batches(5), batches(6)
    assert_same(a, b)
    assert differ(a, c)
    assert differ(a[0], a[1])


def _window_offsets(box_jitter, seeds=40):
    """Per training example: the crop window's centre off the true landmark box's centre, over
    the box's width and height (after the augmentation that precedes the jitter)."""
    example = next(iter(synthetic.synthetic_faces(1)))
    offsets = []
    for seed in range(seeds):
        out = fll_pipeline.fll_example(example, tf.constant([seed, 7], tf.int64), SETTINGS,
                                       box_jitter=box_jitter)
        points = cropping.points_from_crop(out["landmarks"].numpy(), out["window"].numpy(),
                                           SETTINGS.input_size)
        box = lm.box_from_landmarks(points)
        window = out["window"].numpy()
        offsets.append(((window[:2] + window[2:]) / 2 - (box[:2] + box[2:]) / 2)
                       / (box[2:] - box[:2]))
    return np.abs(np.array(offsets))


def test_fll_box_jitter_moves_the_crop_by_at_most_the_stated_fraction():
    assert _window_offsets((0.0, 0.0)).max() < 1e-3
    default = _window_offsets((augment.BOX_SHIFT, augment.BOX_SCALE))
    assert default.max() <= augment.BOX_SHIFT + 1e-3 and default.max() > 0.5 * augment.BOX_SHIFT
    wide = _window_offsets((0.2, 0.1))
    assert wide.max() <= 0.2 + 1e-3 and wide.max() > 0.1


# --- FV ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fraction_range", [fv_pipeline.POSITIVE_SHIFT,
                                            fv_pipeline.NEGATIVE_SHIFT])
@pytest.mark.parametrize("per_point", [False, True])
def test_shifted_landmarks_move_by_the_stated_amount(fraction_range, per_point):
    points = dot_points(0)
    box = lm.box_from_landmarks(points)
    side = max(box[2] - box[0], box[3] - box[1])
    distances = []
    for k in range(30):
        moved = fv_pipeline.shift_landmarks(tf.constant(points), tf.constant([k, 4], tf.int64),
                                            fraction_range, per_point).numpy()
        distances.append(np.linalg.norm(moved - points, axis=1) / side)
    distances = np.concatenate(distances)
    assert distances.min() >= fraction_range[0] - 1e-5
    assert distances.max() <= fraction_range[1] + 1e-5
    assert distances.max() - distances.min() > 0.5 * (fraction_range[1] - fraction_range[0])


def test_random_position_is_always_far_from_the_face():
    points = tf.constant(dot_points(0))
    side = float(tf.reduce_max(augment.landmark_box(points)[2:] - augment.landmark_box(points)[:2]))
    for k in range(30):
        moved = fv_pipeline.random_position(points, [SIZE, SIZE, 3], tf.constant([k, 9], tf.int64))
        offset = (moved - points).numpy()
        assert np.allclose(offset, offset[0], atol=1e-4)  # the whole shape moves
        assert np.linalg.norm(offset[0]) >= fv_pipeline.NEGATIVE_SHIFT[1] * side - 1e-3


def test_fv_examples_have_the_stated_kinds_and_patches():
    stream = common.seeded_stream(synthetic.synthetic_faces(8), 0, fv_pipeline.SALT)
    kinds = set()
    for index, seed, example in stream.take(32):
        label = fv_pipeline._label(index, 0.5)
        out = fv_pipeline.fv_example(example, seed, label, SETTINGS, do_augment=False)
        kind, true = int(out["kind"]), example["landmarks"]
        kinds.add(kind)
        assert int(out["label"]) == int(kind in (fv_pipeline.KIND_TRUE,
                                                 fv_pipeline.KIND_SMALL_SHIFT))
        patches = out["patches"].numpy()
        assert patches.shape == (68, 12, 12, 3)
        if kind == fv_pipeline.KIND_TRUE:
            expected = tf_cropping.tf_landmark_patches(
                example["image"][None], true[None], augment.landmark_box(true)[None])[0]
            np.testing.assert_allclose(patches, expected, atol=1e-3)
        elif kind == fv_pipeline.KIND_FLAT:
            assert np.ptp(patches.reshape(-1, 3), axis=0).max() < 1e-3
        else:
            box = augment.landmark_box(true)
            side = float(tf.reduce_max(box[2:] - box[:2]))
            distance = np.linalg.norm(out["landmarks"] - true, axis=1) / side
            low = {fv_pipeline.KIND_SMALL_SHIFT: fv_pipeline.POSITIVE_SHIFT[0],
                   fv_pipeline.KIND_SHIFT: fv_pipeline.NEGATIVE_SHIFT[0],
                   fv_pipeline.KIND_RANDOM_POSITION: fv_pipeline.NEGATIVE_SHIFT[1]}[kind]
            assert distance.min() >= low - 1e-4
            if kind == fv_pipeline.KIND_SMALL_SHIFT:
                assert distance.max() <= fv_pipeline.POSITIVE_SHIFT[1] + 1e-4
            if kind == fv_pipeline.KIND_SHIFT:
                assert distance.max() <= fv_pipeline.NEGATIVE_SHIFT[1] + 1e-4
    assert kinds == set(range(5))


def test_robust_fv_examples_label_and_place_each_kind():
    """The robust scheme: positives are the true or slightly jittered shape; each negative kind
    is where its constants say (far shifts far, the 'below' shape under the face and smaller)."""
    stream = common.seeded_stream(synthetic.synthetic_faces(8), 0, fv_pipeline.SALT)
    kinds = set()
    for index, seed, example in stream.take(160):
        label = fv_pipeline._label(index, 0.5)
        out = fv_pipeline.fv_example(example, seed, label, SETTINGS, do_augment=False,
                                     scheme="robust")
        kind, true, shown = int(out["kind"]), example["landmarks"].numpy(), out["landmarks"].numpy()
        kinds.add(kind)
        assert int(out["label"]) == int(kind in (fv_pipeline.KIND_TRUE, fv_pipeline.KIND_JITTER))
        low, high = true.min(0), true.max(0)
        side = float((high - low).max())
        centre_shift = (shown.min(0) + shown.max(0)) / 2 - (low + high) / 2
        shown_side = float((shown.max(0) - shown.min(0)).max())
        if kind == fv_pipeline.KIND_TRUE:
            np.testing.assert_allclose(shown, true, atol=1e-4)
        elif kind == fv_pipeline.KIND_JITTER:      # a similarity about the box centre
            z, w = true[:, 0] + 1j * true[:, 1], shown[:, 0] + 1j * shown[:, 1]
            a, b = np.linalg.lstsq(np.stack([z, np.ones_like(z)], 1), w, rcond=None)[0]
            centre = complex(*((low + high) / 2))
            assert abs(a * centre + b - centre) <= fv_pipeline.JITTER_SHIFT[1] * side + 1e-2
            assert fv_pipeline.JITTER_SCALE[0] - 1e-3 <= abs(a) <= fv_pipeline.JITTER_SCALE[1] + 1e-3
            assert abs(np.degrees(np.angle(a))) <= fv_pipeline.JITTER_DEGREES + 1e-2
        elif kind == fv_pipeline.KIND_FAR_SHIFT:
            distance = np.linalg.norm(shown - true, axis=1) / side
            assert distance.min() >= fv_pipeline.FAR_SHIFT[0] - 1e-4
        elif kind == fv_pipeline.KIND_BELOW:
            assert fv_pipeline.BELOW_SHIFT[0] * side - 1e-3 <= centre_shift[1] \
                <= fv_pipeline.BELOW_SHIFT[1] * side + 1e-3
            assert abs(centre_shift[0]) <= fv_pipeline.BELOW_SIDEWAYS * side + 1e-3
            assert fv_pipeline.BELOW_SCALE[0] - 1e-3 <= shown_side / side \
                <= fv_pipeline.BELOW_SCALE[1] + 1e-3
        elif kind == fv_pipeline.KIND_FLAT:
            assert np.ptp(out["patches"].numpy().reshape(-1, 3), axis=0).max() < 1e-3
    assert {fv_pipeline.KIND_TRUE, fv_pipeline.KIND_JITTER, fv_pipeline.KIND_FAR_SHIFT,
            fv_pipeline.KIND_BELOW, fv_pipeline.KIND_CLUTTER} <= kinds


def test_fv_point_noise_moves_only_the_jittered_positives_points_each_on_its_own():
    """`point_noise`: a jittered positive's points move one by one, each by at most the noise
    times the box side (not as one shape); true shapes and negatives stay as they were."""
    stream = common.seeded_stream(synthetic.synthetic_faces(8), 0, fv_pipeline.SALT)
    noise, jittered = 0.03, 0
    for index, seed, example in stream.take(80):
        label = fv_pipeline._label(index, 0.5)
        plain, noisy = (fv_pipeline.fv_example(example, seed, label, SETTINGS, do_augment=False,
                                               scheme="robust", point_noise=n)
                        for n in (0.0, noise))
        assert int(plain["kind"]) == int(noisy["kind"])
        moved = np.linalg.norm(noisy["landmarks"].numpy() - plain["landmarks"].numpy(), axis=1)
        if int(plain["kind"]) != fv_pipeline.KIND_JITTER:
            assert moved.max() < 1e-4, int(plain["kind"])
            continue
        jittered += 1
        shown = plain["landmarks"].numpy()
        side = float((shown.max(0) - shown.min(0)).max())
        assert moved.max() <= noise * side * 1.001 + 1e-3
        assert np.std(moved) > 0.1 * moved.mean() > 0      # each point its own distance
    assert jittered >= 10


def test_fv_decolour_greys_faces_and_not_faces_alike_and_changes_nothing_else():
    """`decolour` 1: every example's patches lose colour (faces and not-faces: grey alone must
    not tell them apart); the points and kinds are those of the same seed without it."""
    stream = common.seeded_stream(synthetic.synthetic_faces(8), 0, fv_pipeline.SALT)
    spread = lambda patches: float(np.std(patches, axis=-1).mean())    # noqa: E731
    labels = set()
    for index, seed, example in stream.take(12):
        label = fv_pipeline._label(index, 0.5)
        plain, grey = (fv_pipeline.fv_example(example, seed, label, SETTINGS, do_augment=True,
                                              scheme="robust", decolour=d) for d in (0.0, 1.0))
        assert int(plain["kind"]) == int(grey["kind"])
        np.testing.assert_array_equal(plain["landmarks"], grey["landmarks"])
        if int(plain["kind"]) != fv_pipeline.KIND_FLAT and spread(plain["patches"]) > 1.0:
            assert spread(grey["patches"]) < 0.6 * spread(plain["patches"])
            labels.add(int(label))
    assert labels == {0, 1}


def test_fv_batches_are_balanced_shaped_and_deterministic():
    def batches(seed):
        return first_batches(fv_pipeline.make_fv_dataset(
            synthetic.synthetic_faces(6), SETTINGS, 8, seed=seed))
    a, b, c = batches(1), batches(1), batches(2)
    patches, labels = a[0]
    assert patches.shape == (8, 68, 12, 12, 3) and patches.dtype == np.float32
    assert labels.dtype == np.float32 and labels.sum() == 4
    assert_same(a, b)
    assert differ(a, c)


# --- BT ------------------------------------------------------------------------------------------

def test_bt_synthetic_motion_moves_ground_truth_with_the_dots():
    batch = next(iter(bt_pipeline.make_bt_dataset(
        dots_source(2), SETTINGS, 2, 4, augment=False, repeat=False, shuffle_buffer=0)))
    frames, points = batch["frames"].numpy(), batch["landmarks"].numpy()
    assert frames.shape == (2, 4, 256, 256, 3) and frames.dtype == np.uint8
    assert points.shape == (2, 4, 68, 2) and points.dtype == np.float32
    assert np.abs(points[:, -1] - points[:, 0]).max() > 1.0  # the face moved
    for sequence, truth in zip(frames, points):
        for frame, pts in zip(sequence, truth):
            assert_dots_at(frame, pts, 0.4)


def test_bt_crop_pair_puts_ground_truth_where_points_to_crop_says():
    batch = next(iter(bt_pipeline.make_bt_dataset(
        dots_source(2), SETTINGS, 2, 2, augment=False, repeat=False, shuffle_buffer=0)))
    frames, points = batch["frames"], batch["landmarks"]
    prev_boxes = augment.landmark_box(points[:, 0])
    prev_crops, cur_crops, windows = bt_pipeline.bt_crop_pair(
        frames[:, 0], frames[:, 1], prev_boxes, SETTINGS)
    assert prev_crops.shape == cur_crops.shape == (2, 128, 128, 3)
    np.testing.assert_allclose(windows, tf_cropping.tf_square_context_box(prev_boxes, 2.0))
    for t, crops in ((0, prev_crops), (1, cur_crops)):
        in_crop = cropping.points_to_crop(points[:, t], windows, SETTINGS.input_size)
        for crop, pts in zip(crops, in_crop):
            assert_dots_at(crop, pts, 0.5, radius=2)


def test_bt_is_deterministic_given_the_seed():
    def batches(seed):
        return first_batches(bt_pipeline.make_bt_dataset(
            synthetic.synthetic_faces(4), SETTINGS, 2, 3, seed=seed, region_size=96), 1)
    a, b, c = batches(3), batches(3), batches(4)
    assert_same(a, b)
    assert differ(a, c)


def test_fll_hard_conditions_change_pixels_not_ground_truth():
    """FLL with and without hard conditions on the same seed: the same crop windows and
    landmarks (the box jitter is unchanged), and the crops of some examples changed."""
    def batch(hard):
        return next(iter(fll_pipeline.make_fll_dataset(
            synthetic.synthetic_faces(8), SETTINGS, 8, seed=5, with_windows=True,
            hard_conditions=hard)))
    plain, hard = batch(False), batch(True)
    np.testing.assert_allclose(plain[1], hard[1])
    np.testing.assert_allclose(plain[2], hard[2])
    change = np.abs(plain[0].numpy() - hard[0].numpy()).mean(axis=(1, 2, 3))
    assert 0 < (change > 1.0).sum() < 8, change


def _photos_256(photos):
    """The photos resized to 256 x 256 with their points, as a dataset of {image, landmarks}."""
    return tf.data.Dataset.from_tensor_slices(
        {"image": np.stack([cv2.resize(p["image"], (256, 256)) for p in photos]),
         "landmarks": np.stack([p["landmarks"] * 256 / np.array(p["image"].shape[1::-1])
                                for p in photos]).astype(np.float32)})


def test_fll_fringe_hides_the_brows_of_every_example_and_keeps_the_ground_truth(photos):
    """With `fringe_probability` 1 every crop changes at the brows and not at the mouth;
    windows and landmarks stay those of the same seed without it."""
    source = _photos_256(photos)

    def batch(probability):
        return next(iter(fll_pipeline.make_fll_dataset(
            source, SETTINGS, 4, seed=5, with_windows=True, fringe_probability=probability)))
    plain, fringe = batch(0.0), batch(1.0)
    np.testing.assert_allclose(plain[1], fringe[1])
    np.testing.assert_allclose(plain[2], fringe[2])
    for crop, hidden, points in zip(plain[0].numpy(), fringe[0].numpy(), plain[1].numpy()):
        change = np.abs(crop - hidden).mean(axis=-1)

        def at(indices):
            return np.mean([change[int(round(y)), int(round(x))] for x, y in points[indices]])
        assert at(range(17, 27)) > 20.0                          # the brows: under the hair
        assert at(range(48, 68)) < 1e-3                          # the mouth: untouched


def test_fll_mouth_cover_hides_the_mouth_of_every_example_and_keeps_the_ground_truth(photos):
    """With `mouth_cover_probability` 1 every crop changes at the mouth and not at the brows;
    windows and landmarks stay those of the same seed without it."""
    source = _photos_256(photos)

    def batch(probability):
        return next(iter(fll_pipeline.make_fll_dataset(
            source, SETTINGS, 4, seed=5, with_windows=True,
            mouth_cover_probability=probability)))
    plain, covered = batch(0.0), batch(1.0)
    np.testing.assert_allclose(plain[1], covered[1])
    np.testing.assert_allclose(plain[2], covered[2])
    for crop, hidden, points in zip(plain[0].numpy(), covered[0].numpy(), plain[1].numpy()):
        change = np.abs(crop - hidden).mean(axis=-1)

        def at(indices):
            return np.mean([change[int(round(y)), int(round(x))] for x, y in points[indices]])
        assert at(range(60, 68)) > 10.0                          # the lips: under the object
        assert at(range(17, 27)) < 1e-3                          # the brows: untouched


def _turned_dots_source(count, degrees=30.0):
    """Dots on the 68 points of the mean face (110 px wide), turned clockwise by `degrees`
    (+5 per example) about its centre."""
    turned = []
    for i in range(count):
        points = (lm.MEAN_SHAPE_UNIT_BOX * 110.0 + (SIZE - 110.0) / 2).astype(np.float32)
        centre = tuple(float(c) for c in points.mean(axis=0))
        matrix = cv2.getRotationMatrix2D(centre, -(degrees + 5.0 * i), 1.0)
        turned.append((points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32))
    images = np.stack([synthetic.render_dots(p, SIZE, SIZE, sigma=1.0).numpy() for p in turned])
    return {"image": np.round(images).astype(np.uint8), "landmarks": np.stack(turned)}


# The mean face's points whose dots stand clear of the others at 110 px (nearest > 9 px).
_GAPS = np.linalg.norm(lm.MEAN_SHAPE_UNIT_BOX[:, None] - lm.MEAN_SHAPE_UNIT_BOX[None], axis=-1)
APART = [i for i in range(68) if np.sort(_GAPS[i])[1] * 110.0 > 9.0]


def test_fll_turned_example_shows_the_dots_upright_where_its_points_say():
    """The tracker's crop with `fll_upright`, as training cuts it: the dots sit on the crop's
    points, the face stands upright within the roll jitter, the window maps the points back."""
    faces = _turned_dots_source(3)
    for i in range(3):
        example = {"image": faces["image"][i], "landmarks": faces["landmarks"][i]}
        out = fll_pipeline._turned_example(example, tf.constant([i, 3], tf.int64), SETTINGS,
                                           (augment.BOX_SHIFT, augment.BOX_SCALE))
        crop, points, window = (out[k].numpy() for k in ("crop", "landmarks", "window"))
        assert_dots_at(crop, points[APART], 1.0)
        assert abs(np.degrees(cropping.shape_roll(points))) <= augment.ROLL_JITTER_DEGREES + 0.1
        np.testing.assert_allclose(
            cropping.points_from_turned_crop(points, window, SETTINGS.fll_size),
            faces["landmarks"][i], atol=1e-2)


def test_fll_upright_probability_turns_that_fraction_of_the_crops():
    """Probability 1: every crop's face upright within the roll jitter, whatever the still's
    flip and rotation; 0: the paper's crops, which keep the turn."""
    source = tf.data.Dataset.from_tensor_slices(_turned_dots_source(8))

    def rolls(probability):
        _, points = next(iter(fll_pipeline.make_fll_dataset(
            source, SETTINGS, 8, seed=4, repeat=False, shuffle_buffer=0,
            upright_probability=probability)))
        return np.abs(np.degrees(cropping.shape_roll(points.numpy())))
    assert rolls(1.0).max() <= augment.ROLL_JITTER_DEGREES + 0.1
    assert rolls(0.0).max() > 20.0


def _shape_after_similarity(points):
    """The points [N, 68, 2] with translation, scale and roll taken out (Procrustes)."""
    centred = points - points.mean(axis=1, keepdims=True)
    centred /= np.linalg.norm(centred, axis=(1, 2), keepdims=True)
    reference = centred[0]
    aligned = []
    for shape in centred:
        u, _, vt = np.linalg.svd(shape.T @ reference)
        aligned.append(shape @ (u @ vt))
    return np.stack(aligned), reference


def test_fll_shape_warp_gives_other_proportions_with_the_dots_on_their_points():
    """Probability 1: the crops' shapes differ from the same seed's without the warp by more than
    a similarity, and the dots still sit on the crops' points as well as without it (the median
    over the clear dots; a few dots are under the stills' strips or blurred either way); on the
    default grid and on a finer one."""
    source = tf.data.Dataset.from_tensor_slices(_turned_dots_source(4))

    def batch(probability, nodes=4):
        return next(iter(fll_pipeline.make_fll_dataset(
            source, SETTINGS, 4, seed=6, repeat=False, shuffle_buffer=0,
            shape_warp_probability=probability, shape_warp_nodes=nodes)))
    (_, plain), (warped_crops, warped) = batch(0.0), batch(1.0)
    fine_crops, fine = batch(1.0, nodes=8)             # the finer grid reaches the warp
    assert np.abs(fine.numpy() - warped.numpy()).max() > 1.0

    def median_dot_error(crops, points):
        return np.median(np.concatenate([
            np.linalg.norm(synthetic.measure_dots(crop, p[APART]) - p[APART], axis=1)
            for crop, p in zip(crops.numpy(), points.numpy())]))
    assert median_dot_error(warped_crops, warped) < 0.1           # measured: 0.03
    assert median_dot_error(fine_crops, fine) < 0.1
    assert median_dot_error(warped_crops, plain) > 1.0
    for before, after in zip(plain.numpy(), warped.numpy()):
        shapes, _ = _shape_after_similarity(np.stack([before, after]))
        side = np.ptp(before, axis=0).max()
        # in units of the face's side: 0 for a similarity; the warp moves points by up to 5 %
        assert np.abs(shapes[0] - shapes[1]).max() * np.linalg.norm(before - before.mean(0)) \
            / side > 0.01


def test_bt_hard_conditions_change_pixels_not_ground_truth():
    """The same seeds with and without hard conditions: the same motion and landmarks, and the
    frames of some sequences changed (occluded, darker or brighter, blurred) for all frames."""
    def batch(hard):
        return next(iter(bt_pipeline.make_bt_dataset(
            synthetic.synthetic_faces(8), SETTINGS, 8, 2, seed=5, region_size=96,
            hard_conditions=hard)))
    plain, hard = batch(False), batch(True)
    np.testing.assert_allclose(plain["landmarks"], hard["landmarks"])
    np.testing.assert_allclose(plain["init_box"], hard["init_box"])
    change = np.abs(plain["frames"].numpy().astype(float) - hard["frames"].numpy()).mean(
        axis=(2, 3, 4))                                      # [B, T]
    changed = change.min(axis=1) > 1.0                       # every frame of the sequence
    assert 0 < changed.sum() < 8, change


def write_tiny_video(folder, num_frames=10, missing=(6,)):
    """A 300-VW-layout video folder of moving dots; frames in `missing` get no .pts."""
    annot = os.path.join(folder, "annot")
    os.makedirs(annot)
    # FFV1 is lossless: the dots come back exactly as drawn.
    writer = cv2.VideoWriter(os.path.join(folder, "vid.avi"), cv2.VideoWriter_fourcc(*"FFV1"),
                             25, (SIZE, SIZE))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write FFV1 video")
    for index in range(num_frames):
        points = dot_points(0) + [index * 0.7, -index * 0.4]
        image = np.round(synthetic.render_dots(points, SIZE, SIZE, sigma=1.5).numpy())
        writer.write(image.astype(np.uint8))
        if index not in missing:
            lm.write_pts(os.path.join(annot, f"{index + 1:06d}.pts"), points)
    writer.release()


@pytest.mark.parametrize("frame_step, expected", [(1, 3), (3, 1)])
def test_bt_video_sequences_follow_the_annotated_frames(tmp_path, frame_step, expected):
    folder = str(tmp_path / "001")
    write_tiny_video(folder)
    dataset = bt_pipeline.make_bt_video_dataset(
        [folder], SETTINGS, 1, 3 if frame_step == 1 else 2, augment=False, repeat=False,
        frame_step=frame_step, shuffle_buffer=0, region_size=256)
    batches = first_batches(dataset, 10)
    assert len(batches) == expected  # sequences never bridge frame 6, which has no .pts
    for batch in batches:
        for frame, pts in zip(batch["frames"][0], batch["landmarks"][0]):
            assert_dots_at(frame, pts, 0.4)


# --- Checkpointable iterators --------------------------------------------------------------------

PIPELINES = {
    "fll": lambda: fll_pipeline.make_fll_dataset(synthetic.synthetic_faces(4), SETTINGS, 2),
    "fv": lambda: fv_pipeline.make_fv_dataset(synthetic.synthetic_faces(4), SETTINGS, 2),
    "bt": lambda: bt_pipeline.make_bt_dataset(synthetic.synthetic_faces(4), SETTINGS, 1, 2,
                                              region_size=64),
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_iterator_checkpoint_resumes_the_same_stream(tmp_path, name):
    iterator = iter(PIPELINES[name]())
    next(iterator)
    checkpoint = tf.train.Checkpoint(iterator=iterator)
    path = checkpoint.save(str(tmp_path / "ckpt"))
    expected = tf.nest.map_structure(np.asarray, next(iterator))
    checkpoint.restore(path)
    assert_same(expected, tf.nest.map_structure(np.asarray, next(iterator)))
