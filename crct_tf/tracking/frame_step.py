"""The per-frame network work of Algorithm 1 as `tf.function`s with fixed input signatures.

One call of `FrameSteps.step` does lines 13-19 of Algorithm 1 for F faces of one frame:

    crop X_t and X_{t-1} with b_{t-1} (bt_context)  -> BT -> l_t^BT, h_t       (line 13)
    b_t^BT = [min l_t^BT, max l_t^BT]                                           (line 14, eq. 4)
    patches around l_t^BT (face box b_t^BT)         -> FV -> p(face)            (line 15, eq. 6)
    crop X_t with b_t^BT (fll_context)              -> FLL -> l_t, b_t          (lines 18-19)

(with `settings.fll_box` `bt_centre`, FLL's crop is centred on b_t^BT and sized by b_{t-1};
with `bt_centre_corrected`, b_t^BT's centre is first moved back by the step's `fll_shift`;
with `bt_capped`, b_t^BT's width and height are each capped at b_{t-1}'s;
with `settings.fll_upright`, the crop is turned by the roll of l_t^BT, the face upright in it;
with `settings.fll_turn`, FLL also sees the same crop turned by that roll, and the point sets
are averaged).

Frames are uint8 [H, W, 3] RGB of any size (dynamic H, W: no retracing); the previous frame may
have another size. FLL always runs and the tracker ignores its result when FV rejects: one graph
with no branch, and FLL costs about one backbone pass (see docs/speed.md). The Keras models
run inside XLA-compiled inner functions (`jit_compile`); the crops (`CropAndResize`, which XLA
cannot compile) stay outside them. BT receives both crops and runs its backbone on them as one
batch of 2F (the model concatenates them).

`FrameSteps` is a `tf.Module`: `crct_tf.export` saves it as a SavedModel, and
`load_saved_model` restores the same interface from one without any model-building code.
This module imports only TensorFlow and the shared geometry.
"""

import dataclasses
import functools
import json
import os

import numpy as np
import tensorflow as tf

from crct_tf.geometry import cropping, tf_cropping
from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.geometry.landmarks import NUM_LANDMARKS

CONSTANTS_FILE = "crct_tracker.json"    # the SavedModel asset holding the tracker's constants
SAVED_MODEL_FORMAT = "crct_tf.saved_model"
SAVED_MODEL_VERSION = 2     # 2: the step takes fll_shift

_FRAME = tf.TensorSpec([None, None, 3], tf.uint8, name="frame")
_PREVIOUS = tf.TensorSpec([None, None, 3], tf.uint8, name="previous_frame")
_BOXES = tf.TensorSpec([None, 4], tf.float32, name="boxes")
_LANDMARKS = tf.TensorSpec([None, NUM_LANDMARKS, 2], tf.float32, name="landmarks")
_SHIFTS = tf.TensorSpec([None, 2], tf.float32, name="fll_shift")


class SavedModelError(RuntimeError):
    """A SavedModel folder that is missing or was not written by `crct_tf.export`."""


def _zeros_index(boxes):
    return tf.zeros([tf.shape(boxes)[0]], tf.int32)


def _variables_of(*networks):
    """The distinct tf.Variables of Keras models (none for plain-function stand-ins)."""
    seen, variables = set(), []
    for network in networks:
        for weight in getattr(network, "weights", []):
            variable = getattr(weight, "value", weight)          # Keras 3 wraps a tf.Variable
            if isinstance(variable, tf.Variable) and id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def _state_shape_of(bt):
    try:
        return tuple(int(d) for d in bt.input["state"].shape[1:])
    except (AttributeError, KeyError, TypeError):
        raise ValueError("cannot read BT's state shape from the model; pass state_shape") from None


class _Networks:
    """The three sub-networks behind their own tf.functions (XLA-compiled with `jit_compile`).

    Each is traced once and shared by every outer function that calls it with the same input
    shapes, so a big backbone is traced once per sub-network, not once per signature. A plain
    Python object: saving tracks the models through `FrameSteps`, not these.
    """

    def __init__(self, bt, fv, fll, jit_compile):
        wrap = functools.partial(tf.function, jit_compile=bool(jit_compile))
        self.bt = wrap(lambda inputs: bt(inputs))
        self.fv = wrap(lambda patches: fv(patches))
        self.fll = wrap(lambda crops: fll(crops))


class FrameSteps(tf.Module):
    """Algorithm 1's network work for one frame, and its stages, as tf.functions.

    Args:
      bt, fv, fll: the sub-networks (Keras models, or stand-ins with the same call signatures:
        bt({"previous_crop", "current_crop", "state"}) -> {"landmarks", "state"},
        fv([F, 68, P, P, 3]) -> [F], fll([F, S, S, 3]) -> [F, 68, 2]; crops RGB 0-255, points in
        crop pixels).
      settings: the `CropSettings` they were trained with.
      state_shape: BT's per-face state shape (default: read from the BT model, (4, 512)).
      jit_compile: run the networks under XLA: about 20 % less time per frame on CPU, for
        10-20 s of compilation on the first call (docs/speed.md); worth it for long videos.

    Attributes (tf.functions; frames uint8 [H, W, 3], boxes float32 [F, 4] in image pixels):
      step(frame, previous_frame, boxes, state, fll_shift) -> {"bt_landmarks", "bt_box",
        "p_face", "landmarks", "box", "state"}: the whole frame (crct mode); `fll_shift`
        [F, 2] pixels moves BT's centre back for FLL's crop (`bt_centre_corrected` only).
      bt_step(frame, previous_frame, boxes, state) -> {"landmarks", "box", "state"} (bt mode).
      fv_step(frame, landmarks, face_boxes) -> {"p_face"}.
      fll_step(frame, boxes) -> {"landmarks", "box"}: FLL on the context crop of `boxes`.
      bt, fv, fll: the sub-networks on ready crops, for serving and export signatures.
    """

    def __init__(self, bt, fv, fll, settings=CropSettings(), state_shape=None, jit_compile=False,
                 name="crct_frame_steps"):
        super().__init__(name=name)
        # Saving keeps the models' variables (which the functions capture), not the Keras
        # objects: reviving those would need Keras and the model code, and is slow.
        self.network_variables = _variables_of(bt, fv, fll)
        self.settings = settings
        self.state_shape = tuple(state_shape) if state_shape else _state_shape_of(bt)
        self.jit_compile = bool(jit_compile)
        self._nets = _Networks(bt, fv, fll, jit_compile)
        state = tf.TensorSpec([None, *self.state_shape], tf.float32, name="state")
        size, patch = settings.input_size, settings.fv_patch_size
        fll_size = settings.fll_size
        crops = tf.TensorSpec([None, fll_size, fll_size, 3], tf.float32, name="crops")
        frame_signature = [_FRAME, _PREVIOUS, _BOXES, state]
        self.step = tf.function(self._step, input_signature=frame_signature + [_SHIFTS])
        self.bt_step = tf.function(self._bt_step, input_signature=frame_signature)
        self.fv_step = tf.function(self._fv_step, input_signature=[_FRAME, _LANDMARKS, _BOXES])
        self.fll_step = tf.function(self._fll_step, input_signature=[_FRAME, _BOXES])
        self.bt = tf.function(self._bt_raw, input_signature=[
            tf.TensorSpec([None, size, size, 3], tf.float32, name="previous_crop"),
            tf.TensorSpec([None, size, size, 3], tf.float32, name="current_crop"), state])
        self.fv = tf.function(self._fv_raw, input_signature=[
            tf.TensorSpec([None, NUM_LANDMARKS, patch, patch, 3], tf.float32, name="patches")])
        self.fll = tf.function(self._fll_raw, input_signature=[crops])

    # -- stages, traced into the tf.functions above -------------------------------------------

    def _bt_stage(self, frame, previous_frame, boxes, state):
        """Line 13-14: both frames cropped with b_{t-1}, BT, l_t^BT in image pixels, b_t^BT."""
        size = self.settings.input_size
        window = tf_cropping.tf_square_context_box(boxes, self.settings.bt_context)
        index = _zeros_index(boxes)
        current = tf_cropping.tf_crop_images(frame[None], window, size, index)
        previous = tf_cropping.tf_crop_images(previous_frame[None], window, size, index)
        out = self._nets.bt({"previous_crop": previous, "current_crop": current, "state": state})
        points = cropping.points_from_crop(out["landmarks"], window, size)
        return points, tf_cropping.tf_box_from_landmarks(points), out["state"]

    def _fv_stage(self, frame, landmarks, face_boxes):
        """Line 15 (eq. 6): patches around the landmarks, scaled by `face_boxes`, -> p(face)."""
        s = self.settings
        windows = tf_cropping.tf_landmark_patch_boxes(landmarks, face_boxes, s.fv_patch_size,
                                                s.fv_face_context, s.fv_face_size)
        flat = tf.reshape(windows, [-1, 4])
        patches = tf_cropping.tf_crop_images(frame[None], flat, s.fv_patch_size, _zeros_index(flat))
        patches = tf.reshape(patches, [-1, NUM_LANDMARKS, s.fv_patch_size, s.fv_patch_size, 3])
        return tf.reshape(self._nets.fv(patches), [-1])

    def _fll_stage(self, frame, boxes):
        """Lines 18-19 (eq. 7): FLL on the fll_context crop of `boxes`; l_t and b_t in pixels."""
        size = self.settings.fll_size
        window = tf_cropping.tf_square_context_box(boxes, self.settings.fll_context)
        crops = tf_cropping.tf_crop_images(frame[None], window, size, _zeros_index(boxes))
        points = cropping.points_from_crop(self._fll_points(crops), window, size)
        return points, tf_cropping.tf_box_from_landmarks(points)

    def _fll_upright_stage(self, frame, bt_landmarks):
        """Lines 18-19 with `fll_upright`: FLL on the crop of BT's points turned upright."""
        size = self.settings.fll_size
        window = tf_cropping.tf_turned_context_window(bt_landmarks, self.settings.fll_context)
        crops = tf_cropping.tf_crop_turned(frame, window, size)
        points = tf_cropping.tf_points_from_turned_crop(self._fll_points(crops), window, size)
        return points, tf_cropping.tf_box_from_landmarks(points)

    def _fll_turn_stage(self, frame, boxes, bt_landmarks):
        """Lines 18-19 with `fll_turn`: FLL on the context crop of `boxes` and on the same square
        turned by the roll of BT's points (with `fll_flip`, on the crop's mirror too; one FLL
        call), the mean of the point sets mapped back to the image."""
        size = self.settings.fll_size
        window = tf_cropping.tf_square_context_box(boxes, self.settings.fll_context)
        turned = tf_cropping.tf_turned_square(window, tf_cropping.tf_shape_roll(bt_landmarks))
        crops = tf_cropping.tf_crop_images(frame[None], window, size, _zeros_index(boxes))
        views = [crops, tf_cropping.tf_crop_turned(frame, turned, size)]
        if self.settings.fll_flip:
            views.append(tf.reverse(crops, axis=[2]))
        out = self._nets.fll(tf.concat(views, axis=0))
        count = tf.shape(boxes)[0]
        points = [cropping.points_from_crop(out[:count], window, size),
                  tf_cropping.tf_points_from_turned_crop(out[count:2 * count], turned, size)]
        if self.settings.fll_flip:
            unmirrored = tf_cropping.tf_flip_landmarks(out[2 * count:], size)
            points.append(cropping.points_from_crop(unmirrored, window, size))
        points = tf.add_n(points) / float(len(points))
        return points, tf_cropping.tf_box_from_landmarks(points)

    def _fll_points(self, crops):
        """FLL's points in crop pixels; with `fll_flip`, the mean of the crop's and its mirror's
        (mirrored back as the training flip mirrors: `tf_flip_landmarks`)."""
        if not self.settings.fll_flip:
            return self._nets.fll(crops)
        count = tf.shape(crops)[0]
        both = self._nets.fll(tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0))
        unmirrored = tf_cropping.tf_flip_landmarks(both[count:], tf.shape(crops)[2])
        return (both[:count] + unmirrored) / 2.0

    # -- the tf.function bodies ---------------------------------------------------------------

    def _step(self, frame, previous_frame, boxes, state, fll_shift):
        bt_landmarks, bt_box, new_state = self._bt_stage(frame, previous_frame, boxes, state)
        p_face = self._fv_stage(frame, bt_landmarks, bt_box)
        if self.settings.fll_upright:
            landmarks, box = self._fll_upright_stage(frame, bt_landmarks)
        else:
            fll_box = tf_cropping.tf_fll_crop_box(bt_box, boxes, self.settings.fll_box,
                                                  fll_shift)
            if self.settings.fll_turn:
                landmarks, box = self._fll_turn_stage(frame, fll_box, bt_landmarks)
            else:
                landmarks, box = self._fll_stage(frame, fll_box)
        return {"bt_landmarks": bt_landmarks, "bt_box": bt_box, "p_face": p_face,
                "landmarks": landmarks, "box": box, "state": new_state}

    def _bt_step(self, frame, previous_frame, boxes, state):
        landmarks, box, new_state = self._bt_stage(frame, previous_frame, boxes, state)
        return {"landmarks": landmarks, "box": box, "state": new_state}

    def _fv_step(self, frame, landmarks, face_boxes):
        return {"p_face": self._fv_stage(frame, landmarks, face_boxes)}

    def _fll_step(self, frame, boxes):
        landmarks, box = self._fll_stage(frame, boxes)
        return {"landmarks": landmarks, "box": box}

    def _bt_raw(self, previous_crop, current_crop, state):
        out = self._nets.bt({"previous_crop": previous_crop, "current_crop": current_crop,
                             "state": state})
        return {"landmarks": out["landmarks"], "state": out["state"]}

    def _fv_raw(self, patches):
        return {"p_face": tf.reshape(self._nets.fv(patches), [-1])}

    def _fll_raw(self, crops):
        return {"landmarks": self._nets.fll(crops)}

    def signatures(self):
        """The serving signatures `crct_tf.export` writes (`serving_default` is the step)."""
        return {"serving_default": self.step, "step": self.step, "bt_step": self.bt_step,
                "fv_step": self.fv_step, "fll_step": self.fll_step,
                "bt": self.bt, "fv": self.fv, "fll": self.fll}


@dataclasses.dataclass
class SavedSteps:
    """The `FrameSteps` interface restored from a SavedModel written by `crct_tf.export`.

    Attributes:
      step, bt_step, fv_step, fll_step: the restored tf.functions (same signatures).
      state_shape: BT's per-face state shape.
      settings: the `CropSettings` baked into the graphs.
      constants: the whole constants asset (tracker thresholds, MTCNN box map, provenance).
    """
    step: object
    bt_step: object
    fv_step: object
    fll_step: object
    state_shape: tuple
    settings: CropSettings
    constants: dict
    module: object = None


def constants_path(saved_model_dir):
    return os.path.join(saved_model_dir, "assets", CONSTANTS_FILE)


def read_constants(saved_model_dir):
    """The constants asset of an exported SavedModel (cheap: no TensorFlow loading).

    Raises:
      SavedModelError: when the folder or its constants are missing or not ours.
    """
    if not os.path.isdir(saved_model_dir):
        raise SavedModelError(f"{saved_model_dir}: no such SavedModel folder")
    if not os.path.isfile(os.path.join(saved_model_dir, "saved_model.pb")):
        raise SavedModelError(f"{saved_model_dir}: not a SavedModel (no saved_model.pb)")
    path = constants_path(saved_model_dir)
    try:
        with open(path) as f:
            constants = json.load(f)
    except (OSError, ValueError) as e:
        raise SavedModelError(f"{path}: missing or unreadable ({e.__class__.__name__}); "
                              f"export the model with python -m crct_tf.export") from None
    if constants.get("format") != SAVED_MODEL_FORMAT:
        raise SavedModelError(f"{path}: not written by crct_tf.export")
    if constants.get("version") != SAVED_MODEL_VERSION:
        raise SavedModelError(f"{path}: version {constants.get('version')}, this crct_tf reads "
                              f"{SAVED_MODEL_VERSION}; export it again with python -m "
                              f"crct_tf.export")
    return constants


def load_saved_model(saved_model_dir):
    """Restores `SavedSteps` from a SavedModel folder written by `crct_tf.export`."""
    constants = read_constants(saved_model_dir)
    try:
        module = tf.saved_model.load(saved_model_dir)
    except (OSError, ValueError, tf.errors.OpError) as e:
        message = " ".join(str(e).split())[:300]
        raise SavedModelError(f"{saved_model_dir}: cannot load the SavedModel "
                              f"({message})") from None
    missing = [n for n in ("step", "bt_step", "fv_step", "fll_step") if not hasattr(module, n)]
    if missing:
        raise SavedModelError(f"{saved_model_dir}: the SavedModel lacks {', '.join(missing)}")
    return SavedSteps(step=module.step, bt_step=module.bt_step, fv_step=module.fv_step,
                      fll_step=module.fll_step, state_shape=tuple(constants["state_shape"]),
                      settings=CropSettings.from_dict(constants["crop_settings"]),
                      constants=constants, module=module)


def as_numpy(outputs):
    """A step's dict of tensors as a dict of numpy arrays."""
    return {k: np.asarray(v) for k, v in outputs.items()}
