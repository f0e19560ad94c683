"""Algorithm 1's per-frame network work on LiteRT (TensorFlow Lite, XNNPACK), crops in OpenCV.

    steps = load_tflite_steps("exported/tflite", num_threads=2)
    tracker = Tracker.from_constants(steps, steps.constants)

`TfliteSteps` has the interface the `Tracker` uses (`step`, `bt_step`, `fv_step`, `fll_step`,
`state_shape`, see `frame_step.FrameSteps`) and computes the same thing: the crops are cut by
`cropping.crop_image` / `cropping.landmark_patch_boxes` (the numpy twins of the TF crops, which
sample at the same positions) and the three networks run as the TFLite models written by
`python -m crct_tf.export --format tflite` (or cached by `crct_tf.tracking.runtime` on the first
run of a weights bundle). The interpreter is LiteRT's (`ai_edge_litert`, which replaces the
deprecated `tf.lite.Interpreter`); it applies XNNPACK by default.

Imports LiteRT, OpenCV and the shared geometry only: no TensorFlow, no model-building, training
or bundle code. One face per call (F = 1, the tracker's case); a batch of F boxes is run face by
face.
"""

import json
import os
import time

import numpy as np

from crct_tf.geometry import cropping
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.geometry.landmarks import NUM_LANDMARKS, box_from_landmarks, flip_landmarks

CONSTANTS_FILE = "crct_tflite.json"
TFLITE_FORMAT = "crct_tf.tflite"
TFLITE_VERSION = 1


def prewhiten(crops):
    """facenet's standardisation per crop [B, S, S, 3]: (x - mean) / max(std, 1/sqrt(x.size)).

    The same as the backbone's `Prewhiten` layer; exports of a prewhitening backbone leave it
    out of the TFLite models (`prewhiten_crops` in the constants) and it runs here in float.
    """
    x = np.asarray(crops, np.float32)
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    floor = np.float32(1.0 / np.sqrt(np.prod(x.shape[1:])))
    return ((x - mean) / np.maximum(std, floor)).astype(np.float32)


class TfliteError(RuntimeError):
    """A TFLite export folder that is missing or was not written by `crct_tf.export`."""


def read_tflite_constants(tflite_dir):
    """The constants JSON of a TFLite export folder (cheap: no TensorFlow)."""
    path = os.path.join(tflite_dir, CONSTANTS_FILE)
    if not os.path.isdir(tflite_dir):
        raise TfliteError(f"{tflite_dir}: no such TFLite export folder")
    try:
        with open(path) as f:
            constants = json.load(f)
    except (OSError, ValueError) as e:
        raise TfliteError(f"{path}: missing or unreadable ({e.__class__.__name__}); export with "
                          f"python -m crct_tf.export --format tflite") from None
    if constants.get("format") != TFLITE_FORMAT or constants.get("version") != TFLITE_VERSION:
        raise TfliteError(f"{path}: not a version {TFLITE_VERSION} crct_tf TFLite export")
    return constants


def make_interpreter(path=None, num_threads=None, model_content=None, input_shape=None):
    """A LiteRT interpreter (XNNPACK on CPU) of a .tflite file or of flatbuffer bytes, with its
    tensors allocated (after resizing its first input to `input_shape` when given)."""
    from ai_edge_litert.interpreter import Interpreter

    from crct_tf.tracking.litert_cache import quiet_console
    with quiet_console():       # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate ..."
        interpreter = Interpreter(model_path=path, model_content=model_content,
                                  num_threads=num_threads or os.cpu_count() or 1)
        if input_shape is not None:
            index = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(index, list(input_shape), strict=False)
        interpreter.allocate_tensors()
    return interpreter


class _Model:
    """One TFLite model: inputs matched by name, outputs by role (shape).

    Calls write the inputs straight into the interpreter's input buffers and return copies of
    the outputs (LiteRT reuses its buffers on the next call).
    """

    def __init__(self, path, input_names, num_threads):
        try:
            self.interpreter = make_interpreter(path, num_threads)
        except (ValueError, RuntimeError) as e:
            raise TfliteError(f"{path}: not a usable TFLite model "
                              f"({' '.join(str(e).split())[:200]})") from None
        details = self.interpreter.get_input_details()
        self.inputs = []
        for name in input_names:
            matches = [d["index"] for d in details if d["name"].split(":")[0].endswith(name)]
            if len(matches) != 1:
                raise TfliteError(f"{path}: no unique input named {name}")
            self.inputs.append(matches[0])
        self.outputs = [d["index"] for d in self.interpreter.get_output_details()]
        self.seconds = 0.0          # time spent in this model, summed over calls (benchmark)
        self.calls = 0

    def __call__(self, *arrays):
        start = time.perf_counter()
        interpreter = self.interpreter
        for index, array in zip(self.inputs, arrays):
            interpreter.set_tensor(index, np.ascontiguousarray(array, np.float32))
        interpreter.invoke()
        outputs = [interpreter.get_tensor(i) for i in self.outputs]
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return outputs


def _by_shape(outputs, shape):
    for value in outputs:
        if tuple(value.shape[1:]) == tuple(shape):
            return value
    raise TfliteError(f"no output of shape [1, {shape}]")


class TfliteSteps:
    """The `FrameSteps` interface on TFLite models (see module docstring).

    Args:
      tflite_dir: a folder written by `python -m crct_tf.export --format tflite`.
      num_threads: interpreter threads (XNNPACK's thread pool).
    """

    def __init__(self, tflite_dir, num_threads=None):
        self.constants = read_tflite_constants(tflite_dir)
        self.settings = CropSettings.from_dict(self.constants["crop_settings"])
        self.state_shape = tuple(self.constants["state_shape"])
        self.quantize = self.constants.get("quantize", "none")
        self._prewhiten = prewhiten if self.constants.get("prewhiten_crops") else (lambda x: x)
        threads = num_threads or os.cpu_count() or 1
        models = self.constants["models"]
        inputs = self.constants["inputs"]
        for name in ("bt", "fv", "fll"):
            path = os.path.join(tflite_dir, models[name])
            if not os.path.isfile(path):
                raise TfliteError(f"{path}: missing; export with --format tflite")
        self._bt = _Model(os.path.join(tflite_dir, models["bt"]), inputs["bt"], threads)
        self._fv = _Model(os.path.join(tflite_dir, models["fv"]), inputs["fv"], threads)
        self._fll = _Model(os.path.join(tflite_dir, models["fll"]), inputs["fll"], threads)
        self._stages = {"crops": 0.0, "prewhiten": 0.0}

    def network_seconds(self):
        """{bt, fv, fll}: seconds spent inside each TFLite model so far (crops excluded)."""
        return {"bt": self._bt.seconds, "fv": self._fv.seconds, "fll": self._fll.seconds}

    def stage_seconds(self):
        """Seconds so far per stage of the step: {crops, prewhiten, bt, fv, fll}; the rest of
        a step's time is Python (conversions, point maps, bookkeeping)."""
        return dict(self._stages, **self.network_seconds())

    def _timed(self, stage, start):
        now = time.perf_counter()
        self._stages[stage] += now - start
        return now

    # -- stages: one face --------------------------------------------------------------------

    def _bt_one(self, frame, previous_frame, box, state):
        s = self.settings
        start = time.perf_counter()
        window = cropping.square_context_box(box, s.bt_context)
        current = crop_region(frame, window, s.input_size)[None]
        previous = crop_region(previous_frame, window, s.input_size)[None]
        start = self._timed("crops", start)
        current, previous = self._prewhiten(current), self._prewhiten(previous)
        self._timed("prewhiten", start)
        outputs = self._bt(previous, current, state[None])
        points = cropping.points_from_crop(
            _by_shape(outputs, (NUM_LANDMARKS, 2))[0], window, s.input_size)
        return points, box_from_landmarks(points), _by_shape(outputs, self.state_shape)[0].copy()

    def _fv_one(self, frame, landmarks, face_box):
        s = self.settings
        start = time.perf_counter()
        windows = cropping.landmark_patch_boxes(landmarks, face_box, s.fv_patch_size,
                                                s.fv_face_context, s.fv_face_size)
        patches = crop_regions(frame, windows, s.fv_patch_size)       # one cv2.remap
        self._timed("crops", start)
        return float(np.reshape(self._fv(patches[None])[0], [-1])[0])

    def _fll_one(self, frame, box=None, bt_points=None):
        """FLL on the context crop of `box`; (`fll_upright`, no `box`) on the turned crop of BT's
        points `bt_points`; (`fll_turn`, both given) on the crop of `box` and on the same square
        turned by the roll of `bt_points`. With `fll_flip` also on the mirror of the first crop;
        the mean of the point sets mapped back to the image."""
        s = self.settings
        start = time.perf_counter()
        if box is None:
            views = [(cropping.turned_context_window(bt_points, s.fll_context), True)]
        else:
            window = cropping.square_context_box(box, s.fll_context)
            views = [(window, False)]
            if bt_points is not None:
                views.append((cropping.turned_square(window, cropping.shape_roll(bt_points)), True))
        crops = [crop_turned_region(frame, w, s.fll_size) if turned
                 else crop_region(frame, w, s.fll_size) for w, turned in views]
        start = self._timed("crops", start)
        crops = [self._prewhiten(crop[None]) for crop in crops]
        self._timed("prewhiten", start)
        points = []
        for (window, turned), crop in zip(views, crops):
            to_image = cropping.points_from_turned_crop if turned else cropping.points_from_crop
            points.append(to_image(self._fll(crop)[0][0], window, s.fll_size))
        if s.fll_flip:                          # see CropSettings.fll_flip and FrameSteps
            window, turned = views[0]
            to_image = cropping.points_from_turned_crop if turned else cropping.points_from_crop
            mirrored = flip_landmarks(self._fll(crops[0][:, :, ::-1])[0][0], s.fll_size)
            points.append(to_image(mirrored, window, s.fll_size))
        points = np.mean(points, axis=0)
        return points, box_from_landmarks(points)

    # -- the FrameSteps interface (numpy in, dict of numpy out) -------------------------------

    def step(self, frame, previous_frame, boxes, state, fll_shift):
        frame, previous_frame = _frame(frame), _frame(previous_frame)
        out = {k: [] for k in ("bt_landmarks", "bt_box", "p_face", "landmarks", "box", "state")}
        for box, face_state, shift in zip(np.asarray(boxes, np.float32),
                                          np.asarray(state, np.float32),
                                          np.asarray(fll_shift, np.float32)):
            bt_points, bt_box, new_state = self._bt_one(frame, previous_frame, box, face_state)
            p_face = self._fv_one(frame, bt_points, bt_box)
            if self.settings.fll_upright:
                points, final_box = self._fll_one(frame, bt_points=bt_points)
            else:
                points, final_box = self._fll_one(
                    frame, cropping.fll_crop_box(bt_box, box, self.settings.fll_box, shift),
                    bt_points if self.settings.fll_turn else None)
            for key, value in zip(out, (bt_points, bt_box, p_face, points, final_box, new_state)):
                out[key].append(value)
        return _stack(out)

    def bt_step(self, frame, previous_frame, boxes, state):
        frame, previous_frame = _frame(frame), _frame(previous_frame)
        out = {"landmarks": [], "box": [], "state": []}
        for box, face_state in zip(np.asarray(boxes, np.float32), np.asarray(state, np.float32)):
            for key, value in zip(out, self._bt_one(frame, previous_frame, box, face_state)):
                out[key].append(value)
        return _stack(out)

    def fv_step(self, frame, landmarks, face_boxes):
        frame = _frame(frame)
        return {"p_face": np.array([self._fv_one(frame, l, b) for l, b in
                                    zip(np.asarray(landmarks, np.float32),
                                        np.asarray(face_boxes, np.float32))], np.float32)}

    def fll_step(self, frame, boxes):
        frame = _frame(frame)
        out = {"landmarks": [], "box": []}
        for box in np.asarray(boxes, np.float32):
            for key, value in zip(out, self._fll_one(frame, box)):
                out[key].append(value)
        return _stack(out)


def _frame(image):
    """A frame as it comes (uint8 or float): the crops convert only the pixels they read."""
    return np.asarray(image)


def _region(image, windows, size):
    """The part of `image` the crops of `windows` [N, 4] (to `size`) sample, in float32, and
    its offset: the bilinear samples need the pixels from floor(first) to ceil(last) sample."""
    height, width = image.shape[:2]
    windows = np.asarray(windows, np.float64).reshape(-1, 4)
    step = (windows[:, 2:] - windows[:, :2]) / size
    first = windows[:, :2] + 0.5 * step
    last = windows[:, :2] + (size - 0.5) * step
    x0 = int(np.clip(np.floor(first[:, 0].min()), 0, width - 1))
    y0 = int(np.clip(np.floor(first[:, 1].min()), 0, height - 1))
    x1 = int(np.clip(np.ceil(last[:, 0].max()), 0, width - 1))
    y1 = int(np.clip(np.ceil(last[:, 1].max()), 0, height - 1))
    region = np.asarray(image[y0:y1 + 1, x0:x1 + 1], np.float32)
    return region, np.array([x0, y0, x0, y0], np.float64)


def crop_region(image, window, size):
    """`cropping.crop_image` (same values) converting only the pixels it samples to float."""
    region, offset = _region(image, window, size)
    return cropping.crop_image(region, np.asarray(window, np.float64) - offset, size)


def crop_turned_region(image, window, size):
    """`cropping.crop_turned` (same values) converting only the pixels it samples to float."""
    height, width = image.shape[:2]
    corners = cropping.points_from_turned_crop(
        np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float32),
        window, size)
    x0, y0 = (int(np.clip(np.floor(v), 0, n - 1)) for v, n in zip(corners.min(0), (width, height)))
    x1, y1 = (int(np.clip(np.ceil(v), 0, n - 1)) for v, n in zip(corners.max(0), (width, height)))
    region = np.asarray(image[y0:y1 + 1, x0:x1 + 1], np.float32)
    shifted = np.asarray(window, np.float32) - np.array([x0, y0, 0, 0], np.float32)
    return cropping.crop_turned(region, shifted, size)


def crop_regions(image, windows, size):
    """`cropping.crop_images` (same values) converting only the pixels they sample to float."""
    region, offset = _region(image, windows, size)
    return cropping.crop_images(region, np.asarray(windows, np.float64) - offset, size)


def _stack(out):
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def load_tflite_steps(tflite_dir, num_threads=None):
    """`TfliteSteps` from an export folder; raises `TfliteError` with a one-line message."""
    return TfliteSteps(tflite_dir, num_threads)
