"""Augmentations that move an image and its landmarks together (paper III-E).

Each is a small pure function on an example dict `{"image", "landmarks", "box"}`:
  image: [H, W, 3] uint8 or float (0-255); the output keeps the dtype.
  landmarks: [68, 2] float32, 0-based pixels (integer = pixel centre, as in `geometry`).
  box: [4] float32 `[x0, y0, x1, y1]`, the face box (the landmark box unless jittered).
Random ones take an explicit `seed` (int32/int64 tensor [2]) and use only `tf.random.stateless_*`
ops, so the same seed gives the same output, eagerly or inside `tf.data`, and a `tf.data`
iterator using them can be checkpointed.

Geometric warps use `ImageProjectiveTransformV3`, which samples output pixel (x, y) at the input
position given by the transform with integer coordinates on pixel centres: the convention of
`geometry`, so points move with exactly the affine map applied to the image (a dot test proves it).
"""

import math

import tensorflow as tf

from crct_tf.geometry.tf_cropping import tf_box_from_landmarks, tf_flip_landmarks

# Paper III-E: "-45 to 45 degree rotations".
MAX_ROTATION_DEGREES = 45.0
# Paper III-E: "artificial strip boxes across the frames to simulate occlusions". Count, size and
# colour are not given; ours: 1-2 bars, 5-15 % of the face box thick, 50-150 % of it long, any
# angle and colour: they hide a part (an eye, the mouth) without hiding the whole face.
MAX_STRIPS = 2
STRIP_THICKNESS = (0.05, 0.15)
STRIP_LENGTH = (0.5, 1.5)
# Photometric changes (not in the paper; mild values of common practice, in 0-255 units).
MAX_BRIGHTNESS_DELTA = 32.0
CONTRAST_RANGE = (0.7, 1.3)
MAX_BLUR_SIGMA = 1.5  # pixels; about the blur of a 300-VW frame seen at twice its size
BLUR_TAPS = 7          # kernel width covering +-2 sigma of the largest blur
# Box jitter: FLL runs on b_t^BT (eq. 7), which is off the true box by a few percent of its size;
# jitter of 5 % (centre) and 10 % (size) teaches FLL to absorb that.
BOX_SHIFT = 0.05
BOX_SCALE = 0.10
# Synthetic motion of a still over a sequence, for BT (Re3 trains on synthetic motion of stills
# too): the face moves up to 15 % of its box, rescales by up to 10 % and turns up to 10 degrees
# between the first and last frame.
MOTION_SHIFT = 0.15
MOTION_SCALE = 0.10
MOTION_DEGREES = 10.0


def split_seed(seed, num):
    """`num` independent seeds [2] derived from `seed` (stateless)."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, num), axis=0)


def landmark_box(points):
    """The landmark box [..., 4] of points [..., N, 2] (eq. 4), as TensorFlow ops."""
    return tf_box_from_landmarks(tf.convert_to_tensor(points, tf.float32))


def _box_centre_size(box):
    return (box[..., :2] + box[..., 2:]) / 2.0, tf.reduce_max(box[..., 2:] - box[..., :2], -1)


def _restore_dtype(image, dtype):
    """A float image back to `dtype` (integers rounded and clipped to their range)."""
    if dtype.is_integer:
        return tf.saturate_cast(tf.round(image), dtype)
    return tf.cast(image, dtype)


# --- Affine maps -------------------------------------------------------------------------------

def similarity_matrix(centre, angle, scale=1.0, shift=(0.0, 0.0)):
    """Forward 2x3 map p -> centre + shift + scale * R(angle) (p - centre), float32.

    `angle` in radians; positive turns clockwise on screen (x right, y down).
    """
    centre = tf.cast(centre, tf.float32)
    angle, scale = tf.cast(angle, tf.float32), tf.cast(scale, tf.float32)
    shift = tf.cast(shift, tf.float32)
    cos, sin = scale * tf.cos(angle), scale * tf.sin(angle)
    linear = tf.stack([tf.stack([cos, -sin]), tf.stack([sin, cos])])
    offset = centre + shift - tf.linalg.matvec(linear, centre)
    return tf.concat([linear, offset[:, None]], axis=1)


def transform_points(points, matrix):
    """Applies a forward 2x3 map to points [..., 2]."""
    return tf.linalg.matvec(matrix[:, :2], points) + matrix[:, 2]


def warp_image(image, matrix, output_size=None):
    """Resamples `image` [H, W, C] so that input point p lands on `matrix` p (bilinear, zero fill).

    Args:
      image: [H, W, C] any numeric dtype.
      matrix: forward 2x3 map from input to output pixel coordinates.
      output_size: (height, width) of the output; default the input's.

    Returns:
      The warped image, same dtype.
    """
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    size = shape[:2] if output_size is None else tf.constant(output_size, tf.int32)
    inverse = tf.linalg.inv(tf.concat([matrix, [[0.0, 0.0, 1.0]]], axis=0))
    transform = tf.concat([tf.reshape(inverse[:2], [6]), [0.0, 0.0]], axis=0)
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(image, tf.float32)[None], transforms=transform[None],
        output_shape=size, fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    return _restore_dtype(warped[0], image.dtype)


def _warp_example(example, matrix):
    points = transform_points(example["landmarks"], matrix)
    return dict(example, image=warp_image(example["image"], matrix), landmarks=points,
                box=landmark_box(points))


# --- Flip ----------------------------------------------------------------------------------------

def flip(example):
    """Mirrors image, landmarks (x -> W-1-x, indices permuted by FLIP_PERMUTATION) and box."""
    image = example["image"]
    width = tf.shape(image)[1]
    last = tf.cast(width, tf.float32) - 1.0
    x0, y0, x1, y1 = tf.unstack(tf.cast(example["box"], tf.float32))
    return dict(example, image=tf.reverse(image, axis=[1]),
                landmarks=tf_flip_landmarks(example["landmarks"], width),
                box=tf.stack([last - x1, y0, last - x0, y1]))


def random_flip(example, seed, probability=0.5):
    """`flip` with the given probability."""
    do = tf.random.stateless_uniform([], seed) < probability
    return tf.cond(do, lambda: flip(example), lambda: dict(example))


# --- Rotation ------------------------------------------------------------------------------------

def rotate(example, angle, centre=None):
    """Turns image and landmarks by `angle` radians about `centre`; box <- landmark box.

    `centre` defaults to the mean of the landmarks, the face centre that a rotation keeps in
    place, so that rotating by +a then -a returns the points exactly. A turned box is no longer
    axis-aligned: the returned box is the landmark box (eq. 4) of the turned points.
    """
    if centre is None:
        centre = tf.reduce_mean(tf.cast(example["landmarks"], tf.float32), axis=0)
    return _warp_example(example, similarity_matrix(centre, angle))


def random_rotate(example, seed, max_degrees=MAX_ROTATION_DEGREES):
    """`rotate` about the face centre by an angle uniform in [-max_degrees, max_degrees]."""
    limit = max_degrees * math.pi / 180.0
    return rotate(example, tf.random.stateless_uniform([], seed, -limit, limit))


# --- Occlusion and photometric -----------------------------------------------------------------

def strip_occlusion(example, seed, max_strips=MAX_STRIPS, thickness=STRIP_THICKNESS,
                    length=STRIP_LENGTH):
    """Paints 1..max_strips bars of random colour across the face; landmarks unchanged.

    Each bar is centred at a uniform point of the box, turned by a uniform angle, with thickness
    and length drawn as fractions of the box's larger side.
    """
    image = example["image"]
    box = tf.cast(example["box"], tf.float32)
    _, side = _box_centre_size(box)
    seeds = split_seed(seed, 6)
    count = tf.random.stateless_uniform([], seeds[0], 1, max_strips + 1, dtype=tf.int32)
    lo, hi = box[:2], box[2:]
    centres = lo + (hi - lo) * tf.random.stateless_uniform([max_strips, 2], seeds[1])
    angles = tf.random.stateless_uniform([max_strips], seeds[2], 0.0, math.pi)
    thick = side * tf.random.stateless_uniform([max_strips], seeds[3], *thickness)
    long = side * tf.random.stateless_uniform([max_strips], seeds[4], *length)
    colours = tf.random.stateless_uniform([max_strips, 3], seeds[5], 0.0, 255.0)
    ys, xs = _pixel_grid(image)
    out = tf.cast(image, tf.float32)
    for k in range(max_strips):
        dx, dy = xs - centres[k, 0], ys - centres[k, 1]
        along = dx * tf.cos(angles[k]) + dy * tf.sin(angles[k])
        across = -dx * tf.sin(angles[k]) + dy * tf.cos(angles[k])
        inside = (tf.abs(along) <= long[k] / 2) & (tf.abs(across) <= thick[k] / 2) & (k < count)
        out = tf.where(inside[..., None], colours[k], out)
    return dict(example, image=_restore_dtype(out, image.dtype))


def _gaussian_blur(image, sigma, taps=BLUR_TAPS):
    """Separable Gaussian blur of an [H, W, C] float image (sigma in pixels, > 0)."""
    offsets = tf.range(taps, dtype=tf.float32) - (taps - 1) / 2.0
    kernel = tf.exp(-0.5 * tf.square(offsets / sigma))
    kernel = kernel / tf.reduce_sum(kernel)
    channels = tf.shape(image)[-1]
    horizontal = tf.tile(tf.reshape(kernel, [1, taps, 1, 1]), [1, 1, channels, 1])
    vertical = tf.reshape(horizontal, [taps, 1, channels, 1])
    out = tf.nn.depthwise_conv2d(image[None], horizontal, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(out, vertical, [1, 1, 1, 1], "SAME")[0]


def photometric(example, seed, max_brightness=MAX_BRIGHTNESS_DELTA, contrast=CONTRAST_RANGE,
                max_blur_sigma=MAX_BLUR_SIGMA, blur_probability=0.3):
    """Random brightness shift, contrast about the mean, and (sometimes) Gaussian blur."""
    image = example["image"]
    seeds = split_seed(seed, 4)
    out = tf.cast(image, tf.float32)
    out = out + tf.random.stateless_uniform([], seeds[0], -max_brightness, max_brightness)
    mean = tf.reduce_mean(out, axis=[0, 1], keepdims=True)
    out = mean + (out - mean) * tf.random.stateless_uniform([], seeds[1], *contrast)
    sigma = tf.random.stateless_uniform([], seeds[2], 0.3, max_blur_sigma)
    blur = tf.random.stateless_uniform([], seeds[3]) < blur_probability
    out = tf.cond(blur, lambda: _gaussian_blur(out, sigma), lambda: out)
    return dict(example, image=_restore_dtype(tf.clip_by_value(out, 0.0, 255.0), image.dtype))


# --- Box jitter ----------------------------------------------------------------------------------

# How far the tracker's roll of BT's points is from the face's (measured: 1-2 degrees median,
# 3-4.5 at the 90th percentile on the robustness sequences), for FLL's turned training crops.
ROLL_JITTER_DEGREES = 5.0


def jitter_turned_window(window, seed, context, max_shift=BOX_SHIFT, max_scale=BOX_SCALE,
                         max_degrees=ROLL_JITTER_DEGREES):
    """A turned window [cx, cy, side, angle] (`cropping.turned_context_window` with `context`)
    jittered as `jitter_box` jitters a box (the centre moved by up to `max_shift` of the face
    box, side / context; the side rescaled by 1 +- max_scale) and its angle by up to
    `max_degrees`."""
    seeds = split_seed(seed, 3)
    side = window[2]
    centre = window[:2] + side / context * tf.random.stateless_uniform([2], seeds[0], -max_shift,
                                                                        max_shift)
    side = side * tf.random.stateless_uniform([], seeds[1], 1.0 - max_scale, 1.0 + max_scale)
    limit = max_degrees * math.pi / 180.0
    angle = window[3] + tf.random.stateless_uniform([], seeds[2], -limit, limit)
    return tf.concat([centre, side[None], angle[None]], axis=0)


def jitter_box(example, seed, max_shift=BOX_SHIFT, max_scale=BOX_SCALE):
    """Moves the box centre by up to `max_shift` of its size and rescales it by 1 +- max_scale.

    The image and landmarks are untouched: the crop, not the face, moves.
    """
    box = tf.cast(example["box"], tf.float32)
    seeds = split_seed(seed, 2)
    centre, size = (box[:2] + box[2:]) / 2.0, box[2:] - box[:2]
    centre = centre + size * tf.random.stateless_uniform([2], seeds[0], -max_shift, max_shift)
    size = size * tf.random.stateless_uniform([], seeds[1], 1.0 - max_scale, 1.0 + max_scale)
    return dict(example, box=tf.concat([centre - size / 2.0, centre + size / 2.0], axis=0))


# --- Synthetic motion (BT) -----------------------------------------------------------------------

def motion_matrices(seed, num_frames, centre, side, max_shift=MOTION_SHIFT,
                    max_scale=MOTION_SCALE, max_degrees=MOTION_DEGREES):
    """Forward 2x3 maps [T, 2, 3] of a smooth motion: linear between two random key poses.

    The first key pose is the identity (frame 0 is the still itself); the second, reached at the
    last frame, is a shift of up to `max_shift * side` per axis, a scale in 1 +- max_scale and a
    turn of up to `max_degrees`, all about `centre`.
    """
    seeds = split_seed(seed, 3)
    shift = side * tf.random.stateless_uniform([2], seeds[0], -max_shift, max_shift)
    log_scale = tf.random.stateless_uniform([], seeds[1], math.log(1.0 - max_scale),
                                            math.log(1.0 + max_scale))
    limit = max_degrees * math.pi / 180.0
    angle = tf.random.stateless_uniform([], seeds[2], -limit, limit)
    steps = tf.linspace(0.0, 1.0, num_frames)
    return tf.map_fn(
        lambda t: similarity_matrix(centre, t * angle, tf.exp(t * log_scale), t * shift),
        steps, fn_output_signature=tf.TensorSpec([2, 3], tf.float32))


def smooth_motion(example, seed, num_frames, **motion_kwargs):
    """A still moved smoothly over `num_frames` frames (see `motion_matrices`).

    Returns:
      {"frames": [T, H, W, 3] (image dtype), "landmarks": [T, 68, 2], "boxes": [T, 4]
      landmark boxes, "matrices": [T, 2, 3]}.
    """
    centre, side = _box_centre_size(tf.cast(example["box"], tf.float32))
    matrices = motion_matrices(seed, num_frames, centre, side, **motion_kwargs)
    image = example["image"]
    frames = tf.map_fn(lambda m: warp_image(image, m), matrices,
                       fn_output_signature=tf.TensorSpec(None, image.dtype))
    points = tf.map_fn(lambda m: transform_points(example["landmarks"], m), matrices)
    return {"frames": frames, "landmarks": points, "boxes": landmark_box(points),
            "matrices": matrices}


# --- The paper's chain ---------------------------------------------------------------------------

def augment_still(example, seed, flip_probability=0.5, rotate_probability=0.5,
                  occlude_probability=0.3, photometric_probability=0.5):
    """The training augmentations of paper III-E (flip, +-45 degrees, strips) plus photometric.

    Each is applied with its probability; the box becomes the landmark box of the moved points.
    """
    seeds = split_seed(seed, 8)

    def maybe(probability, which, fn, ex):
        apply = tf.random.stateless_uniform([], seeds[which]) < probability
        return tf.cond(apply, lambda: fn(ex, seeds[which + 4]), lambda: dict(ex))

    example = dict(example, box=landmark_box(example["landmarks"]))
    example = maybe(flip_probability, 0, lambda ex, s: flip(ex), example)
    example = maybe(rotate_probability, 1, random_rotate, example)
    example = maybe(occlude_probability, 2, strip_occlusion, example)
    return maybe(photometric_probability, 3, photometric, example)


# --- Hard positives for the validator (occluders, motion blur, low light) -----------------------

# Occluders that move with the face, each hiding at most about 30 % of it (the face hull covers
# about 3/4 of the landmark box): a bar over the eyes, a strip across the upper lip, a blob (a
# hand, a cup, a microphone) on the lower face, or one strip anywhere (`strip_occlusion`).
OCCLUDER_KINDS = ("eye_bar", "lip_strip", "blob", "strip")
LIGHT_GAIN = (0.4, 1.4)
MAX_MOTION_BLUR = 9            # pixels, the longest motion-blur kernel
MOTION_BLUR_TAPS = 9


def _pixel_grid(image):
    """(ys, xs) float32 [H, W]: every pixel's row and column."""
    shape = tf.shape(image)
    return tf.meshgrid(tf.range(shape[0], dtype=tf.float32),
                       tf.range(shape[1], dtype=tf.float32), indexing="ij")


def _direction(a, b):
    """The unit vector from point a to point b (the eye or mouth line)."""
    line = b - a
    return line / tf.maximum(tf.norm(line), 1e-3)


def _bar_mask(xs, ys, centre, direction, length, thickness):
    dx, dy = xs - centre[0], ys - centre[1]
    along = dx * direction[0] + dy * direction[1]
    across = -dx * direction[1] + dy * direction[0]
    return (tf.abs(along) <= length / 2) & (tf.abs(across) <= thickness / 2)


def _face_colour(image, box, xs, ys):
    """The mean colour [3] of float32 `image` inside the landmark box `box`."""
    inside_face = _bar_mask(xs, ys, (box[:2] + box[2:]) / 2.0, tf.constant([1.0, 0.0]),
                            box[2] - box[0], box[3] - box[1])
    return tf.reduce_sum(tf.where(inside_face[..., None], image, 0.0), axis=[0, 1]) / \
        tf.maximum(tf.reduce_sum(tf.cast(inside_face, tf.float32)), 1.0)


def face_occluder(example, seed):
    """Paints one occluder of `OCCLUDER_KINDS` on the face; landmarks unchanged.

    The bar and the strip follow the face's own eye and mouth lines (they turn with the head);
    the colour is random, or the face's own mean colour (a hand) half of the time.
    """
    image, points = example["image"], tf.cast(example["landmarks"], tf.float32)
    seeds = split_seed(seed, 8)
    kind = tf.random.stateless_uniform([], seeds[0], 0, len(OCCLUDER_KINDS), dtype=tf.int32)
    box = landmark_box(points)
    width, height = box[2] - box[0], box[3] - box[1]
    ys, xs = _pixel_grid(image)
    eye_line = _direction(points[36], points[45])
    mouth_line = _direction(points[48], points[54])
    u = tf.random.stateless_uniform([4], seeds[1])
    eye_bar = _bar_mask(xs, ys, tf.reduce_mean(points[36:48], 0), eye_line,
                        width * (0.9 + 0.2 * u[0]), height * (0.10 + 0.07 * u[1]))
    lip_strip = _bar_mask(xs, ys, (points[33] + points[51]) / 2.0, mouth_line,
                          width * (0.8 + 0.3 * u[0]), height * (0.08 + 0.08 * u[1]))
    # A blob centred between the mouth and a random jaw point, turned at random.
    jaw = tf.gather(points, tf.random.stateless_uniform([], seeds[2], 3, 14, dtype=tf.int32))
    centre = 0.5 * points[57] + 0.5 * jaw
    angle = tf.random.stateless_uniform([], seeds[3], 0.0, math.pi)
    axes = tf.stack([width * (0.15 + 0.12 * u[2]), height * (0.10 + 0.08 * u[3])])
    dx, dy = xs - centre[0], ys - centre[1]
    along = (dx * tf.cos(angle) + dy * tf.sin(angle)) / axes[0]
    across = (-dx * tf.sin(angle) + dy * tf.cos(angle)) / axes[1]
    blob = tf.square(along) + tf.square(across) <= 1.0
    mask = tf.switch_case(kind, [lambda: eye_bar, lambda: lip_strip, lambda: blob,
                                 lambda: tf.zeros_like(blob)])
    out = tf.cast(image, tf.float32)
    skin = _face_colour(out, box, xs, ys) * tf.random.stateless_uniform([], seeds[4], 0.7, 1.1)
    random_colour = tf.random.stateless_uniform([3], seeds[5], 0.0, 255.0)
    colour = tf.where(tf.random.stateless_uniform([], seeds[6]) < 0.5, skin, random_colour)
    out = tf.where(mask[..., None], colour, out)
    painted = dict(example, image=_restore_dtype(out, image.dtype))
    return tf.cond(tf.equal(kind, 3),
                   lambda: strip_occlusion(dict(example, box=box), seeds[7], max_strips=1),
                   lambda: painted)


def fringe(example, seed):
    """Paints a fringe of hair down over the eyebrows (points 17-26 hidden, the eyes not): a band
    along the eye line from well above the brows to 0-4 % of the face height below the lowest
    brow point, in a dark or fair hair colour. Landmarks unchanged. Real faces often look like
    this, together with another occluder; the validator must still accept them."""
    image, points = example["image"], tf.cast(example["landmarks"], tf.float32)
    seeds = split_seed(seed, 3)
    box = landmark_box(points)
    width, height = box[2] - box[0], box[3] - box[1]
    ys, xs = _pixel_grid(image)
    eye_line = _direction(points[36], points[45])
    up = tf.stack([eye_line[1], -eye_line[0]])
    u = tf.random.stateless_uniform([2], seeds[0])
    brows = tf.reduce_mean(points[17:27], 0)
    lowest = tf.reduce_min(tf.linalg.matvec(points[17:27] - brows, up))   # along `up`, < 0
    edge = lowest - height * 0.04 * u[0]      # the fringe's lower edge, below every brow point
    thickness = height * 0.5
    centre = brows + up * (edge + thickness / 2.0)
    mask = _bar_mask(xs, ys, centre, eye_line, width * (1.1 + 0.2 * u[1]), thickness)
    shade = tf.random.stateless_uniform([], seeds[1], 0.1, 0.8)          # black to fair
    colour = 255.0 * shade * tf.constant([1.0, 0.8, 0.6]) * \
        tf.random.stateless_uniform([3], seeds[2], 0.85, 1.15)
    out = tf.where(mask[..., None], colour, tf.cast(image, tf.float32))
    return dict(example, image=_restore_dtype(out, image.dtype))


def mouth_cover(example, seed):
    """Paints something held at the mouth (food, a cup's rim, a hand, a microphone) over the lips:
    a turned ellipse near the mouth's centre, 0.8-1.6x the mouth's width long and 0.4-1.0x it
    tall, in a skin, dark or random colour with a grain of its own.
    Landmarks unchanged: the points stay where the mouth is, as a person marks them."""
    image, points = example["image"], tf.cast(example["landmarks"], tf.float32)
    seeds = split_seed(seed, 6)
    u = tf.random.stateless_uniform([5], seeds[0])
    mouth = points[48:68]
    centre_of_mouth = tf.reduce_mean(mouth, 0)
    mouth_line = _direction(points[48], points[54])
    across = tf.stack([-mouth_line[1], mouth_line[0]])       # down the face, for a level mouth
    mouth_width = tf.norm(points[54] - points[48])
    centre = centre_of_mouth + mouth_line * mouth_width * 0.3 * (u[0] - 0.5) + \
        across * mouth_width * 0.25 * (u[1] - 0.3)
    axes = tf.stack([mouth_width * (0.4 + 0.4 * u[2]), mouth_width * (0.2 + 0.3 * u[3])])
    angle = tf.atan2(mouth_line[1], mouth_line[0]) + (u[4] - 0.5) * math.pi / 3.0
    ys, xs = _pixel_grid(image)
    dx, dy = xs - centre[0], ys - centre[1]
    along = (dx * tf.cos(angle) + dy * tf.sin(angle)) / axes[0]
    side = (-dx * tf.sin(angle) + dy * tf.cos(angle)) / axes[1]
    mask = tf.square(along) + tf.square(side) <= 1.0
    out = tf.cast(image, tf.float32)
    face_colour = _face_colour(out, landmark_box(points), xs, ys)
    kind = tf.random.stateless_uniform([], seeds[1], 0, 3, dtype=tf.int32)
    colour = tf.switch_case(kind, [
        lambda: face_colour * tf.random.stateless_uniform([], seeds[2], 0.7, 1.1),   # a hand
        lambda: tf.random.stateless_uniform([3], seeds[2], 0.0, 60.0),               # dark
        lambda: tf.random.stateless_uniform([3], seeds[2], 0.0, 255.0)])             # anything
    grain = tf.random.stateless_normal(tf.shape(out)[:2], seeds[3]) * \
        tf.random.stateless_uniform([], seeds[4], 0.0, 25.0)
    painted = tf.clip_by_value(colour + grain[..., None], 0.0, 255.0)
    out = tf.where(mask[..., None], painted, out)
    return dict(example, image=_restore_dtype(out, image.dtype))


def light_gain(example, seed, gain=LIGHT_GAIN):
    """Multiplies the image by a gain in `gain` (0.4: dim, 1.4: bright), clipped to 0-255."""
    image = example["image"]
    factor = tf.random.stateless_uniform([], seed, *gain)
    out = tf.clip_by_value(tf.cast(image, tf.float32) * factor, 0.0, 255.0)
    return dict(example, image=_restore_dtype(out, image.dtype))


def motion_blur(example, seed, max_length=MAX_MOTION_BLUR, taps=MOTION_BLUR_TAPS):
    """Blurs the image along a random direction over 2..max_length pixels (a moving head)."""
    image = example["image"]
    seeds = split_seed(seed, 2)
    length = tf.random.stateless_uniform([], seeds[0], 2.0, float(max_length))
    angle = tf.random.stateless_uniform([], seeds[1], 0.0, math.pi)
    offsets = tf.range(taps, dtype=tf.float32) - (taps - 1) / 2.0
    ky, kx = tf.meshgrid(offsets, offsets, indexing="ij")
    along = kx * tf.cos(angle) + ky * tf.sin(angle)
    across = -kx * tf.sin(angle) + ky * tf.cos(angle)
    kernel = tf.nn.relu(1.0 - tf.abs(across)) * tf.cast(tf.abs(along) <= length / 2, tf.float32)
    kernel = kernel / tf.reduce_sum(kernel)
    channels = tf.shape(image)[-1]
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    out = tf.nn.depthwise_conv2d(tf.cast(image, tf.float32)[None], kernel, [1, 1, 1, 1],
                                 "SAME")[0]
    return dict(example, image=_restore_dtype(out, image.dtype))


def low_resolution(example, seed, factor=(0.25, 0.6)):
    """The image shrunk by a factor in `factor` and enlarged back (a small, far face)."""
    image = example["image"]
    shape = tf.shape(image)
    scale = tf.random.stateless_uniform([], seed, *factor)
    small = tf.maximum(tf.cast(tf.cast(shape[:2], tf.float32) * scale, tf.int32), 8)
    out = tf.image.resize(tf.image.resize(tf.cast(image, tf.float32), small), shape[:2])
    return dict(example, image=_restore_dtype(out, image.dtype))


FRINGE_SALT = 101      # the fringe's seed, folded in: the other draws stay what they were


def maybe_fringe(example, seed, probability):
    """`fringe` on `probability` of the examples (0: none), drawn from `seed` folded with
    FRINGE_SALT, so that adding it leaves every other draw of the same seed as it was."""
    return maybe_salted(example, seed, probability, FRINGE_SALT, fringe)


def maybe_salted(example, seed, probability, salt, paint):
    """`paint(example, seed')` on `probability` of the examples (0: none), `seed'` and the draw
    from `seed` folded with `salt`."""
    if probability <= 0:
        return example
    seeds = split_seed(tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), salt),
                       2)
    apply = tf.random.stateless_uniform([], seeds[0]) < probability
    return tf.cond(apply, lambda: paint(example, seeds[1]), lambda: dict(example))


DECOLOUR_SALT = 107     # the colour loss's seed, folded in: the other draws stay what they were
SEPIA_TINT = (1.07, 0.98, 0.82)     # a warm print's tint, applied to grey (red, green, blue)
# ITU-R BT.601 luma weights (as OpenCV's RGB2GRAY): the grey of an RGB pixel.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def decolour(example, seed):
    """Colour taken away, as in an old photograph or black-and-white video: one of grey, a
    faded sepia print (grey at 50-80 % contrast, lifted, tinted) or colour half gone (the image
    halfway to its grey)."""
    image = example["image"]
    seeds = split_seed(seed, 3)
    rgb = tf.cast(image, tf.float32)
    grey = tf.reduce_sum(rgb * tf.constant(LUMA_WEIGHTS), axis=-1, keepdims=True)
    contrast = tf.random.stateless_uniform([], seeds[1], 0.5, 0.8)
    faded = (grey * contrast + (1.0 - contrast) * 150.0) * tf.constant(SEPIA_TINT)
    kind = tf.random.stateless_uniform([], seeds[0], 0, 3, dtype=tf.int32)
    out = tf.switch_case(kind, [lambda: tf.broadcast_to(grey, tf.shape(rgb)),
                                lambda: faded,
                                lambda: (rgb + grey) / 2.0])
    out = tf.clip_by_value(out, 0.0, 255.0)
    return dict(example, image=_restore_dtype(out, image.dtype))


def maybe_decolour(example, seed, probability):
    """`decolour` on `probability` of the examples (0: none)."""
    return maybe_salted(example, seed, probability, DECOLOUR_SALT, decolour)


MOUTH_COVER_SALT = 103  # the mouth cover's seed, folded in: the other draws stay what they were


def maybe_mouth_cover(example, seed, probability):
    """`mouth_cover` on `probability` of the examples (0: none), drawn from `seed` folded with
    MOUTH_COVER_SALT, so that adding it leaves every other draw of the same seed as it was."""
    return maybe_salted(example, seed, probability, MOUTH_COVER_SALT, mouth_cover)


# --- Face shape ----------------------------------------------------------------------------------

SHAPE_WARP_NODES = 4         # moving control points per side of the face's region
SHAPE_WARP_REGION = 1.6      # the region: the landmark box grown this many times about its centre
SHAPE_WARP_STRENGTH = 0.05   # largest move of a control point, a fraction of the box's side
SHAPE_WARP_ITERATIONS = 6    # fewest fixed-point steps that move the points with the image
SHAPE_WARP_RESIDUAL = 0.01   # the steps leave at most this fraction of the largest move
SHAPE_WARP_SALT = 104        # the warp's seed, folded in: the other draws stay what they were


def shape_warp_steps(strength=SHAPE_WARP_STRENGTH, nodes=SHAPE_WARP_NODES):
    """Fixed-point steps for a warp of `nodes` control points a side moved by up to `strength`:
    the warp's slope bounds each step's shrink of the error. ValueError where the slope reaches 1,
    as the warp could then fold the image over itself."""
    if nodes < 1:
        raise ValueError(f"a shape warp needs at least 1 control point a side, not {nodes}")
    slope = 2.0 * strength * (nodes + 1) / SHAPE_WARP_REGION
    if not 0.0 < slope < 1.0:
        raise ValueError(f"a shape warp of {nodes} control points a side moved by up to {strength} "
                         "of the face's side would fold the image: fewer points or smaller moves")
    return max(SHAPE_WARP_ITERATIONS,
               math.ceil(math.log(SHAPE_WARP_RESIDUAL) / math.log(slope)))


def _sample_bilinear(image, xs, ys):
    """float32 `image` [H, W, C] sampled at float positions `xs`, `ys` [h, w] (pixel centres on
    integers; positions outside are clamped to the edge)."""
    shape = tf.shape(image)
    x0, y0 = tf.floor(xs), tf.floor(ys)
    wx, wy = (xs - x0)[..., None], (ys - y0)[..., None]

    def at(x, y):
        x = tf.clip_by_value(tf.cast(x, tf.int32), 0, shape[1] - 1)
        y = tf.clip_by_value(tf.cast(y, tf.int32), 0, shape[0] - 1)
        return tf.gather_nd(image, tf.stack([y, x], axis=-1))

    top = at(x0, y0) * (1 - wx) + at(x0 + 1, y0) * wx
    bottom = at(x0, y0 + 1) * (1 - wx) + at(x0 + 1, y0 + 1) * wx
    return top * (1 - wy) + bottom * wy


def shape_warp(example, seed, strength=SHAPE_WARP_STRENGTH, nodes=SHAPE_WARP_NODES):
    """Gives the face other proportions: a continuous warp of the region around it, its points moved
    with it (not in the paper; `--fll_shape_warp`).

    A grid of `nodes` x `nodes` control points inside the region (the landmark box grown
    SHAPE_WARP_REGION times) each move by up to `strength` of the box's side; the region's edge
    and everything outside stay put, and the moves are interpolated bilinearly in between. The
    default 4 moves whole parts of the face (proportions); a finer grid, 8 say, also moves the
    mouth, each brow and each eye on their own (expressions; `--fll_shape_warp_nodes`). The
    output pixel x shows the input at x + d(x); a point p goes to the q with q + d(q) = p, found
    by fixed-point iteration: d's slope is at most 2 x `strength` x (`nodes` + 1) /
    SHAPE_WARP_REGION (0.31 at the defaults, 0.56 with 8 nodes), which bounds each step's shrink
    of the error (`shape_warp_steps`).
    """
    steps = shape_warp_steps(strength, nodes)
    image, points = example["image"], tf.cast(example["landmarks"], tf.float32)
    box = landmark_box(points)
    centre, side = _box_centre_size(box)
    region_side = side * SHAPE_WARP_REGION
    origin = centre - region_side / 2.0
    spacing = region_side / (nodes + 1)
    moves = tf.random.stateless_uniform([nodes, nodes, 2], seed, -strength, strength) * side
    grid = tf.pad(moves, [[1, 1], [1, 1], [0, 0]])      # the region's edge does not move

    def displacement(xs, ys):
        """d [..., 2] at image positions xs, ys (any shape)."""
        gx, gy = (xs - origin[0]) / spacing, (ys - origin[1]) / spacing
        shape = tf.shape(xs)
        flat = _sample_bilinear(grid, tf.reshape(gx, [1, -1]), tf.reshape(gy, [1, -1]))
        return tf.reshape(flat, tf.concat([shape, [2]], axis=0))

    # Only the region's pixels move: resample its bounding rectangle, keep the rest as it is.
    pixels = tf.cast(image, tf.float32)
    size = tf.shape(image)

    def pixel_range(axis):
        """[first, end) of the region's pixels along x (0) or y (1), inside the image."""
        limit = tf.cast(size[1 - axis], tf.float32)
        first = tf.clip_by_value(tf.floor(origin[axis]), 0.0, limit)
        end = tf.clip_by_value(tf.math.ceil(origin[axis] + region_side) + 1.0, 0.0, limit)
        return tf.cast(first, tf.int32), tf.cast(end, tf.int32)

    (x0, x1), (y0, y1) = pixel_range(0), pixel_range(1)
    ys, xs = tf.meshgrid(tf.range(y0, y1, dtype=tf.float32), tf.range(x0, x1, dtype=tf.float32),
                         indexing="ij")
    d = displacement(xs, ys)
    patch = _sample_bilinear(pixels, xs + d[..., 0], ys + d[..., 1])
    band = tf.concat([pixels[y0:y1, :x0], patch, pixels[y0:y1, x1:]], axis=1)
    warped = tf.concat([pixels[:y0], band, pixels[y1:]], axis=0)
    moved = points
    for _ in range(steps):
        moved = points - displacement(moved[:, 0], moved[:, 1])
    return dict(example, image=_restore_dtype(warped, image.dtype), landmarks=moved,
                box=landmark_box(moved))


def maybe_shape_warp(example, seed, probability, nodes=SHAPE_WARP_NODES):
    """`shape_warp` (of `nodes` control points a side) on `probability` of the examples (0: none),
    drawn from `seed` folded with SHAPE_WARP_SALT, so that adding it leaves every other draw of
    the same seed as it was."""
    return maybe_salted(example, seed, probability, SHAPE_WARP_SALT,
                        lambda example, seed: shape_warp(example, seed, nodes=nodes))


def hard_conditions(example, seed, occlude_probability=0.5, dark_probability=0.4,
                    blur_probability=0.3, low_resolution_probability=0.25,
                    fringe_probability=0.0):
    """What a tracked face goes through: an occluder, low or high light, motion blur, a face
    seen small; with `fringe_probability`, also hair over the brows (with or without the
    occluder)."""
    seeds = split_seed(seed, 8)

    def maybe(probability, which, fn, ex):
        apply = tf.random.stateless_uniform([], seeds[which]) < probability
        return tf.cond(apply, lambda: fn(ex, seeds[which + 4]), lambda: dict(ex))

    example = maybe(occlude_probability, 0, face_occluder, example)
    example = maybe_fringe(example, seed, fringe_probability)
    example = maybe(dark_probability, 1, light_gain, example)
    example = maybe(low_resolution_probability, 3, low_resolution, example)
    return maybe(blur_probability, 2, motion_blur, example)
