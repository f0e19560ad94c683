"""The default runtime: LiteRT models of a weights bundle, converted once, cached, checked.

Runtime selection (commands and API), the cache (first run converts and prints one line, later
runs load, a stale or altered entry is rebuilt and never used, an altered bundle is refused),
and the default runtime's agreement with the TF runtime on the demo clip.
"""

import functools
import json
import os
import shutil

import numpy as np
import pytest

from helpers import save_untrained_bundle

from crct_tf.tracking import litert_cache
from crct_tf.tracking import runtime as runtimes


# -- which runtime ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, expected", [
    ({}, "litert"), ({"runtime": "tflite"}, "litert"), ({"runtime": "tf"}, "tf"),
    ({"saved_model": "x"}, "tf"), ({"tflite_dir": "x"}, "litert"),
    ({"runtime": "litert", "tflite_dir": "x"}, "litert")])
def test_runtime_resolution(kwargs, expected):
    assert runtimes.resolve_runtime(default=runtimes.DEFAULT_RUNTIME, **kwargs) == expected


@pytest.mark.parametrize("kwargs, message", [
    ({"runtime": "litert", "saved_model": "x"}, "SavedModel runs on the tf runtime"),
    ({"runtime": "tf", "tflite_dir": "x"}, "runs on the litert runtime"),
    ({"runtime": "onnx"}, "unknown runtime")])
def test_runtime_resolution_errors(kwargs, message):
    with pytest.raises(runtimes.RuntimeLoadError, match=message):
        runtimes.resolve_runtime(**kwargs)


def test_commands_and_api_default_to_litert(monkeypatch):
    from crct_tf import track
    assert runtimes.DEFAULT_RUNTIME == "litert"
    assert track.parse_args([]).runtime == "litert"
    assert track.parse_args(["--runtime", "tf"]).runtime == "tf"
    assert track.parse_args(["--saved_model", "m"]).runtime == "tf"
    for argv in (["--runtime", "tf", "--tflite_dir", "d"], ["--weights", "w", "--tflite_dir", "d"]):
        with pytest.raises(track.UsageError):
            track.parse_args(argv)
    seen = []

    def fake_load_runtime(**kwargs):
        seen.append(kwargs["runtime"])
        raise runtimes.RuntimeLoadError("stop here")

    monkeypatch.setattr(runtimes, "load_runtime", fake_load_runtime)
    import crct_tf
    for kwargs in ({}, {"runtime": "tf"}, {"saved_model": "m"}):
        with pytest.raises(runtimes.RuntimeLoadError):
            crct_tf.load_tracker(**kwargs)
    assert seen == ["litert", "tf", "tf"]
    with pytest.raises(ValueError, match="unknown runtime"):
        crct_tf.load_tracker(runtime="onnx")


# -- the cache itself ------------------------------------------------------------------------------

def _build(staging, calls):
    calls.append(staging)
    for name in ("a.tflite", "b.tflite"):
        with open(os.path.join(staging, name), "w") as f:
            f.write(name * 100)
    return {"note": "test"}


@pytest.mark.parametrize("damage", ["altered", "truncated", "deleted", "record", "version",
                                    "extra_file_listed"])
def test_a_damaged_entry_is_rebuilt_never_used(tmp_path, damage):
    calls, reasons = [], []
    build = functools.partial(_build, calls=calls)
    entry = str(tmp_path / "crct-key-int8-v1")
    assert litert_cache.cached_models(entry, build, on_build=reasons.append) == (entry, True)
    assert litert_cache.cached_models(entry, build, on_build=reasons.append) == (entry, False)
    assert reasons == ["missing"] and len(calls) == 1
    record_path = os.path.join(entry, litert_cache.CACHE_FILE)
    record = json.loads(open(record_path).read())
    assert set(record["files"]) == {"a.tflite", "b.tflite"} and record["build"] == {"note": "test"}
    target = os.path.join(entry, "a.tflite")
    if damage == "altered":
        with open(target, "r+b") as f:
            f.write(b"X")
    elif damage == "truncated":
        os.truncate(target, 10)
    elif damage == "deleted":
        os.remove(target)
    elif damage == "record":
        open(record_path, "w").write("{not json")
    elif damage == "version":
        record["version"] = litert_cache.CACHE_VERSION - 1
        open(record_path, "w").write(json.dumps(record))
    else:
        record["files"]["c.tflite"] = record["files"]["a.tflite"]
        open(record_path, "w").write(json.dumps(record))
    assert litert_cache.read_record(entry) is None
    assert litert_cache.cached_models(entry, build, on_build=reasons.append) == (entry, True)
    assert reasons == ["missing", "stale"] and len(calls) == 2
    assert litert_cache.read_record(entry) is not None
    assert open(target).read() == "a.tflite" * 100
    assert [p.name for p in tmp_path.iterdir()] == ["crct-key-int8-v1"]   # no staging left


def test_a_failed_build_leaves_nothing(tmp_path):
    def failing(staging):
        open(os.path.join(staging, "a.tflite"), "w").write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        litert_cache.cached_models(str(tmp_path / "crct-x"), failing)
    assert list(tmp_path.iterdir()) == []


def test_old_entries_of_a_kind_are_pruned(tmp_path):
    for i in range(litert_cache.KEEP + 2):
        litert_cache.cached_models(str(tmp_path / f"crct-{i}"), functools.partial(_build, calls=[]))
        os.utime(tmp_path / f"crct-{i}" / litert_cache.CACHE_FILE, (i, i))   # used in order
    litert_cache.cached_models(str(tmp_path / "mtcnn-0"), functools.partial(_build, calls=[]))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "mtcnn-0" in names
    assert len([n for n in names if n.startswith("crct-")]) <= litert_cache.KEEP + 2
    litert_cache.cached_models(str(tmp_path / "crct-new"), functools.partial(_build, calls=[]))
    crct = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("crct-"))
    assert len(crct) == litert_cache.KEEP and "crct-new" in crct and "crct-0" not in crct


# -- a bundle's LiteRT models ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return str(save_untrained_bundle(tmp_path_factory.mktemp("tiny") / "weights", "tiny"))


@pytest.fixture()
def cache_root(tmp_path, monkeypatch):
    root = tmp_path / "litert"
    monkeypatch.setattr(litert_cache, "cache_root", lambda: str(root))
    return root


def test_first_run_converts_once_later_runs_load(tiny_weights, cache_root, monkeypatch):
    """Offline, with no calibration data cached: the default int8 falls back to dynamic-range
    models (no calibration; also the faster test). The MTCNN conversion is tested on its own."""
    from crct_tf import assets
    from crct_tf.tracking import fast_mtcnn

    def offline(name, force=False):
        raise assets.AssetError(f"cannot download {name} (offline)")

    monkeypatch.setattr(fast_mtcnn, "ensure_models", lambda **kwargs: None)
    monkeypatch.setattr(assets, "is_cached", lambda name: False)
    monkeypatch.setattr(assets, "fetch", offline)
    load = functools.partial(runtimes.load_runtime, weights=tiny_weights, runtime="litert")
    lines = []
    first = load(progress=lines.append)
    assert first.kind == "litert" and first.built
    assert len(lines) == 3, lines
    assert "fetching the int8 calibration data" in lines[0]
    assert "unavailable" in lines[1] and "offline" in lines[1]
    assert "converting BT, FV and FLL to LiteRT dynamic once" in lines[2]
    assert first.models_dir.startswith(str(cache_root))
    manifest = open(os.path.join(tiny_weights, "manifest.json"), "rb").read()
    assert litert_cache.sha256_of_bytes(manifest)[:16] in os.path.basename(first.models_dir)
    assert first.steps.quantize == "dynamic"
    again = load(progress=lines.append)          # the fallback is cached: no fetch, no line
    assert not again.built and again.models_dir == first.models_dir and len(lines) == 3

    # An altered cached model: detected, rebuilt, and the rebuilt one is what runs.
    path = os.path.join(first.models_dir, "fll.tflite")
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        f.write(b"\xff" * 64)
    rebuilt = load(progress=lines.append)
    assert rebuilt.built and "failed their sha256 check" in lines[-1]
    record = litert_cache.read_record(rebuilt.models_dir)
    assert record["files"]["fll.tflite"] == litert_cache.sha256_of(path)
    frame = np.full((144, 176, 3), 100, np.uint8)
    out = rebuilt.steps.fll_step(frame, np.array([[40, 30, 120, 110]], np.float32))
    assert out["landmarks"].shape == (1, 68, 2) and np.all(np.isfinite(out["landmarks"]))


def test_an_altered_bundle_is_refused(tiny_weights, cache_root, tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights, weights)
    with open(weights / "fv.weights.h5", "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x11")
    with pytest.raises(runtimes.RuntimeLoadError, match="sha256 differs from the manifest"):
        runtimes.load_runtime(weights=str(weights), runtime="litert")
    assert not cache_root.exists() or not any(cache_root.iterdir())


# -- the default runtime against TF ----------------------------------------------------------------

def median_nme(results, reference):
    errors = [np.linalg.norm(r.landmarks - ref.landmarks, axis=-1).mean()
              / np.linalg.norm(ref.box[2:] - ref.box[:2])
              for r, ref in zip(results, reference)
              if r.landmarks is not None and ref.landmarks is not None]
    return float(np.median(errors)), len(errors)


@pytest.mark.slow
def test_default_runtime_landmarks_agree_with_tf(demo_clip):
    """The bundled weights: the default runtime's landmarks within 0.003 median NME of the TF
    runtime's on the demo clip (minutes on a first run: the conversion; then cached)."""
    from crct_tf.tracking import Tracker
    from crct_tf.tracking.fast_mtcnn import default_detector
    from crct_tf.tracking.video_io import open_source
    source = open_source(demo_clip)
    frames = [f.rgb for f in source]
    source.close()
    detect = default_detector(num_threads=2)
    results = {}
    for name in ("tf", runtimes.DEFAULT_RUNTIME):
        loaded = runtimes.load_runtime(runtime=name, threads=2)
        tracker = Tracker.from_constants(loaded.steps, loaded.constants, detect=detect)
        results[name] = [tracker.track(f) for f in frames]
    nme, count = median_nme(results[runtimes.DEFAULT_RUNTIME], results["tf"])
    assert count >= 110
    assert nme <= 0.003, f"median NME {nme:.4f} against TF"
