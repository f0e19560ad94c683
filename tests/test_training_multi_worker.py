"""Training across two worker processes on localhost with `--strategy multi_worker`.

Two `python -m crct_tf.train` processes (CPU only, TF_CONFIG with free ports) train the smoke
configuration (tiny backbone, generated faces). Both are killed (SIGTERM, one after the other)
in the middle and started again: they stop at one step they agree on, resume from the chief's
last checkpoint, finish with the same weights, and only the chief writes into --model_dir.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from helpers import REPO

STEPS = 20
EVERY = 5                     # checkpoints, log lines and the workers' agreement on stopping
TIMEOUT_S = 900               # per launch; 2 cores shared with other work can be slow


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(model_dir, logs, tmp):
    """Starts worker 0 (the chief) and worker 1; returns [(process, log path)]."""
    ports = _free_ports(2)
    workers = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                     "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), CUDA_VISIBLE_DEVICES="-1",
                   TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=str(tmp))
        log = logs / f"worker{index}.{len(list(logs.iterdir()))}.log"
        with open(log, "w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "crct_tf.train", "--flagfile=configs/smoke.cfg",
                 "--strategy=multi_worker", f"--model_dir={model_dir}", f"--steps={STEPS}",
                 f"--checkpoint_every={EVERY}", f"--log_every={EVERY}"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        workers.append((process, log))
    return workers


def _wait(workers):
    deadline = time.monotonic() + TIMEOUT_S
    try:
        for process, _ in workers:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process, _ in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
    return [process.returncode for process, _ in workers]


def _latest_step(model_dir):
    state = model_dir / "checkpoints" / "checkpoint"
    if not state.exists():
        return None
    match = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', state.read_text(), re.M)
    return int(match.group(1)) if match else None


def _text(log):
    return Path(log).read_text(errors="replace")


def _digest(log):
    found = re.findall(r"weights sha256 ([0-9a-f]{64})", _text(log))
    assert len(found) == 1, _text(log)[-3000:]
    return found[0]


def test_two_workers_train_resume_and_agree(tmp_path):
    model_dir, logs, tmp = tmp_path / "run", tmp_path / "logs", tmp_path / "tmp"
    logs.mkdir()
    tmp.mkdir()

    # Launch 1: killed in the middle, worker 1 first, the chief half a second later.
    workers = _start_workers(model_dir, logs, tmp)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while (_latest_step(model_dir) or 0) < EVERY:
            assert all(p.poll() is None for p, _ in workers), \
                "\n".join(_text(log)[-3000:] for _, log in workers)
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.1)
        workers[1][0].send_signal(signal.SIGTERM)
        time.sleep(0.2)
        workers[0][0].send_signal(signal.SIGTERM)
    finally:
        codes = _wait(workers)
    # Both stop at the next step they agree on and save there. The chief may get its signal
    # after that stop, while it exits: then the signal ends it (the checkpoint is written).
    tails = "\n".join(_text(log)[-3000:] for _, log in workers)
    assert codes[1] == 128 + signal.SIGTERM and codes[0] in (128 + signal.SIGTERM,
                                                            -signal.SIGTERM), tails
    stopped = [re.findall(r"interrupted by signal \d+ at step (\d+)", _text(log))
               for _, log in workers]
    assert len(stopped[1]) == 1, tails
    assert stopped[0] in ([], stopped[1]), tails                # the same step on both
    stop_step = int(stopped[1][0])
    assert stop_step % EVERY == 0 and EVERY <= stop_step < STEPS
    assert _latest_step(model_dir) == stop_step
    first_chief = workers[0][0].pid

    # Launch 2: both resume from the chief's last checkpoint and finish.
    workers = _start_workers(model_dir, logs, tmp)
    codes = _wait(workers)
    assert codes == [0, 0], "\n".join(_text(log)[-3000:] for _, log in workers)
    for _, log in workers:
        assert f"ckpt-{stop_step} at step {stop_step}" in _text(log)   # "resumed from ..."
        assert f"steps {stop_step}..{STEPS}" in _text(log)
    assert _digest(workers[0][1]) == _digest(workers[1][1])        # identical weights
    assert _latest_step(model_dir) == STEPS

    # Only the chief wrote into --model_dir; the other worker's temporary folders are gone.
    assert sorted(os.listdir(model_dir)) == ["checkpoints", "flags.cfg", "run.json",
                                             "tensorboard"]
    events = os.listdir(model_dir / "tensorboard")
    pids = {int(name.split(".")[-3]) for name in events}     # events.out.tfevents.T.HOST.PID.N.v2
    assert pids == {first_chief, workers[0][0].pid}, events
    assert not [p for p in os.listdir(model_dir / "checkpoints")
                if not p.startswith(("ckpt-", "checkpoint"))]
    assert os.listdir(tmp) == []
