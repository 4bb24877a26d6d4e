"""valf: class-imbalance losses for Keras 3 and the VALF reproduction study.

The library is what someone who only wants the losses imports: the study's losses
(:mod:`valf.losses`), the per-class reweighting rules and their callbacks
(:mod:`valf.reweighting`), the test metrics (:mod:`valf.metrics`). The study's machinery
follows the way data travels, one package per stage:

- :mod:`valf.data`: readers, the generated set, augmentation, samplers, the input pipeline;
- :mod:`valf.run`: one training run, from its parameters to its run directory;
- :mod:`valf.study`: many runs: study files, the sweep, the results tables;
- :mod:`valf.report`: the book's statistics, tables, figures and build.

Lower stages never import higher ones.

Importing ``valf`` loads no deep-learning backend: the names of :data:`__all__` resolve on
first use (a module-level ``__getattr__``), and only then import Keras. Keras finds the
study's losses in saved models once :mod:`valf.losses` is imported (which any use of a loss
name does; when Keras is already imported, ``import valf`` imports it at once).
"""

import importlib
import sys

__version__ = "0.1.0"

_LOSSES = (
    "CEFL",
    "CEFL2",
    "ClassBalancedLoss",
    "DynamicWeightedFocalLoss",
    "FocalLoss",
    "ValidationAdaptiveFocalLoss",
    "WeightedCategoricalCrossentropy",
    "balanced_class_weights",
    "cefl",
    "cefl2",
    "class_balanced_loss",
    "class_balanced_weights",
    "focal_loss",
    "validation_adaptive_focal_loss",
    "weighted_categorical_crossentropy",
)
_REWEIGHTING = (
    "DynamicWeights",
    "ValidationAdaptiveWeights",
    "dynamic_class_weights",
    "per_class_accuracy",
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
