"""Weights bundles: what `--weights DIR` and `checkpoints/` hold.

A bundle is a folder with `manifest.json` and one `.weights.h5` file per part:

    manifest.json         format version, parts and their files with sha256, shared backbone or
                          not, crop settings, tracker constants (SeqBT, T_B, T_C), the MTCNN box
                          map, dtype, and how it was trained
    backbone.weights.h5   one backbone shared by BT and FLL (or bt_backbone / fll_backbone)
    bt.weights.h5         BT's own layers (embedding, LSTMs, five heads)
    fll.weights.h5        FLL's regression layer
    fv.weights.h5         the validator
    README.md             optional: the model card (written by people; a bundle saved over a
                          folder keeps the card that folder held)

Each h5 holds one group per layer name with one dataset per variable. Loading checks the sha256
of every file, then that every variable of the built models got a value of the right shape and
that the file holds nothing the models lack; any difference is a `BundleError` naming the file.
No pickle, no Keras deserialisation of code: the models are built by this package's own code.
"""

import dataclasses
import datetime
import hashlib
import json
import os
import shutil

import h5py
import numpy as np

from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.models.registry import BACKBONE_LAYER, build_named_backbone
from crct_tf.weights.staged_folder import staged_folder

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_CARD = "README.md"


class BundleError(RuntimeError):
    """A bundle that is missing, incomplete, altered or does not fit the models."""


@dataclasses.dataclass
class Bundle:
    """Loaded sub-networks and the constants they were trained with."""
    bt: object
    fv: object
    fll: object
    settings: CropSettings
    tracker: dict          # seq_bt, t_b, t_c
    mtcnn_box_map: dict
    manifest: dict


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _own_layers(model):
    """The layers of `model` that carry weights, the nested backbone excluded."""
    return [layer for layer in model.layers if layer.weights and layer.name != BACKBONE_LAYER]


def _write_layers(path, layers, dtype):
    with h5py.File(path, "w") as f:
        for layer in layers:
            group = f.create_group(layer.name)
            for variable in layer.weights:
                group.create_dataset(_variable_key(layer, variable),
                                     data=np.asarray(variable.numpy(), dtype=dtype))


def _variable_key(layer, variable):
    """A variable's flat name inside its layer group, e.g. `kernel`, `lstm_cell.recurrent_kernel`."""
    path = variable.path
    prefix = layer.name + "/"
    return (path[len(prefix):] if path.startswith(prefix) else path).replace("/", ".")


def _read_layers(path, layers):
    """Sets every weight of `layers` from the h5 at `path`; refuses any gap or surplus."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise BundleError(f"{path}: not a readable weights file ({e})") from None
    with f:
        names = {layer.name for layer in layers}
        extra = sorted(set(f.keys()) - names)
        if extra:
            raise BundleError(f"{path}: holds layers the model does not have: {extra[:5]}")
        for layer in layers:
            if layer.name not in f:
                raise BundleError(f"{path}: no weights for layer {layer.name}")
            group = f[layer.name]
            values = []
            for variable in layer.weights:
                key = _variable_key(layer, variable)
                if key not in group:
                    raise BundleError(f"{path}: layer {layer.name} lacks {key}")
                value = np.asarray(group[key])
                if tuple(value.shape) != tuple(variable.shape):
                    raise BundleError(f"{path}: {layer.name}/{key} has shape {value.shape}, "
                                      f"expected {tuple(variable.shape)}")
                values.append(value.astype(np.float32))
            if len(group.keys()) != len(values):
                raise BundleError(f"{path}: layer {layer.name} holds unexpected tensors")
            layer.set_weights(values)


def save_bundle(export_dir, bt, fv, fll, settings, tracker, mtcnn_box_map, training=None,
                dtype="float32", overwrite=False, backbone="inception_resnet_v1"):
    """Writes a bundle atomically (temporary folder, then rename).

    BT and FLL share one backbone file when they hold the same backbone instance. With
    `overwrite`, the model card (README.md) of the folder replaced is kept: retraining the
    bundled weights with the model card's own commands must not delete the card.
    """
    if os.path.exists(export_dir) and not overwrite:
        raise BundleError(f"{export_dir} exists; pass overwrite to replace it")
    if dtype not in ("float32", "float16"):
        raise BundleError(f"dtype must be float32 or float16, got {dtype}")
    shared = bt.get_layer(BACKBONE_LAYER) is fll.get_layer(BACKBONE_LAYER)
    parts = {"bt": _own_layers(bt), "fll": _own_layers(fll), "fv": _own_layers(fv)}
    if shared:
        parts["backbone"] = bt.get_layer(BACKBONE_LAYER).layers
    else:
        parts["bt_backbone"] = bt.get_layer(BACKBONE_LAYER).layers
        parts["fll_backbone"] = fll.get_layer(BACKBONE_LAYER).layers
    with staged_folder(export_dir, prefix=".bundle.") as staging:
        files = {}
        for part, layers in parts.items():
            name = f"{part}.weights.h5"
            path = os.path.join(staging, name)
            _write_layers(path, [layer for layer in layers if layer.weights], dtype)
            files[part] = {"file": name, "sha256": _sha256(path)}
        manifest = {
            "format_version": FORMAT_VERSION,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "parts": files,
            "backbone": backbone,
            "shared_backbone": shared,
            "crop_settings": settings.to_dict(),
            "tracker": dict(tracker),
            "mtcnn_box_map": dict(mtcnn_box_map),
            "dtype": dtype,
            "training": training or {},
        }
        with open(os.path.join(staging, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
        old_card = os.path.join(export_dir, MODEL_CARD)
        if os.path.isfile(old_card):
            shutil.copyfile(old_card, os.path.join(staging, MODEL_CARD))
    return export_dir


def read_manifest(bundle_dir):
    path = os.path.join(bundle_dir, MANIFEST)
    if not os.path.isdir(bundle_dir):
        raise BundleError(f"{bundle_dir}: no such weights folder")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise BundleError(f"{path}: missing (not a weights bundle)") from None
    except (OSError, ValueError) as e:
        raise BundleError(f"{path}: unreadable manifest ({e})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path}: format version {manifest.get('format_version')}, "
                          f"this crct_tf reads {FORMAT_VERSION}")
    return manifest


def verify_files(bundle_dir, manifest):
    """Checks that every file of the manifest exists with its sha256."""
    for part, entry in manifest["parts"].items():
        path = os.path.join(bundle_dir, entry["file"])
        if not os.path.isfile(path):
            raise BundleError(f"{path}: missing from the bundle ({part})")
        if _sha256(path) != entry["sha256"]:
            raise BundleError(f"{path}: sha256 differs from the manifest (altered or truncated)")


def load_bundle(bundle_dir):
    """Builds BT, FV and FLL from this package's code and fills them from a bundle.

    Raises:
      BundleError: naming the file, for anything missing, altered or not fitting.
    """
    from crct_tf.models.bt import build_bt
    from crct_tf.models.fll import build_fll
    from crct_tf.models.fv import build_fv

    manifest = read_manifest(bundle_dir)
    verify_files(bundle_dir, manifest)
    settings = CropSettings.from_dict(manifest["crop_settings"])
    size = settings.input_size
    kind = manifest.get("backbone", "inception_resnet_v1")
    try:
        if manifest["shared_backbone"]:
            bt_backbone = fll_backbone = build_named_backbone(kind, settings.backbone_size)
        else:
            bt_backbone = build_named_backbone(kind, size)
            fll_backbone = build_named_backbone(kind, settings.fll_size)
    except ValueError as e:
        raise BundleError(f"{bundle_dir}: {e}") from None
    bt, fll, fv = build_bt(bt_backbone, settings), build_fll(fll_backbone, settings), build_fv(settings)
    path = lambda part: os.path.join(bundle_dir, manifest["parts"][part]["file"])  # noqa: E731
    if manifest["shared_backbone"]:
        _read_layers(path("backbone"), [l for l in bt_backbone.layers if l.weights])
    else:
        _read_layers(path("bt_backbone"), [l for l in bt_backbone.layers if l.weights])
        _read_layers(path("fll_backbone"), [l for l in fll_backbone.layers if l.weights])
    _read_layers(path("bt"), _own_layers(bt))
    _read_layers(path("fll"), _own_layers(fll))
    _read_layers(path("fv"), _own_layers(fv))
    return Bundle(bt=bt, fv=fv, fll=fll, settings=settings, tracker=manifest["tracker"],
                  mtcnn_box_map=manifest["mtcnn_box_map"], manifest=manifest)


def untrained_bundle(tracker=None, settings=None, backbone="inception_resnet_v1",
                     mtcnn_box_map=None):
    """A `Bundle` of untrained BT, FV and FLL sharing one backbone, built in memory.

    For timing and memory measurements and for tests, where what the heads learned does not
    matter. `backbone`: facenet's Inception-ResNet-v1 with facenet's weights, or "tiny", the
    small stand-in. `mtcnn_box_map`: a {dx, dy, sx, sy} dict (default: the identity map).
    """
    from crct_tf.models.bt import build_bt
    from crct_tf.models.fll import build_fll
    from crct_tf.models.fv import build_fv

    settings = settings or CropSettings()
    shared = build_named_backbone(backbone, settings.backbone_size, weights="facenet")
    return Bundle(bt=build_bt(shared, settings), fv=build_fv(settings),
                  fll=build_fll(shared, settings), settings=settings,
                  tracker=dict(tracker or {"seq_bt": 2, "t_b": 1.0, "t_c": 0.5}),
                  mtcnn_box_map=dict(mtcnn_box_map or {"dx": 0.0, "dy": 0.0, "sx": 1.0, "sy": 1.0}),
                  manifest={"backbone": backbone, "training": {"untrained": True}})
