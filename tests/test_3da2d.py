"""The 3DA-2D experiment (paper IV-C, Table III): dataset configs, --dataset NAME/CONFIG, the
LS3D-W .mat converter and the side-by-side evaluation, on tiny generated trees."""

import importlib.util
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

import crct_tf.datasets  # noqa: F401  (registers the builders)
from crct_tf.datasets import image_files, vw300
from crct_tf.datasets.manual_dir import DatasetError
from crct_tf.geometry.landmarks import read_pts, write_pts
from crct_tf.training import inputs, tasks

REPO = Path(__file__).resolve().parents[1]
FRAMES = 3
W, H = 32, 24
OFFSET_3D = 500.0    # 3DA-2D labels = 2D labels + this, so each reader is told apart


def points(value, three_d=False):
    k = np.arange(68, dtype=np.float32)
    return np.stack([k * 0.5 + value, k * 0.25 + 2 * value], -1) + (OFFSET_3D if three_d else 0)


# --------------------------------------------------------------------------------------------
# 300-VW: configs 2d (annot/) and 3da2d (annot2/).
# --------------------------------------------------------------------------------------------

def make_vw300(root, videos):
    """videos: {id: has_annot2}. NNN/vid.avi, NNN/annot/*.pts and, if asked, NNN/annot2/*.pts."""
    for video_id, has_annot2 in videos.items():
        folder = os.path.join(root, video_id)
        os.makedirs(os.path.join(folder, "annot"))
        writer = cv2.VideoWriter(os.path.join(folder, "vid.avi"),
                                 cv2.VideoWriter_fourcc(*"MJPG"), 25, (W, H))
        for i in range(FRAMES):
            writer.write(np.full((H, W, 3), 40 * i + 20, np.uint8))
        writer.release()
        for i in range(FRAMES):
            value = int(video_id) + i
            write_pts(os.path.join(folder, "annot", vw300.pts_name(i)), points(value))
            if has_annot2:
                os.makedirs(os.path.join(folder, "annot2"), exist_ok=True)
                write_pts(os.path.join(folder, "annot2", vw300.pts_name(i)),
                          points(value, three_d=True))
    return root


# One video per split with 3DA-2D labels; train also holds 002 without them.
VW300_VIDEOS = {"001": True, "002": False, "114": True, "203": True, "410": True}


@pytest.fixture(scope="module")
def vw300_root(tmp_path_factory):
    return make_vw300(str(tmp_path_factory.mktemp("vw300")), VW300_VIDEOS)


def _load(name, manual_dir, data_dir, split):
    dataset = tfds.load(name, split=split, data_dir=str(data_dir), download_and_prepare_kwargs={
        "download_config": tfds.download.DownloadConfig(manual_dir=str(manual_dir))})
    return list(tfds.as_numpy(dataset))


def test_vw300_each_config_reads_its_own_folder(vw300_root, tmp_path, caplog):
    two_d = _load("vw300", vw300_root, tmp_path, "train")          # default config: 2d
    assert [e["video_id"] for e in two_d] == [b"001"] * FRAMES + [b"002"] * FRAMES
    for example in two_d:
        value = int(example["video_id"]) + int(example["frame_index"])
        np.testing.assert_array_equal(example["landmarks"], points(value))
    with caplog.at_level(logging.WARNING):
        three_d = _load("vw300/3da2d", vw300_root, tmp_path, "train")
    assert [e["video_id"] for e in three_d] == [b"001"] * FRAMES    # 002 has no annot2/
    for example in three_d:
        np.testing.assert_array_equal(example["landmarks"],
                                      points(1 + int(example["frame_index"]), three_d=True))
    assert os.path.join(vw300_root, "002") in caplog.text and "no annot2/ folder" in caplog.text


def test_vw300_3da2d_split_left_empty_is_an_error(tmp_path):
    root = make_vw300(str(tmp_path / "data"), dict(VW300_VIDEOS, **{"410": False}))
    builder = tfds.builder("vw300/3da2d", data_dir=str(tmp_path / "tfds"))
    with pytest.raises(DatasetError, match=r"test_cat3.*no video found.*1 of its videos are "
                                           r"there but have no annot2/"):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=root))


def test_dataset_flag_selects_the_config(vw300_root, monkeypatch):
    spec = inputs.SourceSpec(["vw300/3da2d"], [vw300_root], None, "train")
    dirs, annot_dir = inputs.video_dirs(spec)
    assert annot_dir == "annot2" and dirs == [os.path.join(vw300_root, "001")]
    dirs, annot_dir = inputs.video_dirs(inputs.SourceSpec(["vw300"], [vw300_root], None,
                                                           "train"))
    assert annot_dir == "annot" and len(dirs) == 2
    # BT training reads the config's folder.
    from crct_tf.data import bt_pipeline
    seen = {}
    monkeypatch.setattr(bt_pipeline, "make_bt_video_dataset",
                        lambda video_dirs, *a, **kw: seen.update(kw, dirs=video_dirs))
    task = tasks.BTTask(None, sources=spec)
    task.build_inputs(2, seed=0, seq_len=2)
    assert seen["annot_dir"] == "annot2" and seen["dirs"] == [os.path.join(vw300_root, "001")]
    task.evaluation_inputs(spec)
    assert seen["annot_dir"] == "annot2"
    with pytest.raises(inputs.InputError, match=r"unknown config '3d' of vw300.*2d, 3da2d"):
        inputs.SourceSpec(["vw300/3d"], [vw300_root], None, "train")
    with pytest.raises(inputs.InputError, match="take a config"):
        inputs.SourceSpec(["synthetic/3da2d"], [], None, "train")
    with pytest.raises(inputs.InputError, match="do not mix vw300 configs"):
        inputs.video_dirs(inputs.SourceSpec(["vw300", "vw300/3da2d"], [vw300_root], None,
                                             "train"))


# --------------------------------------------------------------------------------------------
# 300-W and Menpo: config 3da2d reads <stem>_3d.pts; a custom config a parallel folder.
# --------------------------------------------------------------------------------------------

def write_image(folder, stem, value, two_d=True, three_d=True, parallel=None):
    os.makedirs(folder, exist_ok=True)
    assert cv2.imwrite(os.path.join(folder, stem + ".jpg"), np.full((H, W, 3), value, np.uint8))
    if two_d:
        write_pts(os.path.join(folder, stem + ".pts"), points(value))
    if three_d:
        write_pts(os.path.join(folder, stem + "_3d.pts"), points(value, three_d=True))
    if parallel:
        os.makedirs(parallel, exist_ok=True)
        write_pts(os.path.join(parallel, stem + ".pts"), points(value, three_d=True) + 1)


def _by_name(examples):
    return {e["image/filename"].decode(): e["landmarks"] for e in examples}


def test_ibug300w_3da2d_reads_its_own_labels(tmp_path, caplog):
    root = tmp_path / "300W"
    write_image(str(root / "afw"), "a", 10, parallel=str(root / "annot3d" / "afw"))
    write_image(str(root / "helen" / "trainset"), "b", 20, three_d=False)  # no 3DA-2D labels
    write_image(str(root / "ibug"), "c", 30)
    two_d = _load("ibug300w/2d", root, tmp_path / "tfds", "train")
    assert _by_name(two_d).keys() == {"afw/a.jpg", "helen/trainset/b.jpg"}
    np.testing.assert_array_equal(_by_name(two_d)["afw/a.jpg"], points(10))
    with caplog.at_level(logging.WARNING):
        three_d = _load("ibug300w/3da2d", root, tmp_path / "tfds", "train")
    assert list(_by_name(three_d)) == ["afw/a.jpg"]
    np.testing.assert_array_equal(_by_name(three_d)["afw/a.jpg"], points(10, three_d=True))
    assert "trainset has no label files (<stem>_3d.pts beside the images), skipped" in caplog.text
    challenging = _load("ibug300w/3da2d", root, tmp_path / "tfds", "test_challenging")
    np.testing.assert_array_equal(_by_name(challenging)["ibug/c.jpg"], points(30, three_d=True))
    # A parallel folder mirroring the tree, through a custom config.
    config = image_files.ImageLabelsConfig(name="parallel", pts_dir="annot3d")
    builder = tfds.builder("ibug300w", config=config, data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
    assert list(builder.info.splits) == ["train"]
    parallel = _by_name(tfds.as_numpy(builder.as_dataset(split="train")))
    np.testing.assert_array_equal(parallel["afw/a.jpg"], points(10, three_d=True) + 1)


def test_menpo2d_3da2d_and_image_examples_flag(tmp_path):
    root = tmp_path / "menpo"
    write_image(str(root / "trainset"), "m1", 40)
    write_image(str(root / "trainset"), "m2", 50, three_d=False)
    write_image(str(root / "testset"), "t1", 60, three_d=False)   # test split: 2D only
    tfds_dir = tmp_path / "tfds"
    assert set(_by_name(_load("menpo2d", root, tfds_dir, "train"))) == {"trainset/m1.jpg",
                                                                        "trainset/m2.jpg"}
    builder = tfds.builder("menpo2d/3da2d", data_dir=str(tfds_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
    assert list(builder.info.splits) == ["train"]
    # --dataset menpo2d/3da2d through the training inputs.
    spec = inputs.SourceSpec(["menpo2d/3da2d"], [str(root)], str(tfds_dir), "train")
    examples = list(tfds.as_numpy(inputs.image_examples(spec)))
    assert len(examples) == 1
    np.testing.assert_array_equal(examples[0]["landmarks"], points(40, three_d=True))
    with pytest.raises(DatasetError, match=r"no trainset/ folder with label files.*_3d\.pts"):
        tfds.builder("menpo2d/3da2d", data_dir=str(tmp_path / "t2")).download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(root / "testset")))


# --------------------------------------------------------------------------------------------
# tools/convert_ls3dw.py
# --------------------------------------------------------------------------------------------

@pytest.fixture
def scipy_io():
    return pytest.importorskip("scipy.io")


def _converter():
    spec = importlib.util.spec_from_file_location("convert_ls3dw",
                                                  REPO / "tools" / "convert_ls3dw.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _matlab_points(seed):
    """68 1-based (MATLAB) x, y and a z."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(1, 200, 68), rng.uniform(1, 100, 68),
                            rng.uniform(-50, 50, 68)])


def test_converter_orientations_keys_and_layouts(tmp_path, scipy_io):
    convert = _converter()
    src = tmp_path / "LS3D-W" / "Menpo-3D"
    (src / "sub").mkdir(parents=True)
    cases = {  # file: (key, array as stored)
        "a": ("pt3d_68", _matlab_points(1)[:, :2]),      # 68x2
        "b": ("pts_3d", _matlab_points(2)[:, :2].T),     # 2x68
        "c": ("pt2d", _matlab_points(3)),                # 68x3
        "sub/d": ("pt3d_68", _matlab_points(4).T),       # 3x68 (AFLW2000-3D)
    }
    for name, (key, array) in cases.items():
        scipy_io.savemat(str(src / f"{name}.mat"), {key: array, "other": np.zeros(3)})
    assert convert.main([str(src), "--suffix", "_3d"]) == 0
    for name, (key, array) in cases.items():
        xy = array if array.shape[0] == 68 else array.T
        np.testing.assert_allclose(read_pts(src / f"{name}_3d.pts"), xy[:, :2] - 1, atol=1e-3)
        # on disk: 1-based, the .mat's own numbers
        first = (src / f"{name}_3d.pts").read_text().splitlines()[3].split()
        np.testing.assert_allclose([float(v) for v in first], xy[0, :2], atol=1e-3)
    # A parallel folder mirroring the input tree, 0-based input, numeric stems padded.
    scipy_io.savemat(str(src / "7_pts.mat"), {"pts_2d": _matlab_points(5)[:, :2]})
    out = tmp_path / "parallel"
    assert convert.main([str(src), "--out_dir", str(out), "--origin", "0",
                         "--strip_suffix", "_pts", "--pad_digits", "6"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.pts")) == [
        "000007.pts", "a.pts", "b.pts", "c.pts", "sub/d.pts"]
    np.testing.assert_allclose(read_pts(out / "000007.pts"), _matlab_points(5)[:, :2], atol=1e-3)
    # Existing outputs are kept without --overwrite, and nothing is written then.
    before = (out / "a.pts").read_text()
    assert convert.main([str(src), "--out_dir", str(out), "--key", "pt2d"]) == 2
    assert (out / "a.pts").read_text() == before
    assert convert.main([str(src), "--out_dir", str(out), "--overwrite"]) == 0


def test_converter_reads_matlab_v73(tmp_path, scipy_io):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["pt3d_68"] = _matlab_points(6).T              # HDF5 holds MATLAB's transpose
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + b"\0" * 8 + b"\x00\x02IM"
    with open(path, "r+b") as f:
        f.write(header)
    convert = _converter()
    np.testing.assert_allclose(convert.read_landmarks(str(path)), _matlab_points(6)[:, :2] - 1)


def test_converter_bad_shape_exits_2_naming_the_file(tmp_path, scipy_io):
    scipy_io.savemat(str(tmp_path / "good.mat"), {"pt3d_68": _matlab_points(7)})
    scipy_io.savemat(str(tmp_path / "bad.mat"), {"pt3d_68": np.zeros((5, 2))})
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "convert_ls3dw.py"),
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(tmp_path / "bad.mat") in lines[0] and "shape 5x2" in lines[0]
    assert not list(tmp_path.glob("*.pts"))                # checked before writing anything
    convert = _converter()
    scipy_io.savemat(str(tmp_path / "nokey.mat"), {"landmarks": _matlab_points(8)})
    with pytest.raises(convert.ConvertError, match=r"nokey\.mat: none of the variables pt3d_68"):
        convert.read_landmarks(str(tmp_path / "nokey.mat"))


# --------------------------------------------------------------------------------------------
# python -m crct_tf.evaluate with both ground truths.
# --------------------------------------------------------------------------------------------

def _gt_points(video, frame, three_d=False):
    rng = np.random.default_rng(int(video) * 10 + frame)
    base = rng.uniform(50, 150, size=(68, 2))
    # 3DA-2D differs mostly on the contour (points 0-16), as on profile faces.
    return base + ([[9.0, 3.0]] * 17 + [[0.5, 0.0]] * 51 if three_d else 0.0)


def _write_gt(root, videos, frames=4):
    for video in videos:
        for annot_dir, three_d in (("annot", False), ("annot2", True)):
            (root / video / annot_dir).mkdir(parents=True)
            for frame in range(1, frames + 1):
                write_pts(root / video / annot_dir / f"{frame:06d}.pts",
                          _gt_points(video, frame, three_d))
            if video == "410" and not three_d:   # a 2D-only frame: not in the 3DA-2D table
                write_pts(root / video / annot_dir / f"{frames + 1:06d}.pts",
                          _gt_points(video, frames + 1))
    return root


def _evaluate(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "crct_tf.evaluate", *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_evaluate_prints_2d_and_3da2d_tables(tmp_path):
    videos = ["114", "203", "410"]                       # categories 1, 2, 3
    gt = _write_gt(tmp_path / "gt", videos)
    pred = tmp_path / "CRCT_2"                           # what the tracker writes: NNN/annot/
    for video in videos:
        (pred / video / "annot").mkdir(parents=True)
        for frame in range(1, 6 if video == "410" else 5):   # the 2D ground truth's frames
            write_pts(pred / video / "annot" / f"{frame:06d}.pts", _gt_points(video, frame))
    out = tmp_path / "out"
    proc = _evaluate("--pred_dir", pred, "--gt_dir", gt, "--annot_dir", "annot",
                     "--annot_dir", "annot2", "--pred_annot_dir", "annot", "--output_dir", out)
    assert proc.returncode == 0, proc.stderr
    stdout = proc.stdout
    assert stdout.index("== 2D (annot) ==") < stdout.index("== 3DA-2D (annot2) ==")
    assert "category 1 (1)" in stdout and "category 3 (1)" in stdout and "all (3)" in stdout
    two_d_table = stdout[:stdout.index("== 3DA-2D")]
    assert "CRCT_2" in two_d_table and "1.000    0.00" in two_d_table
    results = json.loads((out / "results.json").read_text())
    assert list(results["variants"]) == ["annot", "annot2"]
    assert results["variants"]["annot2"]["title"] == "3DA-2D (annot2)"
    two_d = results["variants"]["annot"]["methods"]["CRCT_2"]
    three_d = results["variants"]["annot2"]["methods"]["CRCT_2"]
    assert set(two_d) == {"cat1", "cat2", "cat3", "all"}
    for group in two_d:
        assert two_d[group]["auc"] == pytest.approx(1.0) and two_d[group]["fr"] == 0.0
        assert 0.0 < three_d[group]["auc"] < 0.95
    assert two_d["all"]["frames"] == 13 and three_d["all"]["frames"] == 12
    assert results["variants"]["annot2"]["mismatches"]["CRCT_2"]["extra_frames"] == 1
    for variant in ("annot", "annot2"):
        assert json.loads((out / variant / "results.json").read_text())["methods"]
        assert (out / variant / "ced_cat1.png").is_file()

    # One variant: the single-variant results.json, as before.
    single = _evaluate("--pred_dir", pred, "--gt_dir", gt, "--annot_dir", "annot2",
                       "--pred_annot_dir", "annot", "--output_dir", tmp_path / "single")
    assert single.returncode == 0, single.stderr
    methods = json.loads((tmp_path / "single" / "results.json").read_text())["methods"]
    assert methods["CRCT_2"]["all"]["auc"] == pytest.approx(three_d["all"]["auc"])


def test_evaluate_variant_errors(tmp_path):
    gt = _write_gt(tmp_path / "gt", ["114"])
    pred = tmp_path / "CRCT_2"
    (pred / "114" / "annot").mkdir(parents=True)
    write_pts(pred / "114" / "annot" / "000001.pts", _gt_points("114", 1))
    out = tmp_path / "out"
    for args, words in (
            (["--annot_dir", "annot", "--annot_dir", "annot2"],
             "no video folder NNN/annot2/ with .pts files (predictions in NNN/annot/: pass "
             "--pred_annot_dir annot)"),
            (["--annot_dir", "annot2", "--annot_dir", "annot2"], "--annot_dir annot2 given twice"),
            (["--annot_dir", "annot", "--annot_dir", "annot2", "--boxes"], "no --errors_txt or "
             "--boxes")):
        proc = _evaluate("--pred_dir", pred, "--gt_dir", gt, "--output_dir", out, *args)
        assert proc.returncode == 2, proc.stdout
        lines = [line for line in proc.stderr.splitlines() if "error:" in line]
        assert len(lines) == 1 and words in lines[0], proc.stderr
    assert not (out / "results.json").exists()


# --------------------------------------------------------------------------------------------
# configs/*_3d.cfg
# --------------------------------------------------------------------------------------------

TABLE_III = {  # config: the Table III row its header promises (AUC / FR % per category)
    "bt_seq2_3d": "0.760 / 0.09 (cat. 1), 0.772 / 0.20 (cat. 2), 0.605 / 9.97 (cat. 3)",
    "bt_seq4_3d": "0.760 / 0.14 (cat. 1), 0.772 / 0.19 (cat. 2), 0.603 / 10.0 (cat. 3)",
    "bt_seq8_3d": "0.758 / 0.34 (cat. 1), 0.773 / 0.20 (cat. 2), 0.603 / 10.2 (cat. 3)",
    "bt_seq16_3d": "0.750 / 1.36 (cat. 1), 0.771 / 0.22 (cat. 2), 0.604 / 10.3 (cat. 3)",
    "bt_seq32_3d": "0.747 / 1.72 (cat. 1), 0.770 / 0.21 (cat. 2), 0.596 / 10.6 (cat. 3)",
    "fll_3d": "0.730 / 4.14 (cat. 1), 0.757 / 0.45 (cat. 2), 0.603 / 11.5 (cat. 3)",
    "fv_3d": None,
}


def _read_cfg(name):
    lines = (REPO / "configs" / f"{name}.cfg").read_text().splitlines()
    header = " ".join(line[1:].strip() for line in lines if line.startswith("#"))
    flags = dict(line.split("=", 1) for line in lines if line.startswith("--"))
    return lines, header, flags


@pytest.mark.parametrize("name", sorted(TABLE_III))
def test_3d_configs_mirror_the_2d_ones(name):
    lines, header, flags = _read_cfg(name)
    _, _, flags_2d = _read_cfg(name[:-len("_3d")])
    assert lines[0].startswith("#") and f"--flagfile=configs/{name}.cfg" in header
    assert "Time:" in header and "Expect" in header
    if TABLE_III[name]:
        assert TABLE_III[name] in " ".join(header.split())
    assert set(flags) == set(flags_2d)                     # same structure as the 2D config
    assert flags["--model_dir"] == f"runs/{name}"
    changed = {k for k in flags if flags[k] != flags_2d[k]}
    assert changed <= {"--model_dir", "--dataset", "--init_from"}
    if flags["--model"] == "bt":
        assert flags["--dataset"] == "vw300/3da2d" and flags["--init_from"] == "runs/fll_3d"
    else:
        assert flags["--dataset"] == "ibug300w/3da2d,menpo2d/3da2d"
    inputs.SourceSpec(flags["--dataset"].split(","), ["/data"], None, "train")  # valid names
