"""What a run optimises: the registry of losses a run can train with.

:data:`LOSSES` holds one :class:`Loss` entry per loss, declared once: how to build it from the
run's parameters and training counts (its class is in :mod:`valf.losses`, or Keras' own), the
callback that moves its weights (the adaptive losses), which run parameters apply to it, and
its label in tables and figures. The parameter checks (:mod:`valf_study.run.parameters`), the
training run, the notebook and the book all read this table; adding a loss is one entry here,
its class in the library, and its tests.

CCE is Keras' own ``SparseCategoricalCrossentropy`` (the pipeline yields integer labels).
WCCE takes ``balanced`` weights from the training counts, CB the effective-number weights; a
DWFL/VALF prior ``"inverse_frequency"`` starts from the balanced weights scaled to mean 1.

Importing this module loads no deep-learning backend: each entry imports its loss when it
builds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["LOSSES", "Loss", "class_weight_table", "weight_reach"]


@dataclass(frozen=True)
class Loss:
    """One loss a run can train with.

    Attributes
    ----------
    name : str
        The run parameter ``loss``.
    description : str
        One line: what it is, where from.
    build : callable
        ``build(params, class_counts) -> keras.losses.Loss``.
    parameters : tuple of str
        The loss-specific run parameters that apply to it (the others are recorded as None).
    callback : callable, optional
        ``callback(params, loss, validation_data, training_data, class_names)`` -> the
        callback that moves the loss's weights after each epoch.
    label : callable, optional
        ``label(params) -> str``: how tables and figures name a run's method; by default the
        name. VALF's two readings of eq. 7 are two methods.
    """

    name: str
    description: str
    build: Callable
    parameters: tuple = ()
    callback: Callable | None = None
    label: Callable | None = None

    def method(self, params):
        return self.label(params) if self.label is not None else self.name


def _prior(params, counts):
    prior = params["prior"]
    if prior == "uniform":
        return None
    if prior == "inverse_frequency":
        from valf.losses import balanced_class_weights

        balanced = balanced_class_weights(counts, is_counts=True)
        return (balanced / balanced.mean()).tolist()
    return prior  # one weight per class


def _cce(params, counts):
    import keras

    return keras.losses.SparseCategoricalCrossentropy(name="categorical_crossentropy")


def _wcce(params, counts):
    from valf.losses import WeightedCategoricalCrossentropy, balanced_class_weights

    return WeightedCategoricalCrossentropy(balanced_class_weights(counts, is_counts=True))


def _fl(params, counts):
    from valf.losses import FocalLoss

    return FocalLoss(gamma=params["gamma"], alpha=params["alpha"])


def _cb(params, counts):
    from valf.losses import ClassBalancedLoss

    return ClassBalancedLoss(counts, beta=params["cb_beta"], gamma=params["gamma"])


def _cefl(params, counts):
    from valf.losses import CEFL

    return CEFL(gamma=params["gamma"])


def _cefl2(params, counts):
    from valf.losses import CEFL2

    return CEFL2(gamma=params["gamma"])


def _dwfl(params, counts):
    from valf.losses import DynamicWeightedFocalLoss

    return DynamicWeightedFocalLoss(
        len(counts), gamma=params["gamma"], prior=_prior(params, counts)
    )


def _valf(params, counts):
    from valf.losses import ValidationAdaptiveFocalLoss

    return ValidationAdaptiveFocalLoss(
        len(counts), gamma=params["gamma"], prior=_prior(params, counts)
    )


def _drw(params, counts):
    from valf.losses import DeferredReweightingLoss

    return DeferredReweightingLoss(counts, beta=params["drw_beta"], gamma=params["gamma"])


def _cdb(params, counts):
    from valf.losses import ClassDifficultyBalancedLoss

    return ClassDifficultyBalancedLoss(len(counts), gamma=params["gamma"], tau=params["cdb_tau"])


def _drw_callback(params, loss, validation_data, training_data, class_names):
    from valf.reweighting import DeferredReweighting

    return DeferredReweighting(loss, warmup_epochs=params["warmup_epochs"], class_names=class_names)


def _cdb_callback(params, loss, validation_data, training_data, class_names):
    from valf.reweighting import ClassDifficultyWeights

    return ClassDifficultyWeights(
        loss, validation_data, warmup_epochs=params["warmup_epochs"], class_names=class_names
    )


def _dwfl_callback(params, loss, validation_data, training_data, class_names):
    from valf.reweighting import DynamicWeights

    return DynamicWeights(
        loss, training_data, smoothing=params["dwfl_smoothing"], class_names=class_names
    )


def _valf_callback(params, loss, validation_data, training_data, class_names):
    from valf.reweighting import ValidationAdaptiveWeights

    return ValidationAdaptiveWeights(
        loss,
        validation_data,
        warmup_epochs=params["warmup_epochs"],
        rate=params["rate"],
        class_names=class_names,
    )


def _valf_label(params):
    # The two readings of eq. 7 (r = 0.01 on fractions, r = 1 the percentage reading) are
    # different methods.
    return f"VALF (r={params['rate']:g})"


#: Every loss a run can train with, in the order tables list them.
LOSSES = {
    entry.name: entry
    for entry in (
        Loss("CCE", "categorical cross-entropy (Keras)", _cce),
        Loss("WCCE", "cross-entropy weighted N / (C n_c) from the training counts", _wcce),
        Loss("FL", "focal loss, optionally alpha-balanced", _fl, ("gamma", "alpha")),
        Loss("CB", "class-balanced loss, effective-number weights", _cb, ("gamma", "cb_beta")),
        Loss("CEFL", "cross-entropy plus focal loss", _cefl, ("gamma",)),
        Loss("CEFL2", "CEFL mixed by (1-p)^2 and p^2", _cefl2, ("gamma",)),
        Loss(
            "DWFL",
            "focal loss reweighted each epoch from training accuracy (this project's rule)",
            _dwfl,
            ("gamma", "prior", "dwfl_smoothing"),
            callback=_dwfl_callback,
        ),
        Loss(
            "DRW",
            "focal loss, uniform weights until the warm-up ends, then class-balanced ones "
            "(Cao et al. 2019)",
            _drw,
            ("gamma", "drw_beta", "warmup_epochs"),
            callback=_drw_callback,
        ),
        Loss(
            "CDB",
            "focal loss weighted by each class's validation difficulty, recomputed each epoch "
            "(Sinha et al. 2020)",
            _cdb,
            ("gamma", "cdb_tau", "warmup_epochs"),
            callback=_cdb_callback,
        ),
        Loss(
            "VALF",
            "focal loss reweighted each epoch from validation accuracy (the paper's eqs. 7-8)",
            _valf,
            ("gamma", "prior", "warmup_epochs", "rate"),
            callback=_valf_callback,
            label=_valf_label,
        ),
    )
}


def _static_class_weights(loss):
    """The fixed per-class weights of WCCE, CB and FL with a per-class alpha, else None."""
    for attribute in ("class_weights", "alpha"):  # WCCE and CB; FL
        value = getattr(loss, attribute, None)
        if isinstance(value, (list, tuple, np.ndarray)):
            return np.asarray(value, dtype=float)
    return None


def class_weight_table(loss, reweighting, class_names):
    """Weights per epoch for the adaptive losses (epoch 0: before training), one row for fixed
    weights, None for losses without class weights."""
    if reweighting is not None:
        initial = {
            "epoch": 0,
            "updated": False,
            **{f"weight_{c}": float(w) for c, w in zip(class_names, loss.prior)},
        }
        rows = [initial] + [
            {**record, "epoch": int(record["epoch"]) + 1} for record in reweighting.history
        ]
        return pd.DataFrame(rows)
    static = _static_class_weights(loss)
    if static is None:
        return None
    return pd.DataFrame(
        [
            {
                "epoch": 0,
                "updated": False,
                **{f"weight_{c}": float(w) for c, w in zip(class_names, static)},
            }
        ]
    )


def weight_reach(table):
    """How far the adaptive weights spread: the largest over the smallest class weight at the
    end of training (1: uniform), from :func:`class_weight_table`.

    Examples
    --------
    >>> table = pd.DataFrame({"epoch": [0, 1], "weight_A": [1, 1.5], "weight_B": [1, 0.5]})
    >>> weight_reach(table)
    3.0
    """
    last = table.sort_values("epoch").iloc[-1]
    weights = last[[c for c in table.columns if c.startswith("weight_")]].astype(float)
    return float(weights.max() / weights.min())
