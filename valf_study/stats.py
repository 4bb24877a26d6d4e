"""Intervals, tests and power for the study's comparisons, from seeds *and* test data.

A study's number (a macro-F1, or the difference of two losses' macro-F1) varies for two
reasons: the training seed, and which images (which patients) make up the test split. The seeds
of a study are its replicates; the test images are the *same* for every seed and every loss (the
official split is fixed), so the image effect does not average out over seeds. Two questions,
two estimands, two intervals (:class:`TwoLevelEstimate`):

*This test split* (``estimand="split"``): the mean over training seeds of the per-seed value on
these very test images. Only the seeds vary; the interval is Student-t over the :math:`S`
per-seed values, :math:`\\bar d \\pm t_{S-1}\\, s/\\sqrt S`, exact for normal per-seed values.

*New test data* (``estimand="new"``): the same mean on a new test split drawn as this one was
(new patients, or new images of a folder's groups). Write a per-seed value on the test set as
seed effect + test-data effect + their interaction. Then

.. math::

    \\operatorname{Var}(\\bar d) = \\frac{\\sigma^2_\\text{seed}}{S}
        + \\frac{\\sigma^2_\\text{data}}{n} + \\frac{\\sigma^2_\\text{int}}{nS},

with :math:`n` test units. Three bootstrap quantities estimate the parts: the sample variance of
the per-seed values, :math:`s^2/S \\approx \\sigma^2_\\text{seed}/S + \\sigma^2_\\text{int}/(nS)`;
the variance of the seed mean when the test units are resampled, the same resample for every
seed, :math:`v \\approx \\sigma^2_\\text{data}/n + \\sigma^2_\\text{int}/(nS)`; and the mean over
seeds of each seed's own bootstrap variance, :math:`w \\approx (\\sigma^2_\\text{data} +
\\sigma^2_\\text{int})/n`. So :math:`\\hat v_\\text{data} = (S v - w)/(S - 1)` estimates
:math:`\\sigma^2_\\text{data}/n` with the interaction removed, and

.. math::

    \\widehat{\\operatorname{Var}}(\\bar d) = \\frac{s^2}{S} + \\hat v_\\text{data}

counts the interaction once (in :math:`s^2`; adding the plain :math:`v` counted it twice). In
the terms of a two-way analysis of variance of seeds by test units, :math:`s^2/S`, :math:`v` and
:math:`(w - v)/(S - 1)` are the mean squares of seeds, units and their interaction over
:math:`Sn`. The interval is Student-t with the Welch-Satterthwaite degrees of freedom of the two
parts, :math:`S - 1` for :math:`s^2/S` and :math:`n - 1` for :math:`\\hat v_\\text{data}`
(seeds only when it is 0). Satterthwaite over all three mean squares, the interaction
subtracted with :math:`(S - 1)(n - 1)`, was tried: it gave too few degrees of freedom
(coverage 0.96-0.98 in ``benchmarks/coverage.py``), the two-part version 0.93-0.95.

The test units are the predictions' groups (LungHist700's patients, a folder's groups) when a
group holds several images, resampled as clusters; single images otherwise. Bootstrap variances
are multiplied by :math:`1/(1 - \\sum_g h_g^2)`, with :math:`h_g` unit g's share of the test
images: the plug-in bootstrap's shortfall, :math:`n/(n - 1)` for equal units, larger for unequal
ones (at 20x, one of LungHist700's four test patients holds 26 of the 48 images: 1.67 instead
of 1.33). A resample's macro average runs over the classes it
holds (a class absent from a resample is left out, not scored 0), on the scale of the whole test
set, whose macro average runs over the study's class list, as each run's metrics do.
``benchmarks/coverage.py`` checks both intervals by simulation.

Other tools: :func:`holm` (Holm's adjustment and the levels of intervals that agree with it),
:func:`prediction_interval` (one new run: the yardstick for one run of the paper's),
:func:`detectable_difference` and :func:`seeds_needed` (power), :func:`nadeau_bengio_interval`
(the corrected resampled t of cross-validation folds), :func:`probability_better` (P(A > B) for
a new run pair), :func:`random_effects` (pooling settings), :func:`friedman_with_control`
(ranks across settings, Demšar's protocol).

References
----------
- Bouthillier, X. et al. (2021). Accounting for variance in machine learning benchmarks.
  Proceedings of Machine Learning and Systems 3 (MLSys 2021).
- Efron, B., Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman and
  Hall/CRC. https://doi.org/10.1201/9780429246593
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from valf_study.metrics import RESAMPLED_METRICS

__all__ = [
    "Resamples",
    "TwoLevelEstimate",
    "detectable_difference",
    "friedman_with_control",
    "holm",
    "mean_ci",
    "metric_of_weights",
    "nadeau_bengio_interval",
    "nemenyi_critical_difference",
    "prediction_interval",
    "probability_better",
    "random_effects",
    "resample_weights",
    "seed_and_image_interval",
    "seeds_needed",
    "two_level_estimate",
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


def nadeau_bengio_interval(values, test_train_ratio, confidence=0.95):
    """Mean and half-width of the corrected resampled t interval of cross-validation folds.

    The folds' training sets overlap, so their scores are correlated and the naive
    ``s^2 / k`` understates the variance of their mean. Nadeau and Bengio's correction replaces
    it with ``(1/k + n_test/n_train) s^2``, with ``k - 1`` degrees of freedom; for k-fold
    cross-validation ``n_test/n_train = 1/(k - 1)``, so at k = 5 the variance is
    ``(1/5 + 1/4) s^2``, 2.25 times the naive one (Bouckaert and Frank 2004 apply the
    correction to k-fold cross-validation).

    Parameters
    ----------
    values : array-like
        One score per fold (or per train/test split).
    test_train_ratio : float
        Test (held-out) images over training images of a split.

    Examples
    --------
    >>> mean, half = nadeau_bengio_interval([0.8, 0.85, 0.9, 0.82, 0.88], 1 / 4)
    >>> naive = mean_ci([0.8, 0.85, 0.9, 0.82, 0.88])[1]
    >>> round(mean, 3), round((half / naive) ** 2, 2)
    (0.85, 2.25)

    References
    ----------
    - Nadeau, C., Bengio, Y. (2003). Inference for the generalization error. Machine
      Learning 52(3), 239-281. https://doi.org/10.1023/A:1024068626366
    - Bouckaert, R. R., Frank, E. (2004). Evaluating the replicability of significance tests
      for comparing learning algorithms. PAKDD 2004, LNCS 3056, 3-12.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan
    mean = float(values.mean())
    k = len(values)
    if k < 2:
        return mean, np.nan
    variance = (1 / k + float(test_train_ratio)) * values.var(ddof=1)
    return mean, float(_t().ppf(0.5 + confidence / 2, k - 1) * np.sqrt(variance))


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


# -- resampling the test data ---------------------------------------------------------------------


@dataclass(frozen=True)
class Resamples:
    """Bootstrap resamples of a test set, as multiplicities.

    Attributes
    ----------
    weights : numpy.ndarray, shape (B + 1, N)
        How often each image is drawn; row 0 is the test set itself (all ones).
    unit : str
        ``"group"`` (clusters of images: patients, a folder's groups) or ``"image"``.
    units : int
        How many units the test set has.
    correction : float
        What the bootstrap variances are multiplied by: ``1 / (1 - sum h_g^2)`` with
        ``h_g`` the share of the test images in unit g; ``n/(n - 1)`` for n equal units.
    """

    weights: np.ndarray
    unit: str
    units: int
    correction: float = np.nan


def resample_weights(n_images, groups=None, n_resamples=1000, seed=0):
    """Bootstrap resamples of the test units: groups as clusters when a group holds several
    images, single images otherwise.

    Examples
    --------
    >>> r = resample_weights(4, groups=["p1", "p1", "p2", "p3"], n_resamples=3, seed=0)
    >>> r.unit, r.units, r.weights.shape, bool((r.weights[:, 0] == r.weights[:, 1]).all())
    ('group', 3, (4, 4), True)
    >>> resample_weights(4, groups=["a", "b", "c", "d"], n_resamples=2).unit
    'image'
    """
    rng = np.random.default_rng(seed)
    codes = None
    if groups is not None:
        groups = np.asarray(groups, dtype=object).reshape(-1)
        if len(groups) != n_images:
            raise ValueError(f"`groups` names {len(groups)} images, the test set has {n_images}.")
        _, codes = np.unique(groups.astype(str), return_inverse=True)
        if codes.max() + 1 == n_images:  # every group is one image
            codes = None
    units = n_images if codes is None else int(codes.max() + 1)
    drawn = rng.integers(0, units, (n_resamples, units))
    offsets = (np.arange(n_resamples) * units)[:, None]
    counts = np.bincount((drawn + offsets).ravel(), minlength=n_resamples * units)
    counts = counts.reshape(n_resamples, units).astype(float)
    weights = counts if codes is None else counts[:, codes]
    weights = np.vstack([np.ones((1, n_images)), weights])
    share = np.full(units, 1 / units) if codes is None else np.bincount(codes) / n_images
    concentration = float((share**2).sum())
    correction = 1 / (1 - concentration) if concentration < 1 else np.nan
    return Resamples(weights, "image" if codes is None else "group", units, correction)


def metric_of_weights(metric, labels, predicted, weights, num_classes):
    """A metric of every resample at once, from weighted confusion counts.

    Row b scores the images with multiplicities ``weights[b]``, as
    :func:`valf_study.metrics.metric_of_resamples` scores index resamples (they agree where
    every class is present). A macro average (``precision``, ``recall``, ``f1``,
    ``f1_of_means``) runs over the ``num_classes`` classes of the study on the test set
    itself (row 0, as each run's metrics.json); in a resample without some class present in
    the test set, it runs over the classes the resample holds and is put on row 0's scale,
    instead of scoring the missing class 0.

    Parameters
    ----------
    metric : str
        One of :data:`valf_study.metrics.RESAMPLED_METRICS`.
    labels : array-like, shape (N,)
    predicted : array-like, shape (N,) or (S, N)
    weights : numpy.ndarray, shape (B, N)
    num_classes : int
        The study's number of classes (its class list), not the labels present.

    Returns
    -------
    numpy.ndarray, shape (B,) or (S, B)

    Examples
    --------
    >>> y, p = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])
    >>> metric_of_weights("accuracy", y, p, np.array([[1, 1, 1, 1], [2, 2, 0, 0]]), 3)
    array([0.75, 1.  ])
    >>> w = np.array([[1, 1, 1, 1], [2, 2, 0, 0]])  # the second resample has no class 2
    >>> metric_of_weights("recall", y, y, w, 3)  # perfect: 1, not 2/3
    array([1., 1.])
    """
    if metric not in RESAMPLED_METRICS:
        raise ValueError(f"`metric` must be one of {list(RESAMPLED_METRICS)}, received {metric!r}.")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    predicted = np.asarray(predicted, dtype=np.int64)
    single = predicted.ndim == 1
    predicted = np.atleast_2d(predicted)
    weights = np.asarray(weights, dtype=float)
    classes = np.arange(num_classes)
    true = (labels[:, None] == classes).astype(float)  # (N, C)
    guess = (predicted[..., None] == classes).astype(float)  # (S, N, C)
    actual = weights @ true  # (B, C)
    claimed = np.einsum("bn,snc->sbc", weights, guess)
    hits = np.einsum("bn,snc->sbc", weights, guess * true[None])
    size = weights.sum(axis=1)  # (B,)
    if metric == "accuracy":
        values = hits.sum(axis=2) / size
    elif metric == "ovr_accuracy":
        values = 1 - 2 * (size - hits.sum(axis=2)) / (num_classes * size)
    else:
        precision = np.divide(hits, claimed, out=np.zeros(hits.shape), where=claimed > 0)
        recall = np.divide(hits, actual[None], out=np.zeros(hits.shape), where=actual[None] > 0)
        if metric == "precision":
            values = precision.mean(axis=2)
        elif metric == "recall":
            values = recall.mean(axis=2)
        elif metric == "f1_of_means":
            p, r = precision.mean(axis=2), recall.mean(axis=2)
            values = np.divide(2 * p * r, p + r, out=np.zeros(p.shape), where=p + r > 0)
        else:
            support = actual[None] + claimed
            f1 = np.divide(2 * hits, support, out=np.zeros(hits.shape), where=support > 0)
            values = f1.mean(axis=2)
        # An absent class scores 0 in every one of these; average over the present ones,
        # on the scale of the test set itself (row 0).
        present = (actual > 0).sum(axis=1)
        values = values * np.divide(present[0], present, out=np.ones(size.shape), where=present > 0)
    return values[0] if single else values


# -- the two-level estimate -----------------------------------------------------------------------


@dataclass(frozen=True)
class TwoLevelEstimate:
    """A mean over seeds, with its uncertainty for this test split and for new test data.

    Attributes
    ----------
    mean : float
        The mean over seeds of the per-seed values on the whole test set.
    seed_variance : float
        :math:`s^2/S`: the variance of the mean from the seeds, on this test split (it holds
        the interaction of seeds and test data once); NaN with one seed.
    image_variance : float
        :math:`\\hat v_\\text{data}`: the variance of the mean from the test data, net of the
        interaction (with one seed: the whole bootstrap variance, interaction included).
    df : float
        Welch-Satterthwaite degrees of freedom of the interval for new test data, from
        :math:`S - 1` (seeds) and :math:`n - 1` (test units).
    seeds : int
    images : int
    units : int
        Test units resampled (groups or images).
    unit : str
        ``"group"`` or ``"image"``.
    shared_variance : float
        :math:`v`: variance of the seed mean over shared resamples of the test units.
    within_variance : float
        :math:`w`: mean over seeds of each seed's own bootstrap variance.
    """

    mean: float
    seed_variance: float
    image_variance: float
    df: float
    seeds: int
    images: int
    units: int = 0
    unit: str = "image"
    shared_variance: float = np.nan
    within_variance: float = np.nan

    @property
    def interaction_variance(self):
        """:math:`\\hat\\sigma^2_\\text{int}/n`: the seed-by-test-data interaction's share of
        one seed's value, ``(w - v) S/(S - 1)`` (0 when negative; NaN with one seed)."""
        if self.seeds < 2 or not np.isfinite(self.within_variance):
            return np.nan
        return float(
            max((self.within_variance - self.shared_variance) * self.seeds / (self.seeds - 1), 0)
        )

    @property
    def standard_error(self):
        """Standard error of the mean for new test data."""
        seed = 0.0 if not np.isfinite(self.seed_variance) else self.seed_variance
        return float(np.sqrt(seed + self.image_variance))

    @property
    def split_standard_error(self):
        """Standard error of the mean for this test split (seeds only; NaN with one seed)."""
        return float(np.sqrt(self.seed_variance))

    @property
    def split_df(self):
        return float(self.seeds - 1) if self.seeds > 1 else np.nan

    def _se_df(self, estimand):
        if estimand == "new":
            return self.standard_error, self.df
        if estimand == "split":
            return self.split_standard_error, self.split_df
        raise ValueError(f"`estimand` is 'new' or 'split', received {estimand!r}.")

    def interval(self, confidence=0.95, estimand="new"):
        """(low, high) of the Student-t interval at ``confidence`` for ``estimand``:
        ``"new"`` (new test data, the default) or ``"split"`` (this test split).

        New test data vary everything this split does and more, so the interval for new test
        data is never narrower than the one for this split: where the Welch-Satterthwaite
        degrees of freedom (larger than ``S - 1`` once the test data's variance counts) would
        make it so, it is the split's (the union of the two acceptance regions, so that
        :meth:`p` and the interval agree)."""
        half = self._half_width(confidence, estimand)
        if estimand == "new" and self.seeds > 1:
            half = max(half, self._half_width(confidence, "split"))
        if not np.isfinite(half):
            return np.nan, np.nan
        return float(self.mean - half), float(self.mean + half)

    def _half_width(self, confidence, estimand):
        se, df = self._se_df(estimand)
        if not np.isfinite(se):
            return np.nan
        return float(_t().ppf(0.5 + confidence / 2, df) * se)

    def p(self, estimand="new", null=0.0, alternative="two-sided"):
        """p-value of ``mean == null`` (``"two-sided"``), ``mean <= null`` (``"greater"``)
        or ``mean >= null`` (``"less"``); for new test data never below this split's (see
        :meth:`interval`)."""
        found = self._p(estimand, null, alternative)
        if estimand == "new" and self.seeds > 1:
            split = self._p("split", null, alternative)
            if np.isfinite(split):
                found = max(found, split)
        return found

    def _p(self, estimand, null, alternative):
        se, df = self._se_df(estimand)
        if not np.isfinite(se):
            return np.nan
        if se == 0:
            if alternative == "two-sided":
                return 0.0 if self.mean != null else 1.0
            side = self.mean > null if alternative == "greater" else self.mean < null
            return 0.0 if side else 1.0
        t = (self.mean - null) / se
        if alternative == "two-sided":
            return float(2 * _t().sf(abs(t), df))
        if alternative == "greater":
            return float(_t().sf(t, df))
        if alternative == "less":
            return float(_t().cdf(t, df))
        raise ValueError(f"Unknown alternative {alternative!r}.")

    @property
    def p_value(self):
        """Two-sided p-value of ``mean == 0`` for new test data."""
        return self.p("new")

    def equivalence_p(self, margin, estimand="new"):
        """p-value of two one-sided tests (TOST) that the mean lies within ``±margin``: the
        larger of the two one-sided p-values; below alpha exactly when the ``1 - 2 alpha``
        interval lies inside ``(-margin, margin)``.

        References
        ----------
        - Lakens, D. (2017). Equivalence tests: a practical primer for t tests, correlations,
          and meta-analyses. Social Psychological and Personality Science 8(4), 355-362.
          https://doi.org/10.1177/1948550617697177
        """
        return max(self.p(estimand, -margin, "greater"), self.p(estimand, margin, "less"))


def two_level_estimate(values, units, unit="image", images=None, correction=None):
    """A :class:`TwoLevelEstimate` from per-seed values on the test set and its resamples.

    Parameters
    ----------
    values : array-like, shape (S, B + 1)
        Column 0: each seed's value on the test set; columns 1..B: on the shared resamples.
    units : int
        Test units the resamples draw (groups or images).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> values = rng.normal(0.1, 0.02, (3, 1)) + rng.normal(0, 0.03, (1, 501))
    >>> estimate = two_level_estimate(values, units=48)
    >>> estimate.seeds, round(estimate.interaction_variance, 6)  # no interaction in these values
    (3, 0.0)
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    seeds = values.shape[0]
    observed, resampled = values[:, 0], values[:, 1:]
    if correction is None:
        correction = units / (units - 1) if units > 1 else np.nan
    shared = float(correction * resampled.mean(axis=0).var(ddof=1))
    within = float(correction * resampled.var(axis=1, ddof=1).mean())
    unit_df = units - 1 if units > 1 else np.inf
    if seeds > 1:
        seed_variance = float(observed.var(ddof=1) / seeds)
        # v holds the data's part and the interaction's share (w - v)/(S - 1): the data's part
        # is their difference, estimated with the degrees of freedom of both.
        interaction = max((within - shared) / (seeds - 1), 0.0)
        image_variance = float(max(shared - interaction, 0.0))
        df = _satterthwaite_terms([(seed_variance, seeds - 1), (image_variance, unit_df)])
    else:
        seed_variance, image_variance, df = np.nan, shared, unit_df
    return TwoLevelEstimate(
        mean=float(observed.mean()),
        seed_variance=seed_variance,
        image_variance=image_variance,
        df=float(df),
        seeds=int(seeds),
        images=int(images if images is not None else 0),
        units=int(units),
        unit=unit,
        shared_variance=shared,
        within_variance=within,
    )


def _satterthwaite_terms(terms):
    """Welch-Satterthwaite degrees of freedom of a sum of variance estimates (coefficient
    included, so a subtracted one is negative), each with its own degrees of freedom."""
    total = sum(value for value, _ in terms)
    denominator = sum(value**2 / df for value, df in terms if df > 0 and np.isfinite(df))
    return float(total**2 / denominator) if denominator > 0 else np.inf


def _num_classes(labels, arms, num_classes):
    present = int(max(labels.max(), *(arm.max() for arm in arms))) + 1
    if num_classes is None:
        return present
    if present > num_classes:
        raise ValueError(f"Class {present - 1} found, but the study has {num_classes} classes.")
    return int(num_classes)


def seed_and_image_interval(
    labels,
    predicted,
    baseline=None,
    metric="f1",
    n_resamples=1000,
    seed=0,
    groups=None,
    num_classes=None,
    resamples=None,
):
    """A metric (or a paired difference of it) over seeds, for this split and new test data.

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
        Resamples of the test units.
    seed : int
        Seed of the resampling.
    groups : array-like, shape (N,), optional
        Each image's group (patient); groups of several images are resampled as clusters.
    num_classes : int, optional
        The study's number of classes (its class list). Without it, the classes are counted
        from the labels and predictions present, which leaves an absent last class out of the
        macro average: give it.
    resamples : Resamples, optional
        Resamples to use instead of drawing them (to share them between estimates).

    Returns
    -------
    TwoLevelEstimate

    Examples
    --------
    >>> labels = np.array([0, 1, 2, 0, 1, 2])
    >>> ours = np.array([[0, 1, 2, 0, 1, 1], [0, 1, 2, 0, 2, 2]])
    >>> theirs = np.array([[0, 1, 1, 0, 1, 1], [0, 2, 2, 0, 2, 2]])
    >>> estimate = seed_and_image_interval(labels, ours, theirs, n_resamples=200, num_classes=3)
    >>> round(estimate.mean, 3), estimate.seeds, estimate.images  # seeds agree: 0.267 each
    (0.267, 2, 6)
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
    images = arms[0].shape[1]
    if images != labels.shape[0]:
        raise ValueError(f"`predicted` has {images} images per seed, `labels` {labels.shape[0]}.")
    classes = _num_classes(labels, arms, num_classes)
    if resamples is None:
        resamples = resample_weights(images, groups, n_resamples, seed)
    values = metric_of_weights(metric, labels, arms[0], resamples.weights, classes)
    if baseline is not None:
        values = values - metric_of_weights(metric, labels, arms[1], resamples.weights, classes)
    return two_level_estimate(values, resamples.units, resamples.unit, images, resamples.correction)


# -- multiplicity, power ---------------------------------------------------------------------------


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
    freedom, and the level the test is actually made at (Holm's first step is
    ``alpha / m``: at df = 2 and m = 40 the factor is 29.3, not 5.36).

    Examples
    --------
    >>> round(detectable_difference(0.03), 4)  # (1.96 + 0.8416) * 0.03
    0.084
    >>> round(detectable_difference(1.0, df=2, alpha=0.05 / 40), 1)
    29.3
    """
    t = _t()
    return float((t.ppf(1 - alpha / 2, df) + t.ppf(power, df)) * standard_error)


def _satterthwaite(seed_part, seed_df, data_part, data_df):
    total = seed_part + data_part
    denominator = seed_part**2 / seed_df + (data_part**2 / data_df if data_part else 0.0)
    return total**2 / denominator if denominator > 0 else np.inf


def seeds_needed(
    per_seed_variance, data_variance, data_df, target, power=0.8, alpha=0.05, most=1000
):
    """The fewest seeds whose comparison detects ``target`` with ``power`` at ``alpha``, with
    the test data fixed (so the data's variance stays); ``inf`` when even infinitely many seeds
    do not (the floor ``(t + t) sqrt(data_variance)`` is above ``target``), or beyond ``most``.

    Parameters
    ----------
    per_seed_variance : float
        :math:`s^2`, the variance of one seed's value (``seed_variance * seeds``).
    data_variance : float
        :math:`\\hat v_\\text{data}`, the test data's variance of the mean.
    data_df : float
        Its degrees of freedom (test units - 1).

    Examples
    --------
    >>> seeds_needed(0.02**2, 0.0, np.inf, 0.03)  # seeds only: (t + t)^2 s^2 / S <= 0.03^2
    6
    >>> seeds_needed(0.02**2, 0.012**2, np.inf, 0.03)  # the floor 2.8 * 0.012 is above 0.03
    inf
    """
    target = abs(float(target))
    if not (np.isfinite(target) and target > 0 and np.isfinite(per_seed_variance)):
        return np.nan
    floor = detectable_difference(np.sqrt(data_variance), data_df, power, alpha)
    if floor >= target:
        return np.inf
    for seeds in range(2, most + 1):
        seed_part = per_seed_variance / seeds
        df = _satterthwaite(seed_part, seeds - 1, data_variance, data_df)
        if detectable_difference(np.sqrt(seed_part + data_variance), df, power, alpha) <= target:
            return seeds
    return np.inf


# -- P(A > B), pooling, ranks ----------------------------------------------------------------------


def probability_better(estimate, confidence=0.95, draws=20000, seed=0):
    """P(A > B) for a new run pair on new test data, with an interval.

    A new run pair's difference is, in the two-level model, normal with the mean difference and
    variance :math:`\\sigma^2_\\text{seed} + \\sigma^2_\\text{int}/n + \\sigma^2_\\text{data}/n`
    (one seed, a new test split of this size), estimated by :math:`s^2 + \\hat v_\\text{data}`;
    so :math:`P(A > B) = \\Phi(\\bar d / \\sqrt{s^2 + \\hat v_\\text{data}})`. The interval is a
    parametric bootstrap's percentiles: the mean drawn from its t distribution, :math:`s^2` from
    its scaled :math:`\\chi^2_{S-1}` and :math:`\\hat v_\\text{data}` from its scaled
    :math:`\\chi^2_{n-1}`. NaN with one seed (no :math:`s^2`).

    Parameters
    ----------
    estimate : TwoLevelEstimate
        Of a paired difference (A minus B).

    Returns
    -------
    (p, low, high) : tuple of float

    Examples
    --------
    >>> e = TwoLevelEstimate(0.02, 0.0001, 0.0002, 8.0, 3, 48, 48, "image")
    >>> p, low, high = probability_better(e)
    >>> round(p, 3), low < p < high  # Phi(0.02 / sqrt(0.0003 + 0.0002))
    (0.814, True)

    References
    ----------
    - Bouthillier, X. et al. (2021). Accounting for variance in machine learning benchmarks.
      MLSys 2021.
    - Agarwal, R. et al. (2021). Deep reinforcement learning at the edge of the statistical
      precipice. NeurIPS 34.
    """
    from scipy import stats

    if estimate.seeds < 2 or not np.isfinite(estimate.seed_variance):
        return np.nan, np.nan, np.nan
    seeds = estimate.seeds
    per_seed = estimate.seed_variance * seeds
    data = estimate.image_variance
    scale = np.sqrt(per_seed + data)
    if scale == 0:
        p = 1.0 if estimate.mean > 0 else 0.0 if estimate.mean < 0 else 0.5
        return p, p, p
    p = float(stats.norm.cdf(estimate.mean / scale))
    rng = np.random.default_rng(seed)
    unit_df = estimate.units - 1 if estimate.units > 1 else 1e6
    mean = estimate.mean + estimate.standard_error * rng.standard_t(estimate.df, draws)
    per_seed_draw = per_seed * rng.chisquare(seeds - 1, draws) / (seeds - 1)
    data_draw = data * rng.chisquare(unit_df, draws) / unit_df
    drawn = stats.norm.cdf(mean / np.sqrt(per_seed_draw + data_draw))
    tail = (1 - confidence) / 2
    low, high = np.quantile(drawn, [tail, 1 - tail])
    return p, float(low), float(high)


def random_effects(effects, variances, covariance=None, confidence=0.95, prediction=True):
    """Random-effects pooling of per-setting effects (DerSimonian and Laird), with the
    between-setting variance tau², an interval for the mean effect and one for a new setting.

    tau² is DerSimonian and Laird's moment estimate, truncated at 0 (statsmodels'
    ``combine_effects(method_re="dl")`` leaves it negative). The weights are
    ``1/(v_k + tau²)``. Settings that share test data (the backbones of one magnification test
    the same images) have correlated errors: give their within-setting covariance matrix
    (diagonal: ``variances``) and the pooled mean's variance is
    ``w'(C + tau² I)w / (sum w)²`` instead of ``1 / sum w``. The interval is Student-t with
    ``k - 1`` degrees of freedom (as Hartung and Knapp); the prediction interval for the effect
    in a new setting is ``mean ± t_{k-2} sqrt(tau² + se²)`` (Higgins, Thompson and
    Spiegelhalter 2009).

    Returns
    -------
    dict
        ``estimate``, ``se``, ``low``, ``high``, ``p_value`` (two-sided, mean 0), ``tau2``,
        ``pi_low``, ``pi_high``, ``settings``, ``q`` (Cochran's Q), ``df``.

    Examples
    --------
    >>> r = random_effects([0.01, 0.03, 0.02, 0.05], [1e-4, 2e-4, 1e-4, 3e-4])
    >>> round(r["estimate"], 4), r["settings"], round(r["tau2"], 6)
    (0.0233, 4, 7.1e-05)

    References
    ----------
    - DerSimonian, R., Laird, N. (1986). Meta-analysis in clinical trials. Controlled Clinical
      Trials 7(3), 177-188. https://doi.org/10.1016/0197-2456(86)90046-2
    - Higgins, J. P. T., Thompson, S. G., Spiegelhalter, D. J. (2009). A re-evaluation of
      random-effects meta-analysis. Journal of the Royal Statistical Society A 172(1),
      137-159. https://doi.org/10.1111/j.1467-985X.2008.00552.x
    """
    effects = np.asarray(effects, dtype=float)
    variances = np.asarray(variances, dtype=float)
    keep = np.isfinite(effects) & np.isfinite(variances)
    effects, variances = effects[keep], np.maximum(variances[keep], 1e-12)
    k = len(effects)
    result = dict.fromkeys(
        ("estimate", "se", "low", "high", "p_value", "tau2", "pi_low", "pi_high", "q", "df"), np.nan
    )
    result["settings"] = k
    if k == 0:
        return result
    if covariance is None:
        covariance = np.diag(variances)
    else:
        covariance = np.asarray(covariance, dtype=float)[np.ix_(keep, keep)]
    fixed = 1 / variances
    fixed_mean = fixed @ effects / fixed.sum()
    q = float(fixed @ (effects - fixed_mean) ** 2)
    c = fixed.sum() - (fixed**2).sum() / fixed.sum()
    tau2 = float(max((q - (k - 1)) / c, 0.0)) if k > 1 and c > 0 else 0.0
    weights = 1 / (variances + tau2)
    estimate = float(weights @ effects / weights.sum())
    variance = float(weights @ (covariance + tau2 * np.eye(k)) @ weights / weights.sum() ** 2)
    se = np.sqrt(variance)
    t = _t()
    df = max(k - 1, 1)
    half = t.ppf(0.5 + confidence / 2, df) * se
    p_value = float(2 * t.sf(abs(estimate) / se, df)) if se > 0 else float(estimate == 0)
    result.update(
        estimate=estimate,
        se=float(se),
        low=estimate - half,
        high=estimate + half,
        p_value=p_value,
        tau2=tau2,
        q=q,
        df=float(df),
    )
    if prediction and k >= 3:
        half = t.ppf(0.5 + confidence / 2, k - 2) * np.sqrt(tau2 + variance)
        result.update(pi_low=estimate - half, pi_high=estimate + half)
    return result


def nemenyi_critical_difference(methods, settings, alpha=0.05):
    """Nemenyi's critical difference of average ranks: ``q_alpha sqrt(k(k+1)/(6N))``, with
    ``q_alpha`` the studentized range quantile over sqrt(2) (Demšar 2006, Table 5a).

    Examples
    --------
    >>> round(nemenyi_critical_difference(5, 10), 3)  # q = 2.728
    1.929
    """
    from scipy import stats

    q = stats.studentized_range.ppf(1 - alpha, methods, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(methods * (methods + 1) / (6 * settings)))


def friedman_with_control(scores, control, alpha=0.05):
    """Friedman's test of methods (columns) across settings (rows, the blocks), and each
    method against ``control`` by its average rank, Holm-adjusted (Demšar 2006, section 3.2).

    Rank 1 is the best (highest score); ties share their mean rank. Against the control,
    ``z = (R_i - R_control) / sqrt(k(k+1)/(6N))``, two-sided.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per setting, one column per method; no missing values.
    control : str
        The column the others are compared with.

    Returns
    -------
    dict
        ``statistic``, ``p_value`` (scipy's ``friedmanchisquare``), ``iman_davenport`` and its
        ``p_iman_davenport``, ``ranks`` (a Series of average ranks), ``critical_difference``
        (Nemenyi, for the figure), ``settings``, and ``versus_control`` (a DataFrame: method,
        rank_difference, z, p_value, p_adjusted, significant).

    References
    ----------
    - Demšar, J. (2006). Statistical comparisons of classifiers over multiple data sets.
      Journal of Machine Learning Research 7, 1-30.
      https://jmlr.org/papers/v7/demsar06a.html
    """
    import pandas as pd
    from scipy import stats

    scores = scores.dropna()
    n, k = scores.shape
    ranks = scores.rank(axis=1, ascending=False).mean()
    result = {"ranks": ranks, "settings": n, "critical_difference": np.nan}
    if n < 2 or k < 3:
        result.update(statistic=np.nan, p_value=np.nan, iman_davenport=np.nan)
        result.update(p_iman_davenport=np.nan, versus_control=pd.DataFrame())
        return result
    statistic, p_value = stats.friedmanchisquare(*(scores[c].to_numpy() for c in scores))
    iman = (n - 1) * statistic / (n * (k - 1) - statistic) if n * (k - 1) > statistic else np.inf
    result.update(
        statistic=float(statistic),
        p_value=float(p_value),
        iman_davenport=float(iman),
        p_iman_davenport=float(stats.f.sf(iman, k - 1, (k - 1) * (n - 1))),
        critical_difference=nemenyi_critical_difference(k, n, alpha),
    )
    se = np.sqrt(k * (k + 1) / (6 * n))
    others = [c for c in scores.columns if c != control]
    z = [(ranks[c] - ranks[control]) / se for c in others]
    p = [float(2 * stats.norm.sf(abs(v))) for v in z]
    adjusted, _ = holm(p, alpha)
    result["versus_control"] = pd.DataFrame(
        {
            "method": others,
            "rank_difference": [ranks[c] - ranks[control] for c in others],
            "z": z,
            "p_value": p,
            "p_adjusted": adjusted,
            "significant": adjusted < alpha,
        }
    )
    return result
