"""valf: class-imbalance losses for Keras 3.

Every loss is a pure per-sample function and a registered :class:`keras.losses.Loss` subclass
(:mod:`valf.losses`); the adaptive ones (VALF, DWFL, CDB, DRW) hold per-class weights in a
variable that a callback of :mod:`valf.reweighting` moves between epochs, by a pure NumPy rule
of the same module. The library needs Keras and NumPy, and one Keras backend (TensorFlow, JAX
or PyTorch) chosen by the user.

Importing ``valf`` loads no deep-learning backend: the names of :data:`__all__` resolve on
first use (a module-level ``__getattr__``), and only then import Keras. Keras finds the losses
in saved models once :mod:`valf.losses` is imported (which any use of a loss name does; when
Keras is already imported, ``import valf`` imports it at once).

The study of these losses on medical images (data sets, runs, sweeps, the book) is a
distribution of its own, ``valf_study``, built on this library.

Examples
--------
>>> import valf
>>> loss = valf.FocalLoss(gamma=2.0)
>>> round(float(loss([1], [[0.2, 0.7, 0.1]])), 4)
0.0321
"""

import importlib
import sys

__version__ = "0.2.0"

_LOSSES = (
    "CEFL",
    "CEFL2",
    "ClassBalancedLoss",
    "ClassDifficultyBalancedLoss",
    "DeferredReweightingLoss",
    "DynamicWeightedFocalLoss",
    "FocalLoss",
    "ValidationAdaptiveFocalLoss",
    "WeightedCategoricalCrossentropy",
    "balanced_class_weights",
    "cefl",
    "cefl2",
    "class_balanced_loss",
    "class_balanced_weights",
    "class_difficulty_balanced_loss",
    "focal_loss",
    "validation_adaptive_focal_loss",
    "weighted_categorical_crossentropy",
)
_REWEIGHTING = (
    "ClassDifficultyWeights",
    "DeferredReweighting",
    "DynamicWeights",
    "ValidationAdaptiveWeights",
    "cdb_class_weights",
    "dynamic_class_weights",
    "per_class_accuracy",
    "track_class_weights",
    "update_class_weights",
)
_HOME = {**dict.fromkeys(_LOSSES, "valf.losses"), **dict.fromkeys(_REWEIGHTING, "valf.reweighting")}

__all__ = sorted(_HOME)


def __getattr__(name):
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'valf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolved once
    return value


def __dir__():
    return sorted({*globals(), *__all__})


if "keras" in sys.modules:  # Keras is loaded anyway: register the losses for deserialisation
    importlib.import_module("valf.losses")
