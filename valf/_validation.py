"""Argument checks shared by the losses and the reweighting rule.

Every public entry point validates its arguments here, once, and raises a
``ValueError`` that names the argument, what was received and what is
expected. The numerical core trusts its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def check_num_classes(num_classes, name="num_classes"):
    """Return ``num_classes`` as an int >= 2."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ValueError(f"`{name}` must be an integer >= 2, received {num_classes!r}.")
    if num_classes < 2:
        raise ValueError(f"`{name}` must be an integer >= 2, received {num_classes}.")
    return int(num_classes)


def check_gamma(gamma, name="gamma"):
    """Return the focusing parameter as a float >= 0."""
    value = _finite_float(gamma, name, "a finite number >= 0")
    if value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0, received {gamma!r}.")
    return value


def check_beta(beta, name="beta"):
    """Return the class-balanced ``beta`` as a float in [0, 1)."""
    value = _finite_float(beta, name, "a number in [0, 1)")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1), received {beta!r}.")
    return value


def check_positive(value, name):
    """Return ``value`` as a finite float > 0."""
    number = _finite_float(value, name, "a finite number > 0")
    if number <= 0:
        raise ValueError(f"`{name}` must be a finite number > 0, received {value!r}.")
    return number


def check_non_negative_int(value, name):
    """Return ``value`` as an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0, received {value!r}.")
    return int(value)


def check_class_weights(weights, num_classes=None, name="class_weights", *, allow_zero=False):
    """Return per-class weights as a float64 array of positive, finite values.

    ``weights`` is a sequence with one value per class, or a mapping
    ``{class_index: weight}`` whose missing classes default to 1 (a mapping
    needs ``num_classes``). With ``allow_zero`` a weight may be 0 as long as one is
    positive (CDB gives weight 0 to a class the model classifies perfectly).
    """
    if isinstance(weights, Mapping):
        if num_classes is None:
            raise ValueError(
                f"`{name}` given as a dict needs the number of classes; "
                f"received {weights!r} without `num_classes`."
            )
        values = np.ones(num_classes, dtype=np.float64)
        for key, weight in weights.items():
            if (
                isinstance(key, bool)
                or not isinstance(key, (int, np.integer))
                or not 0 <= key < num_classes
            ):
                raise ValueError(
                    f"`{name}` keys must be class indices in [0, {num_classes}), "
                    f"received key {key!r}."
                )
            expected = "a finite number >= 0" if allow_zero else "a finite number > 0"
            values[int(key)] = _finite_float(weight, f"{name}[{key}]", expected)
    else:
        if isinstance(weights, (str, bytes)) or not isinstance(weights, (Sequence, np.ndarray)):
            raise ValueError(
                f"`{name}` must be a list of one weight per class or a dict "
                f"{{class_index: weight}}, received {weights!r}."
            )
        try:
            values = np.asarray(weights, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"`{name}` must hold numbers, received {weights!r}.") from None
        if values.ndim != 1:
            raise ValueError(
                f"`{name}` must be one-dimensional (one weight per class), "
                f"received shape {values.shape}."
            )
        if num_classes is not None and values.shape[0] != num_classes:
            raise ValueError(
                f"`{name}` must have one value per class ({num_classes}), "
                f"received {values.shape[0]}: {list(values)}."
            )
        if values.shape[0] < 2:
            raise ValueError(
                f"`{name}` must have at least 2 values (one per class), received {list(values)}."
            )
    bad = [
        i
        for i, v in enumerate(values)
        if not (math.isfinite(v) and (v >= 0 if allow_zero else v > 0))
    ]
    if bad:
        raise ValueError(
            f"`{name}` must be finite and {'>=' if allow_zero else '>'} 0 for every class; "
            f"classes {bad} have {[float(values[i]) for i in bad]}."
        )
    if not np.any(values > 0):
        raise ValueError(
            f"`{name}` must have a positive mean (some class weight > 0), received {list(values)}."
        )
    return values


def check_cdb_tau(tau, name="tau"):
    """Return CDB's exponent: the string ``"dynamic"`` or a finite float > 0."""
    expected = 'a finite number > 0 or the string "dynamic"'
    if isinstance(tau, str):
        if tau != "dynamic":
            raise ValueError(f"`{name}` must be {expected}, received {tau!r}.")
        return tau
    number = _finite_float(tau, name, expected)
    if number <= 0:
        raise ValueError(f"`{name}` must be {expected}, received {tau!r}.")
    return number


def check_alpha(alpha, num_classes=None, name="alpha"):
    """Return focal ``alpha``: None, a positive float, or per-class weights."""
    if alpha is None:
        return None
    if isinstance(alpha, (int, float, np.integer, np.floating)) and not isinstance(alpha, bool):
        return check_positive(alpha, name)
    return check_class_weights(alpha, num_classes, name)


def check_samples_per_class(samples_per_class, name="samples_per_class"):
    """Return per-class training counts as a float64 array of positive integers."""
    counts = check_class_weights(samples_per_class, None, name)
    if not np.all(counts == np.round(counts)):
        raise ValueError(f"`{name}` must hold whole numbers, received {list(counts)}.")
    return counts


def check_accuracies(accuracies, num_classes, name="per_class_accuracy"):
    """Return per-class accuracies as a float64 array in [0, 1]."""
    values = np.asarray(accuracies, dtype=np.float64)
    if values.shape != (num_classes,):
        raise ValueError(
            f"`{name}` must have one value per class ({num_classes}), "
            f"received shape {values.shape}."
        )
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values > 1):
        raise ValueError(
            f"`{name}` must hold fractions in [0, 1] (not percentages), received {list(values)}."
        )
    return values


def _finite_float(value, name, expected):
    if isinstance(value, bool):
        raise ValueError(f"`{name}` must be {expected}, received {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be {expected}, received {value!r}.") from None
    if not math.isfinite(number):
        raise ValueError(f"`{name}` must be {expected}, received {value!r}.")
    return number


def check_label_smoothing(value, name="label_smoothing"):
    """Return label smoothing as a float in [0, 1] (Keras' range)."""
    number = _finite_float(value, name, "a number in [0, 1]")
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1], received {value!r}.")
    return number
