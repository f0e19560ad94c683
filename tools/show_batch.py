"""Draws a pipeline's examples with their landmarks, to see that the training data is right.

    python tools/show_batch.py fll --out docs/images/fll_batch.png
    python tools/show_batch.py fv --source synthetic --out /tmp/fv.png
    python tools/show_batch.py bt --split val --seq_len 6 --out /tmp/bt.png

PIPELINE is fll (crops + points), fv (patch mosaics with their label and kind) or bt (one row of
region frames per sequence). `--source bootstrap` reads the bundled photos and labels (no TFDS
preparation); `--source synthetic` draws generated faces.
"""

import argparse
import os
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from crct_tf.geometry.crop_settings import CropSettings  # noqa: E402
from crct_tf.data import bt_pipeline, common, fll_pipeline, fv_pipeline, synthetic  # noqa: E402

KIND_NAMES = {fv_pipeline.KIND_TRUE: "true", fv_pipeline.KIND_SMALL_SHIFT: "small shift",
              fv_pipeline.KIND_SHIFT: "shift", fv_pipeline.KIND_RANDOM_POSITION: "random place",
              fv_pipeline.KIND_FLAT: "flat"}


def make_source(name, split):
    if name == "synthetic":
        return synthetic.synthetic_faces(64, seed=0 if split == "train" else 1)
    from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples
    return common.dataset_from_examples(load_bootstrap_examples(split))


def _points(ax, points, colour="lime", size=3):
    ax.scatter(points[:, 0], points[:, 1], s=size, c=colour, linewidths=0)


def show_fll(source, settings, args):
    dataset = fll_pipeline.make_fll_dataset(source, settings, args.count, seed=args.seed,
                                            augment=not args.no_augment)
    crops, points = next(iter(dataset))
    cols = min(args.count, 6)
    rows = (args.count + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, crop, pts in zip(axes.ravel(), crops.numpy(), points.numpy()):
        ax.imshow(crop.astype(np.uint8))
        _points(ax, pts, size=2)
    return fig


def _mosaic(patches, cols=12):
    """68 patches [68, P, P, 3] as one image, `cols` patches a row, 1-pixel gaps."""
    count, size = patches.shape[0], patches.shape[1]
    rows = (count + cols - 1) // cols
    out = np.full((rows * (size + 1), cols * (size + 1), 3), 255, np.uint8)
    for k, patch in enumerate(patches):
        r, c = divmod(k, cols)
        out[r * (size + 1):r * (size + 1) + size, c * (size + 1):c * (size + 1) + size] = patch
    return out


def show_fv(source, settings, args):
    stream = common.seeded_stream(source, args.seed, fv_pipeline.SALT, repeat=True)
    fig, axes = plt.subplots(2, args.count, figsize=(2.0 * args.count, 4.2), squeeze=False)
    for k, (index, seed, example) in enumerate(stream.take(args.count)):
        out = fv_pipeline.fv_example(example, seed, fv_pipeline._label(index, 0.5), settings,
                                     not args.no_augment)
        label, kind = int(out["label"]), int(out["kind"])
        colour = "lime" if label else "red"
        axes[0, k].imshow(out["image"].numpy())
        _points(axes[0, k], out["true_landmarks"].numpy(), "white", 1)
        _points(axes[0, k], out["landmarks"].numpy(), colour, 2)
        axes[0, k].set_title(f"{'face' if label else 'not face'}\n{KIND_NAMES[kind]}",
                             fontsize=8, color="green" if label else "red")
        axes[1, k].imshow(_mosaic(np.clip(out["patches"].numpy(), 0, 255).astype(np.uint8)))
        for ax in axes[:, k]:
            ax.axis("off")
    return fig


def show_bt(source, settings, args):
    dataset = bt_pipeline.make_bt_dataset(source, settings, args.count, args.seq_len,
                                          seed=args.seed, augment=not args.no_augment)
    batch = next(iter(dataset))
    frames, points = batch["frames"].numpy(), batch["landmarks"].numpy()
    fig, axes = plt.subplots(args.count, args.seq_len,
                             figsize=(1.5 * args.seq_len, 1.5 * args.count), squeeze=False)
    for i in range(args.count):
        for t in range(args.seq_len):
            axes[i, t].imshow(frames[i, t])
            _points(axes[i, t], points[i, t], size=1)
            axes[i, t].axis("off")
            if i == 0:
                axes[i, t].set_title(f"t={t}", fontsize=8)
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pipeline", choices=("fll", "fv", "bt"))
    parser.add_argument("--split", default="train", choices=("train", "val"))
    parser.add_argument("--source", default="bootstrap", choices=("bootstrap", "synthetic"))
    parser.add_argument("--out", default=None, help="PNG to write (default PIPELINE_batch.png)")
    parser.add_argument("--count", type=int, default=None, help="examples (or sequences)")
    parser.add_argument("--seq_len", type=int, default=6, help="bt: frames per sequence")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no_augment", action="store_true")
    parser.add_argument("--dpi", type=int, default=80)
    args = parser.parse_args(argv)
    args.count = args.count or {"fll": 12, "fv": 6, "bt": 3}[args.pipeline]
    tf.config.set_visible_devices([], "GPU")
    settings = CropSettings()
    source = make_source(args.source, args.split)
    fig = {"fll": show_fll, "fv": show_fv, "bt": show_bt}[args.pipeline](source, settings, args)
    fig.tight_layout()
    out = args.out or f"{args.pipeline}_batch.png"
    fig.savefig(out, dpi=args.dpi)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
