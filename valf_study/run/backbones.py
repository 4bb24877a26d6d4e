"""Backbones of the study with their own preprocessing, and the classification head.

Every model takes images in [0, 1] (what :mod:`valf_study.data.augment` produces) and converts them
to the input range its Keras application was trained with, inside the model
(:class:`~valf_study.run.preprocessing.ApplicationPreprocessing`), so saved models carry it. Head:
global average pooling and a float32 softmax dense layer (``book/method.md``, section "Protocol";
the dataset paper's extra Dense(256)/Dropout(0.5) is not used).

:data:`BACKBONES` names the backbones without importing Keras (run parameters are checked
against it in processes that never train); the networks are built by :func:`build_model`.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BACKBONES", "PAPER_NAMES", "WeightsNotAvailable", "build_model", "small_cnn"]

_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"

#: name: (``keras.applications`` constructor, preprocessing mode, ImageNet no-top weight
#: file, its folder on the server). ``SmallCNN`` trains from scratch on 2 CPU cores in
#: seconds: the embedded (quick) study's backbone.
BACKBONES = {
    "ResNet50": (
        "ResNet50",
        "caffe",
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "resnet",
    ),
    "EfficientNetV2B3": (
        "EfficientNetV2B3",
        "scale255",
        "efficientnetv2-b3_notop.h5",
        "efficientnet_v2",
    ),
    "DenseNet121": (
        "DenseNet121",
        "torch",
        "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "densenet",
    ),
    "InceptionV3": (
        "InceptionV3",
        "tf",
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "inception_v3",
    ),
    "ConvNeXtTiny": ("ConvNeXtTiny", "scale255", "convnext_tiny_notop.h5", "convnext"),
    # Compact, ImageNet-pretrained: the smallest Keras application of the study.
    "MobileNetV3Small": (
        "MobileNetV3Small",
        "scale255",
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        "mobilenet_v3",
    ),
    "SmallCNN": (None, "tf", None, None),
}


#: The VALF paper's name of each backbone it trains (its Table 2) -> this study's. The paper
#: does not say which ConvNeXt; this study trains ConvNeXtTiny (``book/method.md``, section
#: "Choices where the paper is silent").
PAPER_NAMES = {
    "ResNet50": "ResNet50",
    "EfficientNetV2B3": "EfficientNetV2B3",
    "DenseNet121": "DenseNet121",
    "InceptionV3": "InceptionV3",
    "ConvNeXt": "ConvNeXtTiny",
}


class WeightsNotAvailable(FileNotFoundError):
    """ImageNet weights are neither in Keras' cache nor downloadable."""


def _keras_cache():
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "models"


def small_cnn(input_shape, widths=(16, 32, 64, 128), name="small_cnn"):
    """A four-stage convolutional feature extractor that trains on a CPU in seconds.

    A 5x5 stride-2 stem, then three 3x3 convolution / batch-norm / ReLU / 2x2 max-pool stages
    (about 0.1 M parameters at the default widths). The stride-2 stem makes it about 3x cheaper
    than a stride-1 one at 75x100 with no loss of accuracy on the embedded data set. No
    pretrained weights exist for it.

    Examples
    --------
    >>> small_cnn((75, 100, 3)).output_shape
    (None, 4, 6, 128)
    """
    import keras

    inputs = keras.Input(tuple(input_shape))
    x = inputs
    for stage, filters in enumerate(widths):
        first = stage == 0
        x = keras.layers.Conv2D(
            filters,
            5 if first else 3,
            strides=2 if first else 1,
            padding="same",
            use_bias=False,
            name=f"conv{stage}",
        )(x)
        # momentum 0.9: with ~70 steps an epoch, 0.99 leaves the moving statistics far
        # behind the weights for the first epochs, and validation accuracy jumps about.
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{stage}")(x)
        x = keras.layers.ReLU(name=f"relu{stage}")(x)
        if not first:
            x = keras.layers.MaxPooling2D(name=f"pool{stage}")(x)
    return keras.Model(inputs, x, name=name)


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
        ImageNet weights from Keras' cache (``~/.keras/models``) or the network; never
        silently random: without both, :class:`WeightsNotAvailable` names the file and where to
        put it. ``"SmallCNN"`` has no pretrained weights and takes only None.

    Examples
    --------
    >>> model = build_model("MobileNetV3Small", 3, (64, 64, 3), weights=None)
    >>> model.output_shape
    (None, 3)
    """
    import keras

    if backbone not in BACKBONES:
        raise ValueError(f"Unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}.")
    if weights not in ("imagenet", None):
        raise ValueError(f"`weights` must be 'imagenet' or None, received {weights!r}.")
    constructor, mode, weight_file, folder = BACKBONES[backbone]
    if constructor is None:
        if weights is not None:
            raise ValueError(
                f"{backbone} is trained from scratch and has no ImageNet weights; "
                "build it with weights=None."
            )
        return _with_head(small_cnn(input_shape), mode, input_shape, num_classes, backbone)
    kwargs = {"include_top": False, "weights": weights, "input_shape": tuple(input_shape)}
    if mode == "scale255":  # these applications rescale 0-255 input themselves
        kwargs["include_preprocessing"] = True
    try:
        base = getattr(keras.applications, constructor)(**kwargs)
    except Exception as error:
        fetch_failed = "fetch failure" in str(error).lower() or isinstance(error, OSError)
        if weights != "imagenet" or not fetch_failed:
            raise
        raise WeightsNotAvailable(
            f"The ImageNet weights of {backbone} are not in Keras' cache and could not be "
            f"downloaded ({error}). Put the file {weight_file} (from "
            f"{_WEIGHTS_URL}{folder}/{weight_file}) in {_keras_cache()}, or build with "
            "weights=None to train from scratch."
        ) from None
    return _with_head(base, mode, input_shape, num_classes, backbone)


def _with_head(base, mode, input_shape, num_classes, backbone):
    import keras

    inputs = keras.Input(tuple(input_shape), name="image")
    from valf_study.run.preprocessing import ApplicationPreprocessing

    preprocessing = ApplicationPreprocessing(mode, name="preprocessing")
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(base(preprocessing(inputs)))
    # float32 output keeps the softmax and the loss in float32 under mixed precision.
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="classifier"
    )(pooled)
    return keras.Model(inputs, outputs, name=f"{backbone}_classifier")
