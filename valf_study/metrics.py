"""Test-set metrics of the study (the book's Method chapter, ``book/method.md``, section "What is
measured"), scikit-learn underneath.

All functions take integer labels ``y_true`` (N,) and predicted class
probabilities ``probabilities`` (N, C); predictions are their argmax.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

__all__ = [
    "bootstrap_interval",
    "classification_metrics",
    "confusion_matrix",
    "expected_calibration_error",
    "f1_of_means",
    "macro_f1",
    "macro_f1_of_resamples",
    "metric_of_resamples",
    "one_vs_rest_accuracy",
]


def _check(y_true, probabilities):
    y_true = np.asarray(y_true).reshape(-1).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] != y_true.shape[0]:
        raise ValueError(
            f"`probabilities` must have shape (N, C) with N = {y_true.shape[0]} labels, "
            f"received {probabilities.shape}."
        )
    num_classes = probabilities.shape[1]
    if y_true.size and (y_true.min() < 0 or y_true.max() >= num_classes):
        raise ValueError(f"`y_true` must hold class indices in [0, {num_classes}).")
    return y_true, probabilities, num_classes


def macro_f1(y_true, probabilities):
    """Mean of the per-class F1 scores (a class never predicted nor present scores 0)."""
    y_true, probabilities, num_classes = _check(y_true, probabilities)
    return float(
        skm.f1_score(
            y_true,
            probabilities.argmax(1),
            labels=range(num_classes),
            average="macro",
            zero_division=0,
        )
    )


def f1_of_means(precision, recall):
    """The harmonic mean of macro precision and macro recall, 2PR/(P+R) (0 when both are 0).

    This is not macro-F1 (the mean of per-class F1, the study's ``f1``): it is never below it,
    and it is what the VALF paper's F1 column holds (49 of its 50 rows equal 2PR/(P+R) of the
    printed P and R). The study reports both.

    Examples
    --------
    >>> round(f1_of_means(0.92, 0.87), 3)
    0.894
    """
    precision, recall = float(precision), float(recall)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def one_vs_rest_accuracy(y_true, probabilities):
    """Mean over classes of the one-vs-rest accuracy: the VALF paper's eq. 9 as printed.

    Every error is wrong for two one-vs-rest problems and right for the others, so for C
    classes it is ``1 - 2 (1 - accuracy) / C``; for three classes it cannot go below 1/3.

    Examples
    --------
    >>> one_vs_rest_accuracy([0, 1, 2], [[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    0.7777777777777778
    """
    y_true, probabilities, num_classes = _check(y_true, probabilities)
    accuracy = float((probabilities.argmax(1) == y_true).mean())
    return 1 - 2 * (1 - accuracy) / num_classes


def confusion_matrix(y_true, probabilities, normalize="true"):
    """Confusion matrix, rows true classes; ``normalize="true"`` makes rows sum to 1."""
    y_true, probabilities, num_classes = _check(y_true, probabilities)
    return skm.confusion_matrix(
        y_true, probabilities.argmax(1), labels=range(num_classes), normalize=normalize
    )


def expected_calibration_error(y_true, probabilities, n_bins=15):
    """Expected calibration error of the top-class confidence, equal-width bins.

    .. math::

        \\mathrm{ECE} = \\sum_b \\frac{|B_b|}{N}
        \\, \\bigl|\\mathrm{acc}(B_b) - \\mathrm{conf}(B_b)\\bigr|

    References
    ----------
    - Naeini, M. P., Cooper, G. F., Hauskrecht, M. (2015). Obtaining well calibrated
      probabilities using Bayesian binning. AAAI 29(1).
      https://doi.org/10.1609/aaai.v29i1.9602

    Examples
    --------
    >>> expected_calibration_error([0, 1], [[0.9, 0.1], [0.8, 0.2]], n_bins=10)
    0.45
    """
    y_true, probabilities, _ = _check(y_true, probabilities)
    confidence = probabilities.max(1)
    correct = (probabilities.argmax(1) == y_true).astype(float)
    # Bin b holds confidences in (b/n, (b+1)/n]; confidence 0 falls in the first bin.
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    error = 0.0
    for b in np.unique(bins):
        members = bins == b
        error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return round(float(error), 12)


#: The metrics :func:`metric_of_resamples` computes from confusion counts.
RESAMPLED_METRICS = ("accuracy", "precision", "recall", "f1", "f1_of_means", "ovr_accuracy")


def metric_of_resamples(metric, y_true, predicted, indices, num_classes):
    """A metric of many resamples at once: value b scores ``y_true[indices[b]]`` against
    ``predicted[indices[b]]`` as :func:`classification_metrics` would.

    ``metric`` is one of :data:`RESAMPLED_METRICS`: ordinary ``accuracy``, macro
    ``precision``, ``recall`` and ``f1`` (a class never predicted nor present scores 0),
    ``f1_of_means`` (2PR/(P+R) of macro P and R) and ``ovr_accuracy`` (mean one-vs-rest
    accuracy).

    Examples
    --------
    >>> y, p = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])
    >>> metric_of_resamples("accuracy", y, p, np.array([[0, 1, 2, 3], [0, 0, 1, 1]]), 3)
    array([0.75, 1.  ])
    """
    if metric not in RESAMPLED_METRICS:
        raise ValueError(f"`metric` must be one of {list(RESAMPLED_METRICS)}, received {metric!r}.")
    true, guess = y_true[indices], predicted[indices]
    classes = np.arange(num_classes)[:, None, None]
    hits = ((true == classes) & (guess == classes)).sum(axis=2)  # (C, B)
    actual, claimed = (true == classes).sum(axis=2), (guess == classes).sum(axis=2)
    size = indices.shape[1]
    if metric == "accuracy":
        return hits.sum(axis=0) / size
    if metric == "ovr_accuracy":
        return 1 - 2 * (size - hits.sum(axis=0)) / (num_classes * size)
    precision = np.divide(hits, claimed, out=np.zeros(hits.shape), where=claimed > 0)
    recall = np.divide(hits, actual, out=np.zeros(hits.shape), where=actual > 0)
    if metric == "precision":
        return precision.mean(axis=0)
    if metric == "recall":
        return recall.mean(axis=0)
    if metric == "f1_of_means":
        p, r = precision.mean(axis=0), recall.mean(axis=0)
        return np.divide(2 * p * r, p + r, out=np.zeros(p.shape), where=p + r > 0)
    support = actual + claimed
    f1 = np.divide(2 * hits, support, out=np.zeros(hits.shape), where=support > 0)
    return f1.mean(axis=0)


def macro_f1_of_resamples(y_true, predicted, indices, num_classes):
    """Macro-F1 of many resamples at once: row b scores ``y_true[indices[b]]`` against
    ``predicted[indices[b]]``, as :func:`macro_f1` would (an absent class scores 0).

    Examples
    --------
    >>> macro_f1_of_resamples(np.array([0, 1]), np.array([0, 0]), np.array([[0, 1], [0, 0]]), 2)
    array([0.33333333, 0.5       ])
    """
    return metric_of_resamples("f1", y_true, predicted, indices, num_classes)


def bootstrap_interval(
    y_true, probabilities, metric=macro_f1, n_resamples=1000, level=0.95, seed=0
):
    """Seeded percentile bootstrap interval of a test-set metric, resampling images.

    Returns ``(low, high)``. With 48-50 test images one image moves macro-F1 by
    about 0.02, so these intervals are wide; that is the point of showing them. Macro-F1
    is computed for all resamples at once (:func:`macro_f1_of_resamples`); another
    ``metric(y_true, probabilities)`` is called once per resample.

    References
    ----------
    - Efron, B., Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman and
      Hall/CRC. https://doi.org/10.1201/9780429246593
    """
    y_true, probabilities, num_classes = _check(y_true, probabilities)
    rng = np.random.default_rng(seed)
    n = y_true.shape[0]
    indices = rng.integers(0, n, (n_resamples, n))
    if metric is macro_f1:
        values = macro_f1_of_resamples(y_true, probabilities.argmax(1), indices, num_classes)
    else:
        values = [metric(y_true[idx], probabilities[idx]) for idx in indices]
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def classification_metrics(
    y_true, probabilities, class_names=None, bootstrap_resamples=1000, seed=0
):
    """Every test metric of the study, as a flat dict of plain floats.

    Keys: ``accuracy`` (ordinary), ``ovr_accuracy`` (mean one-vs-rest accuracy, the VALF
    paper's eq. 9 as printed), ``balanced_accuracy``, ``precision``, ``recall`` (macro),
    ``f1`` (macro: the mean of per-class F1), ``f1_of_means`` (2PR/(P+R) of macro P and R:
    the VALF paper's F1), ``auc`` (macro one-vs-rest; with two classes the AUC of the positive
    class, label 1; NaN when a class is absent), ``ece``,
    ``f1_ci_low`` / ``f1_ci_high`` (bootstrap 95 % over test images; NaN with
    ``bootstrap_resamples=0``), and per class ``precision_<name>``, ``recall_<name>``,
    ``f1_<name>``.

    References
    ----------
    - Pedregosa, F. et al. (2011). Scikit-learn: machine learning in Python. Journal of
      Machine Learning Research 12, 2825-2830.
    """
    y_true, probabilities, num_classes = _check(y_true, probabilities)
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    predicted = probabilities.argmax(1)
    labels = list(range(num_classes))
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, predicted, labels=labels, zero_division=0
    )
    scores = probabilities
    if not np.allclose(scores.sum(1), 1.0):
        # Only when needed: renormalising rows that already sum to 1 moves scores by
        # 1e-16, which breaks ties differently and changes the AUC.
        scores = scores / scores.sum(1, keepdims=True)
    if len(np.unique(y_true)) < num_classes:  # one-vs-rest AUC is undefined for an absent class
        auc = float("nan")
    elif num_classes == 2:  # the ROC of the positive class (label 1), as scikit-learn has it
        auc = skm.roc_auc_score(y_true, scores[:, 1])
    else:
        auc = skm.roc_auc_score(y_true, scores, multi_class="ovr", average="macro", labels=labels)
    low = high = float("nan")
    if bootstrap_resamples:
        low, high = bootstrap_interval(
            y_true, probabilities, macro_f1, bootstrap_resamples, seed=seed
        )
    result = {
        "accuracy": float(skm.accuracy_score(y_true, predicted)),
        "ovr_accuracy": one_vs_rest_accuracy(y_true, probabilities),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, predicted)),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "f1_of_means": f1_of_means(precision.mean(), recall.mean()),
        "auc": float(auc),
        "ece": expected_calibration_error(y_true, probabilities),
        "f1_ci_low": low,
        "f1_ci_high": high,
    }
    for name, p, r, f in zip(names, precision, recall, f1):
        result.update(
            {f"precision_{name}": float(p), f"recall_{name}": float(r), f"f1_{name}": float(f)}
        )
    return result
