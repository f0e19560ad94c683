"""How the commands built on absl flags start: bad flags get one line and exit code 2.

absl's own parser answers a bad flag (an unknown name, a value outside an enum, a number that
is not one) with two lines and exit code 1, the code of a crash. The commands of this package
answer every bad input with one line and 2, so they start through `run`:

    if __name__ == "__main__":
        define_flags()
        absl_command.run(main, "crct_tf.export")
"""

import sys

from absl import app, flags

HELP_FLAGS = ("--help", "--helpshort", "--helpfull", "-?")


def parse_flags_or_exit(prog, flag_values=flags.FLAGS):
    """An `app.run` flags parser: the flags parsed, or `PROG: error: ...` and exit code 2."""
    def parse(argv):
        try:
            return flag_values(argv)
        except flags.Error as error:
            sys.stderr.write(f"{prog}: error: {' '.join(str(error).split())}\n")
            sys.exit(2)
    return parse


def run(main, prog):
    """`app.run(main)` with one-line flag errors (exit 2); asking for help exits 0, not 1."""
    try:
        app.run(main, flags_parser=parse_flags_or_exit(prog))
    except SystemExit as e:  # absl exits 1 after printing --help: asking for help is no error
        asked_for_help = set(HELP_FLAGS) & set(sys.argv[1:])
        sys.exit(0 if e.code == 1 and asked_for_help else e.code)
