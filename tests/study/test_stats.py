"""The study's statistics (valf_study.stats): the prediction interval by hand, Holm's adjustment
against statsmodels, the two-level interval against scikit-learn, TOST against statsmodels,
random effects against statsmodels, Friedman against scipy, and, by simulation, coverage that
can fail (benchmarks/coverage.py, in a quick version)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import f1_score
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from valf_study import stats
from valf_study.metrics import RESAMPLED_METRICS, metric_of_resamples

ROOT = Path(__file__).resolve().parents[2]


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


def test_nadeau_bengio_corrects_the_variance_of_overlapping_folds():
    values = np.array([0.78, 0.84, 0.9, 0.81, 0.87])
    mean, half = stats.nadeau_bengio_interval(values, 1 / 4)  # 5 folds: n_test/n_train = 1/4
    expected = scipy_stats.t.ppf(0.975, 4) * np.sqrt((1 / 5 + 1 / 4) * values.var(ddof=1))
    assert (mean, half) == pytest.approx((values.mean(), expected))
    assert (half / stats.mean_ci(values)[1]) ** 2 == pytest.approx(2.25)


def _f1(labels, predicted, classes=3):
    return f1_score(labels, predicted, labels=range(classes), average="macro", zero_division=0)


@pytest.mark.parametrize("metric", RESAMPLED_METRICS)
def test_weighted_metrics_equal_metric_of_resamples(metric):
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1, 2], 12)
    predicted = np.where(rng.random(36) < 0.75, labels, rng.integers(0, 3, 36))
    indices = rng.integers(0, 36, (200, 36))
    indices[:, :3] = [0, 12, 24]  # every class in every resample
    weights = np.stack([np.bincount(row, minlength=36) for row in indices])
    expected = metric_of_resamples(metric, labels, predicted, indices, 3)
    found = stats.metric_of_weights(metric, labels, predicted, weights, 3)
    np.testing.assert_allclose(found, expected, rtol=1e-12)


def test_the_interval_of_a_paired_difference_against_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 40)
    ours = np.where(rng.random((3, 40)) < 0.8, labels, rng.integers(0, 3, (3, 40)))
    theirs = np.where(rng.random((3, 40)) < 0.7, labels, rng.integers(0, 3, (3, 40)))
    estimate = stats.seed_and_image_interval(
        labels, ours, theirs, n_resamples=200, seed=4, num_classes=3
    )
    per_seed = [_f1(labels, a) - _f1(labels, b) for a, b in zip(ours, theirs)]
    assert estimate.mean == pytest.approx(np.mean(per_seed))
    assert estimate.seed_variance == pytest.approx(np.var(per_seed, ddof=1) / 3)
    # The same image resamples, scored by scikit-learn (every class is in each of them).
    resamples = np.random.default_rng(4).integers(0, 40, (200, 40))
    assert all(len(set(labels[i])) == 3 for i in resamples)
    each = np.array(
        [
            [_f1(labels[i], a[i]) - _f1(labels[i], b[i]) for i in resamples]
            for a, b in zip(ours, theirs)
        ]
    )  # (seeds, resamples)
    correction = 40 / 39
    shared = correction * each.mean(axis=0).var(ddof=1)
    within = correction * each.var(axis=1, ddof=1).mean()
    assert estimate.shared_variance == pytest.approx(shared)
    assert estimate.within_variance == pytest.approx(within)
    # The test data's part with the interaction removed, and the interaction once.
    interaction = (within - shared) / 2  # its share of the seed mean, sigma²_int / (N S)
    assert interaction > 0
    assert estimate.image_variance == pytest.approx(shared - interaction)
    assert estimate.interaction_variance == pytest.approx(interaction * 3)
    seed_part, image_part = estimate.seed_variance, estimate.image_variance
    # Welch-Satterthwaite from the seeds' 2 and the images' 39 degrees of freedom.
    df = (seed_part + image_part) ** 2 / (seed_part**2 / 2 + image_part**2 / 39)
    assert estimate.df == pytest.approx(df)
    low, high = estimate.interval(0.95)
    half_new = scipy_stats.t.ppf(0.975, df) * np.sqrt(seed_part + image_part)
    split = estimate.interval(0.95, "split")
    half_split = scipy_stats.t.ppf(0.975, 2) * np.sqrt(seed_part)
    assert split == pytest.approx((estimate.mean - half_split, estimate.mean + half_split))
    # new test data vary all this split does and more: never the narrower of the two
    half = max(half_new, half_split)
    assert (low, high) == pytest.approx((estimate.mean - half, estimate.mean + half))
    t_new = estimate.mean / np.sqrt(seed_part + image_part)
    p_new = 2 * scipy_stats.t.sf(abs(t_new), df)
    p_split = 2 * scipy_stats.t.sf(abs(estimate.mean / np.sqrt(seed_part)), 2)
    assert estimate.p_value == pytest.approx(max(p_new, p_split))


def test_the_interaction_of_seeds_and_images_is_counted_once():
    """Per-image contributions = seed effect + seed-by-image noise, no image effect: the test
    data add nothing to the mean beyond what the seeds already show. The shared bootstrap's
    variance v is then all interaction (sigma²_int / NS), which the seed variance already
    holds; the estimate removes it (the study used to add v)."""
    rng = np.random.default_rng(11)
    seeds, images = 3, 1000
    contributions = rng.normal(0, 0.3, (seeds, 1)) + rng.normal(0, 1.0, (seeds, images))
    weights = stats.resample_weights(images, n_resamples=2000, seed=1).weights
    values = contributions @ weights.T / weights.sum(axis=1)  # weighted means, (S, B + 1)
    estimate = stats.two_level_estimate(values, images)
    interaction = 1.0 / images  # sigma²_int / N per seed
    assert estimate.shared_variance == pytest.approx(interaction / seeds, rel=0.25)
    assert estimate.interaction_variance == pytest.approx(interaction, rel=0.25)
    assert estimate.image_variance < 0.25 * estimate.shared_variance


def test_patients_are_resampled_as_clusters():
    rng = np.random.default_rng(3)
    patients = np.repeat(["p9", "p13", "p31", "p40"], [3, 15, 26, 4])
    labels = np.repeat([0, 0, 1, 2], [3, 15, 26, 4])
    resamples = stats.resample_weights(48, patients, n_resamples=500, seed=0)
    assert (resamples.unit, resamples.units) == ("group", 4)
    for code in np.unique(patients):  # a patient's images are drawn together
        members = resamples.weights[:, patients == code]
        assert (members == members[:, :1]).all()
    assert (resamples.weights[1:].sum(axis=1) != 48).any()  # sizes vary with the patients drawn
    shares = np.array([3, 15, 26, 4]) / 48
    assert resamples.correction == pytest.approx(1 / (1 - (shares**2).sum()))
    # Patient effects on the difference: resampling patients sees them, images do not.
    effect = np.repeat(rng.normal(0, 0.8, 4), [3, 15, 26, 4])
    ours = np.where(rng.random((3, 48)) < 1 / (1 + np.exp(-(1.5 + effect))), labels, 3 - labels)
    theirs = np.where(rng.random((3, 48)) < 0.8, labels, 3 - labels)
    ours, theirs = ours % 3, theirs % 3
    clustered = stats.seed_and_image_interval(
        labels, ours, theirs, groups=patients, num_classes=3, n_resamples=500
    )
    single = stats.seed_and_image_interval(labels, ours, theirs, num_classes=3, n_resamples=500)
    assert (clustered.unit, clustered.units, clustered.df <= 3 + 2) == ("group", 4, True)
    assert (single.unit, single.units) == ("image", 48)
    # One image per group is no cluster at all.
    assert stats.resample_weights(5, ["a", "b", "c", "d", "e"], 10).unit == "image"


def test_the_classes_are_the_study_s_not_the_labels_present():
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1, 1])  # class 2 of the study never occurs
    predicted = np.array([[0, 1, 0, 1, 1, 1, 0, 0, 1], [0, 1, 1, 1, 0, 1, 0, 1, 1]])
    estimate = stats.seed_and_image_interval(labels, predicted, num_classes=3, n_resamples=50)
    assert estimate.mean == pytest.approx(np.mean([_f1(labels, p, 3) for p in predicted]))
    with pytest.raises(ValueError, match="study has 2 classes"):
        stats.seed_and_image_interval([0, 1, 2], [[0, 1, 2]], num_classes=2)


def test_a_resample_missing_a_class_does_not_score_it_zero():
    labels = np.array([0] * 20 + [1] * 20 + [2])  # one image of class 2: absent from a third
    perfect = np.vstack([labels, labels])
    estimate = stats.seed_and_image_interval(labels, perfect, n_resamples=300)
    assert estimate.mean == 1.0
    assert estimate.shared_variance == 0.0 and estimate.image_variance == 0.0


def test_one_seed_leaves_the_images_and_identical_runs_leave_nothing():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 30)
    runs = np.where(rng.random((1, 30)) < 0.7, labels, 0)
    single = stats.seed_and_image_interval(labels, runs, n_resamples=100, num_classes=3)
    assert np.isnan(single.seed_variance) and single.df == 29 and single.image_variance > 0
    assert np.isnan(single.interval(0.95, "split")).all()
    same = stats.seed_and_image_interval(
        labels, np.vstack([runs, runs]), np.vstack([runs, runs]), num_classes=3
    )
    assert same.mean == 0 and same.standard_error == 0 and same.p_value == 1.0
    assert same.equivalence_p(0.02) == 0.0
    with pytest.raises(ValueError, match="the same seeds and images"):
        stats.seed_and_image_interval(labels, np.vstack([runs, runs]), runs)


def test_tost_and_one_sided_tests_agree_with_statsmodels():
    rng = np.random.default_rng(8)
    ours, theirs = rng.normal(0.85, 0.01, 4), rng.normal(0.845, 0.01, 4)
    values = np.repeat((ours - theirs)[:, None], 101, axis=1)  # no test-data variation
    estimate = stats.two_level_estimate(values, units=48)
    assert estimate.image_variance == 0 and estimate.df == 3
    p_tost, lower, upper = ttost_paired(ours, theirs, -0.02, 0.02)
    assert estimate.equivalence_p(0.02) == pytest.approx(p_tost)
    assert estimate.p("new", -0.02, "greater") == pytest.approx(lower[1])
    assert estimate.p("new", 0.02, "less") == pytest.approx(upper[1])
    t_test = scipy_stats.ttest_rel(ours, theirs)
    assert estimate.p_value == pytest.approx(t_test.pvalue)


def test_random_effects_against_statsmodels():
    effects = np.array([0.01, 0.06, -0.02, 0.08, 0.03, 0.05])
    variances = np.array([2e-4, 3e-4, 1e-4, 4e-4, 2e-4, 1e-4])
    found = stats.random_effects(effects, variances)
    reference = combine_effects(effects, variances, method_re="dl")
    assert found["tau2"] == pytest.approx(reference.tau2) and found["tau2"] > 0
    assert found["estimate"] == pytest.approx(reference.mean_effect_re)
    assert found["se"] == pytest.approx(reference.sd_eff_w_re)
    assert found["df"] == 5
    half = scipy_stats.t.ppf(0.975, 4) * np.sqrt(found["tau2"] + found["se"] ** 2)
    assert (found["pi_low"], found["pi_high"]) == pytest.approx(
        (found["estimate"] - half, found["estimate"] + half)
    )
    # statsmodels leaves a negative tau² negative; it is a variance: 0.
    alike = stats.random_effects([0.01, 0.011, 0.012], [1e-3, 1e-3, 1e-3])
    assert combine_effects(np.array([0.01, 0.011, 0.012]), np.full(3, 1e-3), "dl").tau2 < 0
    assert alike["tau2"] == 0
    # Settings testing the same images share errors: the pooled mean is less sure.
    covariance = np.diag(variances) + 0.5 * np.sqrt(np.outer(variances, variances))
    np.fill_diagonal(covariance, variances)
    assert stats.random_effects(effects, variances, covariance)["se"] > found["se"]


def test_friedman_and_holm_against_a_control_as_demsar():
    rng = np.random.default_rng(4)
    scores = pd.DataFrame(
        rng.normal([0.86, 0.84, 0.85, 0.80, 0.83], 0.02, (10, 5)),
        columns=["VALF", "CCE", "WCCE", "FL", "DWFL"],
    )
    result = stats.friedman_with_control(scores, "VALF")
    expected = scipy_stats.friedmanchisquare(*(scores[c] for c in scores))
    assert (result["statistic"], result["p_value"]) == pytest.approx(tuple(expected))
    ranks = scores.rank(axis=1, ascending=False).mean()
    assert result["ranks"].to_dict() == pytest.approx(ranks.to_dict())
    versus = result["versus_control"].set_index("method")
    z = (ranks["FL"] - ranks["VALF"]) / np.sqrt(5 * 6 / (6 * 10))
    assert versus.loc["FL", "z"] == pytest.approx(z)
    _, adjusted, _, _ = multipletests(versus["p_value"], method="holm")
    np.testing.assert_allclose(versus["p_adjusted"], adjusted)
    # Demšar's Table 5a: q_0.05 = 2.728 for five classifiers.
    assert result["critical_difference"] == pytest.approx(2.728 * np.sqrt(5 * 6 / 60), abs=1e-3)


def test_probability_better():
    estimate = stats.TwoLevelEstimate(0.03, 0.0002, 0.0001, 6.0, 3, 48, 48, "image")
    p, low, high = stats.probability_better(estimate)
    assert p == pytest.approx(scipy_stats.norm.cdf(0.03 / np.sqrt(0.0002 * 3 + 0.0001)))
    assert 0 <= low < p < high <= 1
    one = stats.TwoLevelEstimate(0.03, np.nan, 0.0001, 47.0, 1, 48, 48, "image")
    assert np.isnan(stats.probability_better(one)).all()


def test_detectable_difference_against_the_noncentral_t():
    se, df = np.sqrt(0.0009), 7.0
    t = scipy_stats.t
    found = stats.detectable_difference(se, df)
    assert found == pytest.approx((t.ppf(0.975, df) + t.ppf(0.8, df)) * se)
    # The power a two-sided t-test really has at that difference (noncentral t): about 0.8.
    critical = t.ppf(0.975, df)
    shift = found / se
    power = scipy_stats.nct.sf(critical, df, shift) + scipy_stats.nct.cdf(-critical, df, shift)
    assert power == pytest.approx(0.8, abs=0.03)
    # Holm's first step over 40 comparisons with 3 seeds: 29.3 standard errors, not 5.36.
    assert stats.detectable_difference(1.0, 2, alpha=0.05 / 40) == pytest.approx(29.3, abs=0.05)
    assert stats.detectable_difference(1.0, 2) == pytest.approx(5.36, abs=0.01)


def test_seeds_needed():
    per_seed, data, data_df = 0.03**2, 0.005**2, 47
    needed = stats.seeds_needed(per_seed, data, data_df, 0.04)
    assert np.isfinite(needed)

    def detectable(seeds):
        seed_part = per_seed / seeds
        df = (seed_part + data) ** 2 / (seed_part**2 / (seeds - 1) + data**2 / data_df)
        return stats.detectable_difference(np.sqrt(seed_part + data), df)

    assert detectable(needed) <= 0.04 < detectable(needed - 1)
    assert stats.seeds_needed(per_seed, 0.02**2, data_df, 0.04) == np.inf  # below the floor
    assert np.isnan(stats.seeds_needed(per_seed, data, data_df, np.nan))


# -- coverage, by simulation (benchmarks/coverage.py, quickly) ----------------------------------


def _benchmark():
    spec = importlib.util.spec_from_file_location("coverage", ROOT / "benchmarks" / "coverage.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["coverage"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


QUICK_BANDS = ((0.915, 0.985), (0.8, 1.25))


@pytest.mark.parametrize("scenario", [0, 3])  # independent images (null); patient-clustered
def test_coverage_of_both_intervals_quickly(scenario):
    coverage = _benchmark()
    chosen = coverage.SCENARIOS[scenario]
    rows, truth, variance, _ = coverage.run_scenario(
        chosen, repetitions=300, n_resamples=300, seed=99, truth_draws=4000
    )
    found = {
        (r["interval"], r["estimand"]): r
        for r in coverage.evaluate(rows, truth, variance, chosen, QUICK_BANDS)
    }
    for key in (("seeds only", "this test split"), ("seeds and new test data", "new test data")):
        assert found[key]["passed"], found[key]
    # The negative control fails to cover where test data matter, so the check can fail.
    control = found[("seeds only", "new test data")]
    assert control["role"] == "negative control" and control["variance_ratio"] < 0.8
    if chosen.clustered:
        assert control["coverage"] < 0.9
    # The interval the study used before would not pass: its variance is far off the truth.
    before = found[("crossed, v twice (before)", "new test data")]
    assert not QUICK_BANDS[1][0] <= before["variance_ratio"] <= QUICK_BANDS[1][1], before


def test_the_interval_for_new_test_data_is_never_narrower_than_this_split_s():
    estimate = stats.TwoLevelEstimate(
        mean=0.1, seed_variance=0.001, image_variance=0.001, df=7.8, seeds=3, images=100, units=100
    )
    df = stats._satterthwaite_terms([(0.001, 2), (0.001, 99)])
    half_new = scipy_stats.t.ppf(0.975, df) * np.sqrt(0.002)
    half_split = scipy_stats.t.ppf(0.975, 2) * np.sqrt(0.001)
    assert half_new < half_split  # Welch-Satterthwaite's extra degrees of freedom
    assert estimate.interval(0.95) == pytest.approx(estimate.interval(0.95, "split"))
    # the p-value agrees with the interval: 0.05 exactly at its end
    high = estimate.interval(0.95)[1]
    assert estimate.p(null=high) == pytest.approx(0.05)
    assert estimate.p() >= estimate.p("split")
