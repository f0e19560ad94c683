"""Export -> SavedModel -> python -m crct_tf.track --saved_model in a fresh process.

The fresh process must import no model-building or training code of crct_tf and give the same
landmarks as the in-memory tracker.
"""

import csv
import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import save_untrained_bundle

from crct_tf import export
from crct_tf.tracking.detection import MtcnnBoxMap, detect_faces
from crct_tf.tracking import Tracker, TrackerConfig
from crct_tf.tracking.video_io import open_source

REPO = Path(__file__).resolve().parents[1]
FRAMES = 8
FORBIDDEN = ("crct_tf.models", "crct_tf.training", "crct_tf.models.backbone", "crct_tf.weights.bundle",
             "crct_tf.export")

# Runs the tool from the SavedModel, then lists the crct_tf modules it imported.
CHILD = """
import json, sys
from crct_tf import track
code = track.main(sys.argv[1:])
modules = sorted(m for m in sys.modules if m.startswith("crct_tf"))
print(json.dumps({"code": code, "modules": modules}))
"""


def _landmark_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["status"] for r in rows], np.array(
        [[float(r[f"l{a}{i}"]) for i in range(68) for a in "xy"] for r in rows])


def _in_memory_landmarks(bundle, clip, detector):
    from crct_tf.tracking.frame_step import FrameSteps
    steps = FrameSteps(bundle.bt, bundle.fv, bundle.fll, bundle.settings, jit_compile=False)
    tracker = Tracker(steps, TrackerConfig.from_constants(bundle.tracker),
                      detect=functools.partial(detect_faces, detector),
                      box_map=MtcnnBoxMap.from_dict(bundle.mtcnn_box_map))
    source = open_source(clip)
    results = [tracker.track(f.rgb) for _, f in zip(range(FRAMES), source)]
    source.close()
    return [r.status for r in results], np.array([r.landmarks.reshape(-1) for r in results])


@pytest.mark.parametrize("backbone", [
    "tiny",                                                   # the same code, fast to trace
    pytest.param("inception_resnet_v1", marks=pytest.mark.slow),
])
def test_saved_model_tracks_like_the_in_memory_tracker(backbone, demo_clip, mtcnn_detector,
                                                       tmp_path):
    from crct_tf.weights.bundle import load_bundle
    untrained_bundle_dir = save_untrained_bundle(tmp_path / "weights", backbone)
    bundle = load_bundle(str(untrained_bundle_dir))
    saved = tmp_path / "saved_model"
    export.export_saved_model(bundle, str(saved), jit_compile=False,
                              weights_dir=str(untrained_bundle_dir))
    constants = json.loads((saved / "assets" / "crct_tracker.json").read_text())
    assert constants["tracker"] == bundle.tracker
    assert constants["mtcnn_box_map"] == bundle.mtcnn_box_map
    assert constants["crop_settings"] == bundle.settings.to_dict()
    assert constants["state_shape"] == [4, 512]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no staging left

    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.run(
        [sys.executable, "-c", CHILD,
         "--input", demo_clip, "--saved_model", str(saved), "--output_dir", str(out),
         "--max_frames", str(FRAMES), "--no_video", "--name", "demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert child.returncode == 0, child.stderr[-2000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    assert not [m for m in report["modules"] if m.startswith(FORBIDDEN)], report["modules"]

    statuses, landmarks = _landmark_rows(out / "demo.csv")
    expected_statuses, expected = _in_memory_landmarks(bundle, demo_clip, mtcnn_detector)
    assert statuses == expected_statuses == ["tracked"] * FRAMES
    # The CSV holds 3 decimals: 1e-3 px plus its rounding.
    np.testing.assert_allclose(landmarks, expected, atol=1e-3 + 5e-4)


@pytest.mark.parametrize("case, message", [
    ("exists", "exists; pass --overwrite"),
    ("no weights", "the bundled weights are missing"),
    ("not a bundle", "not a weights bundle (no manifest.json)"),
    ("no runs", "--model_dir"),
])
def test_export_bad_input(case, message, tmp_path, monkeypatch):
    from crct_tf.tracking import runtime
    from crct_tf.weights import packaged
    from crct_tf.weights.bundle import BundleError
    # Without --weights the export reads the bundled weights; here they are made to be missing.
    monkeypatch.setattr(packaged, "bundled_weights_dir", lambda: str(tmp_path / "nowhere"))
    monkeypatch.setattr(runtime, "bundled_weights_dir", lambda: str(tmp_path / "nowhere"))
    existing = tmp_path / "existing"
    existing.mkdir()
    new = str(tmp_path / "new")
    kwargs = {"exists": dict(export_format="saved_model", weights=tmp_path, export_dir=existing),
              "no weights": dict(export_format="saved_model", export_dir=new),
              "not a bundle": dict(export_format="saved_model", weights=tmp_path,
                                   export_dir=new),
              "no runs": dict(export_format="bundle", export_dir=new)}[case]
    with pytest.raises((export.ExportError, BundleError), match=re.escape(message)):
        export.run(**kwargs)
    assert not (tmp_path / "new").exists()


def test_export_cli_exits_2_with_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "crct_tf.export", "--weights", str(tmp_path),
                             "--export_dir", str(tmp_path)], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == f"crct_tf.export: error: {tmp_path} exists; pass --overwrite to " \
                            f"replace it\n"
