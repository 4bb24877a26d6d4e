"""Training-set samplers: the resampling baselines and the long-tailed subsampler.

Every sampler returns row indices into the training frame, so the input
pipeline is unchanged: a run selects one by name (:data:`SAMPLERS`) with
:func:`resample`.

- ``undersample``: random under-sampling of every class to the minority count.
- ``oversample``: over-sampling of every class to the majority count by
  repeating samples. The repeats become distinct images because the train
  transform augments every sample independently: over-sampling by
  augmentation, as in the red-blood-cell focal-loss study.
- :func:`long_tailed_indices`: subsampling to imbalance ratio rho,
  ``N_i = N_max * rho ** (-i / (C - 1))`` (Cui et al. 2019; the CEFL paper).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SAMPLERS",
    "imbalance_ratio",
    "long_tailed_counts",
    "long_tailed_indices",
    "oversample",
    "resample",
    "undersample",
]


def _class_indices(labels):
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        raise ValueError("`labels` is empty; expected the training labels.")
    classes = np.unique(labels)
    return classes, [np.flatnonzero(labels == c) for c in classes]


def imbalance_ratio(labels):
    """Largest class count over smallest, rho = max_c n_c / min_c n_c.

    Examples
    --------
    >>> imbalance_ratio([0, 0, 0, 0, 1, 1, 2])
    4.0
    """
    _, members = _class_indices(labels)
    counts = [len(m) for m in members]
    return max(counts) / min(counts)


def undersample(labels, seed):
    """Indices keeping ``min_c n_c`` random samples of every class (no repeats), sorted.

    References
    ----------
    - Pasupa, K. et al. (2020). Convolutional neural networks based focal loss for class
      imbalance problem: a case study of canine red blood cells morphology classification
      (``book/references.bib``: pasupa2020rbc).

    Examples
    --------
    >>> np.bincount(np.array([0, 0, 0, 1, 1, 2])[undersample([0, 0, 0, 1, 1, 2], seed=0)])
    array([1, 1, 1])
    """
    rng = np.random.default_rng(seed)
    _, members = _class_indices(labels)
    keep = min(len(m) for m in members)
    return np.sort(np.concatenate([rng.choice(m, keep, replace=False) for m in members]))


def oversample(labels, seed):
    """Indices bringing every class to ``max_c n_c``: all originals plus random repeats.

    Every original sample is kept once; the shortfall of each class is filled
    with samples drawn with replacement from that class.

    References
    ----------
    - Pasupa, K. et al. (2020). Convolutional neural networks based focal loss for class
      imbalance problem: a case study of canine red blood cells morphology classification
      (``book/references.bib``: pasupa2020rbc).

    Examples
    --------
    >>> np.bincount(np.array([0, 0, 0, 1, 1, 2])[oversample([0, 0, 0, 1, 1, 2], seed=0)])
    array([3, 3, 3])
    """
    rng = np.random.default_rng(seed)
    _, members = _class_indices(labels)
    target = max(len(m) for m in members)
    parts = [np.concatenate([m, rng.choice(m, target - len(m), replace=True)]) for m in members]
    return np.sort(np.concatenate(parts))


def long_tailed_counts(max_count, rho, num_classes):
    """Per-class counts ``floor(N_max * rho ** (-i / (C - 1)))``, i = 0 .. C-1.

    Floor, so no class is asked for more than the formula gives; the smallest
    class keeps at least one sample.

    References
    ----------
    - Cui, Y., Jia, M., Lin, T.-Y., Song, Y., Belongie, S. (2019). Class-balanced loss based
      on effective number of samples. CVPR, 9268-9277.
      https://doi.org/10.1109/CVPR.2019.00949
    - Wang et al. (2020), IEEE Access: CEFL (their eq. 9) and CEFL2 (their eq. 11), as the
      study restates them (``book/method.md``, section "The losses").

    Examples
    --------
    >>> long_tailed_counts(100, rho=10, num_classes=3)  # 100, 100/sqrt(10), 10
    array([100,  31,  10])
    """
    if rho < 1:
        raise ValueError(f"`rho` must be >= 1 (max count over min count), received {rho}.")
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be >= 2, received {num_classes}.")
    exponents = -np.arange(num_classes) / (num_classes - 1)
    # The small epsilon keeps exact products such as 100 * 10**-1 from flooring to 9.
    return np.maximum(np.floor(max_count * np.power(float(rho), exponents) + 1e-9), 1).astype(int)


def long_tailed_indices(labels, rho, seed, order=None):
    """Indices of a long-tailed subset with imbalance ratio ``rho``, sorted.

    Classes are ranked by ``order`` (a list of class labels, head first; by
    default by descending count, ties by label). The head keeps all of its
    samples, N_max; class i keeps ``long_tailed_counts(N_max, rho, C)[i]``
    random samples.

    Raises
    ------
    ValueError
        If a class has fewer samples than the formula asks of it: the ratio
        could not be reached, and capping silently would misreport it.

    References
    ----------
    - Cui, Y., Jia, M., Lin, T.-Y., Song, Y., Belongie, S. (2019). Class-balanced loss based
      on effective number of samples. CVPR, 9268-9277.
      https://doi.org/10.1109/CVPR.2019.00949
    """
    rng = np.random.default_rng(seed)
    classes, members = _class_indices(labels)
    by_class = dict(zip(classes.tolist(), members))
    if order is None:
        order = sorted(by_class, key=lambda c: (-len(by_class[c]), c))
    elif sorted(order) != sorted(by_class):
        raise ValueError(
            f"`order` must list each class once: {sorted(by_class)}, received {list(order)}."
        )
    counts = long_tailed_counts(len(by_class[order[0]]), rho, len(order))
    short = [(c, len(by_class[c]), int(n)) for c, n in zip(order, counts) if len(by_class[c]) < n]
    if short:
        raise ValueError(
            f"rho={rho} asks more samples than some classes have (class, has, asked): {short}. "
            "Use a larger rho or another `order`."
        )
    return np.sort(
        np.concatenate(
            [rng.choice(by_class[c], int(n), replace=False) for c, n in zip(order, counts)]
        )
    )


def _no_resampling(labels, seed):
    return np.arange(len(np.asarray(labels).reshape(-1)))


#: Training-set samplers a run can select by name.
SAMPLERS = {"none": _no_resampling, "undersample": undersample, "oversample": oversample}


def resample(frame, sampler="none", seed=0, rho=None, label_column="label"):
    """Apply a named sampler (and, with ``rho``, the long-tailed subsampler first).

    Returns a new frame with a fresh index; repeated rows stay repeated.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}.")
    if rho is not None:
        frame = frame.iloc[long_tailed_indices(frame[label_column], rho, seed)]
    return frame.iloc[SAMPLERS[sampler](frame[label_column].to_numpy(), seed)].reset_index(
        drop=True
    )
