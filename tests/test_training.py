"""The training loop on generated data with the tiny stand-in backbone (fast), and the CLI."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from crct_tf.geometry.crop_settings import CropSettings
from crct_tf.data import bt_pipeline, fll_pipeline, fv_pipeline, synthetic
from crct_tf.models.tiny_backbone import build_tiny_backbone
from crct_tf.training import inputs, loop, tasks

SETTINGS = CropSettings()
BATCH = {"fll": 8, "fv": 8, "bt": 4}
LEARNING_RATE = {"fll": 1e-3, "fv": 1e-3, "bt": 1e-4}


def _task(name):
    return lambda: tasks.build_task(name, SETTINGS, build_tiny_backbone)


def _dataset(name):
    """A small generated set without augmentation: ten steps must visibly lower the loss."""
    def make(seq_len, first):
        faces = synthetic.synthetic_faces(16, seed=0)
        seed = inputs.run_seed(0, first)
        if name == "fll":
            return fll_pipeline.make_fll_dataset(faces, SETTINGS, BATCH[name], seed, False,
                                                 shuffle_buffer=16)
        if name == "fv":
            return fv_pipeline.make_fv_dataset(faces, SETTINGS, BATCH[name], seed, False,
                                               shuffle_buffer=16)
        return bt_pipeline.make_bt_dataset(faces, SETTINGS, BATCH[name], seq_len + 1, seed,
                                           False, shuffle_buffer=16, region_size=160)
    return make


def _fixed_loss(task, batch, seq_len=2):
    if task.name == "fll":
        return float(task.fll_loss(batch, BATCH["fll"], training=False)[0])
    if task.name == "fv":
        return float(task.fv_loss(batch, BATCH["fv"], training=False)[0])
    return float(task.bt_loss(batch, BATCH["bt"], seq_len, tf.constant([0, 0]),
                              training=False)[0])


@pytest.mark.parametrize("name", ["fll", "fv", "bt"])
def test_ten_steps_lower_the_loss_leave_a_checkpoint_and_resume(name, tmp_path):
    model_dir = str(tmp_path / name)
    config = loop.LoopConfig(model_dir=model_dir, steps=10, batch_size=BATCH[name],
                             learning_rate=LEARNING_RATE[name], seq_bt=2, log_every=5, checkpoint_every=5)
    built = {}
    fixed = next(iter(_dataset(name)(2, 10_000)))
    # Ten steps on one batch must lower its loss (on fresh batches the noise of ten steps of
    # small batches can hide the trend); the pipelines themselves are run by the CLI tests.
    repeated = lambda seq_len, first: tf.data.Dataset.from_tensors(fixed).repeat()  # noqa: E731

    def task_fn():
        built["task"] = _task(name)()
        built.setdefault("initial_loss", _fixed_loss(built["task"], fixed))
        return built["task"]

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    result = loop.train(task_fn, repeated, lambda task: None, config, strategy)
    assert result["step"] == 10
    # The loss on a fixed batch, before and after the ten steps.
    assert _fixed_loss(built["task"], fixed) < built["initial_loss"]
    checkpoints = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    assert checkpoints.model_checkpoint_path.endswith("ckpt-10")

    # A rerun resumes at step 10 (nothing left to do), a longer one goes on from there.
    again = loop.train(task_fn, repeated, lambda task: pytest.fail("re-initialised"),
                       config, strategy)
    assert again["step"] == 10
    longer = loop.LoopConfig(**{**config.__dict__, "steps": 12})
    assert loop.train(task_fn, _dataset(name), lambda task: None, longer, strategy)["step"] == 12


def test_bt_curriculum_stages_and_own_prediction_probability():
    config = loop.LoopConfig(model_dir="x", steps=30, batch_size=1, seq_bt=8)
    assert loop.stages_of("bt", config) == [(2, 0, 10), (4, 10, 20), (8, 20, 30)]
    assert loop.stages_of("fll", config) == [(None, 0, 30)]
    assert [tasks.own_prediction_probability(t) for t in (2, 4, 8, 16, 32)] == \
        [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError):
        tasks.curriculum(6)


def test_a_nan_in_the_batch_stops_training_naming_the_step(tmp_path):
    def nan_dataset(seq_len, first):
        crops = np.full((4, 128, 128, 3), 100.0, np.float32)
        points = np.full((4, 68, 2), 64.0, np.float32)
        points[0, 5, 1] = np.nan
        return tf.data.Dataset.from_tensors((crops, points)).repeat()

    config = loop.LoopConfig(model_dir=str(tmp_path / "nan"), steps=5, batch_size=4)
    with pytest.raises(loop.TrainingError, match="non-finite loss .* at step 1"):
        loop.train(_task("fll"), nan_dataset, lambda task: None, config,
                   tf.distribute.OneDeviceStrategy("/cpu:0"))


def _train_cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "crct_tf.train", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_cli_writes_flags_and_run_files_and_resumes(tmp_path):
    model_dir = str(tmp_path / "smoke run é")
    args = ["--flagfile=configs/smoke.cfg", f"--model_dir={model_dir}", "--steps=4",
            "--batch_size=4", "--noaugment"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out, err = _train_cli(*args, cwd=root).communicate(timeout=300)
    assert "done: step 4" in err, err[-2000:]
    flags_text = open(os.path.join(model_dir, "flags.cfg")).read()
    assert "--model=fll" in flags_text and "--steps=4" in flags_text
    run = json.load(open(os.path.join(model_dir, "run.json")))
    assert run["model"] == "fll" and run["backbone"] == "tiny"
    out, err = _train_cli(*args, cwd=root).communicate(timeout=300)
    assert "resumed from" in err and "done: step 4" in err


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    proc = _train_cli("--model=fll", "--dataset=nope", f"--model_dir={tmp_path}/x")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1].startswith("error: --dataset nope: unknown")
    proc = _train_cli("--model=fll", "--dataset=ibug300w", f"--model_dir={tmp_path}/y")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "--manual_dir" in err.strip().splitlines()[-1]


def test_sigint_saves_a_checkpoint_that_a_rerun_resumes(tmp_path):
    model_dir = str(tmp_path / "interrupted")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = ["--flagfile=configs/smoke.cfg", f"--model_dir={model_dir}", "--steps=100000",
            "--batch_size=2", "--log_every=1", "--checkpoint_every=100000", "--noaugment"]
    proc = _train_cli(*args, cwd=root)
    deadline = time.time() + 240
    seen = ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen += line
        if " step 3/" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (seen + err)[-2000:]
    state = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    saved_step = int(state.model_checkpoint_path.rsplit("-", 1)[1])
    assert saved_step >= 3
    proc = _train_cli(*args[:2], f"--steps={saved_step + 1}", *args[3:], cwd=root)
    out, err = proc.communicate(timeout=300)
    assert f"at step {saved_step}" in err and f"done: step {saved_step + 1}" in err
