"""Copies facenet's Keras 2 h5 weights into the Keras 3 Inception-ResNet-v1, by layer name.

The h5 cannot be loaded with `keras.models.load_model` under Keras 3 (its Lambda layers hold
marshalled Python bytecode), so its weights are read with h5py, layer by layer, and every tensor
is checked: a layer of the model without weights in the file, or a shape that differs, is an
error, never a silent skip.
"""

import h5py
import numpy as np

from crct_tf import assets


class FacenetWeightsError(RuntimeError):
    """The h5 does not fit the model (missing layer or tensor, wrong shape)."""


def _h5_layer_weights(group):
    """{'kernel': array, ...} for one layer group of a Keras 2 h5 (names like 'X/kernel:0')."""
    out = {}
    for raw in group.attrs["weight_names"]:
        name = raw.decode() if isinstance(raw, bytes) else raw
        short = name.split("/")[-1].split(":")[0]
        out[short] = np.asarray(group[name])
    return out


def load_facenet_h5(model, h5_path=None):
    """Sets every weight of `model`'s facenet layers from the h5 and returns the layer count.

    Args:
      model: a model from `build_inception_resnet_v1` (or one that contains such layers under
        the same names, e.g. a sub-model).
      h5_path: the h5 file; by default the cached `facenet_h5` asset (fetched if missing).

    Raises:
      FacenetWeightsError: a layer with weights that the file lacks, a missing tensor, or a
        shape mismatch.
    """
    h5_path = h5_path or assets.path("facenet_h5")
    loaded = 0
    with h5py.File(h5_path, "r") as f:
        groups = f["model_weights"] if "model_weights" in f else f
        for layer in model.layers:
            if not layer.weights:
                continue
            if layer.name not in groups:
                raise FacenetWeightsError(f"{h5_path}: no weights for layer {layer.name}")
            stored = _h5_layer_weights(groups[layer.name])
            values = []
            for variable in layer.weights:
                short = variable.path.split("/")[-1]
                if short not in stored:
                    raise FacenetWeightsError(
                        f"{h5_path}: layer {layer.name} lacks {short} (has {sorted(stored)})")
                value = stored[short]
                if tuple(value.shape) != tuple(variable.shape):
                    raise FacenetWeightsError(
                        f"{h5_path}: {layer.name}/{short} has shape {value.shape}, "
                        f"the model expects {tuple(variable.shape)}")
                values.append(value)
            if len(stored) != len(values):
                raise FacenetWeightsError(f"{h5_path}: layer {layer.name} holds tensors "
                                          f"{sorted(stored)} the model does not use")
            layer.set_weights(values)
            loaded += 1
    return loaded
