"""Every command answers --help with its usage on stdout and exit code 0."""

import os
import subprocess
import sys

import pytest

from helpers import REPO

COMMANDS = ["crct_tf.train", "crct_tf.export", "crct_tf.evaluate", "crct_tf.evaluate_video",
            "crct_tf.benchmark", "crct_tf.track", "crct_tf.assets", "crct_tf.datasets.build"]


@pytest.mark.parametrize("module", COMMANDS)
def test_help_exits_0_with_usage_on_stdout(module, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not proc.stderr.strip().startswith("error")
    assert len(proc.stdout.splitlines()) >= 10 and " --" in proc.stdout   # options listed


def test_a_bad_flag_is_still_an_error():
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "crct_tf.evaluate", "--no_such_flag"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "no_such_flag" in proc.stderr
