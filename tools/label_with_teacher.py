"""Labels faces with a teacher: dlib's 68-point shape predictor on MTCNN face boxes.

    # the bootstrap set: the 118 facenet_photos -> crct_tf/datasets/bootstrap_labels.json
    python tools/label_with_teacher.py [--out PATH] [--sheet PNG]
    # a video -> DIR/annot/000001.pts ... (300-VW layout, one file per labelled frame)
    python tools/label_with_teacher.py --video PATH --out_dir DIR

Needs the `teacher` extra (`pip install -e .[teacher]`: dlib-bin, face-recognition-models); the
rest of the project never does. The predictor file is located with importlib without importing
`face_recognition_models` (which imports pkg_resources, gone from setuptools >= 81).

Input box. dlib's predictor was trained on the boxes of dlib's own HOG frontal face detector,
which are narrower and lower on the face than MTCNN's. Fed raw MTCNN boxes it fits the points
noticeably worse (mean NME 2.5 % against 1.7 % relative to the fit from dlib's own box, on the
photos both detectors find). So each MTCNN box is first mapped to the box dlib's detector would
give, with a `MtcnnBoxMap` fitted here on every photo where both detectors find the same face
(IoU >= 0.3), then given to the predictor. The map and its pair count are written in the header.

Per photo: the largest MTCNN face. Dropped (and counted in the header): photos with no MTCNN face;
photos where the teacher disagrees with MTCNN's own five keypoints (eye centres, nose tip, mouth
corners) by more than `MAX_KEYPOINT_DISAGREEMENT` of the MTCNN box diagonal on average: dlib's
predictor fails on profiles and strongly tilted heads, and those fits were wrong on inspection
(the median disagreement is 1.4 %); and photos whose teacher points leave the image (a cut-off
chin would be a wrong label).
Finally the project's own `MtcnnBoxMap` (MTCNN box -> landmark box) is fitted on
the train photos' labels and stored under `mtcnn_box_map` with its fit error.
"""

import argparse
import datetime
import glob
import importlib.metadata
import importlib.util
import json
import os
import sys

# TensorFlow's C++ log level, set before it is imported: without an NVIDIA driver its start-up
# error "failed call to cuInit" (after which it runs on the CPU as intended) is noise; with a
# driver its errors stay visible. TF_CPP_MIN_LOG_LEVEL set by the user wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL",
                      "2" if os.path.exists("/proc/driver/nvidia") else "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from absl import logging  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from crct_tf import assets  # noqa: E402
from crct_tf.tracking import detection  # noqa: E402
from crct_tf.geometry import landmarks as lm  # noqa: E402
from crct_tf.datasets import crct_bootstrap  # noqa: E402

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
TEACHER_NAME = "dlib shape_predictor_68_face_landmarks (iBUG 300-W, non-commercial)"
# Upsampling of dlib's HOG detector when fitting the teacher box map: 1 finds faces down to
# about 40 px, the smallest in the photos (dlib's own examples use 1).
HOG_UPSAMPLE = 1
MIN_PAIR_IOU = 0.3  # an MTCNN box and a HOG box with less overlap are not the same face
DECIMALS = 2
# Mean distance between the teacher's eye centres / nose tip / mouth corners and MTCNN's five
# keypoints, over the MTCNN box diagonal, above which the teacher's fit is rejected. On the
# photos, good fits lie below 0.05 and the failures checked by eye above 0.075.
MAX_KEYPOINT_DISAGREEMENT = 0.07


def predictor_path():
    """Path of dlib's 68-point model inside `face_recognition_models`, without importing it."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: the teacher needs face-recognition-models: "
                         "pip install -e .[teacher]")
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", PREDICTOR_FILE)
    if not os.path.isfile(path):
        raise SystemExit(f"error: {path} not found in face-recognition-models")
    return path


def teacher_info(path, box_map, num_pairs):
    import dlib
    return {
        "name": TEACHER_NAME,
        "dlib_version": dlib.__version__,
        "face_recognition_models_version": importlib.metadata.version("face-recognition-models"),
        "predictor_file": PREDICTOR_FILE,
        "predictor_sha256": assets.sha256_of(path),
        "input_box": "largest MTCNN box mapped by teacher_box_map to dlib's HOG detector box",
        "teacher_box_map": box_map.to_dict(),
        "teacher_box_map_pairs": num_pairs,
    }


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def largest_face(detector, rgb):
    """(box [4], score, keypoints [5, 2]) of the largest MTCNN face, or (None, None, None)."""
    boxes, scores, keypoints = detection.detect_faces_with_keypoints(detector, rgb)
    if len(boxes) == 0:
        return None, None, None
    i = detection.largest_box_index(boxes)
    return boxes[i], float(scores[i]), keypoints[i]


def keypoint_disagreement(points, keypoints, box):
    """Mean distance of the teacher's 5 MTCNN-like points to MTCNN's, over the box diagonal."""
    teacher = np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30],
                        points[48], points[54]])
    # Sorted by x within each pair so that "left" means the same on both sides.
    teacher[[0, 1]] = teacher[[0, 1]][np.argsort(teacher[[0, 1], 0])]
    teacher[[3, 4]] = teacher[[3, 4]][np.argsort(teacher[[3, 4], 0])]
    mtcnn = np.array(keypoints, np.float32)
    mtcnn[[0, 1]] = mtcnn[[0, 1]][np.argsort(mtcnn[[0, 1], 0])]
    mtcnn[[3, 4]] = mtcnn[[3, 4]][np.argsort(mtcnn[[3, 4], 0])]
    diagonal = float(np.hypot(box[2] - box[0], box[3] - box[1]))
    return float(np.linalg.norm(teacher - mtcnn, axis=1).mean() / diagonal)


def fit_teacher_box_map(images, mtcnn_boxes):
    """MtcnnBoxMap from MTCNN boxes to dlib HOG detector boxes, on images where both agree."""
    import dlib
    hog = dlib.get_frontal_face_detector()
    pairs_m, pairs_d = [], []
    for rgb, box in zip(images, mtcnn_boxes):
        if box is None:
            continue
        rects = hog(rgb, HOG_UPSAMPLE)
        if not rects:
            continue
        hog_boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects],
                             np.float32)
        iou = detection.box_iou(box[None], hog_boxes)
        if iou.max() >= MIN_PAIR_IOU:
            pairs_m.append(box)
            pairs_d.append(hog_boxes[int(np.argmax(iou))])
    return detection.MtcnnBoxMap.fit(np.array(pairs_m), np.array(pairs_d)), len(pairs_m)


def run_teacher(predictor, rgb, teacher_box):
    """68 landmarks [68, 2] float32 from dlib's predictor on a [4] box (0-based pixels)."""
    import dlib
    rect = dlib.rectangle(*[int(round(float(v))) for v in teacher_box])
    shape = predictor(rgb, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def eye_roll_degrees(keypoints):
    """The roll of a face's eye line, in degrees, from MTCNN's keypoints ([5, 2], left eye first
    in the image; positive when the right-hand eye is lower)."""
    eyes = np.asarray(keypoints, np.float64)[:2]
    eyes = eyes[np.argsort(eyes[:, 0])]
    (x0, y0), (x1, y1) = eyes
    return float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))


def run_teacher_upright(predictor, detector, rgb, keypoints, teacher_map):
    """The teacher's 68 points [68, 2] fitted on the photo turned so that the face is upright.

    dlib's predictor starts from an upright mean shape in its box and fails on heads tilted by
    about 30 degrees or more. Here the photo is turned about the face's keypoints until its eye
    line is level, MTCNN finds the face again (the box nearest the keypoints' centre, which must
    lie inside it), that box is mapped to dlib's as usual, and the fitted points are turned back.
    None when MTCNN does not find the face on the turned photo.
    """
    centre = np.asarray(keypoints, np.float64).mean(0)
    turn = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])),
                                   eye_roll_degrees(keypoints), 1.0)
    upright = cv2.warpAffine(rgb, turn, (rgb.shape[1], rgb.shape[0]), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
    boxes, _, _ = detection.detect_faces_with_keypoints(detector, upright)
    inside = [(b[0] <= centre[0] <= b[2]) and (b[1] <= centre[1] <= b[3]) for b in boxes]
    if not any(inside):
        return None
    distances = np.hypot((boxes[:, 0] + boxes[:, 2]) / 2 - centre[0],
                         (boxes[:, 1] + boxes[:, 3]) / 2 - centre[1])
    box = boxes[int(np.argmin(np.where(inside, distances, np.inf)))]
    points = run_teacher(predictor, upright, teacher_map.apply(box)).astype(np.float64)
    back = cv2.invertAffineTransform(turn)
    return (points @ back[:, :2].T + back[:, 2]).astype(np.float32)


def inside_image(points, rgb):
    h, w = rgb.shape[:2]
    return bool(np.all(points >= 0) and np.all(points[:, 0] <= w - 1)
                and np.all(points[:, 1] <= h - 1))


def label_photos(photos_dir, detector, predictor_file):
    """Labels every photo; returns the label file's dict."""
    import dlib
    paths = sorted(glob.glob(os.path.join(photos_dir, "*", "*", "*.jpg")))
    rels = [os.path.relpath(p, photos_dir).replace(os.sep, "/") for p in paths]
    images = [read_rgb(p) for p in paths]
    faces = [largest_face(detector, rgb) for rgb in images]
    teacher_map, num_pairs = fit_teacher_box_map(images, [f[0] for f in faces])
    logging.info("teacher box map %s from %d photos", teacher_map, num_pairs)
    predictor = dlib.shape_predictor(predictor_file)
    counts = {s: {"photos": 0, "labelled": 0, "no_face": 0, "teacher_disagrees": 0,
                  "teacher_outside_image": 0} for s in crct_bootstrap.SPLITS}
    examples, dropped = [], []
    for rel, rgb, (box, score, keypoints) in zip(rels, images, faces):
        split, person = rel.split("/")[:2]
        counts[split]["photos"] += 1
        if box is None:
            counts[split]["no_face"] += 1
            dropped.append({"path": rel, "reason": "no_face"})
            continue
        points = run_teacher(predictor, rgb, teacher_map.apply(box))
        disagreement = keypoint_disagreement(points, keypoints, box)
        if disagreement > MAX_KEYPOINT_DISAGREEMENT:
            counts[split]["teacher_disagrees"] += 1
            dropped.append({"path": rel, "reason": "teacher_disagrees",
                            "disagreement": round(disagreement, 3)})
            continue
        if not inside_image(points, rgb):
            counts[split]["teacher_outside_image"] += 1
            dropped.append({"path": rel, "reason": "teacher_outside_image"})
            continue
        counts[split]["labelled"] += 1
        examples.append({
            "path": rel, "person": person, "split": split,
            "mtcnn_box": [round(float(v), DECIMALS) for v in box],
            "mtcnn_score": round(score, 4),
            "keypoint_disagreement": round(disagreement, 4),
            "landmarks": np.round(points.astype(np.float64), DECIMALS).tolist(),
        })
    return {
        "format_version": crct_bootstrap.LABELS_FORMAT_VERSION,
        "created": datetime.date.today().isoformat(),
        "photos": {"asset": crct_bootstrap.PHOTOS_ASSET,
                   "package": assets.ASSETS[crct_bootstrap.PHOTOS_ASSET].package},
        "detector": {"name": "mtcnn", "version": importlib.metadata.version("mtcnn"),
                     "face": "largest box"},
        "max_keypoint_disagreement": MAX_KEYPOINT_DISAGREEMENT,
        "teacher": teacher_info(predictor_file, teacher_map, num_pairs),
        "coordinates": "0-based pixels, integer = pixel centre; boxes [x0, y0, x1, y1]",
        "counts": counts,
        "dropped": dropped,
        "examples": examples,
    }


def add_mtcnn_box_map(labels):
    """Fits the project's MTCNN box -> landmark box map on the train labels, stores it."""
    train = crct_bootstrap.split_entries(labels, "train")
    mtcnn = np.array([e["mtcnn_box"] for e in train], np.float32)
    boxes = lm.box_from_landmarks(np.array([e["landmarks"] for e in train], np.float32))
    box_map = detection.MtcnnBoxMap.fit(mtcnn, boxes)
    labels["mtcnn_box_map"] = box_map.to_dict()
    fit = {"split": "train", "pairs": len(train)}
    fit.update({k: round(v, 4) for k, v in detection.box_map_error(box_map, mtcnn, boxes).items()})
    val = crct_bootstrap.split_entries(labels, "val")
    if val:
        val_err = detection.box_map_error(
            box_map, np.array([e["mtcnn_box"] for e in val], np.float32),
            lm.box_from_landmarks(np.array([e["landmarks"] for e in val], np.float32)))
        fit["val"] = {k: round(v, 4) for k, v in val_err.items()}
    labels["mtcnn_box_map_fit"] = fit
    return labels


def write_json(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        # One example per line keeps the committed file small and its diffs readable.
        examples = data.pop("examples")
        text = json.dumps(data, indent=1)
        body = ",\n".join("  " + json.dumps(e, separators=(",", ":")) for e in examples)
        f.write(text[:-2] + ',\n "examples": [\n' + body + "\n ]\n}\n")
        data["examples"] = examples
    json.loads(open(tmp, encoding="utf-8").read())  # refuse to install a file we cannot read
    os.replace(tmp, path)


def label_video(video_path, out_dir, detector, predictor_file, teacher_map, max_frames=None):
    """Writes out_dir/annot/NNNNNN.pts (frame + 1, 300-VW layout) for each frame with a face.

    Returns:
      (frames labelled, frames read).
    """
    import dlib
    predictor = dlib.shape_predictor(predictor_file)
    annot = os.path.join(out_dir, "annot")
    os.makedirs(annot, exist_ok=True)
    capture = cv2.VideoCapture(video_path)
    if not capture.isOpened():
        raise SystemExit(f"error: {video_path}: OpenCV cannot open this video")
    index, written = 0, 0
    while max_frames is None or index < max_frames:
        ok, bgr = capture.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        box = largest_face(detector, rgb)[0]
        if box is not None:
            points = run_teacher(predictor, rgb, teacher_map.apply(box))
            lm.write_pts(os.path.join(annot, f"{index + 1:06d}.pts"), points)
            written += 1
        index += 1
    capture.release()
    logging.info("%s: %d of %d frames labelled into %s", video_path, written, index, annot)
    return written, index


def write_sheet(labels, photos_dir, png, limit=24):
    """A contact sheet of labelled photos with their points, to check the teacher by eye."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    examples = labels["examples"][:: max(1, len(labels["examples"]) // limit)][:limit]
    cols = 6
    rows = (len(examples) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.4 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, entry in zip(np.ravel(axes), examples):
        ax.imshow(read_rgb(os.path.join(photos_dir, entry["path"])))
        pts = np.array(entry["landmarks"])
        ax.scatter(pts[:, 0], pts[:, 1], s=2, c="lime")
        x0, y0, x1, y1 = entry["mtcnn_box"]
        ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], "r-", lw=0.7)
        ax.set_title(entry["path"].split("/")[1], fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=80)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", default=None, help="photo folder (default: facenet_photos)")
    parser.add_argument("--out", default=crct_bootstrap.LABELS_PATH, help="label file to write")
    parser.add_argument("--sheet", default=None, help="also write a contact sheet PNG")
    parser.add_argument("--video", default=None, help="label a video's frames instead")
    parser.add_argument("--out_dir", default=None, help="with --video: writes OUT_DIR/annot/")
    parser.add_argument("--max_frames", type=int, default=None, help="with --video: stop after")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.INFO)
    predictor_file = predictor_path()
    detector = detection.make_detector()
    if args.video:
        if not args.out_dir:
            parser.error("--video needs --out_dir")
        labels = crct_bootstrap.load_labels()
        teacher_map = detection.MtcnnBoxMap.from_dict(labels["teacher"]["teacher_box_map"])
        label_video(args.video, args.out_dir, detector, predictor_file, teacher_map,
                    args.max_frames)
        return 0
    photos_dir = args.photos or assets.path(crct_bootstrap.PHOTOS_ASSET)
    labels = add_mtcnn_box_map(label_photos(photos_dir, detector, predictor_file))
    write_json(args.out, labels)
    logging.info("counts %s", json.dumps(labels["counts"]))
    logging.info("mtcnn_box_map %s fit %s", labels["mtcnn_box_map"], labels["mtcnn_box_map_fit"])
    if args.sheet:
        write_sheet(labels, photos_dir, args.sheet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
