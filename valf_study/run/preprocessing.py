"""The layer that maps [0, 1] images to a Keras application's input range, inside the model."""

from __future__ import annotations

import keras

__all__ = ["ApplicationPreprocessing"]

# ImageNet statistics the applications' preprocess_input uses.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="valf")
class ApplicationPreprocessing(keras.layers.Layer):
    """Map [0, 1] RGB images to a Keras application's expected input.

    Modes: ``"caffe"`` (ResNet50: BGR, 0-255, ImageNet mean subtracted), ``"torch"``
    (DenseNet: ImageNet mean/std on [0, 1]), ``"tf"`` (Inception: [-1, 1]), ``"scale255"``
    (applications that preprocess internally from 0-255: EfficientNetV2, ConvNeXt,
    MobileNetV3).

    Examples
    --------
    >>> import numpy as np
    >>> layer = ApplicationPreprocessing("tf")
    >>> keras.ops.convert_to_numpy(layer(np.array([[0.0, 0.5, 1.0]]))).tolist()
    [[-1.0, 0.0, 1.0]]
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
            mean = ops.array(_TORCH_MEAN, images.dtype)
            return (images - mean) / ops.array(_TORCH_STD, images.dtype)
        bgr = ops.flip(images, axis=-1) * 255.0
        return bgr - ops.array(_CAFFE_MEAN_BGR, images.dtype)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
