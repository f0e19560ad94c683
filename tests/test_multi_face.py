"""Several faces (max_faces > 1): association, ids, tracks ending and starting, one batched step.

Stand-in networks of helpers.py: a track stays on its box, and FV's p(face) is the frame's
brightness around it; frames are bright or dark left and right of x = 90, so each of two faces
(one on each side) can be lost on its own. The detector is scripted per frame index.
"""

import numpy as np
import pytest

from helpers import BOX, BRIGHT, DARK, frame, make_steps

from crct_tf.tracking import LOST, SEARCHING, TRACKED, Tracker, TrackerConfig
from crct_tf.tracking.tracker import assign_detections

RIGHT = np.array([150.0, 60.0, 190.0, 100.0], np.float32)     # a second face, right of x = 90


@pytest.fixture(scope="module")
def steps():
    return make_steps()


class ScriptedDetector:
    def __init__(self, script, default=()):
        self.script, self.default, self.t, self.calls = script, default, 0, []

    def __call__(self, rgb):
        self.calls.append(self.t)
        found = self.script.get(self.t, self.default)
        boxes = np.array([b for b, _ in found], np.float32).reshape(-1, 4)
        return boxes, np.array([s for _, s in found], np.float32)


class CountingSteps:
    """Wraps the steps: records the number of faces of each `step` call."""

    def __init__(self, steps):
        self.steps, self.state_shape, self.faces = steps, steps.state_shape, []

    def step(self, frame, previous, boxes, state, fll_shift):
        self.faces.append(len(boxes))
        return self.steps.step(frame, previous, boxes, state, fll_shift)

    def bt_step(self, *args):
        return self.steps.bt_step(*args)

    def fll_step(self, *args):
        return self.steps.fll_step(*args)


def run(tracker, detector, frames):
    results = []
    for t, image in enumerate(frames):
        detector.t = t
        results.append(tracker.track(image))
    return results


def ids(result, status=None):
    return [f.face_id for f in result.faces if status is None or f.status == status]


def make(steps, script, default=(), **config):
    detector = ScriptedDetector(script, default)
    config.setdefault("max_faces", 2)
    return Tracker(steps, TrackerConfig(**config), detect=detector), detector


BOTH = [(BOX, 0.95), (RIGHT, 0.9)]


# -- the assignment -------------------------------------------------------------------------------

def test_assignment_gives_each_detection_to_at_most_one_track():
    tracks = np.array([[0, 0, 10, 10], [10, 0, 20, 10]], np.float32)
    one = np.array([[8, 0, 18, 10]], np.float32)          # nearer the second track
    assert assign_detections(tracks, one, 1.0) == {1: 0}
    # Greedy (cheapest pair first) would give detection 0 to track 1 and leave track 0 without
    # one (detection 1 is beyond T_B from it); the global assignment matches both.
    two = np.array([[6, 0, 16, 10], [16, 0, 26, 10]], np.float32)
    assert assign_detections(tracks, two, 1.0) == {0: 0, 1: 1}
    far = np.array([[100, 100, 110, 110]], np.float32)
    assert assign_detections(tracks, far, 1.0) == {}
    assert assign_detections(tracks, far[:0], 1.0) == {}
    assert assign_detections(tracks[:0], two, 1.0) == {}


def test_assignment_with_one_track_is_eq8():
    from crct_tf.tracking import select_detection
    rng = np.random.default_rng(3)
    for _ in range(50):
        track = rng.uniform(0, 50, 2)
        track = np.r_[track, track + rng.uniform(5, 30, 2)]
        boxes = rng.uniform(0, 60, (4, 2))
        boxes = np.c_[boxes, boxes + 20]
        pairs = assign_detections(track[None], boxes, 1.0)
        expected = select_detection(track, boxes, np.ones(4), 1.0)
        assert pairs.get(0) == expected


# -- tracks and ids -------------------------------------------------------------------------------

def test_two_faces_one_batched_step_per_frame(steps):
    counting = CountingSteps(steps)
    detector = ScriptedDetector({0: BOTH})
    tracker = Tracker(counting, TrackerConfig(max_faces=2), detect=detector)
    results = run(tracker, detector, [frame(BRIGHT)] * 4)
    assert counting.faces == [2, 2, 2, 2]                      # one step, both faces
    assert [ids(r, TRACKED) for r in results] == [[0, 1]] * 4
    np.testing.assert_allclose(results[0].faces[0].box, BOX, atol=1e-3)   # most confident: 0
    np.testing.assert_allclose(results[0].faces[1].box, RIGHT, atol=1e-3)
    assert results[0].status == TRACKED and results[0].faces[0].face_id == 0
    assert detector.calls == [0]            # both slots full: no search for more faces
    assert tracker.counts[TRACKED] == 8 and tracker.faces_seen == 2


def test_lost_face_keeps_its_id_and_the_tracked_one_keeps_its_box(steps):
    moved = RIGHT + np.array([6, 0, 6, 0], np.float32)
    near_left = BOX + np.array([3, 0, 3, 0], np.float32)
    tracker, detector = make(steps, {0: BOTH, 3: [(near_left, 0.99), (moved, 0.9)]})
    frames = [frame(BRIGHT)] * 2 + [frame(BRIGHT, DARK)] + [frame(BRIGHT)] * 2
    results = run(tracker, detector, frames)
    assert [[(f.face_id, f.status) for f in r.faces] for r in results] == [
        [(0, TRACKED), (1, TRACKED)]] * 2 + [[(0, TRACKED), (1, LOST)]] + [
        [(0, TRACKED), (1, TRACKED)]] * 2
    assert detector.calls == [0, 3]                      # the frame after the loss
    face0, face1 = results[3].faces
    assert face1.reinitialised and not face0.reinitialised
    np.testing.assert_allclose(face1.box, moved, atol=1e-3)      # re-initialised from eq. 8
    np.testing.assert_allclose(face0.box, BOX, atol=1e-3)        # kept its own box
    assert tracker.faces_seen == 2                               # no third track


def test_a_face_leaves_and_a_new_one_gets_a_new_id(steps):
    third = np.array([120.0, 20.0, 160.0, 60.0], np.float32)
    script = {0: BOTH, 10: [(BOX, 0.95), (third, 0.9)]}
    tracker, detector = make(steps, script, default=[(BOX, 0.95)], max_lost=3,
                             detect_every=3)
    frames = [frame(BRIGHT)] * 2 + [frame(BRIGHT, DARK)] * 5 + [frame(BRIGHT)] * 6
    results = run(tracker, detector, frames)
    statuses = [[(f.face_id, f.status) for f in r.faces] for r in results]
    assert statuses[2:5] == [[(0, TRACKED), (1, LOST)]] * 3       # lost for M = 3 frames
    assert statuses[5:10] == [[(0, TRACKED)]] * 5                 # then it ends
    assert statuses[10:] == [[(0, TRACKED), (2, TRACKED)]] * 3    # a new face, a new id
    np.testing.assert_allclose(results[10].faces[1].box, third, atol=1e-3)
    # Detector: frame 0, each frame after a loss (3, 4), then every k = 3 frames with a slot free.
    assert detector.calls == [0, 3, 4, 7, 10]
    assert not any(f.face_id == 1 for r in results[5:] for f in r.faces)


def test_detection_overlapping_a_live_track_starts_no_track(steps):
    overlapping = BOX + np.array([12, 0, 12, 0], np.float32)    # IoU 0.54 with BOX
    script = {0: [(BOX, 0.95)], 2: [(BOX, 0.95), (overlapping, 0.9)]}
    tracker, detector = make(steps, script, max_faces=3, detect_every=2)
    results = run(tracker, detector, [frame(BRIGHT)] * 4)
    assert [ids(r) for r in results] == [[0]] * 4
    assert detector.calls == [0, 2]
    # Without the overlap rule the same detection would have started a second face.
    tracker, detector = make(steps, script, max_faces=3, detect_every=2, iou_threshold=0.9)
    results = run(tracker, detector, [frame(BRIGHT)] * 4)
    assert ids(results[3]) == [0, 1]


def test_a_detection_fv_rejects_spends_no_id(steps):
    script = {0: [(BOX, 0.95), (RIGHT, 0.9)], 2: [(BOX, 0.95), (RIGHT, 0.9)]}
    tracker, detector = make(steps, script, detect_every=2)
    frames = [frame(BRIGHT, DARK)] * 2 + [frame(BRIGHT)] * 2
    results = run(tracker, detector, frames)
    assert [ids(r) for r in results] == [[0], [0], [0, 1], [0, 1]]
    assert all(f.status == TRACKED for r in results for f in r.faces)


def test_two_tracks_on_one_face_become_one(steps):
    near = BOX + np.array([2, 0, 2, 0], np.float32)              # IoU 0.9 with BOX
    tracker, detector = make(steps, {0: [(BOX, 0.95), (near, 0.9)]}, iou_threshold=1.0)
    results = run(tracker, detector, [frame(BRIGHT)] * 3)
    assert [ids(r) for r in results] == [[0]] * 3


def test_searching_until_faces_appear_then_empty_frames_are_searching(steps):
    tracker, detector = make(steps, {2: BOTH})
    results = run(tracker, detector, [frame(BRIGHT)] * 4)
    assert [r.status for r in results] == [SEARCHING, SEARCHING, TRACKED, TRACKED]
    assert results[0].faces == [] and detector.calls[:3] == [0, 1, 2]


def test_fll_mt_with_two_faces(steps):
    script = {0: BOTH, 1: [(BOX, 0.9)], 2: BOTH}
    tracker, detector = make(steps, script, mode="fll_mt")
    results = run(tracker, detector, [frame(BRIGHT)] * 3)
    assert [[(f.face_id, f.status) for f in r.faces] for r in results] == [
        [(0, TRACKED), (1, TRACKED)], [(0, TRACKED), (1, SEARCHING)],
        [(0, TRACKED), (1, TRACKED)]]
    assert results[0].faces[1].face_score == pytest.approx(0.9)
    assert detector.calls == [0, 1, 2]


def test_bad_options():
    for bad in ({"max_faces": 0}, {"detect_every": 0}, {"max_lost": 0}, {"iou_threshold": 0},
                {"mode": "bt", "max_faces": 2}, {"max_faces": 1.5}):
        with pytest.raises(ValueError):
            TrackerConfig(**bad)
    assert TrackerConfig().lost_limit is None                 # one face: the paper's tracker
    assert TrackerConfig(max_faces=2).lost_limit == 15
    assert TrackerConfig(max_faces=1, max_lost=4).lost_limit == 4


def test_one_face_with_max_lost_ends_and_restarts_with_a_new_id(steps):
    tracker, detector = make(steps, {0: [(BOX, 0.9)], 4: [(RIGHT, 0.9)]}, max_faces=1,
                             max_lost=2)
    frames = [frame(BRIGHT)] + [frame(DARK)] * 2 + [frame(DARK)] + [frame(BRIGHT)] * 2
    results = run(tracker, detector, frames)
    assert [(r.status, ids(r)) for r in results] == [
        (TRACKED, [0]), (LOST, [0]), (LOST, [0]), (SEARCHING, []), (TRACKED, [1]),
        (TRACKED, [1])]


# -- the Python API and the command ---------------------------------------------------------------

def test_python_api_with_two_faces(steps, monkeypatch):
    import crct_tf
    from helpers import STAND_IN_CONSTANTS
    from crct_tf.tracking import runtime
    monkeypatch.setattr(runtime, "load_runtime", lambda **kwargs: runtime.Runtime(
        steps, STAND_IN_CONSTANTS, "stand-ins", "tf"))
    detector = ScriptedDetector({2: BOTH})
    tracker = crct_tf.load_tracker(max_faces=2, smooth=True, detect=detector)
    assert tracker.tracker.config.smoothing is not None
    frames = [frame(BRIGHT)] * 4 + [frame(BRIGHT, DARK)]
    faces = []
    for t, image in enumerate(frames):
        detector.t = t
        faces.append(tracker.track(image, t / 30.0))
    assert faces[0] == [] and faces[1] == []                     # searching
    assert [f.face_id for f in faces[2]] == [0, 1]
    for face in faces[3]:
        assert face.status == "tracked" and face.landmarks.shape == (68, 2)
        assert len(face.pose) == 3 and all(isinstance(a, float) for a in face.pose)
    assert [(f.face_id, f.status, f.pose) for f in faces[4]][1] == (1, "lost", None)
    with pytest.raises(ValueError):
        crct_tf.load_tracker(smooth="yes")


def two_face_detector(on_call=None):
    def detect(rgb):
        return np.array([BOX, RIGHT]), np.array([0.95, 0.9], np.float32)
    return detect


def test_command_with_two_faces(stand_ins, tmp_path):
    import csv
    import json
    import cv2
    from crct_tf import track
    stand_ins.setattr(track, "make_detector", two_face_detector)
    folder = tmp_path / "two"
    folder.mkdir()
    values = [(BRIGHT, BRIGHT)] * 3 + [(BRIGHT, DARK)] + [(BRIGHT, BRIGHT)] * 2
    for t, (left, right) in enumerate(values):
        cv2.imwrite(str(folder / f"{t}.png"), frame(left, right)[:, :, ::-1])
    out = tmp_path / "out"
    assert track.main(["--input", str(folder), "--output_dir", str(out), "--max_faces", "3",
                       "--save_pts", "--smooth"]) == 0
    with open(out / "two.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    table = [(int(r["frame"]), r["face_id"], r["status"]) for r in rows]
    assert table == [(t, i, "tracked") for t in range(3) for i in "01"] + [
        (3, "0", "tracked"), (3, "1", "lost")] + [(t, i, "tracked") for t in (4, 5) for i in "01"]
    assert all(r["yaw"] != "" for r in rows if r["status"] == "tracked")
    summary = json.loads((out / "two.json").read_text())
    assert summary["max_faces"] == 3 and summary["smooth"]["min_cutoff"] > 0
    assert summary["faces"] == [
        {"face_id": 0, "first_frame": 0, "last_frame": 5, "frames_tracked": 6, "frames_lost": 0},
        {"face_id": 1, "first_frame": 0, "last_frame": 5, "frames_tracked": 5, "frames_lost": 1}]
    assert sorted(p.name for p in (out / "two").iterdir()) == ["face_0", "face_1"]
    assert len(list((out / "two" / "face_1" / "annot").iterdir())) == 5
    video = cv2.VideoCapture(str(out / "two.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == len(values)


@pytest.mark.parametrize("flags, message", [
    (["--max_faces", "0"], "--max_faces"), (["--detect_every", "0"], "--detect_every"),
    (["--max_lost", "-1"], "--max_lost"), (["--iou_threshold", "1.5"], "--iou_threshold"),
    (["--smooth", "--smooth_min_cutoff", "0"], "--smooth"),
    (["--recheck_fll", "maybe"], "--recheck_fll"),
    (["--mode", "bt", "--init_box", "1,1,9,9", "--max_faces", "2"], "--max_faces 1")])
def test_bad_multi_face_flags_exit_2_with_one_line(flags, message, stand_ins, tmp_path, capsys):
    from crct_tf import track
    assert track.main(["--input", str(tmp_path), "--output_dir", str(tmp_path / "o")]
                      + flags) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("track: error: ") and message in err


class SecondLookSteps:
    """BT's points fail FV (p 0.1) and FLL's pass it (0.9): a face BT loses half hidden."""

    state_shape = (4, 8)

    def step(self, frame, previous, boxes, state, fll_shift):
        n = len(boxes)
        points = np.tile(np.stack(np.meshgrid(np.linspace(0, 1, 9), np.linspace(0, 1, 8)), -1)
                         .reshape(-1, 2)[:68][None], [n, 1, 1]).astype(np.float32)
        points = boxes[:, None, :2] + points * (boxes[:, None, 2:] - boxes[:, None, :2])
        return {"bt_landmarks": points, "bt_box": boxes, "p_face": np.full([n], 0.1, np.float32),
                "landmarks": points, "box": np.asarray(boxes, np.float32),
                "state": np.asarray(state) + 1}

    def fv_step(self, frame, landmarks, boxes):
        return {"p_face": np.full([len(boxes)], 0.9, np.float32)}


@pytest.mark.parametrize("config, status", [({"max_faces": 2}, TRACKED),
                                            ({"max_faces": 1}, LOST),
                                            ({"max_faces": 2, "recheck_fll": False}, LOST),
                                            ({"max_faces": 1, "recheck_fll": True}, TRACKED)])
def test_fv_looks_again_at_fll_points_with_several_faces(config, status):
    tracker = Tracker(SecondLookSteps(), TrackerConfig(**config), detect=ScriptedDetector({}),
                      init_box=BOX)
    result = tracker.track(frame(BRIGHT))
    assert result.status == status
    assert result.face_score == pytest.approx(0.9 if status == TRACKED else 0.1)


@pytest.mark.parametrize("constants, override, status", [
    ({"t_c": 0.5, "recheck_fll": True}, None, TRACKED),      # the weights chose the second look
    ({"t_c": 0.5, "recheck_fll": True}, False, LOST),        # the user's choice wins
    ({"t_c": 0.5}, None, LOST)])                            # not chosen: Algorithm 1
def test_weights_can_choose_fvs_second_look_for_one_face(constants, override, status):
    config = TrackerConfig.from_constants(constants, recheck_fll=override)
    tracker = Tracker(SecondLookSteps(), config, detect=ScriptedDetector({}), init_box=BOX)
    assert tracker.track(frame(BRIGHT)).status == status


@pytest.mark.parametrize("flags, chosen", [([], None), (["--recheck_fll", "on"], True),
                                           (["--recheck_fll", "off"], False)])
def test_the_recheck_flag_reaches_the_trackers_options(flags, chosen, tmp_path):
    """Not given, the weights decide (None); given, it overrides them."""
    from crct_tf import track
    args = track.parse_args(["--input", str(tmp_path)] + flags)
    assert track.tracker_options(args)["recheck_fll"] is chosen


def test_redetect_on_same_with_two_faces(steps):
    """FV rejects the right face at frame 2: MTCNN runs on that frame, eq. 8 gives the right
    face its detection and the step runs again for it alone; the left face is untouched."""
    moved = RIGHT + np.array([30, 0, 30, 0], np.float32)          # ratio 0.53 < T_B
    script = {0: BOTH, 2: [(BOX, 0.95), (moved, 0.9)]}
    counting = CountingSteps(steps)
    detector = ScriptedDetector(script)
    tracker = Tracker(counting, TrackerConfig(max_faces=2, redetect_on="same",
                                              recheck_fll=False), detect=detector)
    # Frame 2: the right side is dark around the old box, bright around the detection.
    third = frame(BRIGHT, DARK)
    third[:, 185:] = BRIGHT
    results = run(tracker, detector, [frame(BRIGHT)] * 2 + [third] + [frame(BRIGHT)])
    assert detector.calls == [0, 2]
    assert counting.faces == [2, 2, 2, 1, 2]              # the re-run steps the right face only
    assert [[(f.face_id, f.status) for f in r.faces] for r in results] == [
        [(0, TRACKED), (1, TRACKED)]] * 4
    assert results[2].faces[1].reinitialised and not results[2].faces[0].reinitialised
    np.testing.assert_allclose(results[2].faces[1].box, moved, atol=1e-3)
