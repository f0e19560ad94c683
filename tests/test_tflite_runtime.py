"""TFLite export + runtime (`crct_tf.deploy.tflite`, `crct_tf.tracking.tflite_steps`).

The TFLite tracker must give the TF tracker's landmarks (fp32), stay close in fp16, dynamic-range
and int8, and run in a fresh process without the model-building or training code.
"""

import csv
import dataclasses
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import save_untrained_bundle

from crct_tf.tracking.detection import MtcnnBoxMap, detect_faces
from crct_tf.tracking import Tracker, TrackerConfig
from crct_tf.tracking.video_io import open_source

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = ("crct_tf.models", "crct_tf.training", "crct_tf.models.backbone", "crct_tf.weights.bundle",
             "crct_tf.export", "crct_tf.deploy.tflite")
CHILD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("track_video", sys.argv[1])
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)
code = tool.main(sys.argv[2:])
modules = sorted(m for m in sys.modules if m.startswith("crct_tf"))
print(json.dumps({"code": code, "modules": modules}))
"""


def _frames(clip, count):
    source = open_source(clip)
    frames = [f.rgb for _, f in zip(range(count), source)]
    source.close()
    return frames


def _track(steps, constants, frames, detector, **config):
    tracker = Tracker(steps, TrackerConfig.from_constants(constants["tracker"], **config),
                      detect=functools.partial(detect_faces, detector),
                      box_map=MtcnnBoxMap.from_dict(constants["mtcnn_box_map"]))
    return [tracker.track(f) for f in frames]


def _nme(results, reference):
    """Median over frames tracked by both: mean point distance / the reference box diagonal."""
    errors = [np.linalg.norm(r.landmarks - ref.landmarks, axis=-1).mean()
              / np.linalg.norm(ref.box[2:] - ref.box[:2])
              for r, ref in zip(results, reference) if r.landmarks is not None
              and ref.landmarks is not None]
    return float(np.median(errors)), len(errors)


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """An untrained tiny-backbone bundle and its fp32 TFLite export (fast to convert)."""
    from crct_tf.deploy import tflite as tflite_export
    from crct_tf.weights.bundle import load_bundle
    root = tmp_path_factory.mktemp("tiny")
    weights = save_untrained_bundle(root / "weights", "tiny")
    bundle = load_bundle(str(weights))
    out = tflite_export.export_tflite(bundle, str(root / "tflite"), weights_dir=str(weights))
    return bundle, Path(out)


@pytest.fixture(scope="module")
def real_exports(tmp_path_factory):
    """The bundled checkpoints/ weights as fp32 and int8 TFLite (minutes: slow tests only)."""
    from crct_tf.deploy import tflite as tflite_export
    from crct_tf.weights.bundle import load_bundle
    root = tmp_path_factory.mktemp("real")
    from crct_tf.weights.packaged import bundled_weights_dir
    bundle = load_bundle(bundled_weights_dir())
    return bundle, {q: Path(tflite_export.export_tflite(bundle, str(root / q), q))
                    for q in ("none", "int8")}


def _tf_steps(bundle):
    from crct_tf.tracking.frame_step import FrameSteps
    return FrameSteps(bundle.bt, bundle.fv, bundle.fll, bundle.settings)


def _constants(bundle):
    return {"tracker": bundle.tracker, "mtcnn_box_map": bundle.mtcnn_box_map}


@pytest.mark.parametrize("window", [[20.3, 10.7, 100.3, 90.7], [-30.0, -12.5, 70.0, 87.5],
                                    [90.0, 80.0, 150.0, 140.0]])
def test_numpy_crops_sample_the_tf_crops_values(window):
    """The runtime's crops equal `tf_crop_images` inside and on the border (not only where)."""
    from crct_tf.geometry import cropping, tf_cropping
    image = np.random.default_rng(1).uniform(0, 255, (100, 120, 3)).astype(np.float32)
    windows = np.array([window, [5.0, 5.0, 17.0, 17.0]], np.float32)
    expected = tf_cropping.tf_crop_images(image[None], windows, 32, np.zeros(2, np.int32)).numpy()
    single = np.stack([cropping.crop_image(image, w, 32) for w in windows])
    batch = cropping.crop_images(image, windows, 32)
    np.testing.assert_allclose(single, expected, atol=0.1)      # OpenCV: 1/32-pixel weights
    np.testing.assert_allclose(batch, expected, atol=0.1)


def test_export_writes_models_and_constants(tiny_export):
    bundle, folder = tiny_export
    constants = json.loads((folder / "crct_tflite.json").read_text())
    assert {p.name for p in folder.iterdir()} == {"bt.tflite", "fv.tflite", "fll.tflite",
                                                  "crct_tflite.json"}
    assert constants["crop_settings"] == bundle.settings.to_dict()
    assert constants["tracker"] == bundle.tracker
    assert constants["mtcnn_box_map"] == bundle.mtcnn_box_map
    assert constants["state_shape"] == [4, 512] and constants["quantize"] == "none"
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]   # no staging


@pytest.mark.parametrize("fll_box, fll_flip, fll_upright, fll_turn", [
    ("bt", False, False, False), ("bt_centre", False, False, False),
    ("bt_centre_corrected", True, False, False), ("bt_capped", True, False, False),
    ("bt", True, True, False), ("bt_capped", True, False, True), ("bt", False, False, True)])
def test_fp32_tflite_steps_equal_the_tf_steps_tiny(tiny_export, demo_clip, mtcnn_detector,
                                                    fll_box, fll_flip, fll_upright, fll_turn):
    from crct_tf.tracking.frame_step import FrameSteps
    from crct_tf.tracking.tflite_steps import TfliteSteps
    bundle, folder = tiny_export
    frames = _frames(demo_clip, 30)
    tflite = TfliteSteps(str(folder), num_threads=2)
    settings = dataclasses.replace(bundle.settings, fll_box=fll_box,     # FLL's crop, its
                                   fll_flip=fll_flip,                    # mirror, turned
                                   fll_upright=fll_upright,              # upright, or
                                   fll_turn=fll_turn)                    # both: both runtimes
    tflite.settings = settings
    tf_steps = FrameSteps(bundle.bt, bundle.fv, bundle.fll, settings)
    expected = _track(tf_steps, _constants(bundle), frames, mtcnn_detector)
    got = _track(tflite, tflite.constants, frames, mtcnn_detector)
    assert [r.status for r in got] == [r.status for r in expected] == ["tracked"] * 30
    difference = max(np.abs(a.landmarks - b.landmarks).max() for a, b in zip(got, expected))
    assert difference <= 0.05


@pytest.mark.parametrize("fll_flip", [False, True])
def test_litert_step_turns_flls_extra_view_by_bts_roll(tiny_export, fll_flip):
    """`fll_turn` on the LiteRT step, with stand-ins for BT (the mean face turned by 30
    degrees) and FLL (the mean face upright in any crop): the step's points are the mean of the
    crop, its mirror (with `fll_flip`) and the crop turned by BT's roll, each mapped back. (The
    tiny untrained BT's points hardly lean, so the equality with the TF step above cannot tell
    a turned view from an unturned one.)"""
    from crct_tf.geometry import cropping
    from crct_tf.geometry import landmarks as lm
    from crct_tf.models.landmark_heads import mean_shape_in_crop
    from crct_tf.tracking.tflite_steps import TfliteSteps
    from test_fll_upright import _pattern, _turned
    bundle, folder = tiny_export
    steps = TfliteSteps(str(folder), num_threads=1)
    s = steps.settings = dataclasses.replace(bundle.settings, fll_box="bt", fll_flip=fll_flip,
                                             fll_turn=True)
    upright = (lm.MEAN_SHAPE_UNIT_BOX * 80.0 + [100.0, 70.0]).astype(np.float32)
    face = _turned(upright, 30.0, upright.mean(axis=0))
    fixed = mean_shape_in_crop(s.fll_size, s.fll_context).astype(np.float32)
    steps._bt_one = lambda frame, previous, box, state: (face, lm.box_from_landmarks(face), state)
    steps._fv_one = lambda frame, landmarks, face_box: 1.0
    steps._fll = lambda crop: [fixed[None]]
    out = steps.step(_pattern(), _pattern(), np.array([[90.0, 60.0, 190.0, 160.0]], np.float32),
                     np.zeros([1, 4, 512], np.float32), np.zeros([1, 2], np.float32))
    window = cropping.square_context_box(lm.box_from_landmarks(face), s.fll_context)
    views = [cropping.points_from_crop(fixed, window, s.fll_size),
             cropping.points_from_turned_crop(
                 fixed, cropping.turned_square(window, cropping.shape_roll(face)), s.fll_size)]
    if fll_flip:
        views.append(cropping.points_from_crop(lm.flip_landmarks(fixed, s.fll_size), window,
                                               s.fll_size))
    np.testing.assert_allclose(out["landmarks"][0], np.mean(views, axis=0), atol=1e-3)
    roll = np.degrees(cropping.shape_roll(out["landmarks"][0]))
    assert roll == pytest.approx(30.0 / len(views), abs=0.5)


def test_litert_runtime_takes_the_exports_fll_box_unless_told(tiny_export):
    from crct_tf.tracking.runtime import load_runtime
    bundle, folder = tiny_export
    own = load_runtime(tflite_dir=str(folder), runtime="litert", threads=1)
    assert own.steps.settings == bundle.settings and own.steps.settings.fll_box == "bt"
    told = load_runtime(tflite_dir=str(folder), runtime="litert", threads=1, fll_box="bt_centre")
    assert told.steps.settings == dataclasses.replace(bundle.settings, fll_box="bt_centre")


@pytest.fixture(scope="module")
def tiny_quantized_exports(tiny_export, tmp_path_factory):
    """The tiny bundle's fp16 and dynamic-range TFLite exports."""
    from crct_tf.deploy import tflite as tflite_export
    bundle, _ = tiny_export
    root = tmp_path_factory.mktemp("tiny_quantized")
    return {q: Path(tflite_export.export_tflite(bundle, str(root / q), q))
            for q in ("fp16", "dynamic")}


def _tensor_types(path):
    from ai_edge_litert.interpreter import Interpreter
    return {np.dtype(d["dtype"]).name for d in Interpreter(model_path=str(path))
            .get_tensor_details()}


@pytest.mark.parametrize("quantize, weight_type, size_ratio", [("fp16", "float16", 0.5),
                                                               ("dynamic", "int8", 0.25)])
def test_fp16_and_dynamic_tflite_store_their_weights_so_and_track_as_fp32(
        quantize, weight_type, size_ratio, tiny_export, tiny_quantized_exports, demo_clip,
        mtcnn_detector):
    """--quantize fp16 / dynamic: every model holds fp16 / int8 weights (about 1/2 / 1/4 of the
    fp32 file), and the tracker on them follows the fp32 TFLite tracker on the demo clip."""
    from crct_tf.tracking.tflite_steps import TfliteSteps
    _, fp32_folder = tiny_export
    folder = tiny_quantized_exports[quantize]
    constants = json.loads((folder / "crct_tflite.json").read_text())
    assert constants["quantize"] == quantize
    for name in ("bt", "fv", "fll"):
        types = _tensor_types(folder / f"{name}.tflite")
        assert weight_type in types and "float32" in types, (name, types)
        assert not {"float16", "int8"} & _tensor_types(fp32_folder / f"{name}.tflite")
        ratio = (folder / f"{name}.tflite").stat().st_size / \
            (fp32_folder / f"{name}.tflite").stat().st_size
        assert abs(ratio - size_ratio) < 0.1, (name, ratio)
    frames = _frames(demo_clip, 10)
    fp32, quantized = TfliteSteps(str(fp32_folder), num_threads=2), TfliteSteps(str(folder), 2)
    expected = _track(fp32, fp32.constants, frames, mtcnn_detector)
    got = _track(quantized, quantized.constants, frames, mtcnn_detector)
    assert [r.status for r in got] == [r.status for r in expected] == ["tracked"] * 10
    # 0.5 px on a 48 px face: the rounding compounds through 10 frames of the tracker's own
    # boxes, and CPUs with fp16 arithmetic may run the fp16 model in it (a wrong weight: pixels).
    assert max(np.abs(a.landmarks - b.landmarks).max() for a, b in zip(got, expected)) <= 0.5
    # FV scores the tracker's own (slightly different) points: 0.015 was seen on a CI CPU that
    # has fp16 arithmetic; zeroing any one of FV's layers moves it by 0.13.
    assert max(abs(a.face_score - b.face_score) for a, b in zip(got, expected)) <= 0.05


@pytest.mark.slow
def test_fp32_tflite_tracker_equals_the_tf_tracker_real_weights(real_exports, demo_clip,
                                                                mtcnn_detector):
    """The bundled weights: fp32 TFLite landmarks within 0.05 px over the first 30 frames."""
    from crct_tf.tracking.tflite_steps import TfliteSteps
    bundle, folders = real_exports
    frames = _frames(demo_clip, 30)
    tflite = TfliteSteps(str(folders["none"]), num_threads=2)
    expected = _track(_tf_steps(bundle), _constants(bundle), frames, mtcnn_detector)
    got = _track(tflite, tflite.constants, frames, mtcnn_detector)
    assert [r.status for r in got] == [r.status for r in expected]
    difference = max(np.abs(a.landmarks - b.landmarks).max() for a, b in zip(got, expected)
                     if b.landmarks is not None)
    assert difference <= 0.05


@pytest.mark.slow
def test_int8_landmarks_stay_close_to_fp32(real_exports, demo_clip, mtcnn_detector):
    """Median NME (int8 vs fp32 landmarks, over the fp32 box diagonal) on the demo clip."""
    from crct_tf.tracking.tflite_steps import TfliteSteps
    _, folders = real_exports
    frames = _frames(demo_clip, 120)
    fp32 = TfliteSteps(str(folders["none"]), num_threads=2)
    int8 = TfliteSteps(str(folders["int8"]), num_threads=2)
    reference = _track(fp32, fp32.constants, frames, mtcnn_detector)
    nme, count = _nme(_track(int8, int8.constants, frames, mtcnn_detector), reference)
    assert count >= 100
    assert nme <= 0.005, f"int8 median NME {nme:.4f}"


def test_tflite_runtime_in_a_fresh_process(tiny_export, demo_clip, mtcnn_detector, tmp_path):
    """track --runtime tflite (litert's former name) --tflite_dir: no model/training code
    imported; same CSV as in memory."""
    from crct_tf.tracking.tflite_steps import TfliteSteps
    _, folder = tiny_export
    frames = 6
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO / "tools" / "track_video.py"),
         "--input", demo_clip, "--runtime", "tflite", "--tflite_dir", str(folder),
         "--threads", "2", "--output_dir", str(out), "--max_frames", str(frames),
         "--no_video", "--name", "demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert child.returncode == 0, child.stderr[-2000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    assert "crct_tf.tracking.tflite_steps" in report["modules"]
    assert not [m for m in report["modules"] if m.startswith(FORBIDDEN)], report["modules"]
    summary = json.loads((out / "demo.json").read_text())
    assert summary["frames"] == frames and summary["runtime"] == "litert"
    with open(out / "demo.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    landmarks = np.array([[float(r[f"l{a}{i}"]) for i in range(68) for a in "xy"] for r in rows])
    tflite = TfliteSteps(str(folder), num_threads=2)
    expected = _track(tflite, tflite.constants, _frames(demo_clip, frames), mtcnn_detector)
    np.testing.assert_allclose(landmarks, np.array([r.landmarks.reshape(-1) for r in expected]),
                               atol=1e-3 + 5e-4)


def test_track_video_rejects_tflite_without_a_folder(tmp_path):
    spec_path = REPO / "tools" / "track_video.py"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, str(spec_path), "--runtime", "tflite",
                             "--tflite_dir", str(tmp_path / "missing")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "no such TFLite export folder" in result.stderr
