"""`python -m crct_tf.export` on damaged bundles, a full disk, an unusable --export_dir, and a
SavedModel of another model (issue 9, docs/errors.md). Tiny stand-in backbone; the CLI cases
run in one subprocess (absl flags of export and train cannot share a process)."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from helpers import REPO, save_untrained_bundle

from crct_tf import export
from crct_tf.tracking import frame_step


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    return save_untrained_bundle(tmp_path_factory.mktemp("weights") / "tiny ü", backbone="tiny")


_SCRIPT = """
import errno, json, os, sys
import tensorflow as tf
from absl import flags
from crct_tf import export

def save(obj, export_dir, *args, **kwargs):        # half-written, then the disk fills
    with open(os.path.join(export_dir, "saved_model.pb"), "wb") as f:
        f.write(b"0" * 10)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), export_dir)

export.define_flags()
codes = []
for argv, full in json.loads(sys.argv[1]):
    real = tf.saved_model.save
    if full:
        tf.saved_model.save = save
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["crct_tf.export", *argv])
    try:
        export.main(["crct_tf.export"])
        codes.append(0)
    except SystemExit as e:
        codes.append(e.code)
    tf.saved_model.save = real
    sys.stderr.write("--\\n")
print(json.dumps(codes))
"""


def _run_cli(*cases):
    """Runs export.main once per (argv, full_disk) case in one subprocess (one TF import)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(cases)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [[line for line in part.splitlines() if "error:" in line.lower()]
              for part in proc.stderr.split("--\n")[:-1]]
    return json.loads(proc.stdout.strip().splitlines()[-1]), errors


def _copy(bundle, dest):
    dest.mkdir()
    for name in os.listdir(bundle):
        (dest / name).write_bytes((bundle / name).read_bytes())
    return dest


def _weight_file(bundle):
    parts = json.loads((bundle / "manifest.json").read_text())["parts"]
    return next(iter(parts.values()))["file"]


@pytest.mark.parametrize("damage, message", [
    ("missing file", "missing"), ("truncated file", "sha256 differs"),
    ("truncated manifest", "manifest.json")])
def test_a_damaged_bundle_is_refused_before_writing(tiny_bundle, tmp_path, damage, message):
    bundle = _copy(tiny_bundle, tmp_path / "bundle")
    if damage == "missing file":
        os.remove(bundle / _weight_file(bundle))
    elif damage == "truncated file":
        path = bundle / _weight_file(bundle)
        path.write_bytes(path.read_bytes()[:100])
    else:
        path = bundle / "manifest.json"
        path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(export.ExportError, match=message):
        export.run("saved_model", str(tmp_path / "exported"), weights=str(bundle))
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_cli_full_disk_and_export_dir_under_a_file(tiny_bundle, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    full = tmp_path / "out dir é" / "exported"
    codes, errors = _run_cli(
        [["--weights", str(tiny_bundle), "--export_dir", str(blocker / "exported")], False],
        [["--weights", str(tiny_bundle), "--export_dir", str(full)], True])
    assert codes == [2, 2], errors
    for lines, words in zip(errors, ["a_file", "No space left on device"]):
        assert len(lines) == 1 and lines[0].startswith("crct_tf.export: error: "), lines
        assert words in lines[0]
    assert not full.exists() and not os.listdir(full.parent)    # no staging folder left


def test_a_saved_model_of_another_model_is_refused(tmp_path):
    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x):
            return 2 * x

    tf.saved_model.save(Other(), str(tmp_path / "other"))
    with pytest.raises(frame_step.SavedModelError, match="other"):
        frame_step.load_saved_model(str(tmp_path / "other"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "saved_model.pb").write_bytes(b"\x08\x01garbage")
    with pytest.raises(frame_step.SavedModelError, match="broken"):
        frame_step.load_saved_model(str(tmp_path / "broken"))


def test_t_c_is_refused_outside_a_bundle_export(tmp_path):
    """`--t_c` only means something for `--format bundle`: refused before anything is loaded."""
    with pytest.raises(export.ExportError, match="--t_c applies to --format bundle only"):
        export.run("tflite", str(tmp_path / "out"), t_c=0.7)
    assert not (tmp_path / "out").exists()
