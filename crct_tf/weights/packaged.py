"""The weights bundle that ships inside the package (package data), found without the repository.

`python -m crct_tf.track`, `export` and `benchmark` default to it; `load_tracker()` too. It is
an ordinary weights bundle: every file is checked against the sha256 of its manifest on load.
"""

import os

BUNDLED_WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                   "checkpoints")


def bundled_weights_dir():
    """The folder of the bundled weights (`crct_tf/checkpoints/` of the installed package)."""
    return BUNDLED_WEIGHTS_DIR
