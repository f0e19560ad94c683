"""The tracking command under its old name: `python tools/track_video.py` runs
`python -m crct_tf.track` with the same flags (the package must be installed)."""

import sys

from crct_tf.track import main

if __name__ == "__main__":
    sys.exit(main())
