import glob
import os

import cv2
import keras
import numpy as np
import pytest

from crct_tf.models.backbone import facenet_embedder, identity_check, largest_face_crop
from crct_tf.models import facenet_weights
from crct_tf.models.inception_resnet_v1 import (Prewhiten, ScaleSum,
                                                build_inception_resnet_v1)

FACENET_PARAMS_WITH_BOTTLENECK = 22_808_144


@pytest.mark.parametrize("size,block8", [(128, 2), (160, 3)])
def test_shapes_and_parameter_count(size, block8):
    model = build_inception_resnet_v1(size, feature_maps=True)
    assert model.count_params() == FACENET_PARAMS_WITH_BOTTLENECK
    shapes = {k: tuple(v.shape[1:]) for k, v in model.output.items()}
    assert shapes["features"] == (1792,) and shapes["embedding"] == (128,)
    assert shapes["block8"] == (block8, block8, 1792)
    assert shapes["block17"][-1] == 896 and shapes["block35"][-1] == 256


def test_config_round_trips_without_lambda():
    model = build_inception_resnet_v1(128, include_bottleneck=False)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    clone = keras.Model.from_config(model.get_config())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    scale_sums = [layer for layer in clone.layers if isinstance(layer, ScaleSum)]
    assert len(scale_sums) == 21 and scale_sums[0].scale == pytest.approx(0.17)
    x = np.random.default_rng(0).uniform(0, 255, (1, 128, 128, 3)).astype("float32")
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(x)["features"], model(x)["features"], atol=1e-5)


def test_prewhiten_matches_facenet_formula_and_the_tflite_runtime():
    """The Keras layer, facenet's formula, and the numpy twin the TFLite runtime uses agree."""
    from crct_tf.tracking.tflite_steps import prewhiten as numpy_prewhiten
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = [(im - im.mean()) / max(im.std(), 1.0 / np.sqrt(im.size)) for im in x]
    np.testing.assert_allclose(Prewhiten()(x), np.stack(expected), atol=1e-4)
    np.testing.assert_allclose(numpy_prewhiten(x), np.stack(expected), atol=1e-4)
    flat = np.full((1, 8, 8, 3), 7.0, np.float32)  # std 0: no division by zero
    assert np.all(np.isfinite(Prewhiten()(flat))) and np.all(np.isfinite(numpy_prewhiten(flat)))


def test_loader_refuses_a_model_with_a_layer_the_h5_lacks():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="not_in_facenet")(inputs))
    with pytest.raises(facenet_weights.FacenetWeightsError, match="not_in_facenet"):
        facenet_weights.load_facenet_h5(model)


def test_loader_refuses_a_shape_mismatch():
    inputs = keras.Input((8, 8, 3))
    wrong = keras.layers.Conv2D(16, 3, use_bias=False, name="Conv2d_1a_3x3")(inputs)
    with pytest.raises(facenet_weights.FacenetWeightsError, match="shape"):
        facenet_weights.load_facenet_h5(keras.Model(inputs, wrong))


def test_facenet_embeddings_pair_each_persons_photos(facenet_photos, mtcnn_detector):
    """Two val photos of each of the five people: every photo's nearest other photo is the
    same person's (10/10 with facenet's weights; random weights got 2-4 of 10)."""
    names, crops = [], []
    for person in sorted(os.listdir(os.path.join(facenet_photos, "val"))):
        for path in sorted(glob.glob(os.path.join(facenet_photos, "val", person, "*.jpg")))[:2]:
            image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
            names.append(person)
            crops.append(largest_face_crop(mtcnn_detector, image))
    vectors = facenet_embedder(160).predict(np.stack(crops), verbose=0)
    distances = ((vectors[:, None] - vectors[None]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    nearest = [names[j] for j in distances.argmin(1)]
    assert nearest == names


@pytest.mark.slow
def test_facenet_weights_recognise_the_five_people(facenet_photos, mtcnn_detector):
    """Nearest-centroid identity on the 25 val photos, centroids from the train photos."""
    embedder = facenet_embedder(160)
    x = np.random.default_rng(0).uniform(0, 255, (2, 160, 160, 3)).astype("float32")
    np.testing.assert_allclose(np.linalg.norm(embedder(x), axis=1), 1.0, atol=1e-4)
    correct, total = identity_check(facenet_photos, mtcnn_detector, embedder)
    assert total == 25
    assert correct >= 24, f"{correct}/25 val photos recognised"
