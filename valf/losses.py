"""The objectives of the study, written with ``keras.ops`` only.

Each loss is a pure per-sample function ``f(y_true, y_pred, ...) -> (N,)`` and
a :class:`keras.losses.Loss` subclass, registered for serialisation under the
package name ``"valf"``, that wraps it. All of them share one numerical core:
for every class c,

.. math::

    \\ell = \\sum_c y_c \\, w_c \\, m(p_c) \\, (-\\log p_c),

where ``y`` is the one-hot (or soft) label, ``w`` a per-class weight and ``m``
a modulating factor: 1 for cross-entropy, :math:`(1 - p)^\\gamma` for focal
loss, and the mixtures of the CEFL paper. On one-hot labels the sum has one
term, the true class t, and the formulas reduce to the per-sample ones the
book states (``book/method.md``, section "The losses"), written with :math:`p_t`.

Numerics. With ``from_logits=False`` the probabilities are renormalised to
sum to 1 and clipped to ``[eps, 1 - eps]`` (``eps = keras.config.epsilon()``,
1e-7), as Keras' own cross-entropies do. With ``from_logits=True``,
:math:`\\log p` comes from ``log_softmax`` and :math:`1 - p` from ``-expm1(log
p)``, so nothing is clipped. In both paths :math:`1 - p` is floored at eps, so
that :math:`(1-p)^\\gamma` keeps a finite gradient at :math:`p_t = 1` for every
gamma >= 0. Computation is in the loss's dtype, float32 by default, also under
a ``mixed_float16`` policy.

Labels may be one-hot (N, C) or integer class indices of shape (N,) or (N, 1).
``label_smoothing`` (every loss has it, with Keras' meaning) replaces the one-hot
label by ``y (1 - s) + s / C`` before the sum, as Keras' own
``CategoricalCrossentropy`` and ``CategoricalFocalCrossentropy`` do.

Options are keyword-only: ``FocalLoss(gamma=2.0)``, ``focal_loss(y, p, gamma=2.0)``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from valf import _validation as check

__all__ = [
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
]

_PACKAGE = "valf"


# ---------------------------------------------------------------------------
# Class-weight helpers (NumPy)
# ---------------------------------------------------------------------------


def balanced_class_weights(labels_or_counts, num_classes=None, *, is_counts=False):
    """Per-class weights ``N / (C * n_c)``, scikit-learn's ``"balanced"`` rule.

    Parameters
    ----------
    labels_or_counts : array-like
        Training labels, as integer class indices (N,) or one-hot rows (N, C);
        or, with ``is_counts=True``, the number of training samples per class.
    num_classes : int, optional
        Number of classes C. Defaults to the one-hot width, the length of the
        counts, or ``max(label) + 1``.
    is_counts : bool
        Read ``labels_or_counts`` as per-class counts. A flag and not a guess,
        because ``[109, 52, 102]`` is a valid list of labels too.

    Returns
    -------
    numpy.ndarray
        float64 weights, one per class; their count-weighted mean is 1.

    Raises
    ------
    ValueError
        If a class has no samples (its weight would be infinite), a label is
        outside ``[0, C)``, or a count is negative or fractional.

    References
    ----------
    - King, G., Zeng, L. (2001). Logistic regression in rare events data. Political
      Analysis 9(2), 137-163. https://doi.org/10.1093/oxfordjournals.pan.a004868
    - Pedregosa, F. et al. (2011). Scikit-learn: machine learning in Python. Journal of
      Machine Learning Research 12, 2825-2830.

    Examples
    --------
    >>> balanced_class_weights([0, 0, 0, 1, 2, 2])
    array([0.66666667, 2.        , 1.        ])
    >>> balanced_class_weights([109, 52, 102], is_counts=True).round(3)
    array([0.804, 1.686, 0.859])
    """
    if is_counts:
        counts = np.asarray(labels_or_counts, dtype=np.float64)
        if counts.ndim != 1 or np.any(counts < 0) or np.any(counts != np.round(counts)):
            raise ValueError(
                "`labels_or_counts` read as counts must be a list of whole numbers "
                f">= 0, one per class; received {labels_or_counts!r}."
            )
        if num_classes is not None and counts.shape[0] != check.check_num_classes(num_classes):
            raise ValueError(
                f"`labels_or_counts` has {counts.shape[0]} counts but `num_classes` is "
                f"{num_classes}."
            )
    else:
        counts = _label_counts(labels_or_counts, num_classes)
    empty = np.flatnonzero(counts == 0).tolist()
    if empty:
        raise ValueError(
            f"Classes {empty} have no training samples, so their balanced weight "
            f"N / (C * n_c) is infinite; counts are {counts.astype(int).tolist()}."
        )
    return counts.sum() / (counts.shape[0] * counts)


def class_balanced_weights(samples_per_class, beta=0.999):
    """Class-balanced weights of Cui et al. (2019), normalised to sum to C.

    .. math:: w_c \\propto \\frac{1 - \\beta}{1 - \\beta^{n_c}}, \\qquad \\sum_c w_c = C.

    Parameters
    ----------
    samples_per_class : sequence of int
        Training samples per class, each >= 1.
    beta : float
        In [0, 1). beta = 0 gives uniform weights; beta -> 1 approaches the
        inverse class frequency.

    References
    ----------
    - Cui, Y., Jia, M., Lin, T.-Y., Song, Y., Belongie, S. (2019). Class-balanced loss based
      on effective number of samples. CVPR, 9268-9277.
      https://doi.org/10.1109/CVPR.2019.00949

    Examples
    --------
    >>> class_balanced_weights([109, 52, 102], beta=0.99).round(3)
    array([0.817, 1.336, 0.848])
    """
    counts = check.check_samples_per_class(samples_per_class)
    beta = check.check_beta(beta)
    effective_number = (1.0 - np.power(beta, counts)) / (1.0 - beta)
    weights = 1.0 / effective_number
    return weights * counts.shape[0] / weights.sum()


def _label_counts(labels, num_classes):
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = np.argmax(labels, axis=1)
    labels = labels.reshape(-1)
    if labels.size == 0:
        raise ValueError("`labels_or_counts` is empty; expected training labels.")
    if not np.all(labels == np.round(labels)) or labels.min() < 0:
        raise ValueError(
            "`labels_or_counts` must hold integer class indices >= 0 (or one-hot rows); "
            f"received values {np.unique(labels)[:10].tolist()}."
        )
    labels = labels.astype(np.int64)
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    num_classes = check.check_num_classes(num_classes)
    if labels.max() >= num_classes:
        raise ValueError(
            f"`labels_or_counts` holds class {int(labels.max())}, outside [0, {num_classes})."
        )
    return np.bincount(labels, minlength=num_classes).astype(np.float64)


# ---------------------------------------------------------------------------
# Numerical core (keras.ops)
# ---------------------------------------------------------------------------


def _compute_dtype(y_pred):
    # Half precision would lose the small probabilities that focal losses
    # weigh; compute in float32 at least.
    dtype = keras.backend.standardize_dtype(y_pred.dtype)
    return "float32" if dtype in ("float16", "bfloat16") else dtype


def _one_hot_labels(y_true, y_pred):
    """Return ``y_true`` as (N, C) one-hot or soft labels in y_pred's dtype."""
    num_classes = y_pred.shape[-1]
    if num_classes is None:
        raise ValueError(
            "The number of classes (last dimension of y_pred) must be known; "
            f"received y_pred with shape {y_pred.shape}."
        )
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if true_rank == pred_rank and y_true.shape[-1] in (num_classes, None):
        return ops.cast(y_true, y_pred.dtype)
    if true_rank == pred_rank and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    elif true_rank != pred_rank - 1:
        raise ValueError(
            f"Labels of shape {tuple(y_true.shape)} do not match predictions of shape "
            f"{tuple(y_pred.shape)} ({num_classes} classes): expected one-hot labels "
            f"(N, {num_classes}) or integer class indices of shape (N,) or (N, 1)."
        )
    return ops.one_hot(ops.cast(y_true, "int32"), num_classes, dtype=y_pred.dtype)


def _log_and_complement(y_pred, from_logits):
    """Return ``(p, log p, 1 - p)`` per class, guarded as the module explains."""
    eps = keras.config.epsilon()
    if from_logits:
        log_p = ops.log_softmax(y_pred, axis=-1)
        p = ops.exp(log_p)
        one_minus_p = -ops.expm1(log_p)
    else:
        p = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
        p = ops.clip(p, eps, 1.0 - eps)
        log_p = ops.log(p)
        one_minus_p = 1.0 - p
    return p, log_p, ops.maximum(one_minus_p, eps)


def _per_sample_loss(
    y_true, y_pred, from_logits, modulation=None, class_weights=None, label_smoothing=0.0
):
    """``sum_c y_c w_c m(p_c) (-log p_c)`` over the last axis.

    ``modulation(p, one_minus_p)`` returns m per class; None means 1.
    ``class_weights`` is None, a scalar or one weight per class. ``label_smoothing`` s
    replaces the labels by ``y (1 - s) + s / C``.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    dtype = _compute_dtype(y_pred)
    y_pred = ops.cast(y_pred, dtype)
    y_true = _one_hot_labels(ops.convert_to_tensor(y_true), y_pred)
    if label_smoothing:
        num_classes = ops.cast(ops.shape(y_pred)[-1], dtype)
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / num_classes
    p, log_p, one_minus_p = _log_and_complement(y_pred, from_logits)
    terms = -log_p
    if modulation is not None:
        terms = terms * modulation(p, one_minus_p)
    if class_weights is not None:
        weights = ops.cast(class_weights, dtype)
        if len(weights.shape) == 1 and weights.shape[0] != y_pred.shape[-1]:
            raise ValueError(
                f"The loss has {weights.shape[0]} class weights but the predictions have "
                f"{y_pred.shape[-1]} classes."
            )
        terms = terms * weights
    return ops.sum(y_true * terms, axis=-1)


def _focal_modulation(gamma):
    if gamma == 0:
        return None
    return lambda p, one_minus_p: ops.power(one_minus_p, gamma)


def _static_weights(class_weights, name):
    """Validate weights given as plain values; pass tensors and variables on."""
    if class_weights is None or (
        hasattr(class_weights, "shape") and not isinstance(class_weights, np.ndarray)
    ):
        return class_weights
    return check.check_class_weights(class_weights, name=name)


# ---------------------------------------------------------------------------
# Per-sample loss functions
# ---------------------------------------------------------------------------


def weighted_categorical_crossentropy(
    y_true, y_pred, class_weights, *, label_smoothing=0.0, from_logits=False
):
    """Class-weighted categorical cross-entropy, per sample.

    .. math:: \\ell = -w_{t} \\log p_t

    (VALF paper eq. 3, with ``w`` usually :func:`balanced_class_weights`.)

    Parameters
    ----------
    y_true : tensor
        One-hot (N, C) or integer labels (N,) or (N, 1).
    y_pred : tensor
        Probabilities (N, C), or logits if ``from_logits``.
    class_weights : sequence of float or tensor
        One positive weight per class.
    label_smoothing : float
        In [0, 1]: the labels become ``y (1 - s) + s / C``, as in Keras' losses.
    from_logits : bool
        Whether ``y_pred`` holds logits.

    Returns
    -------
    tensor
        Loss per sample, shape (N,).

    References
    ----------
    - VALF: Validation-Adaptive Focal Loss for Histopathology (2025). Eurasian Journal of
      Mathematical and Computer Applications 13(4), 128-140.
      https://doi.org/10.32523/2306-6172-2025-13-4-128-140
    - King, G., Zeng, L. (2001). Logistic regression in rare events data. Political
      Analysis 9(2), 137-163. https://doi.org/10.1093/oxfordjournals.pan.a004868

    Examples
    --------
    >>> loss = weighted_categorical_crossentropy([0, 2], [[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
    ...                                          class_weights=[1.0, 1.0, 2.0])
    >>> keras.ops.convert_to_numpy(loss).round(4)
    array([0.6931, 0.4463], dtype=float32)
    """
    weights = _static_weights(class_weights, "class_weights")
    smoothing = check.check_label_smoothing(label_smoothing)
    return _per_sample_loss(
        y_true, y_pred, from_logits, class_weights=weights, label_smoothing=smoothing
    )


def focal_loss(y_true, y_pred, *, gamma=2.0, alpha=None, label_smoothing=0.0, from_logits=False):
    """Focal loss of Lin et al. (2017), per sample.

    .. math:: \\ell = -\\alpha_t (1 - p_t)^\\gamma \\log p_t

    Parameters
    ----------
    y_true, y_pred, label_smoothing, from_logits
        As in :func:`weighted_categorical_crossentropy`.
    gamma : float
        Focusing parameter >= 0; 0 gives (weighted) cross-entropy.
    alpha : None, float or sequence of float
        Balancing factor: None for 1, one value for all classes, or one per
        class. Unlike Keras' ``CategoricalFocalCrossentropy`` (alpha 0.25 by
        default) the default leaves the loss unscaled.

    References
    ----------
    - Lin, T.-Y., Goyal, P., Girshick, R., He, K., Dollár, P. (2017). Focal loss for dense
      object detection. ICCV, 2980-2988. https://doi.org/10.1109/ICCV.2017.324

    Examples
    --------
    >>> loss = focal_loss([1], [[0.2, 0.7, 0.1]], gamma=2.0)
    >>> round(float(keras.ops.convert_to_numpy(loss)[0]), 5)  # 0.3**2 * -log(0.7)
    0.0321
    """
    gamma = check.check_gamma(gamma)
    if not hasattr(alpha, "shape") or isinstance(alpha, np.ndarray):
        alpha = check.check_alpha(alpha)
    return _per_sample_loss(
        y_true,
        y_pred,
        from_logits,
        _focal_modulation(gamma),
        class_weights=alpha,
        label_smoothing=check.check_label_smoothing(label_smoothing),
    )


def class_balanced_loss(
    y_true,
    y_pred,
    samples_per_class,
    *,
    beta=0.999,
    gamma=0.0,
    label_smoothing=0.0,
    from_logits=False,
):
    """Class-balanced loss of Cui et al. (2019), per sample.

    Cross-entropy (``gamma = 0``) or focal loss (``gamma > 0``) weighted by
    :func:`class_balanced_weights`:

    .. math:: \\ell = -w_t (1 - p_t)^\\gamma \\log p_t, \\quad
              w_c \\propto \\frac{1-\\beta}{1-\\beta^{n_c}}, \\ \\sum_c w_c = C.

    References
    ----------
    - Cui, Y., Jia, M., Lin, T.-Y., Song, Y., Belongie, S. (2019). Class-balanced loss based
      on effective number of samples. CVPR, 9268-9277.
      https://doi.org/10.1109/CVPR.2019.00949

    Examples
    --------
    >>> loss = class_balanced_loss([1], [[0.2, 0.7, 0.1]], [100, 10, 50], beta=0.9)
    >>> round(float(keras.ops.convert_to_numpy(loss)[0]), 4)
    0.464
    """
    weights = class_balanced_weights(samples_per_class, beta)
    return focal_loss(
        y_true,
        y_pred,
        gamma=gamma,
        alpha=weights,
        label_smoothing=label_smoothing,
        from_logits=from_logits,
    )


def cefl(y_true, y_pred, *, gamma=2.0, label_smoothing=0.0, from_logits=False):
    """Cross-entropy plus focal loss, CEFL (Wang et al., IEEE Access 2020, eq. 9).

    .. math:: \\ell = -(1 - p_t) \\log p_t - p_t (1 - p_t)^\\gamma \\log p_t

    Well-classified samples (large p_t) are weighted like focal loss, poorly
    classified ones like cross-entropy; ``gamma = 0`` gives cross-entropy.

    References
    ----------
    - Wang et al. (2020), IEEE Access: CEFL (their eq. 9) and CEFL2 (their eq. 11), as the
      study restates them (``book/method.md``, section "The losses").

    Examples
    --------
    >>> loss = cefl([0], [[0.5, 0.5]], gamma=2.0)
    >>> round(float(keras.ops.convert_to_numpy(loss)[0]), 4)  # (0.5 + 0.5 * 0.25) * log 2
    0.4332
    """
    gamma = check.check_gamma(gamma)

    def modulation(p, one_minus_p):
        return one_minus_p + p * ops.power(one_minus_p, gamma)

    smoothing = check.check_label_smoothing(label_smoothing)
    return _per_sample_loss(y_true, y_pred, from_logits, modulation, label_smoothing=smoothing)


def cefl2(y_true, y_pred, *, gamma=2.0, label_smoothing=0.0, from_logits=False):
    """The second CEFL variant, CEFL2 (Wang et al., IEEE Access 2020, eq. 11).

    .. math:: \\ell = -\\frac{(1-p_t)^2}{(1-p_t)^2 + p_t^2} \\log p_t
              - \\frac{p_t^2}{(1-p_t)^2 + p_t^2} (1 - p_t)^\\gamma \\log p_t

    References
    ----------
    - Wang et al. (2020), IEEE Access: CEFL (their eq. 9) and CEFL2 (their eq. 11), as the
      study restates them (``book/method.md``, section "The losses").

    Examples
    --------
    >>> loss = cefl2([0], [[0.5, 0.5]], gamma=2.0)
    >>> round(float(keras.ops.convert_to_numpy(loss)[0]), 4)  # (0.5 + 0.5 * 0.25) * log 2
    0.4332
    """
    gamma = check.check_gamma(gamma)

    def modulation(p, one_minus_p):
        hard, easy = ops.square(one_minus_p), ops.square(p)
        return (hard + easy * ops.power(one_minus_p, gamma)) / (hard + easy)

    smoothing = check.check_label_smoothing(label_smoothing)
    return _per_sample_loss(y_true, y_pred, from_logits, modulation, label_smoothing=smoothing)


def validation_adaptive_focal_loss(
    y_true, y_pred, class_weights, *, gamma=2.0, label_smoothing=0.0, from_logits=False
):
    """VALF, per sample (VALF paper eq. 6); also the per-sample form of DWFL.

    .. math:: \\ell = -w_t (1 - p_t)^\\gamma \\log p_t

    What makes VALF adaptive is not this function but where ``class_weights``
    comes from: :class:`ValidationAdaptiveFocalLoss` holds them in a variable
    that :class:`valf.reweighting.ValidationAdaptiveWeights` updates.

    References
    ----------
    - VALF: Validation-Adaptive Focal Loss for Histopathology (2025). Eurasian Journal of
      Mathematical and Computer Applications 13(4), 128-140.
      https://doi.org/10.32523/2306-6172-2025-13-4-128-140
    - Lin, T.-Y., Goyal, P., Girshick, R., He, K., Dollár, P. (2017). Focal loss for dense
      object detection. ICCV, 2980-2988. https://doi.org/10.1109/ICCV.2017.324

    Examples
    --------
    >>> loss = validation_adaptive_focal_loss([1], [[0.2, 0.7, 0.1]], [1.0, 2.0, 1.0])
    >>> round(float(keras.ops.convert_to_numpy(loss)[0]), 4)  # 2 * 0.3**2 * -log(0.7)
    0.0642
    """
    gamma = check.check_gamma(gamma)
    weights = _static_weights(class_weights, "class_weights")
    return _per_sample_loss(
        y_true,
        y_pred,
        from_logits,
        _focal_modulation(gamma),
        class_weights=weights,
        label_smoothing=check.check_label_smoothing(label_smoothing),
    )


def class_difficulty_balanced_loss(
    y_true, y_pred, class_weights, *, gamma=2.0, label_smoothing=0.0, from_logits=False
):
    """Class-wise difficulty-balanced focal loss (CDB), per sample.

    .. math:: \\ell = -w_t (1 - p_t)^\\gamma \\log p_t, \\qquad
              w_c = \\frac{d_c^\\tau}{\\frac{1}{C}\\sum_k d_k^\\tau}, \\quad d_c = 1 - a_c

    The equation of :func:`validation_adaptive_focal_loss`, with CDB's weights
    (:func:`valf.reweighting.cdb_class_weights` of the per-class validation accuracies
    :math:`a_c`), which are 0 for a class classified perfectly: ``class_weights`` must be
    finite and >= 0 with a positive mean (VALF's must be > 0). ``gamma = 0`` gives CDB-CE,
    the loss of the official CIFAR-LT and EGTEA code; ``gamma > 0`` CDB on focal loss.

    Parameters
    ----------
    y_true, y_pred, label_smoothing, from_logits
        As in :func:`weighted_categorical_crossentropy`.
    class_weights : sequence of float or tensor
        One weight >= 0 per class, not all 0.
    gamma : float
        Focusing parameter >= 0.

    References
    ----------
    - Sinha, S., Ohashi, H., Nakamura, K. (2020). Class-wise difficulty-balanced loss for
      solving class-imbalance. ACCV 2020. https://arxiv.org/abs/2010.01824
    - Sinha, S., Ohashi, H., Nakamura, K. (2022). Class-difficulty based methods for
      long-tailed visual recognition. International Journal of Computer Vision.
      https://doi.org/10.1007/s11263-022-01643-3

    Examples
    --------
    >>> weights = valf.cdb_class_weights([1.0, 0.6, 0.4], tau=1.0)
    >>> weights.round(6)
    array([0. , 1.2, 1.8])
    >>> loss = class_difficulty_balanced_loss([2, 0], [[0.2, 0.1, 0.7], [0.5, 0.3, 0.2]], weights)
    >>> keras.ops.convert_to_numpy(loss).round(4)  # 1.8 * 0.3**2 * -log(0.7); weight 0
    array([0.0578, 0.    ], dtype=float32)
    """
    gamma = check.check_gamma(gamma)
    if class_weights is not None and (
        not hasattr(class_weights, "shape") or isinstance(class_weights, np.ndarray)
    ):
        class_weights = check.check_class_weights(class_weights, allow_zero=True)
    return _per_sample_loss(
        y_true,
        y_pred,
        from_logits,
        _focal_modulation(gamma),
        class_weights=class_weights,
        label_smoothing=check.check_label_smoothing(label_smoothing),
    )


# ---------------------------------------------------------------------------
# Loss classes
# ---------------------------------------------------------------------------


class _StudyLoss(keras.losses.Loss):
    """Shared constructor and config of the library's losses: ``label_smoothing`` and
    ``from_logits``, then Keras' ``reduction``, ``name`` and ``dtype``."""

    def __init__(self, *, label_smoothing, from_logits, name, reduction, dtype):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = check.check_label_smoothing(label_smoothing)
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {
            **super().get_config(),
            "label_smoothing": self.label_smoothing,
            "from_logits": self.from_logits,
        }

    def _options(self):
        return {"label_smoothing": self.label_smoothing, "from_logits": self.from_logits}


def _config_values(values):
    """A config value: None, a float, or a list of Python floats."""
    if values is None or isinstance(values, float):
        return values
    return np.asarray(values, dtype=np.float64).reshape(-1).tolist()


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WeightedCategoricalCrossentropy(_StudyLoss):
    """Class-weighted categorical cross-entropy (WCCE).

    See :func:`weighted_categorical_crossentropy`.

    Parameters
    ----------
    class_weights : sequence of float
        One positive weight per class, for example
        ``balanced_class_weights(train_labels)``.
    label_smoothing : float
        In [0, 1], with Keras' meaning: labels become ``y (1 - s) + s / C``.
    from_logits : bool
        Whether predictions are logits.
    reduction, name, dtype
        As in :class:`keras.losses.Loss`.

    References
    ----------
    - VALF: Validation-Adaptive Focal Loss for Histopathology (2025). Eurasian Journal of
      Mathematical and Computer Applications 13(4), 128-140.
      https://doi.org/10.32523/2306-6172-2025-13-4-128-140
    - King, G., Zeng, L. (2001). Logistic regression in rare events data. Political
      Analysis 9(2), 137-163. https://doi.org/10.1093/oxfordjournals.pan.a004868

    Examples
    --------
    >>> loss = WeightedCategoricalCrossentropy([1.0, 2.0])
    >>> round(float(loss([0, 1], [[0.9, 0.1], [0.5, 0.5]])), 4)  # (-log .9 - 2 log .5) / 2
    0.7458
    """

    def __init__(
        self,
        class_weights,
        *,
        label_smoothing=0.0,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="weighted_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(
            label_smoothing=label_smoothing,
            from_logits=from_logits,
            name=name,
            reduction=reduction,
            dtype=dtype,
        )
        self.class_weights = check.check_class_weights(class_weights)

    def call(self, y_true, y_pred):
        return weighted_categorical_crossentropy(
            y_true, y_pred, self.class_weights, **self._options()
        )

    def get_config(self):
        return {**super().get_config(), "class_weights": _config_values(self.class_weights)}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FocalLoss(_StudyLoss):
    """Focal loss (FL), optionally alpha-balanced.

    See :func:`focal_loss`. With ``alpha`` a list it equals Keras'
    ``CategoricalFocalCrossentropy(alpha=alpha, gamma=gamma)`` on one-hot labels, with the
    same ``label_smoothing``.

    Parameters
    ----------
    gamma : float
        Focusing parameter >= 0.
    alpha : None, float or sequence of float
        Balancing factor: None (1), a scalar, or one value per class.
    label_smoothing, from_logits, reduction, name, dtype
        As in :class:`WeightedCategoricalCrossentropy`.

    References
    ----------
    - Lin, T.-Y., Goyal, P., Girshick, R., He, K., Dollár, P. (2017). Focal loss for dense
      object detection. ICCV, 2980-2988. https://doi.org/10.1109/ICCV.2017.324

    Examples
    --------
    >>> loss = FocalLoss(gamma=2.0)
    >>> round(float(loss([1], [[0.2, 0.7, 0.1]])), 4)
    0.0321
    """

    def __init__(
        self,
        *,
        gamma=2.0,
        alpha=None,
        label_smoothing=0.0,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="focal_loss",
        dtype=None,
    ):
        super().__init__(
            label_smoothing=label_smoothing,
            from_logits=from_logits,
            name=name,
            reduction=reduction,
            dtype=dtype,
        )
        self.gamma = check.check_gamma(gamma)
        self.alpha = check.check_alpha(alpha)

    def call(self, y_true, y_pred):
        return focal_loss(y_true, y_pred, gamma=self.gamma, alpha=self.alpha, **self._options())

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": _config_values(self.alpha)}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassBalancedLoss(_StudyLoss):
    """Class-balanced loss (CB) on cross-entropy or focal loss.

    See :func:`class_balanced_loss`; the weights are in ``.class_weights``.

    Parameters
    ----------
    samples_per_class : sequence of int
        Training samples per class.
    beta : float
        In [0, 1); Cui et al. use 0.99, 0.999 or 0.9999.
    gamma : float
        0 for class-balanced cross-entropy, > 0 for class-balanced focal loss.
    label_smoothing, from_logits, reduction, name, dtype
        As in :class:`WeightedCategoricalCrossentropy`.

    References
    ----------
    - Cui, Y., Jia, M., Lin, T.-Y., Song, Y., Belongie, S. (2019). Class-balanced loss based
      on effective number of samples. CVPR, 9268-9277.
      https://doi.org/10.1109/CVPR.2019.00949

    Examples
    --------
    >>> loss = ClassBalancedLoss([100, 10, 50], beta=0.9)
    >>> round(float(loss([1], [[0.2, 0.7, 0.1]])), 4)
    0.464
    """

    def __init__(
        self,
        samples_per_class,
        *,
        beta=0.999,
        gamma=0.0,
        label_smoothing=0.0,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="class_balanced_loss",
        dtype=None,
    ):
        super().__init__(
            label_smoothing=label_smoothing,
            from_logits=from_logits,
            name=name,
            reduction=reduction,
            dtype=dtype,
        )
        self.samples_per_class = check.check_samples_per_class(samples_per_class)
        self.beta = check.check_beta(beta)
        self.gamma = check.check_gamma(gamma)
        self.class_weights = class_balanced_weights(self.samples_per_class, self.beta)

    def call(self, y_true, y_pred):
        return focal_loss(
            y_true, y_pred, gamma=self.gamma, alpha=self.class_weights, **self._options()
        )

    def get_config(self):
        return {
            **super().get_config(),
            "samples_per_class": [int(n) for n in self.samples_per_class],
            "beta": self.beta,
            "gamma": self.gamma,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CEFL(_StudyLoss):
    """Cross-entropy plus focal loss (CEFL), eq. 9 of Wang et al. (2020).

    See :func:`cefl`.

    References
    ----------
    - Wang et al. (2020), IEEE Access: CEFL (their eq. 9) and CEFL2 (their eq. 11), as the
      study restates them (``book/method.md``, section "The losses").

    Examples
    --------
    >>> round(float(CEFL(gamma=2.0)([0], [[0.5, 0.5]])), 4)
    0.4332
    """

    _function = staticmethod(cefl)

    def __init__(
        self,
        *,
        gamma=2.0,
        label_smoothing=0.0,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="cefl",
        dtype=None,
    ):
        super().__init__(
            label_smoothing=label_smoothing,
            from_logits=from_logits,
            name=name,
            reduction=reduction,
            dtype=dtype,
        )
        self.gamma = check.check_gamma(gamma)

    def call(self, y_true, y_pred):
        return self._function(y_true, y_pred, gamma=self.gamma, **self._options())

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CEFL2(CEFL):
    """The second CEFL variant (CEFL2), eq. 11 of Wang et al. (2020).

    See :func:`cefl2`.

    References
    ----------
    - Wang et al. (2020), IEEE Access: CEFL (their eq. 9) and CEFL2 (their eq. 11), as the
      study restates them (``book/method.md``, section "The losses").

    Examples
    --------
    >>> round(float(CEFL2(gamma=2.0)([0], [[0.5, 0.5]])), 4)
    0.4332
    """

    _function = staticmethod(cefl2)

    def __init__(
        self,
        *,
        gamma=2.0,
        label_smoothing=0.0,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="cefl2",
        dtype=None,
    ):
        super().__init__(
            gamma=gamma,
            label_smoothing=label_smoothing,
            from_logits=from_logits,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )


class _AdaptiveFocalLoss(_StudyLoss):
    """Focal loss whose per-class weights live in a non-trainable variable.

    A callback changes the weights with :meth:`set_class_weights`, which
    assigns the variable in place: a compiled train step reads the variable,
    not a constant, so the very next step sees the new values.
    """

    #: Whether a class weight may be 0 (CDB's may); otherwise every weight must be > 0.
    _zero_weights_allowed = False

    def __init__(
        self, num_classes, *, gamma, prior, label_smoothing, from_logits, reduction, name, dtype
    ):
        super().__init__(
            label_smoothing=label_smoothing,
            from_logits=from_logits,
            name=name,
            reduction=reduction,
            dtype=dtype,
        )
        self.num_classes = check.check_num_classes(num_classes)
        self.gamma = check.check_gamma(gamma)
        if prior is None:
            prior = np.ones(self.num_classes)
        self.prior = check.check_class_weights(
            prior, self.num_classes, name="prior", allow_zero=self._zero_weights_allowed
        )
        self.class_weights = keras.Variable(
            self.prior.astype("float32"),
            trainable=False,
            dtype="float32",
            name=f"{self.name}_class_weights",
        )

    def set_class_weights(self, weights):
        """Assign new per-class weights (validated: C positive finite values; for CDB,
        C finite values >= 0, not all 0)."""
        weights = check.check_class_weights(
            weights, self.num_classes, name="weights", allow_zero=self._zero_weights_allowed
        )
        self.class_weights.assign(weights.astype("float32"))

    def get_class_weights(self):
        """The current per-class weights as a float64 NumPy array."""
        return np.asarray(ops.convert_to_numpy(self.class_weights.value), dtype=np.float64)

    def call(self, y_true, y_pred):
        return validation_adaptive_focal_loss(
            y_true, y_pred, self.class_weights, gamma=self.gamma, **self._options()
        )

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "gamma": self.gamma,
            "prior": _config_values(self.prior),
            "class_weights": _config_values(self.get_class_weights()),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        current = config.pop("class_weights", None)
        num_classes = config.pop("num_classes")
        loss = cls(num_classes, **config)
        if current is not None:
            loss.set_class_weights(current)
        return loss


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DynamicWeightedFocalLoss(_AdaptiveFocalLoss):
    """Dynamically weighted focal loss (DWFL), as this project defines it.

    The VALF paper uses DWFL as a baseline without stating its rule. This
    project's definition: the per-sample loss is :func:`focal_loss` with
    per-class weights ``w`` (uniform, or ``prior``, at the start), and after
    every epoch the weights are *recomputed* (not nudged) from the model's
    per-class accuracy :math:`a_c` on the training data:

    .. math:: w_c = \\frac{1 - a_c + s}{\\frac{1}{C}\\sum_k (1 - a_k + s)},

    with smoothing ``s`` (0.1 by default), so the classes the model gets wrong
    on its own training data weigh more and the weights have mean 1. The rule
    is :func:`valf.reweighting.dynamic_class_weights`, applied by the
    :class:`valf.reweighting.DynamicWeights` callback. Unlike VALF it uses
    training, not validation, data and has no memory of earlier weights.

    Parameters
    ----------
    num_classes : int
        Number of classes C.
    gamma : float
        Focusing parameter >= 0.
    prior : None, sequence or dict
        Weights before the first update; see :class:`ValidationAdaptiveFocalLoss`.
    label_smoothing, from_logits, reduction, name, dtype
        As in :class:`WeightedCategoricalCrossentropy`.

    References
    ----------
    - VALF: Validation-Adaptive Focal Loss for Histopathology (2025). Eurasian Journal of
      Mathematical and Computer Applications 13(4), 128-140.
      https://doi.org/10.32523/2306-6172-2025-13-4-128-140

    Examples
    --------
    >>> loss = DynamicWeightedFocalLoss(3)
    >>> loss.get_class_weights()
    array([1., 1., 1.])
    """

    def __init__(
        self,
        num_classes,
        *,
        gamma=2.0,
        prior=None,
        label_smoothing=0.0,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="dynamic_weighted_focal_loss",
        dtype=None,
    ):
        super().__init__(
            num_classes,
            gamma=gamma,
            prior=prior,
            label_smoothing=label_smoothing,
            from_logits=from_logits,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ValidationAdaptiveFocalLoss(_AdaptiveFocalLoss):
    """Validation-adaptive focal loss (VALF), eq. 6 of the VALF paper.

    .. math:: \\ell = -w_t (1 - p_t)^\\gamma \\log p_t

    ``w`` is a non-trainable ``keras.Variable``, ``.class_weights``, that
    :class:`valf.reweighting.ValidationAdaptiveWeights` updates after every
    epoch past the warm-up from per-class validation accuracy (eqs. 7-8).

    Parameters
    ----------
    num_classes : int
        Number of classes C.
    gamma : float
        Focusing parameter >= 0; with gamma = 0 and unit weights VALF is
        categorical cross-entropy.
    prior : None, sequence of float or dict
        Initial weights: None for uniform, a list of C positive values, or a
        dict ``{class_index: weight}`` whose missing classes get 1.
    label_smoothing, from_logits, reduction, name, dtype
        As in :class:`WeightedCategoricalCrossentropy`.

    Notes
    -----
    ``get_config`` records the prior and the current weights (plain floats),
    so a saved model's loss resumes from the weights it had reached. The
    variable belongs to the loss; :func:`valf.reweighting.track_class_weights`
    makes the model track it, so that model weight files carry it too.

    References
    ----------
    - VALF: Validation-Adaptive Focal Loss for Histopathology (2025). Eurasian Journal of
      Mathematical and Computer Applications 13(4), 128-140.
      https://doi.org/10.32523/2306-6172-2025-13-4-128-140
    - Lin, T.-Y., Goyal, P., Girshick, R., He, K., Dollár, P. (2017). Focal loss for dense
      object detection. ICCV, 2980-2988. https://doi.org/10.1109/ICCV.2017.324

    Examples
    --------
    >>> loss = ValidationAdaptiveFocalLoss(3, gamma=2.0, prior={2: 2.0})
    >>> loss.get_class_weights()
    array([1., 1., 2.])
    >>> round(float(loss([2], [[0.2, 0.1, 0.7]])), 4)  # 2 * 0.3**2 * -log(0.7)
    0.0642
    """

    def __init__(
        self,
        num_classes,
        *,
        gamma=2.0,
        prior=None,
        label_smoothing=0.0,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="validation_adaptive_focal_loss",
        dtype=None,
    ):
        super().__init__(
            num_classes,
            gamma=gamma,
            prior=prior,
            label_smoothing=label_smoothing,
            from_logits=from_logits,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassDifficultyBalancedLoss(_AdaptiveFocalLoss):
    """Class-wise difficulty-balanced loss (CDB) on focal loss, Sinha et al. (2020, 2022).

    .. math:: \\ell = -w_t (1 - p_t)^\\gamma \\log p_t, \\qquad
              w_c = \\frac{d_c^\\tau}{\\frac{1}{C}\\sum_k d_k^\\tau}, \\quad d_c = 1 - a_c

    The closest prior art of VALF: per-class weights from the per-class validation accuracy
    :math:`a_c` (the class's *difficulty* :math:`d_c = 1 - a_c`), in a non-trainable
    ``keras.Variable`` (``.class_weights``) that
    :class:`valf.reweighting.ClassDifficultyWeights` sets after every epoch, combined with
    focal loss exactly as VALF is. Unlike VALF the weights are *recomputed* from the latest
    accuracies each time (no memory of earlier weights), and a class at accuracy 1 gets
    weight 0. The rule, and what ``tau="dynamic"`` means, is
    :func:`valf.reweighting.cdb_class_weights`.

    Parameters
    ----------
    num_classes : int
        Number of classes C.
    gamma : float
        Focusing parameter >= 0; 0 gives CDB-CE, the loss of the official CIFAR-LT and EGTEA
        code.
    tau : float or "dynamic"
        The exponent: a number > 0 (the official code offers 0.5, 1, 1.5, 2 and 5; its README
        trains with 1.5) or ``"dynamic"`` (the default, as in the official code), recomputed
        from the difficulties at every update. Recorded in the config; the callback uses it.
    prior : None, sequence or dict
        Weights before the first update: None (uniform, as in the official code, which starts
        from difficulties of 1), or as in :class:`ValidationAdaptiveFocalLoss`; values >= 0,
        not all 0.
    label_smoothing, from_logits, reduction, name, dtype
        As in :class:`WeightedCategoricalCrossentropy`.

    Notes
    -----
    The per-sample form is :func:`class_difficulty_balanced_loss`. With Keras' reductions the
    batch loss is the mean over the batch of the weighted per-sample losses, as in the
    official CIFAR-LT code (``reduction='none'``, then ``torch.mean``); PyTorch's
    ``CrossEntropyLoss(weight=...)`` with its default ``'mean'`` reduction (the official
    ImageNet-LT code) divides by the sum of the samples' weights instead.

    ``get_config`` records ``tau``, the prior and the current weights (zeros included), so a
    saved model's loss resumes from the weights it had reached.

    References
    ----------
    - Sinha, S., Ohashi, H., Nakamura, K. (2020). Class-wise difficulty-balanced loss for
      solving class-imbalance. ACCV 2020. https://arxiv.org/abs/2010.01824
    - Sinha, S., Ohashi, H., Nakamura, K. (2022). Class-difficulty based methods for
      long-tailed visual recognition. International Journal of Computer Vision.
      https://doi.org/10.1007/s11263-022-01643-3
    - Lin, T.-Y., Goyal, P., Girshick, R., He, K., Dollár, P. (2017). Focal loss for dense
      object detection. ICCV, 2980-2988. https://doi.org/10.1109/ICCV.2017.324

    Examples
    --------
    >>> loss = ClassDifficultyBalancedLoss(3, gamma=2.0, tau=1.0)
    >>> loss.get_class_weights()
    array([1., 1., 1.])
    >>> loss.set_class_weights(valf.cdb_class_weights([1.0, 0.6, 0.4], tau=1.0))
    >>> loss.get_class_weights().round(6)
    array([0. , 1.2, 1.8])
    >>> round(float(loss([2], [[0.2, 0.1, 0.7]])), 4)  # 1.8 * 0.3**2 * -log(0.7)
    0.0578
    """

    _zero_weights_allowed = True

    def __init__(
        self,
        num_classes,
        *,
        gamma=2.0,
        tau="dynamic",
        prior=None,
        label_smoothing=0.0,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="class_difficulty_balanced_loss",
        dtype=None,
    ):
        super().__init__(
            num_classes,
            gamma=gamma,
            prior=prior,
            label_smoothing=label_smoothing,
            from_logits=from_logits,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        self.tau = check.check_cdb_tau(tau)

    def call(self, y_true, y_pred):
        return class_difficulty_balanced_loss(
            y_true, y_pred, self.class_weights, gamma=self.gamma, **self._options()
        )

    def get_config(self):
        return {**super().get_config(), "tau": self.tau}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DeferredReweightingLoss(_AdaptiveFocalLoss):
    """Focal loss with deferred re-weighting (DRW), Cao et al. (2019).

    .. math:: \\ell = -w_t (1 - p_t)^\\gamma \\log p_t, \\qquad
              w = \\begin{cases} 1 & \\text{during the warm-up,} \\\\
              w^{\\mathrm{CB}} & \\text{after it,} \\end{cases} \\qquad
              w^{\\mathrm{CB}}_c \\propto \\frac{1 - \\beta}{1 - \\beta^{n_c}}, \\
              \\sum_c w^{\\mathrm{CB}}_c = C.

    Trains with uniform weights (plain focal loss, or cross-entropy with ``gamma = 0``)
    until the warm-up ends, then with the class-balanced weights of Cui et al.
    (:func:`class_balanced_weights`, normalised to sum C as LDAM-DRW does). The weights live
    in a non-trainable ``keras.Variable`` (``.class_weights``) that
    :class:`valf.reweighting.DeferredReweighting` switches at the epoch the warm-up ends;
    without that callback the loss stays uniform. Per sample it is :func:`focal_loss` before
    the switch and :func:`class_balanced_loss` after it.

    Parameters
    ----------
    samples_per_class : sequence of int
        Training samples per class, each >= 1.
    beta : float
        In [0, 1); 0.9999 as in LDAM-DRW.
    gamma : float
        Focusing parameter >= 0; 0 gives DRW on cross-entropy.
    label_smoothing, from_logits, reduction, name, dtype
        As in :class:`WeightedCategoricalCrossentropy`.

    Attributes
    ----------
    balanced_weights : numpy.ndarray
        The class-balanced weights the loss switches to (float64, sum C).
    prior : numpy.ndarray
        The weights before the switch: ones.

    Notes
    -----
    LDAM-DRW's ``FocalLoss`` applies the focal factor to the *weighted* cross-entropy
    (:math:`p` taken as :math:`\\exp(-w_t \\cdot \\mathrm{CE})`); this loss applies
    :math:`w_t` outside the focal term, as :func:`focal_loss` and VALF do, so that the two
    differ only in where the weights come from. The batch loss is the mean over the batch
    (Keras' reductions), not PyTorch's weighted mean of ``CrossEntropyLoss(weight=...)``.
    ``get_config`` records the weights in force, so a saved model resumes with them.

    References
    ----------
    - Cao, K., Wei, C., Gaidon, A., Arechiga, N., Ma, T. (2019). Learning imbalanced datasets
      with label-distribution-aware margin loss. NeurIPS 32, 1567-1578.
      https://arxiv.org/abs/1906.07413
    - Cui, Y., Jia, M., Lin, T.-Y., Song, Y., Belongie, S. (2019). Class-balanced loss based
      on effective number of samples. CVPR, 9268-9277.
      https://doi.org/10.1109/CVPR.2019.00949
    - Lin, T.-Y., Goyal, P., Girshick, R., He, K., Dollár, P. (2017). Focal loss for dense
      object detection. ICCV, 2980-2988. https://doi.org/10.1109/ICCV.2017.324

    Examples
    --------
    >>> loss = DeferredReweightingLoss([100, 10, 50], beta=0.9, gamma=0.0)
    >>> loss.get_class_weights()
    array([1., 1., 1.])
    >>> loss.use_balanced_weights(True)  # what DeferredReweighting does after the warm-up
    >>> loss.get_class_weights().round(3)
    array([0.847, 1.301, 0.852])
    >>> round(float(loss([1], [[0.2, 0.7, 0.1]])), 4)  # 1.301 * -log(0.7)
    0.464
    """

    def __init__(
        self,
        samples_per_class,
        *,
        beta=0.9999,
        gamma=2.0,
        label_smoothing=0.0,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="deferred_reweighting_loss",
        dtype=None,
    ):
        counts = check.check_samples_per_class(samples_per_class)
        super().__init__(
            counts.shape[0],
            gamma=gamma,
            prior=None,
            label_smoothing=label_smoothing,
            from_logits=from_logits,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        self.samples_per_class = counts
        self.beta = check.check_beta(beta)
        self.balanced_weights = class_balanced_weights(counts, self.beta)

    def use_balanced_weights(self, balanced):
        """Assign the class-balanced weights (``balanced`` true) or uniform ones."""
        self.set_class_weights(self.balanced_weights if balanced else self.prior)

    def get_config(self):
        config = super().get_config()
        del config["num_classes"], config["prior"]
        return {
            **config,
            "samples_per_class": [int(n) for n in self.samples_per_class],
            "beta": self.beta,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        current = config.pop("class_weights", None)
        loss = cls(**config)
        if current is not None:
            loss.set_class_weights(current)
        return loss
