"""Backbones of the study with their own preprocessing, and the classification head.

Every model takes images in [0, 1] (what :mod:`valf.augment` produces) and
converts them to the input range its Keras application was trained with,
inside the model (:class:`ApplicationPreprocessing`), so saved models carry it.
Head: global average pooling and a float32 softmax dense layer (METHOD.md
section 6; the dataset paper's extra Dense(256)/Dropout(0.5) is not used).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

__all__ = ["BACKBONES", "ApplicationPreprocessing", "WeightsNotAvailable", "build_model"]

_APPS = keras.applications
_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"

# name: (constructor, preprocessing mode, ImageNet no-top weight file, its folder on the server)
BACKBONES = {
    "ResNet50": (_APPS.ResNet50, "caffe",
                 "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet"),
    "EfficientNetV2B3": (_APPS.EfficientNetV2B3, "scale255", "efficientnetv2-b3_notop.h5",
                         "efficientnet_v2"),
    "DenseNet121": (_APPS.DenseNet121, "torch",
                    "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5", "densenet"),
    "InceptionV3": (_APPS.InceptionV3, "tf",
                    "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", "inception_v3"),
    "ConvNeXtTiny": (_APPS.ConvNeXtTiny, "scale255", "convnext_tiny_notop.h5", "convnext"),
    # Small and fast: trains on 2 CPU cores in seconds for the embedded study.
    "MobileNetV3Small": (_APPS.MobileNetV3Small, "scale255",
                         "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
                         "mobilenet_v3"),
}

# ImageNet statistics the applications' preprocess_input uses.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


class WeightsNotAvailable(FileNotFoundError):
    """ImageNet weights are neither in Keras' cache nor downloadable."""


@keras.saving.register_keras_serializable(package="valf")
class ApplicationPreprocessing(keras.layers.Layer):
    """Map [0, 1] RGB images to a Keras application's expected input.

    Modes: ``"caffe"`` (ResNet50: BGR, 0-255, ImageNet mean subtracted),
    ``"torch"`` (DenseNet: ImageNet mean/std on [0, 1]), ``"tf"`` (Inception:
    [-1, 1]), ``"scale255"`` (applications that preprocess internally from
    0-255: EfficientNetV2, ConvNeXt, MobileNetV3).
    """

    def __init__(self, mode, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("caffe", "torch", "tf", "scale255"):
            raise ValueError(f"Unknown preprocessing mode {mode!r}.")
        self.mode = mode

    def call(self, images):
        ops = keras.ops
        if self.mode == "scale255":
            return images * 255.0
        if self.mode == "tf":
            return images * 2.0 - 1.0
        if self.mode == "torch":
            return (images - ops.array(_TORCH_MEAN, images.dtype)) / ops.array(_TORCH_STD,
                                                                                images.dtype)
        bgr = ops.flip(images, axis=-1) * 255.0
        return bgr - ops.array(_CAFFE_MEAN_BGR, images.dtype)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _keras_cache():
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "models"


def build_model(backbone, num_classes=3, input_shape=(300, 400, 3), weights="imagenet"):
    """A backbone with its preprocessing and a softmax head, for [0, 1] images.

    Parameters
    ----------
    backbone : str
        One of :data:`BACKBONES`.
    num_classes : int
        Width of the softmax layer.
    input_shape : tuple
        (height, width, 3).
    weights : {"imagenet", None}
        ImageNet weights from Keras' cache (``~/.keras/models``) or the
        network; never silently random: without both, :class:`WeightsNotAvailable`
        names the file and where to put it.

    Examples
    --------
    >>> model = build_model("MobileNetV3Small", 3, (64, 64, 3), weights=None)
    >>> model.output_shape
    (None, 3)
    """
    if backbone not in BACKBONES:
        raise ValueError(f"Unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}.")
    if weights not in ("imagenet", None):
        raise ValueError(f"`weights` must be 'imagenet' or None, received {weights!r}.")
    constructor, mode, weight_file, folder = BACKBONES[backbone]
    kwargs = {"include_top": False, "weights": weights, "input_shape": tuple(input_shape)}
    if mode == "scale255":  # these applications rescale 0-255 input themselves
        kwargs["include_preprocessing"] = True
    try:
        base = constructor(**kwargs)
    except Exception as error:  # noqa: BLE001 - Keras raises a bare Exception on fetch failure
        fetch_failed = "fetch failure" in str(error).lower() or isinstance(error, OSError)
        if weights != "imagenet" or not fetch_failed:
            raise
        raise WeightsNotAvailable(
            f"The ImageNet weights of {backbone} are not in Keras' cache and could not be "
            f"downloaded ({error}). Put the file {weight_file} (from "
            f"{_WEIGHTS_URL}{folder}/{weight_file}) in {_keras_cache()}, or build with "
            "weights=None to train from scratch."
        ) from None
    inputs = keras.Input(tuple(input_shape), name="image")
    features = base(ApplicationPreprocessing(mode, name="preprocessing")(inputs))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    # float32 output keeps the softmax and the loss in float32 under mixed precision.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                 name="classifier")(pooled)
    return keras.Model(inputs, outputs, name=f"{backbone}_classifier")
