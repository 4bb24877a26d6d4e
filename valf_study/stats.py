"""Intervals, tests and power for the study's comparisons, from seeds *and* test images.

A study's number (a macro-F1, or the difference of two losses' macro-F1) varies for two
reasons: the training seed, and which images happen to make up the test split. The seeds of a
study are its replicates; the test images are the *same* for every seed and every loss (the
official split is fixed), so the image effect does not average out over seeds. An interval
over seeds alone (Student-t of the seed means) leaves the images out; one over images alone
leaves the seeds out.

:func:`seed_and_image_interval` states both, as a two-component model of the study's mean:

.. math::

    \\operatorname{Var}(\\bar d) \\approx \\frac{s^2_\\text{seed}}{S} + v_\\text{image},

with :math:`s^2_\\text{seed}` the sample variance of the per-seed values over the :math:`S`
seeds, and :math:`v_\\text{image}` the variance of the seed mean when the test images are
resampled with replacement, the same resample for every seed (a bootstrap over images,
crossed with the seeds, not nested in them). The interval is Student-t with the
Welch-Satterthwaite degrees of freedom, the image component counting as known (infinitely
many degrees of freedom), so three seeds whose spread dominates give the wide interval that
three seeds deserve, and a spread dominated by the images gives a normal one.
``tests/test_stats.py`` checks its coverage by simulation.

:func:`holm` adjusts the p-values of a family of comparisons (the settings of a table), and
gives each comparison the confidence level whose interval agrees with Holm's decision.
:func:`prediction_interval` is the interval for one new run, the right yardstick for one run
of someone else (the paper's numbers). :func:`detectable_difference` is the smallest true
difference a comparison detects with the given power.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from valf_study.metrics import metric_of_resamples

__all__ = [
    "TwoLevelEstimate",
    "detectable_difference",
    "holm",
    "mean_ci",
    "prediction_interval",
    "seed_and_image_interval",
]


def _t():
    from scipy import stats

    return stats.t


def mean_ci(values, confidence=0.95):
    """Mean and half-width of the Student-t interval; the half-width is NaN for one value.

    Examples
    --------
    >>> mean, half = mean_ci([0.8, 0.9, 1.0])
    >>> round(mean, 3), round(half, 3)
    (0.9, 0.248)
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan
    sem = values.std(ddof=1) / np.sqrt(len(values))
    return mean, float(_t().ppf(0.5 + confidence / 2, len(values) - 1) * sem)


def prediction_interval(values, confidence=0.95):
    """Interval for *one new run*: ``mean ± t s sqrt(1 + 1/n)``; NaNs below two values.

    One run of someone else's (the paper reports one per cell) is judged against this, not
    against the confidence interval of our mean, which is about sqrt(n + 1) times narrower.

    Examples
    --------
    >>> low, high = prediction_interval([0.8, 0.9, 1.0])
    >>> round(low, 3), round(high, 3)  # 0.9 -/+ 4.303 * 0.1 * sqrt(4/3)
    (0.403, 1.397)
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return np.nan, np.nan
    n = len(values)
    half = _t().ppf(0.5 + confidence / 2, n - 1) * values.std(ddof=1) * np.sqrt(1 + 1 / n)
    return float(values.mean() - half), float(values.mean() + half)


@dataclass(frozen=True)
class TwoLevelEstimate:
    """A mean over seeds with its uncertainty from seeds and test images.

    Attributes
    ----------
    mean : float
        The mean over seeds of the per-seed values on the whole test set.
    seed_variance : float
        Variance of the mean from the seeds, :math:`s^2/S` (NaN with one seed).
    image_variance : float
        Variance of the mean from the test images (shared image bootstrap).
    df : float
        Welch-Satterthwaite degrees of freedom (inf with one seed).
    seeds, images : int
    """

    mean: float
    seed_variance: float
    image_variance: float
    df: float
    seeds: int
    images: int

    @property
    def standard_error(self):
        seed = 0.0 if not np.isfinite(self.seed_variance) else self.seed_variance
        return float(np.sqrt(seed + self.image_variance))

    def interval(self, confidence=0.95):
        """(low, high) of the Student-t interval at ``confidence``."""
        half = _t().ppf(0.5 + confidence / 2, self.df) * self.standard_error
        return float(self.mean - half), float(self.mean + half)

    @property
    def p_value(self):
        """Two-sided p-value of ``mean == 0``."""
        if self.standard_error == 0:
            return 0.0 if self.mean != 0 else 1.0
        return float(2 * _t().sf(abs(self.mean) / self.standard_error, self.df))


def seed_and_image_interval(
    labels, predicted, baseline=None, metric="f1", n_resamples=1000, seed=0
):
    """A metric (or a paired difference of it) over seeds, with seed and image variance.

    Parameters
    ----------
    labels : array-like, shape (N,)
        True classes of the test images, the same images for every seed.
    predicted : array-like, shape (S, N)
        Predicted class of every image by the run of each seed.
    baseline : array-like, shape (S, N), optional
        Predictions of the compared runs, seed by seed (same seeds, same images): the
        estimate is then of the paired difference ``metric(predicted) - metric(baseline)``.
    metric : str
        One of :data:`valf_study.metrics.RESAMPLED_METRICS`; macro-F1 by default.
    n_resamples : int
        Resamples of the test images.
    seed : int
        Seed of the resampling.

    Returns
    -------
    TwoLevelEstimate

    Examples
    --------
    >>> labels = np.array([0, 1, 2, 0, 1, 2])
    >>> ours = np.array([[0, 1, 2, 0, 1, 1], [0, 1, 2, 0, 2, 2]])
    >>> theirs = np.array([[0, 1, 1, 0, 1, 1], [0, 2, 2, 0, 2, 2]])
    >>> estimate = seed_and_image_interval(labels, ours, theirs, n_resamples=200)
    >>> round(estimate.mean, 3), estimate.seeds, estimate.images  # seeds agree: 0.267 each
    (0.267, 2, 6)

    References
    ----------
    - Efron, B., Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman and
      Hall/CRC. https://doi.org/10.1201/9780429246593
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    arms = [np.atleast_2d(np.asarray(predicted, dtype=np.int64))]
    if baseline is not None:
        arms.append(np.atleast_2d(np.asarray(baseline, dtype=np.int64)))
        if arms[1].shape != arms[0].shape:
            raise ValueError(
                f"`baseline` has shape {arms[1].shape}, `predicted` "
                f"{arms[0].shape}: the same seeds and images are needed."
            )
    seeds, images = arms[0].shape
    if images != labels.shape[0]:
        raise ValueError(f"`predicted` has {images} images per seed, `labels` {labels.shape[0]}.")
    classes = int(max(labels.max(), *(arm.max() for arm in arms))) + 1
    rng = np.random.default_rng(seed)
    indices = np.vstack([np.arange(images), rng.integers(0, images, (n_resamples, images))])
    values = np.zeros((seeds, len(indices)))  # column 0: the whole test set
    for sign, arm in zip((1, -1), arms):
        for s in range(seeds):
            values[s] += sign * metric_of_resamples(metric, labels, arm[s], indices, classes)
    observed, resampled = values[:, 0], values[:, 1:]
    image_variance = float(resampled.mean(axis=0).var(ddof=1))
    if seeds > 1:
        seed_variance = float(observed.var(ddof=1) / seeds)
        df = (
            (seed_variance + image_variance) ** 2 / (seed_variance**2 / (seeds - 1))
            if seed_variance > 0
            else np.inf
        )
    else:
        seed_variance, df = np.nan, np.inf
    return TwoLevelEstimate(
        float(observed.mean()), seed_variance, image_variance, float(df), int(seeds), int(images)
    )


def holm(p_values, alpha=0.05):
    """Holm's step-down adjustment, and the confidence level each comparison's interval needs
    to agree with it.

    Sorted by p-value, comparison k (from 0) of m is rejected while every one before it is and
    ``p_(k) (m - k) < alpha``. Its interval is drawn at level ``1 - alpha / (m - k)``; once
    the procedure stops at rank k', every later comparison uses the level of k', under which
    its interval contains zero, as its adjusted p-value says.

    Parameters
    ----------
    p_values : sequence of float
        NaN for a comparison without a p-value (left out of the family).
    alpha : float

    Returns
    -------
    adjusted : numpy.ndarray
        Holm-adjusted p-values (NaN where the input is NaN).
    levels : numpy.ndarray
        Confidence level of each comparison's interval.

    Examples
    --------
    >>> adjusted, levels = holm([0.01, 0.04, 0.03])
    >>> adjusted.round(3).tolist(), levels.round(4).tolist()
    ([0.03, 0.06, 0.06], [0.9833, 0.975, 0.975])

    References
    ----------
    - Holm, S. (1979). A simple sequentially rejective multiple test procedure.
      Scandinavian Journal of Statistics 6(2), 65-70. https://www.jstor.org/stable/4615733
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    levels = np.full(p.shape, 1 - alpha)
    valid = np.flatnonzero(np.isfinite(p))
    m = len(valid)
    order = valid[np.argsort(p[valid], kind="stable")]
    running, stopped_at = 0.0, None
    for k, index in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[index]))
        adjusted[index] = running
        if stopped_at is None and running >= alpha:
            stopped_at = k
        levels[index] = 1 - alpha / (m - (k if stopped_at is None else stopped_at))
    return adjusted, levels


def detectable_difference(standard_error, df=np.inf, power=0.8, alpha=0.05):
    """The smallest true difference a two-sided test at ``alpha`` finds with ``power``.

    ``(t_{1-alpha/2, df} + t_{power, df}) * standard_error``, the usual formula with
    Student-t quantiles; give it a :class:`TwoLevelEstimate`'s standard error and degrees of
    freedom.

    Examples
    --------
    >>> round(detectable_difference(0.03), 4)  # (1.96 + 0.8416) * 0.03
    0.084
    """
    t = _t()
    return float((t.ppf(1 - alpha / 2, df) + t.ppf(power, df)) * standard_error)
