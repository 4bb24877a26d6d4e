"""Do the study's intervals cover what they say they cover? A simulation that can fail.

Each repetition simulates one comparison as the study makes it: two methods, S seeds each,
paired by seed, tested on one test split shaped like LungHist700's 20x official test split (48
images of three classes from four patients, with the real class counts of each patient). No
model is trained: per image a true class, and per method, seed and image a correct or wrong
prediction drawn from a latent logistic model with

* a method effect (the true difference, on the logit scale),
* a seed effect shared by the two runs of a seed and one of each run (``seed_sd``),
* an image difficulty shared by the methods, and a method-by-image effect (``image_sd``), which
  makes the difference on a given test split differ from the difference on new test data,
* a patient difficulty and a method-by-patient effect (``patient_sd``),
* a Bernoulli draw per method, seed and image (the seed-by-image interaction).

A wrong prediction is one of the other classes at random. Macro-F1 is computed by
``valf_study.metrics.metric_of_resamples``. For each repetition the script computes, with
``valf_study.stats.seed_and_image_interval``,

* ``seeds only``: the interval for this test split (estimand: the mean over seeds of the
  difference on these test images; its truth is estimated from 400 further seeds on the same
  test split),
* ``seeds and new test data``: the interval for new test data (estimand: the expected
  difference on a new test split drawn the same way, with new patients; its truth is the mean
  of 20,000 simulated studies),
* two negative controls: ``seeds only`` judged against the new-data estimand (it must
  under-cover wherever test data matter) and, in the patient scenario, the new-data interval
  resampling images instead of patients,
* for reference, the interval the study used before (``crossed, v twice``: seed variance plus
  the shared image bootstrap, which counts the interaction twice and ignores patients).

An interval passes where it is meant to apply when its coverage is within 95 ± 1.5 % and the
mean of its estimated variance over the true variance of the mean is within 0.85-1.2; a
negative control passes when it under-covers (below 93.5 %). The ``A/A`` scenario is the same
loss against itself: its rejection rate at 5 % is the machinery's false-positive rate, and its
p-values are kept for a histogram.

Usage::

    python benchmarks/coverage.py                       # 2000 repetitions per scenario
    python benchmarks/coverage.py --repetitions 300     # quicker, noisier
    python benchmarks/coverage.py --json benchmarks/results/coverage-cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from valf_study.metrics import metric_of_resamples
from valf_study.stats import probability_better, seed_and_image_interval

#: LungHist700's 20x official test split: (patient, class, images), class 0 ACA, 1 NOR, 2 SCC.
TEST_SPLIT_20X = ((9, 0, 3), (13, 0, 15), (31, 1, 19), (31, 2, 7), (40, 2, 4))
#: Its 40x official test split: six patients.
TEST_SPLIT_40X = (
    (11, 0, 7),
    (11, 1, 8),
    (15, 0, 6),
    (20, 0, 4),
    (25, 2, 15),
    (32, 2, 5),
    (43, 1, 5),
)
CLASSES = 3


@dataclass(frozen=True)
class Scenario:
    """A latent model of one comparison (logit scale) and the test split it is tested on."""

    name: str
    difference: float  # method A's logit minus B's
    seed_sd: float  # each run's own seed effect
    shared_seed_sd: float  # the seed effect both runs of a seed share
    image_sd: float  # method-by-image effect on the difference
    difficulty_sd: float  # image difficulty both methods share
    patient_sd: float  # method-by-patient effect on the difference
    patient_difficulty_sd: float
    split: tuple = TEST_SPLIT_20X
    clustered: bool = False  # the intervals resample patients
    baseline: float = 2.0  # logit of a correct prediction (about 85 %)
    seeds: int = 3


SCENARIOS = (
    Scenario("independent images, null", 0.0, 0.25, 0.3, 1.6, 1.0, 0.0, 0.0),
    Scenario("image-dependent effect", 0.4, 0.2, 0.3, 2.2, 1.0, 0.0, 0.0),
    Scenario("seed-dominated", 0.3, 0.6, 0.3, 0.15, 1.0, 0.0, 0.0),
    Scenario("patient-clustered", 0.3, 0.2, 0.3, 0.3, 0.8, 1.2, 0.5, clustered=True),
    Scenario(
        "patient-clustered, 40x (6 patients)",
        0.3,
        0.2,
        0.3,
        0.3,
        0.8,
        1.2,
        0.5,
        split=TEST_SPLIT_40X,
        clustered=True,
    ),
)
#: The same loss against itself: no method effect of any kind.
AA = Scenario("A/A", 0.0, 0.25, 0.3, 0.0, 1.0, 0.0, 0.0)


def test_split(split):
    """Labels and patient of every test image."""
    labels = np.concatenate([np.full(n, c) for _, c, n in split])
    patients = np.concatenate([np.full(n, p) for p, _, n in split])
    return labels, patients


class Simulator:
    """Draws test splits and runs of one scenario."""

    def __init__(self, scenario):
        self.s = scenario
        self.labels, self.patients = test_split(scenario.split)
        _, self.patient_index = np.unique(self.patients, return_inverse=True)
        self.n = len(self.labels)

    def test_data(self, rng, draws=None):
        """Per-image effects of a test split (or ``draws`` of them): the shared difficulty and
        the effect on the difference, images and patients together."""
        shape = (self.n,) if draws is None else (draws, self.n)
        patient_shape = (self.patient_index.max() + 1,)
        patient_shape = patient_shape if draws is None else (draws, *patient_shape)
        s = self.s
        patient_difficulty = rng.normal(0, s.patient_difficulty_sd, patient_shape)
        patient_effect = rng.normal(0, s.patient_sd, patient_shape)
        difficulty = (
            rng.normal(0, s.difficulty_sd, shape) + patient_difficulty[..., self.patient_index]
        )
        effect = rng.normal(0, s.image_sd, shape) + patient_effect[..., self.patient_index]
        return difficulty, effect

    def predictions(self, rng, difficulty, effect, seeds):
        """Both methods' predictions, shape (..., seeds, N) each, for the given test data."""
        s = self.s
        lead = difficulty.shape[:-1]
        shared = rng.normal(0, s.shared_seed_sd, (*lead, seeds, 1))
        arms = []
        for sign in (1, -1):
            own = rng.normal(0, s.seed_sd, (*lead, seeds, 1))
            logit = (
                s.baseline
                + sign * s.difference / 2
                + shared
                + own
                + difficulty[..., None, :]
                + sign * effect[..., None, :] / 2
            )
            right = rng.random(logit.shape) < 1 / (1 + np.exp(-logit))
            wrong = (self.labels + rng.integers(1, CLASSES, logit.shape)) % CLASSES
            arms.append(np.where(right, self.labels, wrong))
        return arms

    def f1(self, predicted):
        """Macro-F1 of every row of ``predicted`` (shape (..., N)), by metric_of_resamples."""
        flat = predicted.reshape(-1, self.n)
        rows = len(flat)
        labels = np.tile(self.labels, rows)
        indices = np.arange(rows * self.n).reshape(rows, self.n)
        values = metric_of_resamples("f1", labels, flat.ravel(), indices, CLASSES)
        return values.reshape(predicted.shape[:-1])


def truth(simulator, rng, draws=20000, chunk=2000):
    """Expected mean difference over seeds on new test data, and the variance of the study's
    mean (both over ``draws`` simulated studies), with the probability that one new run pair
    favours A (ties count half)."""
    means, singles = [], []
    for start in range(0, draws, chunk):
        difficulty, effect = simulator.test_data(rng, min(chunk, draws - start))
        ours, theirs = simulator.predictions(rng, difficulty, effect, simulator.s.seeds)
        differences = simulator.f1(ours) - simulator.f1(theirs)
        means.append(differences.mean(axis=1))
        singles.append(differences[:, 0])
    means, singles = np.concatenate(means), np.concatenate(singles)
    better = float(np.mean(singles > 0) + 0.5 * np.mean(singles == 0))
    return float(means.mean()), float(means.var(ddof=1)), better


def _old_interval(labels, ours, theirs, n_resamples, seed):
    """The interval the study used before: s²/S + the shared image bootstrap (interaction
    counted twice, patients ignored), Welch-Satterthwaite with the image part as known."""
    estimate = seed_and_image_interval(
        labels, ours, theirs, n_resamples=n_resamples, seed=seed, num_classes=CLASSES
    )
    seeds = estimate.seeds
    # The old code had no n/(n - 1) correction.
    shared = estimate.shared_variance * (estimate.units - 1) / estimate.units
    variance = estimate.seed_variance + shared
    df = variance**2 / (estimate.seed_variance**2 / (seeds - 1))
    return estimate.mean, variance, df


def repetition(simulator, rng, n_resamples, extra_seeds=400):
    """One simulated comparison: every interval's estimate and the split's truth."""
    difficulty, effect = simulator.test_data(rng)
    ours, theirs = simulator.predictions(rng, difficulty, effect, simulator.s.seeds)
    more_ours, more_theirs = simulator.predictions(rng, difficulty, effect, extra_seeds)
    more = simulator.f1(more_ours) - simulator.f1(more_theirs)
    split_truth, split_variance = float(more.mean()), float(more.var(ddof=1) / simulator.s.seeds)
    seed = int(rng.integers(1 << 30))
    groups = simulator.patients if simulator.s.clustered else None
    new = seed_and_image_interval(
        simulator.labels,
        ours,
        theirs,
        n_resamples=n_resamples,
        seed=seed,
        groups=groups,
        num_classes=CLASSES,
    )
    row = {
        "mean": new.mean,
        "split_truth": split_truth,
        "split_true_variance": split_variance,
        "split_variance": new.seed_variance,
        "split_df": new.split_df,
        "new_variance": new.standard_error**2,
        "new_df": new.df,
        # the interval the study draws: never narrower than the split's (TwoLevelEstimate)
        "new_half": (new.interval(0.95)[1] - new.interval(0.95)[0]) / 2,
        "p_new": new.p_value,
        "p_split": new.p("split"),
        "shared_variance": new.shared_variance,
        "within_variance": new.within_variance,
        "units": new.units,
    }
    if simulator.s.clustered:
        images = seed_and_image_interval(
            simulator.labels, ours, theirs, n_resamples=n_resamples, seed=seed, num_classes=CLASSES
        )
        row.update(images_variance=images.standard_error**2, images_df=images.df)
    _, old_variance, old_df = _old_interval(simulator.labels, ours, theirs, n_resamples, seed)
    row.update(old_variance=old_variance, old_df=old_df)
    p, low, high = probability_better(new, draws=2000, seed=seed)
    row.update(p_better=p, p_better_low=low, p_better_high=high)
    return row


def _covered(rows, truth_key_or_value, variance_key, df_key, confidence=0.95):
    """Coverage at ``confidence`` and the mean estimated variance; ``df_key`` ``"new_df"``
    takes the study's own interval for new test data (``new_half``, at 95 %)."""
    from scipy import stats

    means = np.array([r["mean"] for r in rows])
    variance = np.array([r[variance_key] for r in rows])
    df = np.array([r[df_key] for r in rows])
    truth = (
        np.array([r[truth_key_or_value] for r in rows])
        if isinstance(truth_key_or_value, str)
        else np.full(len(rows), truth_key_or_value)
    )
    half = stats.t.ppf(0.5 + confidence / 2, df) * np.sqrt(variance)
    if df_key == "new_df" and confidence == 0.95 and all("new_half" in r for r in rows):
        half = np.array([r["new_half"] for r in rows])
    return float(np.mean(np.abs(means - truth) <= half)), float(variance.mean())


#: Pass bands where an interval is meant to apply.
COVERAGE_BAND = (0.935, 0.965)
VARIANCE_BAND = (0.85, 1.2)
#: A negative control passes when it covers less than this (it under-covers).
UNDER = COVERAGE_BAND[0]


def evaluate(rows, new_truth, new_variance, scenario, bands=(COVERAGE_BAND, VARIANCE_BAND)):
    """Coverage and variance ratio of every interval in one scenario, with pass/fail."""
    coverage_band, variance_band = bands
    split_true = float(np.mean([r["split_true_variance"] for r in rows]))
    means = np.array([r["mean"] for r in rows])
    new_true = float(np.mean((means - new_truth) ** 2)) if new_variance is None else new_variance
    checks = [
        ("seeds only", "this test split", "split_truth", "split_variance", "split_df", split_true),
        ("seeds and new test data", "new test data", new_truth, "new_variance", "new_df", new_true),
        ("seeds only", "new test data", new_truth, "split_variance", "split_df", new_true),
        (
            "crossed, v twice (before)",
            "new test data",
            new_truth,
            "old_variance",
            "old_df",
            new_true,
        ),
    ]
    if scenario.clustered:
        checks.append(
            (
                "new test data, images as units",
                "new test data",
                new_truth,
                "images_variance",
                "images_df",
                new_true,
            )
        )
    images_matter = scenario.image_sd > 0.3 or scenario.patient_sd > 0
    results = []
    for interval, estimand, truth_value, variance_key, df_key, true_variance in checks:
        coverage, mean_variance = _covered(rows, truth_value, variance_key, df_key)
        ratio = mean_variance / true_variance if true_variance > 0 else np.nan
        if (interval, estimand) in {
            ("seeds only", "this test split"),
            ("seeds and new test data", "new test data"),
        }:
            role = "meant to apply"
            passed = (
                coverage_band[0] <= coverage <= coverage_band[1]
                and variance_band[0] <= ratio <= variance_band[1]
            )
        elif interval == "seeds only" and images_matter:
            role = "negative control"
            passed = coverage < UNDER
        elif interval.startswith("new test data, images") and scenario.clustered:
            role = "negative control"
            passed = coverage < UNDER
        else:
            role = "reference"
            passed = None
        results.append(
            {
                "scenario": scenario.name,
                "interval": interval,
                "estimand": estimand,
                "coverage": coverage,
                "variance_ratio": ratio,
                "role": role,
                "passed": passed,
            }
        )
    return results


def run_scenario(scenario, repetitions, n_resamples, seed, truth_draws=20000):
    rng = np.random.default_rng(seed)
    simulator = Simulator(scenario)
    new_truth, new_variance, p_true = truth(simulator, rng, truth_draws)
    rows = [repetition(simulator, rng, n_resamples) for _ in range(repetitions)]
    return rows, new_truth, new_variance, p_true


def probability_summary(rows, p_true):
    p = np.array([r["p_better"] for r in rows])
    low = np.array([r["p_better_low"] for r in rows])
    high = np.array([r["p_better_high"] for r in rows])
    return {
        "p_better_true": p_true,
        "p_better_mean_estimate": float(np.nanmean(p)),
        "p_better_interval_coverage": float(np.mean((low <= p_true) & (p_true <= high))),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repetitions", type=int, default=2000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--truth-draws", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    from valf_study.run.environment import environment_record

    started = time.perf_counter()
    results, scenarios, aa = [], [], {}
    for index, scenario in enumerate((*SCENARIOS, AA)):
        begun = time.perf_counter()
        rows, new_truth, new_variance, p_true = run_scenario(
            scenario, args.repetitions, args.resamples, args.seed + index, args.truth_draws
        )
        seconds = time.perf_counter() - begun
        if scenario is AA:
            p_values = np.array([r["p_new"] for r in rows])
            p_split = np.array([r["p_split"] for r in rows])
            aa = {
                "scenario": asdict(scenario),
                "repetitions": len(rows),
                "false_positive_rate_new": float(np.mean(p_values < 0.05)),
                "false_positive_rate_split": float(np.mean(p_split < 0.05)),
                "p_value_histogram": np.histogram(p_values, bins=20, range=(0, 1))[0].tolist(),
                "p_values_new": [round(float(v), 5) for v in p_values],
                "seconds": seconds,
            }
            print(
                f"A/A ({len(rows)} repetitions): false-positive rate at 5 %: "
                f"{aa['false_positive_rate_new']:.3f} (new test data), "
                f"{aa['false_positive_rate_split']:.3f} (this split)"
            )
            continue
        found = evaluate(rows, new_truth, new_variance, scenario)
        results.extend(found)
        scenarios.append(
            {
                **asdict(scenario),
                "repetitions": len(rows),
                "new_data_truth": new_truth,
                "new_data_true_variance": new_variance,
                "mean_split_true_variance": float(
                    np.mean([r["split_true_variance"] for r in rows])
                ),
                **probability_summary(rows, p_true),
                "seconds": seconds,
            }
        )
        print(f"\n{scenario.name} ({len(rows)} repetitions, {seconds:.0f} s)")
        for r in found:
            verdict = {True: "pass", False: "FAIL", None: ""}[r["passed"]]
            print(
                f"  {r['interval']:<32} {r['estimand']:<16} coverage {r['coverage']:.3f}  "
                f"variance ratio {r['variance_ratio']:.2f}  {r['role']:<16} {verdict}"
            )
    failed = [r for r in results if r["passed"] is False]
    record = {
        "script": "benchmarks/coverage.py",
        "arguments": vars(args),
        "bands": {"coverage": COVERAGE_BAND, "variance_ratio": VARIANCE_BAND, "under": UNDER},
        "results": results,
        "scenarios": scenarios,
        "aa": aa,
        "passed": not failed,
        "seconds": time.perf_counter() - started,
        "environment": environment_record(),
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1)
    print("\nall pass" if not failed else f"\n{len(failed)} check(s) FAILED")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
