"""What a run optimises: its loss, the callback that reweights it, and the weights it used.

CCE is Keras' own ``SparseCategoricalCrossentropy`` (the pipeline yields integer labels); the
others are :mod:`valf.losses`. WCCE takes ``balanced`` weights from the training counts, CB the
effective-number weights; a DWFL/VALF prior ``"inverse_frequency"`` starts from the balanced
weights scaled to mean 1. VALF and DWFL come with the callback that moves their weights
(:mod:`valf.reweighting`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["build_loss", "class_weight_table", "reweighting_callback", "weight_reach"]


def build_loss(params, class_counts):
    """The Keras loss a run trains with, from its parameters and its training counts."""
    import keras

    from valf import losses

    name, gamma = params["loss"], params["gamma"]
    counts = np.asarray(class_counts, dtype=float)
    if name == "CCE":
        return keras.losses.SparseCategoricalCrossentropy(name="categorical_crossentropy")
    if name == "WCCE":
        return losses.WeightedCategoricalCrossentropy(
            losses.balanced_class_weights(counts, is_counts=True)
        )
    if name == "FL":
        return losses.FocalLoss(gamma=gamma, alpha=params["alpha"])
    if name == "CB":
        return losses.ClassBalancedLoss(counts, beta=params["cb_beta"], gamma=gamma)
    if name == "CEFL":
        return losses.CEFL(gamma=gamma)
    if name == "CEFL2":
        return losses.CEFL2(gamma=gamma)
    adaptive = {
        "DWFL": losses.DynamicWeightedFocalLoss,
        "VALF": losses.ValidationAdaptiveFocalLoss,
    }[name]
    return adaptive(len(counts), gamma=gamma, prior=_prior(params["prior"], counts))


def _prior(prior, counts):
    if prior == "uniform":
        return None
    if prior == "inverse_frequency":
        from valf.losses import balanced_class_weights

        balanced = balanced_class_weights(counts, is_counts=True)
        return (balanced / balanced.mean()).tolist()
    return prior  # one weight per class


def reweighting_callback(params, loss, validation_data, training_data, class_names):
    """The callback that moves VALF's or DWFL's weights after each epoch; None otherwise.

    VALF measures per-class accuracy on ``validation_data``; DWFL on ``training_data``, the
    training images as trained on but without augmentation.
    """
    from valf.reweighting import DynamicWeights, ValidationAdaptiveWeights

    if params["loss"] == "VALF":
        return ValidationAdaptiveWeights(
            loss,
            validation_data,
            warmup_epochs=params["warmup_epochs"],
            rate=params["rate"],
            class_names=class_names,
        )
    if params["loss"] == "DWFL":
        return DynamicWeights(
            loss, training_data, smoothing=params["dwfl_smoothing"], class_names=class_names
        )
    return None


def _static_class_weights(loss):
    """The fixed per-class weights of WCCE, CB and FL with a per-class alpha, else None."""
    for attribute in ("class_weights", "alpha"):  # WCCE and CB; FL
        value = getattr(loss, attribute, None)
        if isinstance(value, (list, tuple, np.ndarray)):
            return np.asarray(value, dtype=float)
    return None


def class_weight_table(loss, reweighting, class_names):
    """Weights per epoch for DWFL/VALF (epoch 0: before training), one row for fixed weights,
    None for losses without class weights."""
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
