"""The training loop on generated data with the tiny stand-in backbone (fast), and the CLI."""

import json
import os
import signal
import time

import numpy as np
import pytest
import tensorflow as tf

from crct_tf.training import loop, tasks

from helpers import REPO, TRAIN_BATCH as BATCH, generated_batches, tiny_task, train_cli

LEARNING_RATE = {"fll": 1e-3, "fv": 1e-3, "bt": 1e-4}


def _fixed_loss(task, batch, seq_len=2):
    return float(task.loss(batch, BATCH[task.name], seq_len=seq_len, seed=tf.constant([0, 0]),
                           training=False)[0])


@pytest.mark.parametrize("name", ["fll", "fv", "bt"])
def test_ten_steps_lower_the_loss_leave_a_checkpoint_and_resume(name, tmp_path):
    model_dir = str(tmp_path / name)
    config = loop.LoopConfig(model_dir=model_dir, steps=10, batch_size=BATCH[name],
                             learning_rate=LEARNING_RATE[name], log_every=5, checkpoint_every=5)
    fixed = next(iter(generated_batches(name)(2, 10_000)))
    # Ten steps on one batch must lower its loss (on fresh batches the noise of ten steps of
    # small batches can hide the trend); the pipelines themselves are run by the CLI tests.
    repeated = lambda seq_len, first: tf.data.Dataset.from_tensors(fixed).repeat()  # noqa: E731
    task, initial = tiny_task(name), {}
    build = task.build_model

    def build_and_measure():             # the loss on the fixed batch before the first step
        model = build()
        initial["loss"] = _fixed_loss(task, fixed)
        return model

    task.build_model = build_and_measure
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    result = loop.train(task, config, strategy, dataset_fn=repeated)
    assert result["step"] == 10 and result["trained"] == 10 and np.isfinite(result["loss"])
    # The loss on a fixed batch, before and after the ten steps.
    assert _fixed_loss(task, fixed) < initial["loss"]
    checkpoints = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    assert checkpoints.model_checkpoint_path.endswith("ckpt-10")

    # A rerun resumes at step 10 (nothing left to do), a longer one goes on from there.
    again = loop.train(tiny_task(name), config, strategy, dataset_fn=repeated,
                       init_fn=lambda task: pytest.fail("re-initialised"))
    assert again == {"step": 10, "trained": 0, "loss": None}
    longer = loop.LoopConfig(**{**config.__dict__, "steps": 12})
    result = loop.train(tiny_task(name), longer, strategy, dataset_fn=generated_batches(name))
    assert result["step"] == 12 and result["trained"] == 2


def test_bt_curriculum_stages_and_own_prediction_probability():
    assert tiny_task("bt", seq_bt=8).stages(30) == [(2, 0, 10), (4, 10, 20), (8, 20, 30)]
    assert tiny_task("bt", seq_bt=8).stages(31) == [(2, 0, 10), (4, 10, 20), (8, 20, 31)]
    assert tiny_task("fll", seq_bt=8).stages(30) == [(None, 0, 30)]
    assert tiny_task("bt", seq_bt=8).total_steps(30, steps_per_stage=5) == 15
    assert tiny_task("fll").total_steps(30, steps_per_stage=5) == 30
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
        loop.train(tiny_task("fll"), config, tf.distribute.OneDeviceStrategy("/cpu:0"),
                   dataset_fn=nan_dataset)


def test_data_that_runs_out_is_a_clear_error(tmp_path):
    def too_little(seq_len, first):             # two examples: no batch of four
        return generated_batches("fll")(seq_len, first).unbatch().take(2).batch(
            4, drop_remainder=True)

    config = loop.LoopConfig(model_dir=str(tmp_path / "short"), steps=5, batch_size=4)
    with pytest.raises(loop.TrainingError, match="ran out at step 1 .*batch size"):
        loop.train(tiny_task("fll"), config, tf.distribute.OneDeviceStrategy("/cpu:0"),
                   dataset_fn=too_little)


def test_fll_task_passes_the_shape_warp_grid_to_its_inputs():
    """`fll_shape_warp_nodes` reaches the warp: the same seed's points differ between the default
    grid (None or 4, the same) and the finer one."""
    from crct_tf.training import inputs

    def points(nodes):
        task = tiny_task("fll", sources=inputs.SourceSpec(["synthetic"], [], None, "train"),
                         fll_shape_warp=1.0, fll_shape_warp_nodes=nodes)
        return next(iter(task.build_inputs(2, seed=3)))[1].numpy()
    default = points(None)
    np.testing.assert_array_equal(default, points(4))
    assert np.abs(points(8) - default).max() > 1.0


def test_fll_task_passes_the_expression_share_to_its_inputs():
    """`fll_expression` reaches the pipeline: with it on every example the points of the same
    seed move; with 0 they are the plain recipe's."""
    from crct_tf.training import inputs

    def points(share):
        task = tiny_task("fll", sources=inputs.SourceSpec(["synthetic"], [], None, "train"),
                         fll_expression=share)
        return next(iter(task.build_inputs(2, seed=3)))[1].numpy()
    plain = points(0.0)
    np.testing.assert_array_equal(plain, points(0.0))
    assert np.abs(points(1.0) - plain).max() > 0.5


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    cases = [(("--dataset=nope",), "error: --dataset nope: unknown"),
             (("--dataset=ibug300w",), "--manual_dir"),
             (("--fll_box_jitter=0.1",), "error: --fll_box_jitter 0.1: expected two"),
             (("--fll_fringe=2",), "error: --fll_fringe 2.0: a fraction"),
             (("--fll_mouth_cover=-1",), "error: --fll_mouth_cover -1.0: a fraction"),
             (("--fll_shape_warp=1.5",), "error: --fll_shape_warp 1.5: a fraction"),
             (("--fll_expression=2",), "error: --fll_expression 2.0: a fraction"),
             (("--fll_shape_warp_nodes=16",), "error: --fll_shape_warp_nodes 16: a shape warp"),
             (("--fv_point_noise=0.3",), "error: --fv_point_noise 0.3: a fraction"),
             (("--fll_region_weights=eyebrows",), "error: --fll_region_weights eyebrows: expected"),
             (("--fll_region_weights=lips=2",), "unknown region 'lips'"),
             (("--fll_region_weights=mouth=0",), "mouth: the weight must be a positive")]
    procs = [train_cli("--model=fll", *flags, f"--model_dir={tmp_path}/{i}")   # side by side
             for i, (flags, _) in enumerate(cases)]
    for proc, (flags, expected) in zip(procs, cases):
        _, err = proc.communicate(timeout=180)
        last = err.strip().splitlines()[-1]
        assert proc.returncode == 2 and expected in last, (flags, last)
        assert last.startswith("error:"), (flags, last)


def test_cli_sigint_saves_run_files_and_a_checkpoint_that_reruns_resume(tmp_path):
    model_dir = str(tmp_path / "smoke run é")
    args = ["--flagfile=configs/smoke.cfg", f"--model_dir={model_dir}", "--steps=100000",
            "--batch_size=2", "--log_every=1", "--checkpoint_every=100000", "--noaugment"]
    # TensorFlow's own log level as a user has it (unset): no CUDA start-up error on a machine
    # without a GPU, no message of an input iterator cut off at the end.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = train_cli(*args, cwd=REPO, env=env)
    deadline = time.time() + 240
    seen = ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen += line
        if " step 3/" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    err = seen + err
    assert proc.returncode == 130, err[-2000:]
    assert "cuInit" not in err and "CANCELLED" not in err and "Traceback" not in err
    flags_text = open(os.path.join(model_dir, "flags.cfg")).read()
    assert "--model=fll" in flags_text and "--steps=100000" in flags_text
    run = json.load(open(os.path.join(model_dir, "run.json")))
    assert run["model"] == "fll" and run["backbone"] == "tiny"
    state = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    saved_step = int(state.model_checkpoint_path.rsplit("-", 1)[1])
    assert saved_step >= 3

    # A rerun goes on from the saved step and finishes: still no CUDA error, and no message of
    # an input iterator cut off at the end, at TensorFlow's own log level.
    proc = train_cli(*args[:2], f"--steps={saved_step + 1}", *args[3:], cwd=REPO, env=env)
    out, err = proc.communicate(timeout=300)
    assert "resumed from" in err and f"ckpt-{saved_step} at step {saved_step}" in err, err[-2000:]
    assert f"done: step {saved_step + 1}" in err and "loss nan" not in err
    assert "cuInit" not in err and "CANCELLED" not in err and "Traceback" not in err
