"""Commands on absl flags answer a bad flag with one line and exit code 2 (absl's own: 2 lines, 1)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from absl import flags

from crct_tf import absl_command

REPO = Path(__file__).resolve().parents[1]


def _flag_values():
    values = flags.FlagValues()
    flags.DEFINE_enum("side", "left", ["left", "right"], "a side", flag_values=values)
    flags.DEFINE_integer("count", 1, "a count", flag_values=values)
    return values


@pytest.mark.parametrize("argv, message", [
    (["--side", "up"], "flag --side=up: value should be one of <left|right>"),
    (["--count", "many"], "flag --count=many"),
    (["--colour", "red"], "Unknown command line flag 'colour'")])
def test_a_bad_flag_is_one_line_and_exit_2(argv, message, capsys):
    parse = absl_command.parse_flags_or_exit("prog", _flag_values())
    with pytest.raises(SystemExit) as exit_:
        parse(["prog"] + argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("prog: error: ") and message in err


def test_good_flags_are_parsed():
    values = _flag_values()
    rest = absl_command.parse_flags_or_exit("prog", values)(["prog", "--side", "right", "x"])
    assert rest == ["prog", "x"] and values.side == "right"


@pytest.mark.parametrize("command", ["benchmark", "evaluate", "evaluate_video", "export", "train"])
def test_every_absl_command_starts_through_it(command):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", f"crct_tf.{command}", "--no_such_flag", "1"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    ours = [line for line in result.stderr.splitlines()
            if line.split(": error: ")[0] in (command, f"crct_tf.{command}")]
    assert len(ours) == 1 and "Unknown command line flag 'no_such_flag'" in ours[0]
    assert result.stderr.endswith(ours[0] + "\n")
