"""The study's pre-registered comparisons and its primary tests.

**Per setting** (secondary). Each reading of VALF against the loss it extends (FL) and against
cross-entropy (CCE), in every setting (backbone and magnification), paired by seed: the mean over
seeds of the paired difference of macro-F1 on the same test images. The comparisons are fixed
before any result is seen, not picked from the results. Each gets two intervals
(:mod:`valf_study.stats`), each about its own estimand:

* ``ci_split_low``/``ci_split_high``: the mean difference on *this test split*, over training
  seeds (Student-t over seeds);
* ``ci_new_low``/``ci_new_high``: the mean difference on *new test data* drawn as this split was
  (new patients for LungHist700, new groups of a folder), over training seeds: seeds and test
  data, the test data resampled by ``unit`` (patients or a folder's groups as clusters where a
  group holds several images; images otherwise), the seed-by-data interaction counted once.

The **verdict** is read off the interval for new test data, because the question (and the
paper's claim) is about the losses, not about the 48 images of one split: a difference that
holds only for these four patients is not one a reader can use. Every family is Holm-adjusted
over all the comparisons of the study (:func:`valf_study.stats.holm`), and exactly one verdict
is given, the first that holds:

``better`` / ``worse``
    The two-sided test of no difference rejects at the Holm-adjusted level: the interval
    ``ci_new`` at ``ci_level`` lies above (below) 0.
``equivalent``
    Two one-sided tests (TOST, Lakens 2017) reject a difference as large as ``margin`` at the
    Holm-adjusted level of the equivalence family: the interval ``equivalence_low/high`` lies
    inside ±margin. The margin is the study file's ``analysis: {margin: ...}``, by default
    0.02 in macro-F1, about what one test image of LungHist700 moves it (a region of practical
    equivalence, Benavoli et al. 2017).
``claim excluded``
    A one-sided test rejects a gain as large as the paper's claim, at the Holm-adjusted level of
    the claim family: ``claim_upper`` (the adjusted one-sided upper bound of our difference)
    lies below ``claim``. The claim and our difference are in the paper's F1 (2PR/(P+R) of macro
    P and R, ``f1_of_means``). The claim is the paper's VALF minus the comparator in its Table 2
    for the setting; for a backbone the paper does not have, its mean claimed gain against that
    comparator at the same magnification over its five backbones (``claim_source`` says which).
    Where the paper claims no gain (its VALF is not ahead of the comparator there), or the study
    is not on LungHist700 (a folder, the generated data), there is no claim and this verdict
    does not apply.
``inconclusive``
    None of these: the data cannot tell a difference, an equivalence or the claim apart.

``p_better`` is the probability that VALF beats the comparator in a new run pair (a new seed
each, new test data), P(A > B) (Bouthillier et al. 2021; Agarwal et al. 2021's probability of
improvement), with ``p_better_low``/``p_better_high`` from a parametric bootstrap
(:func:`valf_study.stats.probability_better`).

**Primary tests** (:func:`analysis`, ``results/<study>/primary.csv``). Four questions, each
reading of VALF (r = 0.01, r = 1) against FL and against CCE, pooled across the settings with a
random-effects model (:func:`valf_study.stats.random_effects`: DerSimonian and Laird's tau², the
settings that test the same images correlated through them, a prediction interval for a new
setting), Holm-adjusted over the four. They are gatekeepers: the per-setting comparisons of a
reading and a comparator are interpreted (``gate`` = ``open``) only where its primary test
rejects; elsewhere (``closed``) they are descriptive. The per-setting family is adjusted on its
own, so each family has a family-wise error rate of at most alpha; the gate only withholds
interpretations, it never adds a rejection. Beside them: the two readings of eq. 7 against each
other, pooled the same way (its own question, at alpha); the paper's headline ("VALF best in 8
of 10 settings") tested from our runs: Friedman's test with settings as blocks and the paper's
five losses as treatments, each other loss against VALF by average rank with Holm (Demšar 2006),
and the probability that VALF is best in at least 8 of 10 settings in a rerun of the study,
estimated by resampling seeds and test data (:func:`analysis`).

Under cross-validation (``split: kfold``) a seed's runs are its folds, and their test
predictions are pooled: every image is tested once per seed.

References
----------
- Bouthillier, X. et al. (2021). Accounting for variance in machine learning benchmarks.
  MLSys 2021. https://doi.org/10.48550/arXiv.2103.03098
- Agarwal, R. et al. (2021). Deep reinforcement learning at the edge of the statistical
  precipice. NeurIPS 34. https://doi.org/10.48550/arXiv.2108.13264
- Benavoli, A., Corani, G., Demšar, J., Zaffalon, M. (2017). Time for a change: a tutorial for
  comparing multiple classifiers through Bayesian analysis. Journal of Machine Learning
  Research 18, 1-36.
- Demšar, J. (2006). Statistical comparisons of classifiers over multiple data sets. Journal
  of Machine Learning Research 7, 1-30.
- DerSimonian, R., Laird, N. (1986). Meta-analysis in clinical trials. Controlled Clinical
  Trials 7(3), 177-188. https://doi.org/10.1016/0197-2456(86)90046-2
- Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian
  Journal of Statistics 6(2), 65-70.
- Lakens, D. (2017). Equivalence tests. Social Psychological and Personality Science 8(4),
  355-362. https://doi.org/10.1177/1948550617697177
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from valf_study.stats import (
    detectable_difference,
    holm,
    metric_of_weights,
    probability_better,
    random_effects,
    resample_weights,
    seed_and_image_interval,
    two_level_estimate,
)

__all__ = [
    "COMPARATORS",
    "CONTROL_METRICS",
    "DEFAULT_MARGIN",
    "ESTIMAND_SPLIT",
    "PAPER_LOSSES",
    "SETTING",
    "SETTING_EXTRAS",
    "VERDICTS",
    "aa_control",
    "aa_summary",
    "analysis",
    "comparisons",
    "control_tests",
    "count_verdicts",
    "friedman_tests",
    "matching_runs",
    "paired_predictions",
    "paper_claims",
    "primary_tests",
    "seed_predictions",
    "setting_keys",
    "study_classes",
]

#: What each reading of VALF is compared with: the loss it extends, and cross-entropy.
COMPARATORS = ("FL", "CCE")
#: The keys of a setting: the comparisons are made within each.
SETTING = ("backbone", "magnification")
#: Run parameters that make settings of their own where a study's main grid varies them (the
#: imbalance ratio of long-tailed MNIST).
SETTING_EXTRAS = ("imbalance_ratio",)


def setting_keys(runs):
    """The columns of a setting of these runs: :data:`SETTING`, and each of
    :data:`SETTING_EXTRAS` that takes more than one value among them."""
    extras = [key for key in SETTING_EXTRAS if key in runs and runs[key].nunique(dropna=False) > 1]
    return [*SETTING, *extras]


#: The equivalence margin in macro-F1 when the study file does not set ``analysis: margin``.
DEFAULT_MARGIN = 0.02
#: The paper's baselines (its Table 2 has these and VALF).
PAPER_LOSSES = ("CCE", "WCCE", "FL", "DWFL")
#: The verdicts a comparison can have, exactly one each.
VERDICTS = ("better", "worse", "equivalent", "claim excluded", "inconclusive")
ESTIMAND_SPLIT = "mean difference in macro-F1 on this test split, over training seeds"


def _estimand_new(unit):
    return (
        f"mean difference in macro-F1 on new test data (new {unit}s drawn as these were), "
        "over training seeds"
    )


_COLUMNS = [
    *SETTING,
    "loss",
    "comparator",
    "mean_diff",
    "verdict",
    "gate",
    "ci_new_low",
    "ci_new_high",
    "ci_level",
    "p_value",
    "p_adjusted",
    "ci_split_low",
    "ci_split_high",
    "p_split",
    "estimand_new",
    "estimand_split",
    "margin",
    "equivalence_low",
    "equivalence_high",
    "p_equivalent",
    "p_equivalent_adjusted",
    "claim",
    "claim_source",
    "claim_diff",
    "claim_upper",
    "p_claim",
    "p_claim_adjusted",
    "p_better",
    "p_better_low",
    "p_better_high",
    "ci_low",
    "ci_high",
    "standard_error",
    "df",
    "split_standard_error",
    "split_df",
    "seed_variance",
    "image_variance",
    "interaction_variance",
    "seeds",
    "images",
    "unit",
    "units",
    "note",
]
_PRIMARY_COLUMNS = [
    "test",
    "family",
    "loss",
    "comparator",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "significant",
    "statistic",
    "tau2",
    "pi_low",
    "pi_high",
    "settings",
    "meaning",
]


# -- the predictions, seed by seed ---------------------------------------------------------------


def seed_predictions(runs, predictions, split="test"):
    """The predicted class of every image by the run(s) of each seed, as an (image, seed) table.

    A seed's runs are pooled (the folds of a cross-validation each predict their own test
    images); ``runs`` must hold one run per seed otherwise.

    Returns
    -------
    pandas.DataFrame
        Index ``image_path``, one column per seed, plus the columns ``label`` and, where the
        predictions have it, ``group`` (the image's patient or group).
    """
    members = runs[["run_id", "seed"]]
    chosen = predictions[
        (predictions["split"] == split) & predictions["run_id"].isin(members["run_id"])
    ].merge(members, on="run_id")
    table = chosen.pivot_table(
        index="image_path", columns="seed", values="predicted", aggfunc="first"
    )
    first = chosen.drop_duplicates("image_path").set_index("image_path")
    table["label"] = first["label"]
    if "group" in first:
        table["group"] = first["group"].astype(str)
    return table


def _seed_columns(table):
    return [c for c in table.columns if c not in ("label", "group")]


def _aligned(runs, predictions, methods):
    """Labels, groups and each method's predictions (seeds x images) on the seeds every
    method has and the images every one of those runs predicted."""
    tables = [seed_predictions(runs[runs["method"] == m], predictions) for m in methods]
    seeds = sorted(set.intersection(*(set(_seed_columns(t)) for t in tables)))
    images = tables[0][seeds].dropna().index
    for table in tables[1:]:
        images = images.intersection(table[seeds].dropna().index)
    arms = {m: t.loc[images, seeds].to_numpy(int).T for m, t in zip(methods, tables)}
    labels = tables[0].loc[images, "label"].to_numpy(int)
    groups = tables[0].loc[images, "group"].to_numpy() if "group" in tables[0] else None
    return labels, arms, groups, tuple(images), seeds


def paired_predictions(runs, predictions, method, comparator):
    """Test labels and the two methods' predictions, seed by seed on the same images.

    Parameters
    ----------
    runs : pandas.DataFrame
        Complete runs of one setting, with ``run_id``, ``method`` and ``seed``.
    predictions : pandas.DataFrame
        The study's predictions table (``run_id``, ``split``, ``image_path``, ``label``,
        ``predicted``, and ``group``).
    method, comparator : str
        Method labels (``runs["method"]``).

    Returns
    -------
    labels : numpy.ndarray, shape (N,)
    ours, theirs : numpy.ndarray, shape (S, N)
        Predicted classes, one row per seed both methods have, over the images every one of
        those runs predicted (folds of a seed pooled).
    """
    labels, arms, _, _, _ = _aligned(runs, predictions, [method, comparator])
    return labels, arms[method], arms[comparator]


def study_classes(runs, predictions=None):
    """How many classes the study has: its runs' recorded class list (``class_names``), else the
    predictions' probability columns; never the labels that happen to be present.

    Examples
    --------
    >>> study_classes(pd.DataFrame({"status": ["done"], "class_names": ['["a", "b", "c"]']}))
    3
    """
    if "class_names" in runs:
        for value in runs.loc[runs["status"] == "done", "class_names"].dropna():
            return len(json.loads(value) if isinstance(value, str) else value)
    if predictions is not None:
        columns = [c for c in predictions.columns if str(c).startswith("prob_")]
        if columns:
            return len(columns)
        if len(predictions):
            return int(max(predictions["label"].max(), predictions["predicted"].max())) + 1
    raise ValueError("The runs record no class list and there are no predictions to count.")


def _main_runs(runs):
    """The complete runs of the experiment ``main``, one per setting, method, seed (and fold)."""
    member = runs["experiments"].fillna("").str.split(";").apply(lambda names: "main" in names)
    done = runs[member & (runs["status"] == "done")]
    keys = [*setting_keys(done), "method", "seed", *(["fold"] if "fold" in done else [])]
    twice = done[done.duplicated(keys, keep=False)]
    if len(twice):
        raise ValueError(
            "The experiment `main` has several runs of one setting, method and seed "
            f"({', '.join(twice['run_id'].head(4))}); the comparisons need one each. Vary "
            "other parameters in experiments of their own."
        )
    return done


def _treatments(methods):
    return sorted((m for m in methods if m.startswith("VALF")), key=str)


def _on_paper_data(runs):
    """Whether the runs are on the data set the paper measured (LungHist700 itself)."""
    if "dataset" not in runs:
        return False
    from valf_study.data.dataset import get

    names = set(runs["dataset"].dropna())
    try:
        return bool(names) and all(get(name).paper for name in names)
    except ValueError:
        return False


def _unit_name(unit, runs):
    """What a test unit is called: an image, a patient (LungHist700 and the data in its layout,
    whose groups are patients) or a group (a folder's)."""
    if unit == "image":
        return "image"
    if "dataset" in runs:
        from valf_study.data.dataset import get

        try:
            if all(get(name).layout_of_lunghist700 for name in set(runs["dataset"].dropna())):
                return "patient"
        except ValueError:
            pass
    return "group"


# -- the paper's claims ----------------------------------------------------------------------------


def paper_claims(paper=None):
    """The paper's claimed gains: its VALF's F1 minus each comparator's, per setting of its
    Table 2 (its F1 is 2PR/(P+R) of macro P and R).

    Examples
    --------
    >>> claims = paper_claims().set_index(["backbone", "magnification", "comparator"])
    >>> round(float(claims.loc[("ResNet50", "20x", "FL"), "claim"]), 3)
    0.014
    """
    if paper is None:
        from valf_study.studies.paper import read_paper_table

        paper = read_paper_table()
    rows = []
    for (backbone, magnification), part in paper.groupby(list(SETTING), sort=True):
        valf = part.loc[part["loss"] == "VALF", "f1"]
        for comparator in COMPARATORS:
            other = part.loc[part["loss"] == comparator, "f1"]
            if len(valf) and len(other):
                rows.append(
                    {
                        "backbone": backbone,
                        "magnification": magnification,
                        "comparator": comparator,
                        "claim": float(valf.iloc[0] - other.iloc[0]),
                    }
                )
    return pd.DataFrame(rows)


def _claim(claims, backbone, magnification, comparator):
    """(claim, source) for one comparison; NaN and the reason where none applies."""
    if claims is None:
        return np.nan, "no claim: the study is not on LungHist700, the paper's data"
    same = claims[(claims["comparator"] == comparator) & (claims["magnification"] == magnification)]
    exact = same[same["backbone"] == backbone]
    if len(exact):
        value = float(exact["claim"].iloc[0])
        source = (
            exact["claim_source"].iloc[0]
            if "claim_source" in exact
            else f"the paper's Table 2: VALF minus {comparator}, {backbone} {magnification}"
        )
    elif len(same):
        value = float(same["claim"].mean())
        source = (
            f"the paper's mean gain over {comparator} at {magnification} across its "
            f"{len(same)} backbones ({backbone} is not in the paper)"
        )
    else:
        return np.nan, f"no claim: the paper has no {magnification} setting"
    if not value > 0:
        return (
            np.nan,
            f"no claim: the paper's VALF is not ahead of {comparator} here ({value:+.3f})",
        )
    return value, source


def _resolve_claims(runs, claims):
    if isinstance(claims, str) and claims == "paper":
        return paper_claims() if _on_paper_data(runs) else None
    return claims


# -- the analysis -------------------------------------------------------------------------------


@dataclass
class _Pair:
    """One paired comparison's estimates, with what pooling needs: its test images (``key``)
    and the seed mean of each shared resample (scaled by the bootstrap's correction)."""

    setting: tuple
    loss: str
    comparator: str
    estimate: object
    claim_estimate: object
    key: tuple
    resampled: np.ndarray


def _pair(setting, part, predictions, loss, comparator, classes, n_resamples, seed, with_claim):
    labels, arms, groups, key, _ = _aligned(part, predictions, [loss, comparator])
    if not len(labels) or not arms[loss].shape[0]:
        return None
    resamples = resample_weights(len(labels), groups, n_resamples, seed)
    estimates, resampled = [], None
    for metric in ("f1", "f1_of_means") if with_claim else ("f1",):
        values = metric_of_weights(metric, labels, arms[loss], resamples.weights, classes)
        values = values - metric_of_weights(
            metric, labels, arms[comparator], resamples.weights, classes
        )
        estimates.append(
            two_level_estimate(
                values, resamples.units, resamples.unit, len(labels), resamples.correction
            )
        )
        if resampled is None:
            resampled = values[:, 1:].mean(axis=0) * np.sqrt(resamples.correction)
    claim_estimate = estimates[1] if with_claim else None
    return _Pair(setting, loss, comparator, estimates[0], claim_estimate, key, resampled)


def _verdict(p_adjusted, mean, p_equivalent_adjusted, p_claim_adjusted, alpha):
    if p_adjusted < alpha:
        return "better" if mean > 0 else "worse"
    if p_equivalent_adjusted < alpha:
        return "equivalent"
    if np.isfinite(p_claim_adjusted) and p_claim_adjusted < alpha:
        return "claim excluded"
    return "inconclusive"


def _pairs(done, predictions, classes, n_resamples, seed, with_claim):
    pairs = []
    for setting, part in done.groupby(setting_keys(done), sort=True):
        methods = set(part["method"])
        for treatment in _treatments(methods):
            for comparator in (c for c in COMPARATORS if c in methods):
                found = _pair(
                    setting,
                    part,
                    predictions,
                    treatment,
                    comparator,
                    classes,
                    n_resamples,
                    seed,
                    with_claim,
                )
                if found is not None:
                    pairs.append(found)
    return pairs


def _comparison_table(pairs, runs, claims, alpha, margin):

    rows = []
    for pair in pairs:
        estimate = pair.estimate
        claim, source = _claim(claims, *pair.setting[:2], pair.comparator)
        claim_p = (
            pair.claim_estimate.p("new", claim, "less")
            if pair.claim_estimate is not None and np.isfinite(claim)
            else np.nan
        )
        unit = _unit_name(estimate.unit, runs)
        rows.append(
            {
                **dict(zip(setting_keys(runs), pair.setting)),
                "loss": pair.loss,
                "comparator": pair.comparator,
                "mean_diff": estimate.mean,
                "p_value": estimate.p_value,
                "p_split": estimate.p("split"),
                "estimand_new": _estimand_new(unit),
                "estimand_split": ESTIMAND_SPLIT,
                "margin": margin,
                "p_equivalent": estimate.equivalence_p(margin),
                "claim": claim,
                "claim_source": source,
                "claim_diff": pair.claim_estimate.mean if pair.claim_estimate else np.nan,
                "p_claim": claim_p,
                "standard_error": estimate.standard_error,
                "df": estimate.df,
                "split_standard_error": estimate.split_standard_error,
                "split_df": estimate.split_df,
                "seed_variance": estimate.seed_variance,
                "image_variance": estimate.image_variance,
                "interaction_variance": estimate.interaction_variance,
                "seeds": estimate.seeds,
                "images": estimate.images,
                "unit": unit,
                "units": estimate.units,
                "note": (
                    "one seed: the interval for new test data covers the test data only, and "
                    "there is none for this split"
                    if estimate.seeds < 2
                    else ""
                ),
            }
        )
    table = pd.DataFrame(rows)
    adjusted, levels = holm(table["p_value"], alpha)
    equivalent_adjusted, equivalent_levels = holm(table["p_equivalent"], alpha)
    claim_adjusted, claim_levels = holm(table["p_claim"], alpha)
    table["p_adjusted"], table["ci_level"] = adjusted, levels
    table["p_equivalent_adjusted"] = equivalent_adjusted
    table["p_claim_adjusted"] = claim_adjusted
    added = []
    for i, pair in enumerate(pairs):
        estimate = pair.estimate
        low, high = estimate.interval(levels[i])
        split_low, split_high = estimate.interval(levels[i], "split")
        # TOST at alpha' = 1 - level rejects when the 1 - 2 alpha' interval is inside +-margin.
        equivalence_low, equivalence_high = estimate.interval(1 - 2 * (1 - equivalent_levels[i]))
        upper = np.nan
        if np.isfinite(table.at[i, "p_claim"]):
            # the one-sided bound at the claim's level: the upper end of the two-sided interval
            # at twice its error rate (so that it agrees with p_claim)
            upper = pair.claim_estimate.interval(1 - 2 * (1 - claim_levels[i]))[1]
        p_better, p_better_low, p_better_high = probability_better(estimate)
        added.append(
            {
                "ci_new_low": max(low, -1.0),
                "ci_new_high": min(high, 1.0),
                # a difference of macro-F1 lies in [-1, 1]; NaN stays NaN
                "ci_split_low": np.maximum(split_low, -1.0),
                "ci_split_high": np.minimum(split_high, 1.0),
                "equivalence_low": equivalence_low,
                "equivalence_high": equivalence_high,
                "claim_upper": upper,
                "p_better": p_better,
                "p_better_low": p_better_low,
                "p_better_high": p_better_high,
                "verdict": _verdict(
                    adjusted[i], estimate.mean, equivalent_adjusted[i], claim_adjusted[i], alpha
                ),
            }
        )
    table = pd.concat([table, pd.DataFrame(added)], axis=1)
    table["ci_low"], table["ci_high"] = table["ci_new_low"], table["ci_new_high"]
    table["gate"] = ""
    return table


def _pool(pairs, loss, comparator):
    """Random-effects pooling of the pairs of one question; settings with the same test images
    share the test data's part of their errors."""
    chosen = [p for p in pairs if p.loss == loss and p.comparator == comparator]
    if not chosen:
        return None
    effects = np.array([p.estimate.mean for p in chosen])
    variances = np.array([p.estimate.standard_error**2 for p in chosen])
    covariance = np.diag(variances)
    for i, a in enumerate(chosen):
        for j, b in enumerate(chosen):
            if i < j and a.key == b.key and len(a.resampled) == len(b.resampled):
                covariance[i, j] = covariance[j, i] = np.cov(a.resampled, b.resampled)[0, 1]
    if len(chosen) == 1:  # one setting: its own test
        estimate = chosen[0].estimate
        low, high = estimate.interval(0.95)
        return {
            "estimate": estimate.mean,
            "low": low,
            "high": high,
            "p_value": estimate.p_value,
            "tau2": np.nan,
            "pi_low": np.nan,
            "pi_high": np.nan,
            "settings": 1,
        }
    return random_effects(effects, variances, covariance)


def _readings(done, predictions, classes, n_resamples, seed):
    """Per setting, the two readings of eq. 7 against each other (r = 1 minus r = 0.01)."""
    pairs = []
    for setting, part in done.groupby(setting_keys(done), sort=True):
        readings = _treatments(set(part["method"]))
        if len(readings) == 2:
            found = _pair(
                setting,
                part,
                predictions,
                readings[1],
                readings[0],
                classes,
                n_resamples,
                seed,
                False,
            )
            if found is not None:
                pairs.append(found)
    return pairs


def friedman_tests(runs, metric="f1"):
    """Friedman's test per reading of VALF: the paper's five losses (that reading of VALF and
    CCE, WCCE, FL, DWFL) as treatments, the settings as blocks, each setting's mean over seeds
    of ``metric``; settings lacking a loss are left out. Returns ``{reading: result}`` with
    :func:`valf_study.stats.friedman_with_control`'s results, VALF the control."""
    from valf_study.stats import friedman_with_control

    done = _main_runs(runs)
    if done.empty:
        return {}
    means = done.groupby([*setting_keys(done), "method"])[metric].mean().unstack("method")
    results = {}
    for reading in _treatments(means.columns):
        columns = [reading, *(c for c in PAPER_LOSSES if c in means.columns)]
        if len(columns) >= 3:
            results[reading] = friedman_with_control(means[columns], reading)
    return results


def _best_counts(done, predictions, classes, reading, n_resamples, seed, replicates):
    """Observed and resampled numbers of settings where ``reading`` has the best mean macro-F1
    of the paper's five losses (strictly: a tie is no win, as in the paper's count): each
    replicate redraws the seeds (with replacement, paired by seed) and the test units (one
    bootstrap resample, shared by the losses) of every setting."""
    rng = np.random.default_rng(seed + 1)
    observed, counts, settings = 0, np.zeros(replicates, dtype=int), 0
    for _, part in done.groupby(setting_keys(done), sort=True):
        methods = [reading, *(c for c in PAPER_LOSSES if c in set(part["method"]))]
        if reading not in set(part["method"]) or len(methods) < 2:
            continue
        labels, arms, groups, _, seeds = _aligned(part, predictions, methods)
        if not len(labels) or not seeds:
            continue
        settings += 1
        resamples = resample_weights(len(labels), groups, n_resamples, seed)
        values = np.stack(
            [metric_of_weights("f1", labels, arms[m], resamples.weights, classes) for m in methods]
        )  # (methods, seeds, B + 1)
        means = values[:, :, 0].mean(axis=1)
        observed += int(means[0] > means[1:].max())  # best alone: a tie is no win (the paper's)
        drawn_seeds = rng.integers(0, len(seeds), (replicates, len(seeds)))
        drawn_resample = rng.integers(1, values.shape[2], replicates)
        means = values[:, drawn_seeds, drawn_resample[:, None]].mean(axis=2)  # (methods, R)
        counts += means[0] > means[1:].max(axis=0)
    return observed, counts, settings


def analysis(
    runs,
    predictions,
    *,
    alpha=0.05,
    n_resamples=2000,
    seed=0,
    margin=DEFAULT_MARGIN,
    claims="paper",
    num_classes=None,
    replicates=2000,
):
    """Every pre-registered comparison and every primary test of a study (see the module).

    Only the runs of the experiment ``main`` are compared (the main grid of a study file).

    Parameters
    ----------
    margin : float
        The equivalence margin in macro-F1 (the study file's ``analysis: margin``).
    claims : "paper", None or pandas.DataFrame
        The gains a ``claim excluded`` verdict tests: ``"paper"`` takes the paper's Table 2
        when the runs are on LungHist700 (none otherwise); a table has ``backbone``,
        ``magnification``, ``comparator``, ``claim`` (and ``claim_source``).
    num_classes : int, optional
        The study's classes; by default from the runs' ``class_names``.
    replicates : int
        Resamples of the study for the probability that VALF is best in 8 of 10 settings.

    Returns
    -------
    dict
        ``comparisons`` (one row per setting, VALF reading and comparator; see the module and
        the columns' meaning in :func:`comparisons`), ``primary`` (one row per test:
        ``test``, ``family``, ``estimate``, ``ci_low``/``ci_high``, ``p_value``,
        ``p_adjusted``, ``significant``, ``statistic``, ``tau2``, ``pi_low``/``pi_high``,
        ``settings``, ``meaning``) and ``friedman`` (:func:`friedman_tests`, for the
        critical-difference figure).
    """
    empty = {
        "comparisons": pd.DataFrame(columns=_COLUMNS),
        "primary": pd.DataFrame(columns=_PRIMARY_COLUMNS),
        "friedman": {},
    }
    if "split" not in predictions or runs.empty:  # nothing complete yet
        return empty
    done = _main_runs(runs)
    if done.empty:
        return empty
    classes = num_classes or study_classes(runs, predictions)
    claims = _resolve_claims(done, claims)
    pairs = _pairs(done, predictions, classes, n_resamples, seed, claims is not None)
    if not pairs:
        return empty
    table = _comparison_table(pairs, done, claims, alpha, margin)
    primary = _primary_table(
        pairs, done, predictions, classes, alpha, n_resamples, seed, replicates
    )
    gates = primary[primary["family"] == "primary"].set_index(["loss", "comparator"])
    for i, row in table.iterrows():
        key = (row["loss"], row["comparator"])
        if key in gates.index:
            table.at[i, "gate"] = "open" if gates.loc[key, "significant"] else "closed"
    extras = [key for key in setting_keys(done) if key not in SETTING]
    columns = [*SETTING, *extras, *(c for c in _COLUMNS if c not in SETTING)]
    return {"comparisons": table[columns], "primary": primary, "friedman": friedman_tests(done)}


def _primary_table(pairs, done, predictions, classes, alpha, n_resamples, seed, replicates):
    rows = []
    questions = sorted({(p.loss, p.comparator) for p in pairs})
    for loss, comparator in questions:
        pooled = _pool(pairs, loss, comparator)
        rows.append(
            {
                "test": f"pooled: {loss} − {comparator}",
                "family": "primary",
                "loss": loss,
                "comparator": comparator,
                **_pooled_columns(pooled),
                "meaning": (
                    f"{loss} minus {comparator} in macro-F1, mean over {pooled['settings']} "
                    "settings (random effects, new test data); > 0 favours VALF; pi: the "
                    "difference in a new setting"
                ),
            }
        )
    adjusted, _ = holm([r["p_value"] for r in rows], alpha)
    for row, p in zip(rows, adjusted):
        row.update(p_adjusted=p, significant=bool(p < alpha))
    readings = _readings(done, predictions, classes, n_resamples, seed)
    if readings:
        later, earlier = readings[0].loss, readings[0].comparator
        pooled = _pool(readings, later, earlier)
        rows.append(
            {
                "test": f"pooled: {later} − {earlier}",
                "family": "readings of eq. 7",
                "loss": later,
                "comparator": earlier,
                **_pooled_columns(pooled),
                "p_adjusted": pooled["p_value"],
                "significant": bool(pooled["p_value"] < alpha),
                "meaning": (
                    f"the two readings of eq. 7 against each other, paired by seed, pooled over "
                    f"{pooled['settings']} settings; > 0 favours {later}"
                ),
            }
        )
    for reading, result in friedman_tests(done).items():
        rows.extend(_friedman_rows(reading, result, alpha))
        observed, counts, settings = _best_counts(
            done, predictions, classes, reading, n_resamples, seed, replicates
        )
        if settings:
            at_least = 8 if settings == 10 else math.ceil(0.8 * settings)
            share = float(np.mean(counts >= at_least))
            error = 1.96 * math.sqrt(max(share * (1 - share), 1e-12) / len(counts))
            rows.append(
                {
                    "test": f"{reading} best in ≥ {at_least} of {settings} settings",
                    "family": f"headline ({reading})",
                    "loss": reading,
                    # The paper's other losses this study ran (real-image studies lack DWFL).
                    "comparator": ", ".join(c for c in PAPER_LOSSES if c in set(done["method"])),
                    "estimate": share,
                    "ci_low": max(share - error, 0.0),
                    "ci_high": min(share + error, 1.0),
                    "statistic": observed,
                    "settings": settings,
                    "meaning": (
                        f"probability that {reading} has the best mean macro-F1 of the paper's "
                        f"losses run here in at least {at_least} of {settings} settings in a rerun "
                        f"(seeds and test data resampled, {len(counts)} replicates; interval: "
                        f"Monte Carlo error); statistic: settings it is best in now"
                    ),
                }
            )
    return pd.DataFrame(rows).reindex(columns=_PRIMARY_COLUMNS)


def _pooled_columns(pooled):
    return {
        "estimate": pooled["estimate"],
        "ci_low": pooled["low"],
        "ci_high": pooled["high"],
        "p_value": pooled["p_value"],
        "tau2": pooled["tau2"],
        "pi_low": pooled["pi_low"],
        "pi_high": pooled["pi_high"],
        "settings": pooled["settings"],
    }


def _friedman_rows(reading, result, alpha):
    if not np.isfinite(result.get("statistic", np.nan)):
        return []
    ranks = result["ranks"]
    rows = [
        {
            "test": f"Friedman: {reading}, {', '.join(c for c in ranks.index if c != reading)}",
            "family": f"ranks ({reading})",
            "loss": reading,
            "comparator": "",
            "estimate": float(ranks[reading]),
            "p_value": result["p_value"],
            "p_adjusted": result["p_value"],
            "significant": bool(result["p_value"] < alpha),
            "statistic": result["statistic"],
            "settings": result["settings"],
            "meaning": (
                f"do the paper's five losses rank differently across {result['settings']} "
                f"settings (chi-squared; estimate: {reading}'s average rank, 1 is best; "
                f"critical difference {result['critical_difference']:.2f})"
            ),
        }
    ]
    for row in result["versus_control"].itertuples():
        rows.append(
            {
                "test": f"rank: {reading} vs {row.method}",
                "family": f"ranks ({reading})",
                "loss": reading,
                "comparator": row.method,
                "estimate": row.rank_difference,
                "p_value": row.p_value,
                "p_adjusted": row.p_adjusted,
                "significant": bool(row.significant),
                "statistic": row.z,
                "settings": result["settings"],
                "meaning": (
                    f"{row.method}'s average rank minus {reading}'s (> 0: {reading} ranks "
                    "better), Holm over the four against VALF"
                ),
            }
        )
    return rows


def comparisons(runs, predictions, **options):
    """Every pre-registered comparison of a study (see the module); ``options`` as
    :func:`analysis`.

    Returns
    -------
    pandas.DataFrame
        One row per setting, VALF reading (``loss``, e.g. ``VALF (r=0.01)``) and
        ``comparator``:

        - ``mean_diff``: macro-F1 of VALF minus the comparator's, mean over seeds;
        - ``verdict``: one of :data:`VERDICTS`; ``gate``: ``open`` where the primary test of
          the reading and comparator rejects (the verdict is confirmatory), ``closed``
          otherwise (descriptive);
        - ``ci_new_low/high`` at ``ci_level`` (Holm-adjusted), ``p_value``, ``p_adjusted``:
          about ``estimand_new``; ``ci_low``/``ci_high`` repeat ``ci_new``;
        - ``ci_split_low/high`` (at the same level), ``p_split``: about ``estimand_split``;
        - ``margin``, ``equivalence_low/high`` (the TOST interval at its Holm-adjusted level),
          ``p_equivalent`` and its adjusted value;
        - ``claim``, ``claim_source``, ``claim_diff`` (our difference in the paper's F1),
          ``claim_upper`` (its adjusted one-sided upper bound), ``p_claim`` and its adjusted
          value;
        - ``p_better``, ``p_better_low/high``: P(VALF beats the comparator in a new run pair);
        - ``standard_error``, ``df`` (new test data), ``split_standard_error``, ``split_df``,
          ``seed_variance`` (s²/S), ``image_variance`` (test data, net of the interaction),
          ``interaction_variance``; ``seeds``, ``images``, ``unit`` (patient, group or
          image) and ``units`` (how many were resampled); ``note``.
    """
    return analysis(runs, predictions, **options)["comparisons"]


def primary_tests(runs, predictions, **options):
    """The primary tests of a study (:func:`analysis`'s ``primary``)."""
    return analysis(runs, predictions, **options)["primary"]


def count_verdicts(table):
    """How many comparisons have each verdict.

    Examples
    --------
    >>> table = pd.DataFrame({"verdict": ["better", "inconclusive", "worse", "equivalent"]})
    >>> count_verdicts(table)
    {'better': 1, 'worse': 1, 'equivalent': 1, 'claim excluded': 0, 'inconclusive': 1}
    """
    unknown = sorted(set(table["verdict"]) - set(VERDICTS))
    if unknown:
        raise ValueError(f"Unknown verdicts {unknown}; a verdict is one of {list(VERDICTS)}.")
    counts = table["verdict"].value_counts()
    return {verdict: int(counts.get(verdict, 0)) for verdict in VERDICTS}


# -- the A/A control -----------------------------------------------------------------------------


def aa_control(runs, predictions, *, n_resamples=1000, seed=0, num_classes=None, alpha=0.05):
    """Each loss against itself under other seeds, through the same machinery: an empirical
    false-positive rate, and p-values for a histogram.

    With four seeds or more, a method's seeds are split in two halves (first against second,
    paired in order: ``design`` = ``halves``); with fewer, every pair of seeds is a comparison
    of one seed against one (``seed pair``): its interval for new test data then lacks the seed
    variance (one seed cannot estimate it), so its false-positive rate measures what one seed
    per arm costs, not the study's comparisons.

    Returns
    -------
    pandas.DataFrame
        One row per setting, method and comparison: ``design``, ``seeds_a``, ``seeds_b``,
        ``mean_diff``, ``p_value`` (new test data), ``p_split``, ``rejected`` (p < alpha).
    """
    done = _main_runs(runs)
    classes = num_classes or study_classes(runs, predictions)
    rows = []
    keys = [*setting_keys(done), "method"]
    for setting, part in done.groupby(keys, sort=True):
        table = seed_predictions(part, predictions)
        seeds = _seed_columns(table)
        table = table.dropna(subset=seeds)
        if len(seeds) < 2 or table.empty:
            continue
        labels = table["label"].to_numpy(int)
        groups = table["group"].to_numpy() if "group" in table else None
        if len(seeds) >= 4:
            half = len(seeds) // 2
            designs = [("halves", seeds[:half], seeds[half : 2 * half])]
        else:
            designs = [("seed pair", [a], [b]) for i, a in enumerate(seeds) for b in seeds[i + 1 :]]
        for design, first, second in designs:
            estimate = seed_and_image_interval(
                labels,
                table[first].to_numpy(int).T,
                table[second].to_numpy(int).T,
                n_resamples=n_resamples,
                seed=seed,
                groups=groups,
                num_classes=classes,
            )
            rows.append(
                {
                    **dict(zip(keys, setting)),
                    "design": design,
                    "seeds_a": ",".join(map(str, first)),
                    "seeds_b": ",".join(map(str, second)),
                    "mean_diff": estimate.mean,
                    "p_value": estimate.p_value,
                    "p_split": estimate.p("split"),
                    "rejected": bool(estimate.p_value < alpha),
                }
            )
    return pd.DataFrame(rows)


def aa_summary(table, alpha=0.05):
    """The A/A control's false-positive rate per design, with a Clopper-Pearson 95 % interval.

    Examples
    --------
    >>> aa_summary(pd.DataFrame({"design": ["halves"] * 4, "p_value": [0.5, 0.01, 0.3, 0.9]}))
    ... # doctest: +NORMALIZE_WHITESPACE
       design  comparisons  rejected  rate  low   high
    0  halves            4         1  0.25  0.0063  0.8059
    """
    from scipy.stats import binomtest

    rows = []
    for design, part in table.groupby("design", sort=True):
        rejected = int((part["p_value"] < alpha).sum())
        interval = binomtest(rejected, len(part)).proportion_ci()
        rows.append(
            {
                "design": design,
                "comparisons": len(part),
                "rejected": rejected,
                "rate": rejected / len(part),
                "low": round(interval.low, 4),
                "high": round(interval.high, 4),
            }
        )
    return pd.DataFrame(rows)


# -- positive controls --------------------------------------------------------------------------

#: The metrics a control can be judged on, and what each is in :func:`metric_of_weights`'s
#: terms (balanced accuracy is macro recall: the mean of the per-class recalls).
CONTROL_METRICS = {"f1": "f1", "balanced_accuracy": "recall", "accuracy": "accuracy"}
_CONTROL_COLUMNS = [
    "control",
    "metric",
    "expect",
    "treatment",
    "comparator",
    "mean_diff",
    "ci_new_low",
    "ci_new_high",
    "ci_level",
    "p_value",
    "p_adjusted",
    "detectable",
    "verdict",
    "seeds",
    "images",
    "meaning",
]


def matching_runs(runs, values):
    """The rows of ``runs`` whose columns hold ``values`` (a mapping of run parameter to value;
    numbers compared as numbers, so ``100`` selects an imbalance ratio of ``100.0``).

    Examples
    --------
    >>> runs = pd.DataFrame({"loss": ["CCE", "WCCE"], "imbalance_ratio": [100.0, 100.0]})
    >>> matching_runs(runs, {"loss": "WCCE", "imbalance_ratio": 100})["loss"].tolist()
    ['WCCE']
    """
    chosen = runs
    for name, value in values.items():
        column = chosen[name]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            chosen = chosen[np.isclose(pd.to_numeric(column, errors="coerce"), float(value))]
        else:
            chosen = chosen[column.astype(str) == str(value)]
    return chosen


def _describe_arm(values):
    return ", ".join(f"{name} {value}" for name, value in values.items())


def control_tests(runs, predictions, controls, *, alpha=0.05, n_resamples=2000, seed=0):
    """The study's positive controls: contrasts whose effect the literature documents, judged
    with the comparisons' own machinery, so that "no clear difference" elsewhere can be told
    from "this study could not have seen one".

    Each control (a study file's ``analysis: controls``) names a ``treatment`` and a
    ``comparator`` (run parameters selecting runs of the main experiment, paired by seed on the
    same test images), the direction the literature expects (``expect: better``) and the
    ``metrics``. Each difference gets the interval for new test data of
    :func:`valf_study.stats.two_level_estimate`, and the p-values of all the controls are
    Holm-adjusted together. The verdict is ``detected`` (the adjusted interval excludes 0 on the
    expected side), ``opposite`` (it excludes 0 on the other) or ``not detected``, beside the
    smallest difference the study detects with 80 % power at that level.

    Examples
    --------
    >>> control_tests(pd.DataFrame(), pd.DataFrame(), []).columns[:3].tolist()
    ['control', 'metric', 'expect']
    """
    if not controls or runs.empty or "split" not in predictions:
        return pd.DataFrame(columns=_CONTROL_COLUMNS)
    done = _main_runs(runs)
    classes = study_classes(runs, predictions)
    rows, estimates = [], []
    for control in controls:
        arms = {
            "treatment": matching_runs(done, control["treatment"]),
            "comparator": matching_runs(done, control["comparator"]),
        }
        part = pd.concat([frame.assign(method=arm) for arm, frame in arms.items()])
        if any(frame.empty for frame in arms.values()):
            continue
        labels, predicted, groups, _, seeds = _aligned(
            part, predictions, ["treatment", "comparator"]
        )
        if not len(labels) or not seeds:
            continue
        resamples = resample_weights(len(labels), groups, n_resamples, seed)
        for name in control["metrics"]:
            metric = CONTROL_METRICS[name]
            values = metric_of_weights(
                metric, labels, predicted["treatment"], resamples.weights, classes
            ) - metric_of_weights(
                metric, labels, predicted["comparator"], resamples.weights, classes
            )
            estimate = two_level_estimate(
                values, resamples.units, resamples.unit, len(labels), resamples.correction
            )
            estimates.append(estimate)
            rows.append(
                {
                    "control": control["name"],
                    "metric": name,
                    "expect": control["expect"],
                    "treatment": _describe_arm(control["treatment"]),
                    "comparator": _describe_arm(control["comparator"]),
                    "mean_diff": estimate.mean,
                    "seeds": len(seeds),
                    "images": len(labels),
                }
            )
    if not rows:
        return pd.DataFrame(columns=_CONTROL_COLUMNS)
    adjusted, levels = holm([e.p() for e in estimates], alpha)
    for row, estimate, p_adjusted, level in zip(rows, estimates, adjusted, levels):
        low, high = estimate.interval(level)
        sign = 1 if row["expect"] == "better" else -1
        if sign * low > 0 or sign * high < 0:
            found = "detected" if sign * row["mean_diff"] > 0 else "opposite"
        else:
            found = "not detected"
        se, df = estimate.standard_error, estimate.df
        detectable = detectable_difference(se, df, alpha=1 - level)
        row.update(
            ci_new_low=low,
            ci_new_high=high,
            ci_level=level,
            p_value=estimate.p(),
            p_adjusted=p_adjusted,
            detectable=detectable,
            verdict=found,
            meaning=(
                f"{row['treatment']} minus {row['comparator']} in {row['metric']}: "
                + (
                    "the study detects the documented effect"
                    if found == "detected"
                    else "the study sees the opposite of the documented effect"
                    if found == "opposite"
                    else "not detected: the study lacks the power to see an effect smaller "
                    f"than about {detectable:.3f}"
                )
            ),
        )
    return pd.DataFrame(rows)[_CONTROL_COLUMNS]
