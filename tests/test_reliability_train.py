"""Training on interruptions, crashes mid-checkpoint, damaged checkpoints and unwritable folders
(issue 9, docs/errors.md). In-process with the tiny stand-in backbone (fast); the CLI's SIGTERM
run is marked slow."""

import errno
import os
import signal
import time

import pytest
import tensorflow as tf
from absl import flags

from helpers import REPO, generated_batches, tiny_task, train_cli

from crct_tf import train
from crct_tf.training import loop

STRATEGY = tf.distribute.OneDeviceStrategy("/cpu:0")


def _config(model_dir, steps, every=2):
    return loop.LoopConfig(model_dir=str(model_dir), steps=steps, batch_size=8, log_every=1,
                           checkpoint_every=every)


def _train(model_dir, steps, dataset=None, every=2):
    return loop.train(tiny_task("fll"), _config(model_dir, steps, every), STRATEGY,
                      dataset_fn=dataset or generated_batches("fll"))


def _latest_step(model_dir):
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, loop.CHECKPOINT_SUBDIR))
    return None if latest is None else int(latest.rsplit("-", 1)[1])


def test_sigterm_saves_a_checkpoint_and_the_rerun_resumes_at_that_step(tmp_path):
    make = generated_batches("fll")

    def dataset(seq_len, first):        # SIGTERM arrives as the stage starts: the step ends first
        os.kill(os.getpid(), signal.SIGTERM)
        return make(seq_len, first)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(loop.Interrupted) as caught:
        _train(tmp_path, 100, dataset, every=1000)
    assert caught.value.signum == signal.SIGTERM and 128 + caught.value.signum == 143
    assert _latest_step(tmp_path) == 1
    assert signal.getsignal(signal.SIGTERM) is before          # the handler is restored
    assert _train(tmp_path, 2)["step"] == 2            # resumed at step 1: one more step


def test_a_crash_mid_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    assert _train(tmp_path, 2)["step"] == 2
    real_write = tf.train.Checkpoint._write

    def half_write(self, prefix, *args, **kwargs):
        with open(prefix + ".index", "wb") as f:        # half-written files, then the crash
            f.write(b"\x00" * 10)
        with open(prefix + ".data-00000-of-00001", "wb") as f:
            f.write(b"\x01" * 10)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), prefix)

    monkeypatch.setattr(tf.train.Checkpoint, "_write", half_write)
    with pytest.raises(OSError):
        _train(tmp_path, 4)
    monkeypatch.setattr(tf.train.Checkpoint, "_write", real_write)
    assert _latest_step(tmp_path) == 2                  # the state file still names ckpt-2
    assert _train(tmp_path, 3)["step"] == 3             # which restores


@pytest.mark.parametrize("damage", ["truncated data", "missing index"])
def test_a_damaged_checkpoint_is_a_clear_error(tmp_path, damage):
    _train(tmp_path, 2)
    prefix = tf.train.latest_checkpoint(os.path.join(tmp_path, loop.CHECKPOINT_SUBDIR))
    if damage == "truncated data":
        data = prefix + ".data-00000-of-00001"
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 2)
    else:
        os.remove(prefix + ".index")
    with pytest.raises((loop.TrainingError, tf.errors.OpError)) as caught:
        _train(tmp_path, 3)
    assert "ckpt-2" in str(caught.value).splitlines()[0]


@pytest.fixture
def cli(monkeypatch):
    """Runs train.main in-process with the given flags; returns its exit code."""
    def run(*args):
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["crct_tf.train", *args])
        try:
            train.main([])
        except SystemExit as e:
            return e.code
        return 0
    yield run
    flags.FLAGS.unparse_flags()


def _error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_model_dir_under_a_regular_file(tmp_path, cli, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert cli("--model=fll", "--backbone=tiny", "--dataset=synthetic",
               f"--model_dir={blocker}/run", "--steps=1") == 2
    assert "a_file" in _error_line(capsys)


def test_full_disk_writing_the_run_files(tmp_path, cli, capsys, monkeypatch):
    def replace(src, dst, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
    monkeypatch.setattr(train.os, "replace", replace)      # os itself: undone after the test
    assert cli("--model=fll", "--backbone=tiny", "--dataset=synthetic",
               f"--model_dir={tmp_path}/run é", "--steps=1") == 2
    line = _error_line(capsys)
    assert "No space left on device" in line and "run é" in line


@pytest.mark.slow
def test_cli_sigterm_exits_143_and_a_rerun_resumes(tmp_path):
    model_dir = str(tmp_path / "terminated")
    root = REPO
    args = ["--flagfile=configs/smoke.cfg", f"--model_dir={model_dir}", "--steps=100000",
            "--batch_size=2", "--log_every=1", "--checkpoint_every=100000", "--noaugment"]
    proc = train_cli(*args, cwd=root)
    deadline, seen = time.time() + 240, ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen += line
        if " step 3/" in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, (seen + err)[-2000:]
    saved_step = _latest_step(model_dir)
    assert saved_step >= 3
    proc = train_cli(*args[:2], f"--steps={saved_step + 1}", *args[3:], cwd=root)
    out, err = proc.communicate(timeout=300)
    assert f"at step {saved_step}" in err and f"done: step {saved_step + 1}" in err
