"""BT, the recurrent facial box tracker (paper III-A, eqs. 2-4), one time step.

    EL      = [res(X_t^Pb); res(X_{t-1}^Pb)] . W^EL                     (eq. 3)
    h_t, l_t^BT = LSTM(EL, h_{t-1}) . W^BT,   W^BT = {W^R1, ..., W^R5}   (eq. 2)

Both crops are cut from their frames with the previous box b_{t-1} (Re3's context) and go through
one shared backbone as a single batch of 2B. The embedding (2 x 1792 -> 1024, SELU, from the
authors' code) feeds two stacked LSTMs of 512 units (Re3's 1024 halved, as the paper says), and
five independent fully connected heads regress the points of each facial region, assembled in
iBUG order. The recurrent state is an explicit input and output, [B, 4, 512] = (h1, c1, h2, c2),
so the tracker carries it from frame to frame and resets it (Algorithm 1, line 12).

Each LSTM is a one-step `unroll=True` layer: it converts to TFLite cleanly.
"""

import keras
import numpy as np
from keras import layers

from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.geometry.landmarks import REGIONS
from crct_tf.models.landmark_heads import check_all_landmarks, landmark_head

EMBEDDING_UNITS = 1024   # authors' code: 2 x 1792 -> 1024, SELU
LSTM_UNITS = 512         # Re3's 1024 halved (paper III-A, modification 3)
STATE_PARTS = 4          # h1, c1, h2, c2


@keras.saving.register_keras_serializable(package="crct_tf")
class ConcatBatch(layers.Layer):
    """[a, b] -> concatenation on the batch axis, so one backbone call serves both crops."""

    def call(self, inputs):
        return keras.ops.concatenate(inputs, axis=0)


@keras.saving.register_keras_serializable(package="crct_tf")
class SplitBatch(layers.Layer):
    """The inverse of ConcatBatch for two equal halves: x -> [x[:B], x[B:]]."""

    def call(self, x):
        half = keras.ops.shape(x)[0] // 2
        return [x[:half], x[half:]]


@keras.saving.register_keras_serializable(package="crct_tf")
class UnstackState(layers.Layer):
    """[B, 4, U] -> [h1, c1, h2, c2], each [B, U]."""

    def call(self, state):
        return [state[:, i] for i in range(STATE_PARTS)]


@keras.saving.register_keras_serializable(package="crct_tf")
class StackState(layers.Layer):
    """[h1, c1, h2, c2] -> [B, 4, U]."""

    def call(self, parts):
        return keras.ops.stack(parts, axis=1)


def zero_state(batch_size):
    """h_0 (Algorithm 1's initial state): zeros of shape [B, 4, 512]."""
    return np.zeros((batch_size, STATE_PARTS, LSTM_UNITS), np.float32)


def build_bt(backbone, settings=CropSettings(), name="bt"):
    """Composes one BT step from a backbone instance.

    Inputs (a dict): `previous_crop`, `current_crop` [B, S, S, 3] RGB 0-255 (both cut with
    b_{t-1}), `state` [B, 4, 512]. Outputs (a dict): `landmarks` [B, 68, 2] in current-crop
    pixels, `state` [B, 4, 512].
    """
    size = settings.input_size
    previous = keras.Input((size, size, 3), name="previous_crop")
    current = keras.Input((size, size, 3), name="current_crop")
    state = keras.Input((STATE_PARTS, LSTM_UNITS), name="state")

    both = ConcatBatch(name="bt_crop_pair")([current, previous])
    f_current, f_previous = SplitBatch(name="bt_feature_pair")(backbone(both)["features"])
    pair = layers.Concatenate(name="bt_feature_concat")([f_current, f_previous])
    embedding = layers.Dense(EMBEDDING_UNITS, activation="selu", name="bt_embedding")(pair)

    h1, c1, h2, c2 = UnstackState(name="bt_state_in")(state)
    step = layers.Reshape((1, EMBEDDING_UNITS), name="bt_one_step")(embedding)
    out1, h1, c1 = layers.LSTM(LSTM_UNITS, return_sequences=True, return_state=True, unroll=True,
                               name="bt_lstm1")(step, initial_state=[h1, c1])
    out2, h2, c2 = layers.LSTM(LSTM_UNITS, return_state=True, unroll=True,
                               name="bt_lstm2")(out1, initial_state=[h2, c2])
    new_state = StackState(name="bt_state_out")([h1, c1, h2, c2])

    # Five independent regional heads (paper III-A, modification 2). REGIONS are contiguous
    # index ranges listed in iBUG order, so concatenating the heads in that order gives 0..67.
    regional = [landmark_head(out2, indices, size, settings.bt_context, name=f"bt_head_{region}")
                for region, indices in REGIONS.items()]
    points = check_all_landmarks(layers.Concatenate(axis=1, name="bt_landmarks")(regional))
    return keras.Model({"previous_crop": previous, "current_crop": current, "state": state},
                       {"landmarks": points, "state": new_state}, name=name)
