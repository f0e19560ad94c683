"""tools/colour_probe.py: its grey and faded sepia versions of a frame, and one line with exit
code 2 when the teacher's points are missing."""

import cv2
import numpy as np

from helpers import load_tool

colour_probe = load_tool("colour_probe")


def test_grey_is_opencvs_luma_and_sepia_is_faded_and_warm():
    frame = np.random.default_rng(5).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    grey = colour_probe.grey(frame)
    expected = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    assert grey.shape == frame.shape
    for channel in range(3):
        np.testing.assert_array_equal(grey[..., channel], expected)
    sepia = colour_probe.faded_sepia(frame)
    assert sepia.dtype == np.uint8
    sepia = sepia.astype(np.float32)
    assert np.all(sepia[..., 0] >= sepia[..., 2])                                 # warm
    assert sepia[..., 1].std() < 0.7 * expected.std()                             # faded
    assert sepia.min() >= 60.0 * 0.82 - 1                                         # lifted


def test_missing_teacher_points_give_one_line_and_exit_code_2(tmp_path, capsys):
    assert colour_probe.main(["--gt_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no .pts files" in err[0]
