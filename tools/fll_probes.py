r"""Two probes of where FLL's precision is short; neither changes the tracker.

    python tools/fll_probes.py head [--features block8|block17] [--examples 3008] [--weights DIR]
    python tools/fll_probes.py views [--weights DIR]

`head`: is there more in the backbone's maps than FLL's head reads from their average? Draws
`--examples` training crops with the bundled FLL's recipe (`RECIPE`), takes the map before the
average pooling (`block8`, 3x3x1792 on a 160-px crop) or the end of the Block17 stage
(`block17`, 8x8x896), and fits, by ridge regression in its dual form, a linear map from the
flattened map to what FLL's points miss on those crops. The probe's localiser is FLL plus that
correction, at several ridge strengths.

`views`: does FLL gain from more looks at its crop than `fll_flip`'s mirror? The probe's
localiser averages FLL over the crop and versions of it zoomed or shifted by a few pixels (each
mirrored too when the weights use `fll_flip`).

Each localiser is scored as `tools/fll_jittered_crops.py` scores the bundled one (bootstrap `val`
and `human_300w`, 4 jittered boxes a photo; median / mean / p90 NME by box diagonal), first row
the weights as they are. docs/robustness.md has the figures.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# The bundled FLL's training recipe (configs/faces138_fll160.cfg and the configs it includes).
RECIPE = {"hard_conditions": True, "fll_box_jitter": (0.025, 0.05), "fll_fringe": 0.25,
          "fll_upright": 0.5}
DATASETS = ["crct_bootstrap", "crct_registry_faces"]
FEATURE_LAYERS = {"block8": "AvgPool", "block17": "Block17_10_Activation"}
RIDGE_STRENGTHS = (0.3, 1.0, 3.0, 10.0)   # x the mean of the Gram matrix's diagonal
VIEWS = {   # (zoom, x shift, y shift in crop pixels) averaged with the crop itself
    "zoom 0.94 and 1.06": [(1.06, 0, 0), (0.94, 0, 0)],
    "zoom 0.97 and 1.03": [(1.03, 0, 0), (0.97, 0, 0)],
    "shift 4 px diagonally": [(1.0, 4, 4), (1.0, -4, -4)],
    "shift 4 px, four ways": [(1.0, 4, 0), (1.0, -4, 0), (1.0, 0, 4), (1.0, 0, -4)],
}


def feature_maps_model(fll, feature):
    """crops -> the backbone's map `feature` (see FEATURE_LAYERS) inside the FLL model."""
    import keras
    backbone = fll.get_layer("backbone")
    layer = backbone.get_layer(FEATURE_LAYERS[feature])
    return keras.Model(backbone.inputs, layer.input if feature == "block8" else layer.output)


def training_residuals(fll, maps, settings, examples, seed=1234, batch_size=32):
    """(flattened maps [N, D], what FLL's points miss [N, 136]) on `examples` training crops."""
    import numpy as np

    from crct_tf.training.inputs import SourceSpec
    from crct_tf.training.tasks import FLLTask
    task = FLLTask(settings, sources=SourceSpec(DATASETS, [], None, "train"), **RECIPE)
    features, misses = [], []
    for count, (crops, truth) in enumerate(task.build_inputs(batch_size, seed)
                                           .take(examples // batch_size), 1):
        features.append(maps(crops).numpy().reshape(len(crops), -1))
        misses.append((truth.numpy() - fll(crops).numpy()).reshape(len(crops), -1))
        print(f"\r{count * batch_size}/{examples} training crops", end="", file=sys.stderr,
              flush=True)
    print(file=sys.stderr)
    return np.concatenate(features), np.concatenate(misses)


def ridge_corrections(features, misses, strengths):
    """{strength: (weights [D, 136], bias [136])} of ridge regressions misses ~ features."""
    import numpy as np
    feature_mean, miss_mean = features.mean(0), misses.mean(0)
    centred = features - feature_mean
    gram = centred @ centred.T
    scale = np.trace(gram) / len(gram)
    fits = {}
    for strength in strengths:
        dual = np.linalg.solve(gram + strength * scale * np.eye(len(gram)), misses - miss_mean)
        weights = centred.T @ dual
        fits[strength] = (weights, miss_mean - feature_mean @ weights)
    return fits


def corrected_fll(fll, maps, weights, bias):
    """crops -> FLL's points plus the linear correction read from the maps."""
    import tensorflow as tf
    weights, bias = tf.constant(weights, tf.float32), tf.constant(bias, tf.float32)

    def localise(crops):
        flat = tf.reshape(maps(crops), [tf.shape(crops)[0], -1])
        return fll(crops) + tf.reshape(flat @ weights + bias, [-1, 68, 2])
    return localise


def averaged_views(fll, size, views):
    """crops -> FLL's points averaged over the crop and its `views` (zoom, dx, dy), each view's
    points mapped back to the crop's pixels."""
    import tensorflow as tf
    centre = (size - 1) / 2.0

    def look(crops, zoom, dx, dy):
        # the view's pixel u shows the crop's pixel (u - centre) / zoom + centre + (dx, dy)
        transform = [1 / zoom, 0, centre - centre / zoom + dx,
                     0, 1 / zoom, centre - centre / zoom + dy, 0, 0]
        view = tf.raw_ops.ImageProjectiveTransformV3(
            images=crops, transforms=tf.constant([transform], tf.float32),
            output_shape=[size, size], interpolation="BILINEAR", fill_mode="NEAREST",
            fill_value=0.0)
        return (fll(view) - centre) / zoom + centre + tf.constant([dx, dy], tf.float32)

    def localise(crops):
        looks = [fll(crops)] + [look(crops, *view) for view in views]
        return tf.add_n(looks) / len(looks)
    return localise


def score(bundle, settings, localise, photo_sets):
    """'median / mean / p90' NME per photo set of `localise` as the tracker's FLL step."""
    import numpy as np
    from fll_jittered_crops import photo_errors

    from crct_tf.tracking.frame_step import FrameSteps
    steps = FrameSteps(bundle.bt, bundle.fv, localise, settings)
    cells = []
    for examples in photo_sets:
        errors = photo_errors(steps, examples, trials=4, seed=0)
        cells.append(f"{np.median(errors):.4f} / {errors.mean():.4f} / "
                     f"{np.percentile(errors, 90):.4f}")
    return " | ".join(cells)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("probe", choices=["head", "views"])
    parser.add_argument("--features", choices=sorted(FEATURE_LAYERS), default="block8")
    parser.add_argument("--examples", type=int, default=3008, help="training crops (head)")
    parser.add_argument("--weights", help="a weights bundle (default: the bundled weights)")
    args = parser.parse_args(argv)
    if args.examples < 32:
        print("error: --examples must be at least 32", file=sys.stderr)
        return 2
    from crct_tf.datasets.crct_bootstrap import load_bootstrap_examples
    from crct_tf.datasets.human_300w import load_human_300w_examples
    from crct_tf.tracking.runtime import RuntimeLoadError, load_runtime
    from crct_tf.weights.bundle import BundleError, load_bundle
    from crct_tf.weights.packaged import bundled_weights_dir
    try:
        settings = load_runtime(args.weights, runtime="tf").steps.settings
        bundle = load_bundle(args.weights or bundled_weights_dir())
    except (RuntimeLoadError, BundleError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    photo_sets = [list(load_bootstrap_examples("val")), list(load_human_300w_examples())]
    print("| localiser | bootstrap val (teacher) | human_300w (people's points) |\n|---|---|---|")
    print(f"| FLL as it is | {score(bundle, settings, bundle.fll, photo_sets)} |", flush=True)
    if args.probe == "head":
        maps = feature_maps_model(bundle.fll, args.features)
        features, misses = training_residuals(bundle.fll, maps, settings, args.examples)
        for strength, (weights, bias) in ridge_corrections(features, misses,
                                                           RIDGE_STRENGTHS).items():
            localise = corrected_fll(bundle.fll, maps, weights, bias)
            print(f"| + {args.features} correction, ridge {strength:g} | "
                  f"{score(bundle, settings, localise, photo_sets)} |", flush=True)
    else:
        for name, views in VIEWS.items():
            localise = averaged_views(bundle.fll, settings.fll_size, views)
            print(f"| averaged with {name} | {score(bundle, settings, localise, photo_sets)} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
