"""Writing an output folder atomically: build it under a hidden temporary name, then rename.

Used by every exporter (weights bundles, SavedModels, TFLite models), so an interrupted or
failed export never leaves a folder that looks complete, and a replaced folder is swapped in
only once its successor is whole.
"""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def staged_folder(final_dir, prefix=".staging."):
    """Yields a temporary folder beside `final_dir`; on success it replaces `final_dir`.

    On any exception (KeyboardInterrupt included) the temporary folder is removed and the
    exception propagates; `final_dir` is left as it was.
    """
    parent = os.path.dirname(os.path.abspath(final_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield staging
        if os.path.exists(final_dir):
            shutil.rmtree(final_dir)
        os.replace(staging, final_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
