"""The study's statistics (valf_study.stats): the prediction interval by hand, Holm's adjustment
against statsmodels, the seed-and-image interval against scikit-learn and, by simulation,
its coverage."""

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import f1_score
from statsmodels.stats.multitest import multipletests

from valf_study import stats


def test_prediction_interval_by_hand():
    values = np.array([0.81, 0.86, 0.90])
    mean, sd = values.mean(), values.std(ddof=1)
    t = scipy_stats.t.ppf(0.975, 2)
    low, high = stats.prediction_interval(values)
    assert low == pytest.approx(mean - t * sd * np.sqrt(1 + 1 / 3))
    assert high == pytest.approx(mean + t * sd * np.sqrt(1 + 1 / 3))
    # about twice as wide as the confidence interval of the mean, with three seeds
    assert (high - low) / (2 * stats.mean_ci(values)[1]) == pytest.approx(2.0)
    assert np.isnan(stats.prediction_interval([0.9])).all()


@pytest.mark.parametrize("seed", range(5))
def test_holm_equals_statsmodels_and_its_intervals_agree_with_it(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 0.08, 12) ** rng.uniform(0.5, 2)
    p[3] = np.nan  # a comparison without a p-value stays out of the family
    adjusted, levels = stats.holm(p)
    finite = np.isfinite(p)
    reject, expected, _, _ = multipletests(p[finite], alpha=0.05, method="holm")
    np.testing.assert_allclose(adjusted[finite], expected, rtol=1e-12)
    # A t-interval at `level` excludes zero exactly when p < 1 - level: Holm's decision.
    np.testing.assert_array_equal(p[finite] < 1 - levels[finite], reject)
    assert np.isnan(adjusted[3])


def _f1(labels, predicted):
    return f1_score(labels, predicted, labels=range(3), average="macro", zero_division=0)


def test_the_interval_of_a_paired_difference_against_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 40)
    ours = np.where(rng.random((3, 40)) < 0.8, labels, rng.integers(0, 3, (3, 40)))
    theirs = np.where(rng.random((3, 40)) < 0.7, labels, rng.integers(0, 3, (3, 40)))
    estimate = stats.seed_and_image_interval(labels, ours, theirs, n_resamples=300, seed=4)
    per_seed = [_f1(labels, a) - _f1(labels, b) for a, b in zip(ours, theirs)]
    assert estimate.mean == pytest.approx(np.mean(per_seed))
    assert estimate.seed_variance == pytest.approx(np.var(per_seed, ddof=1) / 3)
    # The image component: the seed mean over the same image resamples, by scikit-learn.
    resamples = np.random.default_rng(4).integers(0, 40, (300, 40))
    means = [
        np.mean([_f1(labels[i], a[i]) - _f1(labels[i], b[i]) for a, b in zip(ours, theirs)])
        for i in resamples
    ]
    assert estimate.image_variance == pytest.approx(np.var(means, ddof=1))
    seed_part, image_part = estimate.seed_variance, estimate.image_variance
    assert estimate.df == pytest.approx((seed_part + image_part) ** 2 / (seed_part**2 / 2))
    low, high = estimate.interval(0.95)
    half = scipy_stats.t.ppf(0.975, estimate.df) * np.sqrt(seed_part + image_part)
    assert (low, high) == pytest.approx((estimate.mean - half, estimate.mean + half))


def test_one_seed_leaves_the_images_and_identical_runs_leave_nothing():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 30)
    runs = np.where(rng.random((1, 30)) < 0.7, labels, 0)
    single = stats.seed_and_image_interval(labels, runs, n_resamples=100)
    assert np.isnan(single.seed_variance) and single.df == np.inf and single.image_variance > 0
    same = stats.seed_and_image_interval(labels, np.vstack([runs, runs]), np.vstack([runs, runs]))
    assert same.mean == 0 and same.standard_error == 0 and same.p_value == 1.0
    with pytest.raises(ValueError, match="the same seeds and images"):
        stats.seed_and_image_interval(labels, np.vstack([runs, runs]), runs)


def _simulated_study(rng, seeds=3, images=50, classes=3):
    """Two losses drawn from one process: their true difference is zero. A seed effect shared
    by the two runs of a seed (same initialisation), one of each run, image difficulty shared
    by every run (one test set), and image-by-run noise."""
    labels = np.arange(images) % classes
    difficulty = rng.normal(0, 1.0, images)
    shared = rng.normal(0, 0.4, seeds)
    predictions = []
    for _ in range(2):
        skill = shared[:, None] + rng.normal(0, 0.3, (seeds, 1))
        logit = 1.2 + skill + difficulty[None, :] + rng.normal(0, 0.7, (seeds, images))
        right = rng.random((seeds, images)) < 1 / (1 + np.exp(-logit))
        wrong = (labels + rng.integers(1, classes, (seeds, images))) % classes
        predictions.append(np.where(right, labels, wrong))
    return labels, predictions


@pytest.mark.slow
def test_intervals_of_a_zero_difference_cover_zero_about_95_percent():
    rng = np.random.default_rng(2026)
    covered = []
    for _ in range(200):
        labels, (ours, theirs) = _simulated_study(rng)
        estimate = stats.seed_and_image_interval(
            labels, ours, theirs, n_resamples=300, seed=int(rng.integers(1 << 30))
        )
        low, high = estimate.interval(0.95)
        covered.append(low <= 0 <= high)
    coverage = np.mean(covered)
    binomial_error = np.sqrt(0.95 * 0.05 / 200)  # 0.015
    assert abs(coverage - 0.95) <= 3 * binomial_error, coverage


def test_detectable_difference_by_hand():
    estimate = stats.TwoLevelEstimate(0.0, 0.0003, 0.0006, 7.0, 3, 48)
    t = scipy_stats.t
    expected = (t.ppf(0.975, 7) + t.ppf(0.8, 7)) * np.sqrt(0.0009)
    found = stats.detectable_difference(estimate.standard_error, estimate.df)
    assert found == pytest.approx(expected)
    # A test at alpha whose true difference is the detectable one rejects with that power.
    se, df = estimate.standard_error, estimate.df
    shifted = 1 - t.cdf(t.ppf(0.975, df) - found / se, df)
    assert shifted == pytest.approx(0.8, abs=0.02)
