"""valf: class-imbalance losses for Keras 3 and the VALF reproduction study.

The public API: the study's losses (:mod:`valf.losses`) and the per-class
reweighting callbacks (:mod:`valf.reweighting`). Importing ``valf`` registers
every loss for Keras serialisation, so saved models load without
``custom_objects``.
"""

from valf.losses import (
    CEFL,
    CEFL2,
    ClassBalancedLoss,
    DynamicWeightedFocalLoss,
    FocalLoss,
    ValidationAdaptiveFocalLoss,
    WeightedCategoricalCrossentropy,
    balanced_class_weights,
    cefl,
    cefl2,
    class_balanced_loss,
    class_balanced_weights,
    focal_loss,
    validation_adaptive_focal_loss,
    weighted_categorical_crossentropy,
)
from valf.reweighting import (
    DynamicWeights,
    ValidationAdaptiveWeights,
    dynamic_class_weights,
    per_class_accuracy,
    update_class_weights,
)

__version__ = "0.1.0"

__all__ = [
    "CEFL",
    "CEFL2",
    "ClassBalancedLoss",
    "DynamicWeightedFocalLoss",
    "DynamicWeights",
    "FocalLoss",
    "ValidationAdaptiveFocalLoss",
    "ValidationAdaptiveWeights",
    "WeightedCategoricalCrossentropy",
    "balanced_class_weights",
    "cefl",
    "cefl2",
    "class_balanced_loss",
    "class_balanced_weights",
    "dynamic_class_weights",
    "focal_loss",
    "per_class_accuracy",
    "update_class_weights",
    "validation_adaptive_focal_loss",
    "weighted_categorical_crossentropy",
]
