"""Algorithm 1's control flow with small deterministic stand-in networks.

The stand-ins (tests/helpers.py) have the sub-networks' signatures and run through the real `FrameSteps`:
  BT   returns a fixed face filling the central 1/context of its crop, shifted by SHIFT crop
       pixels, and state + 1 (so the state counts BT steps since the last reset);
  FV   returns the mean of its patches / 255: a frame's brightness around the landmarks is
       its p(face), scripted per frame;
  FLL  returns the same fixed face without shift (so b_t = b_t^BT).
The detector is scripted per frame index.
"""

import numpy as np
import pytest

from helpers import BOX, BRIGHT, DARK, H, STATE_SHAPE, W, frame, make_steps

from crct_tf.tracking import LOST, SEARCHING, TRACKED, Tracker, TrackerConfig, select_detection


@pytest.fixture(scope="module")
def steps():
    return make_steps()


class ScriptedDetector:
    """detect(rgb) -> the boxes scripted for the current frame index `t`; records its calls."""

    def __init__(self, script):
        self.script, self.t, self.calls = script, 0, []

    def __call__(self, rgb):
        self.calls.append(self.t)
        found = self.script.get(self.t, [])
        boxes = np.array([b for b, _ in found], np.float32).reshape(-1, 4)
        return boxes, np.array([s for _, s in found], np.float32)


def run(tracker, detector, frames):
    results = []
    for t, image in enumerate(frames):
        detector.t = t
        results.append(tracker.track(image))
    return results


def lstm_count(tracker):
    return float(tracker.state.lstm[0, 0, 0])


def make_tracker(steps, script=None, init_box=BOX, **config):
    detector = ScriptedDetector(script or {})
    return Tracker(steps, TrackerConfig(**config), detect=detector, init_box=init_box), detector


def test_select_detection_is_eq8():
    boxes = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    scores = np.array([0.5, 0.9], np.float32)
    assert select_detection(np.array([2, 2, 12, 12]), boxes, scores, 1.0) == 0   # nearest
    assert select_detection(np.array([50, 50, 60, 60]), boxes, scores, 1.0) is None  # too far
    assert select_detection(np.array([50, 50, 60, 60]), boxes, scores, 6.0) == 0
    assert select_detection(None, boxes, scores, 1.0) == 1                         # best score
    assert select_detection(np.full(4, np.nan), boxes, scores, 1.0) == 1
    assert select_detection(np.array([2, 2, 12, 12]), boxes[:0], scores[:0], 1.0) is None


def test_step_geometry_with_stand_ins(steps):
    out = steps.step(frame(BRIGHT), frame(BRIGHT), BOX[None], np.zeros([1, *STATE_SHAPE]),
                     np.zeros([1, 2]))
    np.testing.assert_allclose(out["bt_box"].numpy()[0], BOX, atol=1e-3)
    np.testing.assert_allclose(out["box"].numpy()[0], BOX, atol=1e-3)
    np.testing.assert_allclose(out["p_face"].numpy(), [BRIGHT / 255], atol=1e-3)
    np.testing.assert_allclose(out["state"].numpy(), 1.0)


def test_fv_reject_redetects_on_next_frame_and_resets_state(steps):
    moved = [BOX[0] + 10, BOX[1], BOX[2] + 10, BOX[3]]
    tracker, detector = make_tracker(steps, {3: [(moved, 0.9)]})
    results = run(tracker, detector, [frame(BRIGHT)] * 2 + [frame(DARK)] + [frame(BRIGHT)] * 2)
    assert [r.status for r in results] == [TRACKED, TRACKED, LOST, TRACKED, TRACKED]
    assert results[2].landmarks is None and results[2].box is None
    assert results[2].face_score == pytest.approx(DARK / 255, abs=1e-3)
    assert detector.calls == [3]                          # line 4 runs on the frame after
    assert results[3].reinitialised
    np.testing.assert_allclose(results[3].box, moved, atol=1e-3)
    assert lstm_count(tracker) == 2                       # reset at frame 3, stepped twice
    assert tracker.counts == {TRACKED: 4, LOST: 1, SEARCHING: 0, "redetections": 1,
                              "detector_calls": 1}


def test_redetect_on_same_frame_reruns_the_step(steps):
    right_box = [BOX[0] + 55, BOX[1], BOX[2] + 55, BOX[3]]   # ratio 55 / 56.6 < T_B
    tracker, detector = make_tracker(steps, {1: [(right_box, 0.9)]}, redetect_on="same")
    # At frame 1 the tracked (left) side is dark, the detected face on the right is bright.
    results = run(tracker, detector, [frame(BRIGHT), frame(DARK, BRIGHT), frame(DARK, BRIGHT)])
    assert detector.calls == [1]
    assert [r.status for r in results] == [TRACKED, TRACKED, TRACKED]
    assert results[1].reinitialised
    np.testing.assert_allclose(results[1].box, right_box, atol=1e-3)
    assert lstm_count(tracker) == 2


def test_redetect_on_same_with_no_detection_is_lost_then_retries(steps):
    tracker, detector = make_tracker(steps, {}, redetect_on="same")
    results = run(tracker, detector, [frame(BRIGHT), frame(DARK), frame(DARK), frame(BRIGHT)])
    assert [r.status for r in results] == [TRACKED, LOST, LOST, TRACKED]
    assert detector.calls == [1, 2]                       # on each rejected frame itself
    np.testing.assert_allclose(results[3].box, BOX, atol=1e-3)   # from the last box (line 8)
    assert lstm_count(tracker) == 1                       # state was reset


def test_detection_beyond_tb_is_ignored_and_face_found_again_near_its_place(steps):
    far = [190.0, 60.0, 230.0, 100.0]            # another face, 150 px away: ratio 2.65
    near = [BOX[0] + 5, BOX[1], BOX[2] + 5, BOX[3]]
    script = {t: [(far, 0.99)] for t in range(2, 6)}
    script[5] = [(far, 0.99), (near, 0.8)]
    tracker, detector = make_tracker(steps, script)
    frames = [frame(BRIGHT)] + [frame(DARK, BRIGHT)] * 4 + [frame(BRIGHT)] * 2
    results = run(tracker, detector, frames)
    assert [r.status for r in results] == [TRACKED] + [LOST] * 4 + [TRACKED] * 2
    assert detector.calls == [2, 3, 4, 5]
    np.testing.assert_allclose(results[5].box, near, atol=1e-3)
    assert results[5].reinitialised and not any(r.reinitialised for r in results[:5])


def test_no_detection_keeps_the_last_box_with_a_reset_state(steps):
    tracker, detector = make_tracker(steps, {})
    results = run(tracker, detector, [frame(BRIGHT)] * 3 + [frame(DARK)] + [frame(BRIGHT)])
    assert [r.status for r in results] == [TRACKED] * 3 + [LOST, TRACKED]
    assert detector.calls == [4]
    np.testing.assert_allclose(results[4].box, BOX, atol=1e-3)     # P_b <- b_t (line 8)
    assert lstm_count(tracker) == 1


def test_seq_t_beyond_seq_bt_resets_the_state(steps):
    tracker, detector = make_tracker(steps, seq_bt=2)
    counts = []
    for t in range(7):
        tracker.track(frame(BRIGHT))
        counts.append(lstm_count(tracker))
    # Lines 11-12 reset when SeqT > SeqBT: SeqBT + 1 steps between resets.
    assert counts == [1, 2, 3, 1, 2, 3, 1]
    assert detector.calls == []


def test_no_previous_box_accepts_the_best_detection(steps):
    weak, strong = [20.0, 20.0, 60.0, 60.0], [150.0, 70.0, 190.0, 110.0]
    tracker, detector = make_tracker(steps, {0: [(weak, 0.7), (strong, 0.95)]}, init_box=None)
    result = tracker.track(frame(BRIGHT))
    assert result.status == TRACKED and detector.calls == [0]
    np.testing.assert_allclose(result.box, strong, atol=1e-3)
    np.testing.assert_allclose(tracker.state.initial[0], strong)   # becomes b_0
    assert not result.reinitialised


def test_searching_until_a_face_appears(steps):
    tracker, detector = make_tracker(steps, {3: [(BOX, 0.9)]}, init_box=None)
    results = run(tracker, detector, [frame(BRIGHT)] * 6)
    assert [r.status for r in results] == [SEARCHING] * 3 + [TRACKED] * 3
    assert all(r.landmarks is None and r.box is None for r in results[:3])
    assert detector.calls == [0, 1, 2, 3]
    assert tracker.counts["redetections"] == 0


def test_box_mapped_from_the_detector(steps):
    from crct_tf.tracking.detection import MtcnnBoxMap
    box_map = MtcnnBoxMap(dx=0.0, dy=0.25, sx=1.0, sy=1.0)
    detector = ScriptedDetector({0: [([40.0, 50.0, 80.0, 90.0], 0.9)]})
    tracker = Tracker(steps, TrackerConfig(), detect=detector, box_map=box_map)
    np.testing.assert_allclose(tracker.track(frame(BRIGHT)).box, [40, 60, 80, 100], atol=1e-3)


def test_bt_mode_moves_by_bt_alone_and_falls_back_to_b0():
    steps = make_steps(shift=16.0)               # 16 crop px = 16 * 80 / 128 = 10 image px
    with pytest.raises(ValueError, match="init"):
        Tracker(steps, TrackerConfig(mode="bt"))
    detector = ScriptedDetector({})
    tracker = Tracker(steps, TrackerConfig(mode="bt", seq_bt=100), detect=detector, init_box=BOX)
    results = run(tracker, detector, [frame(DARK)] * 24)
    assert all(r.status == TRACKED and r.face_score is None for r in results)
    np.testing.assert_allclose(results[0].box, BOX + 10, atol=1e-3)
    np.testing.assert_allclose(results[1].box, BOX + 20, atol=1e-3)
    # The box leaves the 160-px-high frame; with no usable box, b_0 (lines 9-10) and a reset.
    restart = next(t for t, r in enumerate(results) if r.box[1] < results[t - 1].box[1])
    np.testing.assert_allclose(results[restart].box, BOX + 10, atol=1e-3)
    assert detector.calls == []


def test_fll_mt_detects_every_frame(steps):
    script = {0: [(BOX, 0.97)], 2: [(BOX + 4, 0.91)]}
    tracker, detector = make_tracker(steps, script, init_box=None, mode="fll_mt")
    results = run(tracker, detector, [frame(BRIGHT)] * 3)
    assert detector.calls == [0, 1, 2]
    assert [r.status for r in results] == [TRACKED, SEARCHING, TRACKED]
    assert results[0].face_score == pytest.approx(0.97)
    np.testing.assert_allclose(results[2].box, BOX + 4, atol=1e-3)


def test_frames_of_any_size_and_format(steps):
    tracker, detector = make_tracker(steps, {})
    gray = np.full([H, W], BRIGHT, np.uint8)
    rgba = np.dstack([frame(BRIGHT), np.full([H, W], 7, np.uint8)])
    deep = np.full([H + 40, W + 60, 3], BRIGHT * 257, np.uint16)
    for image in (gray, rgba, deep, frame(BRIGHT)):
        result = tracker.track(image)
        assert result.status == TRACKED
        assert result.face_score == pytest.approx(BRIGHT / 255, abs=1e-3)
