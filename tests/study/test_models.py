"""Backbones build at the study's input size; preprocessing matches Keras' own; no silent
random weights."""

import keras
import numpy as np
import pytest

from valf_study.run import backbones as models
from valf_study.run.preprocessing import ApplicationPreprocessing


@pytest.mark.slow
@pytest.mark.parametrize("backbone", sorted(models.BACKBONES))
def test_each_backbone_builds_at_300x400(backbone):
    model = models.build_model(backbone, 3, (300, 400, 3), weights=None)
    assert model.output_shape == (None, 3)
    out = model.predict(np.zeros((1, 300, 400, 3), "float32"), verbose=0)
    np.testing.assert_allclose(out.sum(), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("mode", "reference"),
    [
        ("caffe", keras.applications.resnet50.preprocess_input),
        ("torch", keras.applications.densenet.preprocess_input),
        ("tf", keras.applications.inception_v3.preprocess_input),
    ],
)
def test_preprocessing_equals_the_applications_own(mode, reference):
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(ApplicationPreprocessing(mode)(images))
    np.testing.assert_allclose(ours, reference(images * 255.0), rtol=1e-5, atol=1e-4)


def test_bad_names_and_missing_weights(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"Unknown backbone 'VGG16'; choose one of \["):
        models.build_model("VGG16")
    with pytest.raises(ValueError, match="`weights`"):
        models.build_model("ResNet50", weights="random")

    def offline(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None")

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(
        models.WeightsNotAvailable,
        match=r"resnet50_weights_tf_dim_ordering_tf_kernels_notop\.h5.*models",
    ):
        models.build_model("ResNet50")
