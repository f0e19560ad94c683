"""MTCNN with the `mtcnn` package's own P/R/O-Net weights, run on LiteRT: the same detections
in a few milliseconds.

    detector = FastMtcnn()                      # first use converts the 3 networks (cached)
    boxes, scores = detector(rgb)               # [N, 4] x0,y0,x1,y1 and [N], best first
    boxes, scores, keypoints = detector.detect(rgb)

What is the same as `mtcnn.MTCNN().detect_faces`: the weights (read from the files the `mtcnn`
package ships, `mtcnn/assets/weights/{pnet,rnet,onet}.lz4`: joblib/lz4 lists of numpy arrays,
loaded into the package's own Keras networks and converted once to LiteRT), the input
normalisation ((x - 127.5) / 128), the image pyramid (AREA resizing, the package's scale
count), the proposal geometry, the thresholds (0.6, 0.7, 0.8), the package's NMS (a box is
dropped when any higher-scored box overlaps it, suppressed or not), the crop_and_resize sampling
of the 24x24 and 48x48 candidates, the box and keypoint refinement and the final rounding and
clipping. The `tests/test_fast_mtcnn.py` parity test holds the two together (IoU >= 0.9 on the
demo clip and the bootstrap photos; in practice the boxes are equal).

What makes it fast: no Keras or TensorFlow at run time (LiteRT interpreters with XNNPACK, one
per pyramid level so nothing is re-allocated from frame to frame), R-Net and O-Net candidates
in one batch each, and the pyramid resized with OpenCV. `min_face_ratio` sets the smallest face
searched for relative to the frame (`max(min_face_size, ratio * min(H, W))` pixels), which
starts the pyramid from a downscaled frame: the cost then hardly depends on the resolution.

Converting the networks needs TensorFlow and the `mtcnn` package, once; the models are kept
under `$CRCT_HOME/litert/mtcnn-*` (see `litert_cache`), keyed by the sha256 of the package's
weight files, and checked on every load.
"""

import collections
import importlib.util
import os
import sys
import time

import cv2
import numpy as np

from crct_tf.tracking import litert_cache

MODEL_FILES = {"pnet": "pnet.tflite", "rnet": "rnet.tflite", "onet": "onet.tflite"}
WEIGHT_FILES = {"pnet": "pnet.lz4", "rnet": "rnet.lz4", "onet": "onet.lz4"}
CONVERTER_VERSION = 2
# The `mtcnn` package's defaults (mtcnn 1.0, StagePNet / StageRNet / StageONet).
MIN_FACE_SIZE = 20
MIN_SIZE = 12
SCALE_FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.8)          # P-Net, R-Net, O-Net scores a face must exceed
NMS_PNET_SCALE, NMS_PNET_ALL, NMS_RNET, NMS_ONET = 0.5, 0.7, 0.7, 0.7
KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# The tracker's detector (`default_detector`): faces from a tenth of the frame's shorter side,
# at most 128 proposals on to R-Net and O-Net.
DEFAULT_MIN_FACE_RATIO = 0.1
DEFAULT_MAX_CANDIDATES = 128
# The tracker's thresholds: MTCNN's original ones (Zhang et al., "Joint Face Detection and
# Alignment using Multitask Cascaded Convolutional Networks", 2016, and facenet's alignment code,
# the lineage of the paper's detector), where the `mtcnn` 1.0 package raised O-Net's to 0.8. FV
# checks every estimate that starts from a detection, so the extra recall costs no false faces
# (docs/robustness.md).
TRACKER_THRESHOLDS = (0.6, 0.7, 0.7)


class MtcnnModelError(RuntimeError):
    """The `mtcnn` package's weights cannot be found or converted."""


# -- the package's weights and their conversion -----------------------------------------------


def package_weights_dir():
    """`mtcnn/assets/weights` of the installed `mtcnn` package (found without importing it)."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise MtcnnModelError("the mtcnn package is not installed (pip install mtcnn)")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "assets", "weights")
    missing = [f for f in WEIGHT_FILES.values() if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise MtcnnModelError(f"{folder}: the mtcnn package lacks {', '.join(missing)}")
    return folder


def weights_key(weights_dir=None):
    """sha256 over the package's three weight files (the cache key)."""
    weights_dir = weights_dir or package_weights_dir()
    parts = [litert_cache.sha256_of(os.path.join(weights_dir, WEIGHT_FILES[n]))
             for n in ("pnet", "rnet", "onet")]
    return litert_cache.sha256_of_bytes(":".join(parts).encode())


def _convert_networks(staging, weights_dir):
    """Builds the package's P/R/O-Net with its weights and writes them as LiteRT models."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)
    from mtcnn.network.onet import ONet
    from mtcnn.network.pnet import PNet
    from mtcnn.network.rnet import RNet
    # The package's own loader reads its weight files (joblib inside the package: the
    # documented third-party exception; the files' sha256 is the cache key above).
    from mtcnn.utils.tensorflow import load_weights

    def pnet(m, x):
        x = m.maxpool1(m.prelu1(m.conv1(x)))
        x = m.prelu3(m.conv3(m.prelu2(m.conv2(x))))
        return [m.conv4_1(x), m.conv4_2(x)]

    def rnet(m, x):
        x = m.maxpool1(m.prelu1(m.conv1(x)))
        x = m.maxpool2(m.prelu2(m.conv2(x)))
        x = m.prelu3(m.conv3(x))
        # The package's Permute((2, 1, 3)) + Flatten, with a static reshape: Keras' Flatten
        # reads the batch size at run time, which keeps LiteRT from delegating the graph to
        # XNNPACK as one piece.
        x = tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [-1, 3 * 3 * 64])
        x = m.prelu4(m.fc4(x))
        return [m.fc5_1(x), m.fc5_2(x)]

    def onet(m, x):
        x = m.maxpool1(m.prelu1(m.conv1(x)))
        x = m.maxpool2(m.prelu2(m.conv2(x)))
        x = m.maxpool3(m.prelu3(m.conv3(x)))
        x = m.prelu4(m.conv4(x))
        x = tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [-1, 3 * 3 * 128])
        x = m.prelu5(m.fc5(x))
        return [m.fc6_1(x), m.fc6_2(x), m.fc6_3(x)]

    specs = {"pnet": (PNet, pnet, [1, None, None, 3]), "rnet": (RNet, rnet, [None, 24, 24, 3]),
             "onet": (ONet, onet, [None, 48, 48, 3])}
    for name, (network, forward, shape) in specs.items():
        model = network()
        model.build()
        model.set_weights(load_weights(os.path.join(weights_dir, WEIGHT_FILES[name])))
        function = tf.function(lambda x, m=model, f=forward: f(m, x),
                               input_signature=[tf.TensorSpec(shape, tf.float32, name="image")])
        frozen = convert_variables_to_constants_v2(function.get_concrete_function())
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
        with open(os.path.join(staging, MODEL_FILES[name]), "wb") as f:
            f.write(converter.convert())
    return {"tensorflow": tf.__version__}


def cache_folder(cache_dir=None, key=None):
    """The cache entry of the converted networks: `<cache>/mtcnn-<weights key>-v<N>`."""
    key = key or weights_key()
    return os.path.join(cache_dir or litert_cache.cache_root(),
                        f"mtcnn-{key[:16]}-v{CONVERTER_VERSION}")


def ensure_models(cache_dir=None, progress=None):
    """The folder of the three LiteRT models, converting them on first use.

    Args:
      cache_dir: where cache entries live (default `litert_cache.cache_root()`).
      progress: `progress(line)` for the one line printed when the models are converted.
    """
    weights_dir = package_weights_dir()
    key = weights_key(weights_dir)
    folder = cache_folder(cache_dir, key)

    def announce(reason):
        if progress is not None:
            progress(f"converting the MTCNN networks to LiteRT once ({reason} cache: {folder})")

    try:
        def build(staging):
            with litert_cache.quiet_console():
                return _convert_networks(staging, weights_dir)

        litert_cache.cached_models(folder, build,
                                   info={"weights_sha256": key, "weights_dir": weights_dir},
                                   on_build=announce)
    except (ImportError, ValueError, OSError) as e:
        raise MtcnnModelError(f"cannot convert the mtcnn networks into {folder}: "
                              f"{' '.join(str(e).split())[:200]}") from None
    return folder


# -- the package's box arithmetic (numpy twins of mtcnn.utils.bboxes) --------------------------


def _sort_desc(boxes):
    """`sort_by_scores(..., ascending=False)`: the same permutation as the package's."""
    return boxes[np.argsort(boxes[:, 5])[::-1]]


def package_nms(boxes, threshold, method="union", block=512):
    """Indices kept by the package's NMS on boxes sorted best first ([N, >=6], x1..y2 at 1:5).

    Box j is dropped when any box i < j (suppressed or not) overlaps it above `threshold`
    (IoU for `union`, intersection over the smaller area for `min`). Computed in column blocks,
    so memory stays O(N * block).
    """
    n = len(boxes)
    if n == 0:
        return np.zeros([0], np.int64)
    x1, y1, x2, y2 = (boxes[:, k] for k in range(1, 5))
    area = (x2 - x1) * (y2 - y1)
    keep = np.ones(n, bool)
    for start in range(0, n, block):
        stop = min(n, start + block)
        cols = slice(start, stop)
        w = np.maximum(0.0, np.minimum(x2[:stop, None], x2[None, cols])
                       - np.maximum(x1[:stop, None], x1[None, cols]))
        h = np.maximum(0.0, np.minimum(y2[:stop, None], y2[None, cols])
                       - np.maximum(y1[:stop, None], y1[None, cols]))
        inter = w * h
        if method == "union":
            denominator = area[:stop, None] + area[None, cols] - inter
        else:
            denominator = np.minimum(area[:stop, None], area[None, cols])
        with np.errstate(divide="ignore", invalid="ignore"):
            over = (inter / denominator) > threshold
        over &= np.arange(stop)[:, None] < np.arange(start, stop)[None, :]
        keep[cols] = ~over.any(axis=0)
    return np.flatnonzero(keep)


def _square(boxes):
    """`resize_to_square`."""
    boxes = boxes.copy()
    h = boxes[:, 4] - boxes[:, 2]
    w = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    boxes[:, 1] = boxes[:, 1] + w * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 2] + h * 0.5 - side * 0.5
    boxes[:, 3] = boxes[:, 1] + side
    boxes[:, 4] = boxes[:, 2] + side
    return boxes


def _refine(boxes, offsets):
    """`adjust_bboxes`: offsets times (w + 1, h + 1)."""
    boxes = boxes.copy()
    w = boxes[:, 3] - boxes[:, 1] + 1
    h = boxes[:, 4] - boxes[:, 2] + 1
    boxes[:, 1:5] += offsets * np.stack([w, h, w, h], axis=-1)
    return boxes


def crop_and_resize(image, boxes, size, exact=False, normalized=False):
    """The package's R/O-Net inputs: `tf.image.crop_and_resize` of the normalised image
    ((x - 127.5) / 128) at the candidates, [N, size, size, C] float32.

    The package normalises x by W and y by H (not W - 1, H - 1), so a candidate's samples lie
    at x1 * (W-1)/W + i * (x2 - x1) * (W-1)/W / (size - 1); a sample outside the image is 0
    (after normalisation), one inside interpolates image pixels only. One `cv2.remap` for all
    candidates (bilinear weights in 1/32 pixel steps; from a uint8 frame, values rounded to
    whole grey levels), or with `exact` the float bilinear of crop_and_resize itself (numpy
    gathers, several times slower). `normalized`: `image` is already the normalised frame.
    """
    norm = (lambda x: np.asarray(x, np.float32)) if normalized else _normalize
    height, width = image.shape[:2]
    n = len(boxes)
    steps = np.arange(size, dtype=np.float64) / (size - 1)
    fy, fx = (height - 1) / height, (width - 1) / width
    ys = (boxes[:, 2:3] + steps[None] * (boxes[:, 4:5] - boxes[:, 2:3])) * fy      # [N, S]
    xs = (boxes[:, 1:2] + steps[None] * (boxes[:, 3:4] - boxes[:, 1:2])) * fx
    inside = (((ys >= 0) & (ys <= height - 1))[:, :, None]
              & ((xs >= 0) & (xs <= width - 1))[:, None, :])
    if not exact:
        map_x = np.broadcast_to(xs[:, None, :], (n, size, size)).reshape(n * size, size)
        map_y = np.broadcast_to(ys[:, :, None], (n, size, size)).reshape(n * size, size)
        out = cv2.remap(image, map_x.astype(np.float32), map_y.astype(np.float32),
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return norm(out.reshape(n, size, size, -1)) * inside[..., None]
    y0 = np.clip(np.floor(ys), 0, height - 1)
    x0 = np.clip(np.floor(xs), 0, width - 1)
    y1 = np.clip(np.ceil(ys), 0, height - 1).astype(np.int64)
    x1 = np.clip(np.ceil(xs), 0, width - 1).astype(np.int64)
    dy = (ys - y0).astype(np.float32)[:, :, None, None]
    dx = (xs - x0).astype(np.float32)[:, None, :, None]
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    flat = norm(image).reshape(height * width, -1)
    rows0, rows1 = (y0 * width)[:, :, None], (y1 * width)[:, :, None]
    cols0, cols1 = x0[:, None, :], x1[:, None, :]
    top_left = np.take(flat, rows0 + cols0, axis=0)
    top = top_left + (np.take(flat, rows0 + cols1, axis=0) - top_left) * dx
    bottom_left = np.take(flat, rows1 + cols0, axis=0)
    bottom = bottom_left + (np.take(flat, rows1 + cols1, axis=0) - bottom_left) * dx
    out = top + (bottom - top) * dy
    out *= inside[..., None]
    return out.reshape(n, size, size, flat.shape[1])


def _normalize(image):
    """The package's input normalisation, (x - 127.5) / 128, in float32."""
    return (np.asarray(image, np.float32) - np.float32(127.5)) * np.float32(1.0 / 128.0)


def scale_pyramid(height, width, min_face_size=MIN_FACE_SIZE, scale_factor=SCALE_FACTOR,
                  smallest_face=None):
    """The package's scales (`build_scale_pyramid`), without levels under 12 pixels.

    `smallest_face` (pixels) drops the finest levels, those that only find faces smaller than
    that: the levels kept are the package's own, so a face found at them gives the same
    proposals as in the package.
    """
    min_dim = min(width, height)
    if min_dim < MIN_SIZE:
        return np.zeros([0])
    count = int(round(-((np.log(min_dim / MIN_SIZE) / np.log(scale_factor)) + 1)))
    scales = (MIN_SIZE / min_face_size) * scale_factor ** np.arange(max(count, 0))
    scales = scales[np.floor(min_dim * scales) >= MIN_SIZE]
    if smallest_face is not None and smallest_face > min_face_size:
        coarse = scales <= MIN_SIZE / smallest_face * (1 + 1e-9)
        if coarse.any():                      # at least the coarsest level
            scales = scales[coarse]
        else:
            scales = scales[-1:]
    return scales


# -- the detector --------------------------------------------------------------------------------


class _Net:
    """A LiteRT model of fixed input shape; outputs matched by their last dimension."""

    def __init__(self, content, shape, num_threads):
        from crct_tf.tracking.tflite_steps import make_interpreter
        self.interpreter = make_interpreter(model_content=content, num_threads=num_threads,
                                            input_shape=shape)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.outputs = {int(d["shape"][-1]): d["index"]
                        for d in self.interpreter.get_output_details()}

    def __call__(self, batch):
        self.interpreter.set_tensor(self.input, np.ascontiguousarray(batch, np.float32))
        self.interpreter.invoke()
        return {k: self.interpreter.get_tensor(i) for k, i in self.outputs.items()}


class FastMtcnn:
    """MTCNN on LiteRT with the `mtcnn` package's weights (see the module docstring).

    Args:
      models_dir: a folder with pnet/rnet/onet.tflite (default: converted once and cached).
      num_threads: LiteRT threads (default: all cores).
      min_face_size: the smallest face searched for, in pixels (the package's 20).
      min_face_ratio: the smallest face relative to the frame's shorter side; the pyramid starts
        at `12 / max(min_face_size, ratio * min(H, W))` (0: the package's pyramid).
      max_candidates: at most this many proposals (the best scored) go on to R-Net, and as many
        to O-Net (None: all, as in the package); bounds the time spent on a textured frame.
      thresholds: the P-Net, R-Net and O-Net scores a face must exceed (the package's
        `THRESHOLDS` by default).
      progress: `progress(line)` for the one line printed when the models are converted.

    Attributes:
      seconds: {"pnet", "rnet", "onet", "total"} summed over calls; `calls`, `candidates`.
    """

    def __init__(self, models_dir=None, num_threads=None, min_face_size=MIN_FACE_SIZE,
                 min_face_ratio=0.0, max_candidates=None, thresholds=THRESHOLDS, progress=None):
        if len(thresholds) != 3 or not all(0 <= t < 1 for t in thresholds):
            raise ValueError(f"thresholds must be three scores in [0, 1), got {thresholds}")
        self.thresholds = tuple(float(t) for t in thresholds)
        folder = models_dir or ensure_models(progress=progress)
        self._content = {}
        for name, file_name in MODEL_FILES.items():
            path = os.path.join(folder, file_name)
            try:
                with open(path, "rb") as f:
                    self._content[name] = f.read()
            except OSError as e:
                raise MtcnnModelError(f"{path}: {e.strerror or e}") from None
        self.num_threads = num_threads or os.cpu_count() or 1
        self.min_face_size = float(min_face_size)
        self.min_face_ratio = float(min_face_ratio)
        self.max_candidates = max_candidates
        self._pnets = collections.OrderedDict()          # (h, w) -> _Net, a few sizes kept
        self._batched = {}                                # (name, batch) -> _Net
        self.seconds = {"pnet": 0.0, "rnet": 0.0, "onet": 0.0, "total": 0.0}
        self.calls = 0
        self.candidates = {"pnet": 0, "rnet": 0, "onet": 0}

    # -- networks ------------------------------------------------------------------------------

    def _pnet(self, level):
        key = level.shape[:2]
        net = self._pnets.pop(key, None)
        if net is None:
            net = _Net(self._content["pnet"], (1, *key, 3), self.num_threads)
        self._pnets[key] = net
        while len(self._pnets) > 48:                     # photos of many sizes: bounded
            self._pnets.popitem(last=False)
        return net(level[None])

    def _run_batched(self, name, patches):
        """One network over N patches, as padded batches of a few fixed sizes (no re-allocation
        from call to call)."""
        outputs = []
        for start in range(0, len(patches), _BATCH_BUCKETS[-1]):
            chunk = patches[start:start + _BATCH_BUCKETS[-1]]
            count = len(chunk)
            size = next(b for b in _BATCH_BUCKETS if b >= count)
            net = self._batched.get((name, size))
            if net is None:
                net = _Net(self._content[name], (size, *chunk.shape[1:]), self.num_threads)
                self._batched[(name, size)] = net
            if size > count:
                chunk = np.concatenate(
                    [chunk, np.zeros((size - count, *chunk.shape[1:]), np.float32)])
            outputs.append({k: v[:count].copy() for k, v in net(chunk).items()})
        return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}

    # -- stages --------------------------------------------------------------------------------

    def min_face(self, height, width):
        """The smallest face searched for in a frame of this size, in pixels."""
        return max(self.min_face_size, self.min_face_ratio * min(height, width))

    def _stage_pnet(self, image):
        height, width = image.shape[:2]
        scales = scale_pyramid(height, width, self.min_face_size,
                               smallest_face=self.min_face(height, width))
        # The levels are AREA resizes of the normalised frame (as in the package). A large
        # frame is first reduced by a whole factor (block means), so the pyramid is built from
        # a frame at most about twice the size of its finest level.
        factor = max(1, int(0.5 / scales[0])) if len(scales) else 1
        if factor > 1:
            image = cv2.resize(image, (width // factor, height // factor),
                               interpolation=cv2.INTER_AREA)
        base = _normalize(image)
        found = []
        for scale in scales:
            size = (int(width * scale), int(height * scale))
            level = cv2.resize(base, size, interpolation=cv2.INTER_AREA)
            out = self._pnet(level)
            score = out[2][0, :, :, 1]
            ys, xs = np.nonzero(score > self.thresholds[0])
            if len(ys) == 0:
                continue
            reg = out[4][0, ys, xs].astype(np.float64)
            x1, y1 = xs * 2 + 1, ys * 2 + 1
            boxes = np.stack([np.zeros(len(ys)), x1 + reg[:, 0] * 11, y1 + reg[:, 1] * 11,
                              x1 + 11 + reg[:, 2] * 11, y1 + 11 + reg[:, 3] * 11,
                              score[ys, xs].astype(np.float64)], axis=1)
            boxes = _sort_desc(boxes)
            boxes[:, 1:5] /= scale
            found.append(boxes[package_nms(boxes, NMS_PNET_SCALE)])
        # R-Net and O-Net crop the normalised frame in float, like the package; a reduced
        # large frame leaves them the uint8 frame.
        self._crop_source = (base, True) if factor == 1 else (None, False)
        if not found:
            return np.zeros([0, 6])
        boxes = _sort_desc(np.concatenate(found))
        return _square(boxes[package_nms(boxes, NMS_PNET_ALL)][:self.max_candidates])

    def _crops(self, image, boxes, size):
        source, normalized = self._crop_source
        return crop_and_resize(image if source is None else source, boxes, size,
                               normalized=normalized)

    def _stage_rnet(self, image, boxes):
        out = self._run_batched("rnet", self._crops(image, boxes, 24))
        boxes = boxes.copy()
        boxes[:, 5] = out[2][:, 1]
        boxes = _refine(boxes, out[4])
        boxes = _sort_desc(boxes[boxes[:, 5] > self.thresholds[1]])
        return _square(boxes[package_nms(boxes, NMS_RNET)][:self.max_candidates])

    def _stage_onet(self, image, boxes):
        out = self._run_batched("onet", self._crops(image, boxes, 48))
        w = boxes[:, 3:4] - boxes[:, 1:2] + 1
        h = boxes[:, 4:5] - boxes[:, 2:3] + 1
        points = out[10].astype(np.float64)
        points = np.concatenate([w * points[:, 0:5] + boxes[:, 1:2] - 1,
                                 h * points[:, 5:10] + boxes[:, 2:3] - 1], axis=1)
        boxes = boxes.copy()
        boxes[:, 5] = out[2][:, 1]
        boxes = np.concatenate([_refine(boxes, out[4]), points], axis=1)
        boxes = _sort_desc(boxes[boxes[:, 5] > self.thresholds[2]])
        return boxes[package_nms(boxes, NMS_ONET, method="min")]

    # -- the interface -------------------------------------------------------------------------

    def detect(self, rgb):
        """(boxes [N, 4] x0,y0,x1,y1, scores [N], keypoints [N, 5, 2]), float32, best first.

        The same values as `detection.detect_faces_with_keypoints` with `mtcnn.MTCNN()`: boxes
        and keypoints rounded to whole pixels, boxes clipped to the image.
        """
        image = np.asarray(rgb)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"detect expects an [H, W, 3] RGB image, got shape {image.shape}")
        start = time.perf_counter()
        if image.dtype != np.uint8:
            image = np.clip(np.round(image), 0, 255).astype(np.uint8)
        marks = [start]
        boxes = self._stage_pnet(image)
        self.candidates["pnet"] += len(boxes)
        marks.append(time.perf_counter())
        if len(boxes):
            boxes = self._stage_rnet(image, boxes)
            self.candidates["rnet"] += len(boxes)
        marks.append(time.perf_counter())
        if len(boxes):
            boxes = self._stage_onet(image, boxes)
            self.candidates["onet"] += len(boxes)
        marks.append(time.perf_counter())
        for name, (a, b) in zip(("pnet", "rnet", "onet"), zip(marks, marks[1:])):
            self.seconds[name] += b - a
        self.seconds["total"] += marks[-1] - start
        self.calls += 1
        return _package_output(boxes, image.shape)

    def __call__(self, rgb):
        """`detect(rgb)` without the keypoints: the tracker's `detect(rgb) -> (boxes, scores)`."""
        boxes, scores, _ = self.detect(rgb)
        return boxes, scores


def default_detector(num_threads=None, progress=None):
    """The tracker's face detector: `FastMtcnn` with the search policy below.

    Policy while no face is tracked (the tracker then calls the detector on every frame): the
    whole frame is searched on every frame, at reduced scale: the pyramid starts at faces of
    `DEFAULT_MIN_FACE_RATIO` (a tenth) of the frame's shorter side, so P-Net sees at most about
    120 x 120 * (W / H) pixels at its finest level whatever the resolution, and at most
    `DEFAULT_MAX_CANDIDATES` proposals go on to R-Net and O-Net. A face that size or larger is
    found with the boxes the `mtcnn` package gives; smaller faces are not searched for (use
    `FastMtcnn(min_face_ratio=0)` for the package's full pyramid). The thresholds are MTCNN's
    original `TRACKER_THRESHOLDS` (O-Net 0.7, the package's 0.8).
    """
    return FastMtcnn(num_threads=num_threads, min_face_ratio=DEFAULT_MIN_FACE_RATIO,
                     max_candidates=DEFAULT_MAX_CANDIDATES, thresholds=TRACKER_THRESHOLDS,
                     progress=progress or _stderr_line)


def _package_output(boxes, shape):
    """The package's post-processing (`limit_bboxes`, `to_json`'s rounding) as arrays."""
    if len(boxes) == 0:
        return (np.zeros([0, 4], np.float32), np.zeros([0], np.float32),
                np.zeros([0, len(KEYPOINTS), 2], np.float32))
    boxes = boxes.copy()
    height, width = shape[:2]
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, width - 1)
    boxes[:, [2, 4]] = np.clip(boxes[:, [2, 4]], 0, height - 1)
    x, y = np.round(boxes[:, 1]), np.round(boxes[:, 2])
    w, h = np.round(boxes[:, 3] - boxes[:, 1]), np.round(boxes[:, 4] - boxes[:, 2])
    xyxy = np.stack([x, y, x + w, y + h], axis=1).astype(np.float32)
    points = np.round(boxes[:, 6:16])
    keypoints = np.stack([points[:, 0:5], points[:, 5:10]], axis=-1).astype(np.float32)
    scores = boxes[:, 5].astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    return xyxy[order], scores[order], keypoints[order]


def _stderr_line(line):
    sys.stderr.write(f"crct_tf: {line}\n")
    sys.stderr.flush()
