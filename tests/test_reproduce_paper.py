"""tools/reproduce_paper.sh on tiny trees, so that the reproduction recipe cannot rot.

The whole recipe (prepare, train, export, track, evaluate: Tables I and II) runs on a 300-VW tree
of the demo clip's real face and generated 300-W / Menpo trees, with two training steps per run
on the tiny backbone (TRAIN_FLAGS) and the TF runtime (TRACK_FLAGS): minutes, most of them
starting Python and TensorFlow twenty times, so it is marked slow. The default suite runs the
script's argument checks and its evaluate stage on outputs written here (no TensorFlow).
"""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from crct_tf.geometry.landmarks import box_from_landmarks, read_pts

from helpers import REPO, make_300w, make_demo_vw300_tree, make_menpo

SCRIPT = str(REPO / "tools" / "reproduce_paper.sh")
TINY_TRAINING = "--steps=2 --steps_per_stage=1 --batch_size=2 --backbone=tiny " \
                "--strategy=one_device --checkpoint_every=1000"
TEST_VIDEOS = ("114", "203", "410")


def _run(stage, env, timeout):
    return subprocess.run(["bash", SCRIPT, *([stage] if stage else [])], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def _env(tmp_path, **variables):
    env = {k: v for k, v in os.environ.items()
           if k not in ("VW300_DIR", "IBUG300W_DIR", "MENPO_DIR", "TRAIN_FLAGS", "TRACK_FLAGS")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    env.update(WORK_DIR=str(tmp_path / "work"), SEQ_LENGTHS="2", **variables)
    return env


@pytest.fixture
def trees(tmp_path, demo_clip):
    return {"VW300_DIR": make_demo_vw300_tree(str(tmp_path / "300VW"), demo_clip),
            "IBUG300W_DIR": make_300w(str(tmp_path / "300W")),
            "MENPO_DIR": make_menpo(str(tmp_path / "menpo"))}


def test_missing_datasets_or_an_unknown_stage_exit_2(tmp_path, trees):
    proc = _run(None, _env(tmp_path), 60)
    assert proc.returncode == 2
    assert "set VW300_DIR IBUG300W_DIR MENPO_DIR" in proc.stderr
    proc = _run(None, _env(tmp_path, **{**trees, "MENPO_DIR": str(tmp_path / "nope")}), 60)
    assert proc.returncode == 2 and "MENPO_DIR" in proc.stderr and "not a folder" in proc.stderr
    proc = _run("table4", _env(tmp_path, **trees), 60)
    assert proc.returncode == 2 and "unknown stage 'table4'" in proc.stderr


def _write_predictions(vw300_dir, preds):
    """Tracker outputs as the track stage writes them: BT_2's boxes (S.csv), CRCT_2's landmarks
    (S/annot/*.pts, frame 3 missing), and FLL_MT, which tracked no frame (S.csv only)."""
    header = ["frame", "time_s", "status", "face_score", "x0", "y0", "x1", "y1"]
    header += [f"{a}{i}" for i in range(68) for a in ("lx", "ly")]
    for video in TEST_VIDEOS:
        labels = sorted((vw300_dir / video / "annot").glob("*.pts"))
        rows = [",".join(header)]
        for frame, label in enumerate(labels):
            box = box_from_landmarks(read_pts(str(label)))
            rows.append(",".join([str(frame), "0.04", "tracked", ""] + [f"{v:.2f}" for v in box]
                                 + [""] * 136))
        for name in ("BT_2", "FLL_MT"):
            os.makedirs(preds / name, exist_ok=True)
            (preds / name / f"{video}.csv").write_text("\n".join(rows) + "\n")
        annot = preds / "CRCT_2" / video / "annot"
        annot.mkdir(parents=True)
        for label in labels:
            if label.name != "000003.pts":
                shutil.copy(label, annot / label.name)


def test_the_evaluate_stage_scores_the_trackers_outputs(tmp_path, trees):
    from pathlib import Path
    work = tmp_path / "work"
    _write_predictions(Path(trees["VW300_DIR"]), work / "preds")
    proc = _run("evaluate", _env(tmp_path, **trees), 240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FLL_MT tracked no frame" in proc.stderr
    table1 = json.loads((work / "results" / "table1" / "results.json").read_text())
    bt = table1["methods"]["BT_2"]["all"]
    assert bt["frames"] == 24 and bt["missing"] == 0 and bt["iou_mean"] > 0.99
    table2 = json.loads((work / "results" / "table2" / "results.json").read_text())
    crct = table2["methods"]["CRCT_2"]
    assert set(crct) == {"all", "cat1", "cat2", "cat3"}
    assert crct["all"]["frames"] == 3 * 8 and crct["all"]["missing"] == 3
    assert crct["all"]["fr"] == pytest.approx(100 * 3 / 24)
    assert [m for m in table2["methods"] if m != "CRCT_2"] and "FLL_MT" not in table2["methods"]


@pytest.mark.slow
def test_the_whole_recipe_runs_on_tiny_trees(tmp_path, trees):
    env = _env(tmp_path, **trees, TRAIN_FLAGS=TINY_TRAINING, TRACK_FLAGS="--runtime tf")
    proc = _run("all", env, 1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    work = tmp_path / "work"
    for run in ("fll", "fv", "bt_seq2"):
        assert json.loads((work / "runs" / run / "run.json").read_text())["backbone"] == "tiny"
    assert (work / "bundles" / "crct_2" / "manifest.json").is_file()
    for tracker in ("BT_2", "CRCT_2", "FLL_MT"):
        for video in TEST_VIDEOS:
            summary = json.loads((work / "preds" / tracker / f"{video}.json").read_text())
            assert summary["frames"] == 8
    # BT alone never loses the face (no validator); MTCNN finds the real face on every frame.
    table1 = json.loads((work / "results" / "table1" / "results.json").read_text())
    assert table1["methods"]["BT_2"]["all"]["frames"] == 24
    table2 = json.loads((work / "results" / "table2" / "results.json").read_text())
    assert table2["methods"]["FLL_MT"]["all"]["missing"] == 0
    assert np.isfinite(table2["methods"]["FLL_MT"]["all"]["auc"])
