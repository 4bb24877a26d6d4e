"""The study's pre-registered comparisons: each reading of VALF against the loss it extends
(FL) and against cross-entropy (CCE), per setting, paired by seed.

The comparisons are fixed before any result is seen, not picked from the results (the best other
loss of a setting would be chosen on the very runs it is then tested on). Each one is the mean over
seeds of the paired difference of macro-F1 on the same test images, with an interval from the seeds
and the test images (:func:`valf_study.stats.seed_and_image_interval`); the p-values of all the
comparisons of a study are adjusted together with Holm's procedure, and each interval is drawn at
the level that agrees with its adjusted p-value (:func:`valf_study.stats.holm`), so a verdict read
off an interval is the adjusted verdict. Under cross-validation (``split: kfold``) a seed's runs are
its folds, and their test predictions are pooled: every image is tested once per seed.

:func:`comparisons` returns the table that ``valf results`` writes to
``results/<study>/comparisons.csv``.
"""

from __future__ import annotations

import pandas as pd

from valf_study.stats import holm, seed_and_image_interval

__all__ = [
    "COMPARATORS",
    "SETTING",
    "comparisons",
    "count_verdicts",
    "paired_predictions",
    "seed_predictions",
]

#: What each reading of VALF is compared with: the loss it extends, and cross-entropy.
COMPARATORS = ("FL", "CCE")
#: The keys of a setting: the comparisons are made within each.
SETTING = ("backbone", "magnification")
_COLUMNS = [
    *SETTING,
    "loss",
    "comparator",
    "mean_diff",
    "ci_low",
    "ci_high",
    "p_adjusted",
    "verdict",
    "ci_level",
    "p_value",
    "standard_error",
    "df",
    "seeds",
    "images",
    "note",
]


def seed_predictions(runs, predictions, split="test"):
    """The predicted class of every image by the run(s) of each seed, as an (image, seed) table.

    A seed's runs are pooled (the folds of a cross-validation each predict their own test
    images); ``runs`` must hold one run per seed otherwise.

    Returns
    -------
    pandas.DataFrame
        Index ``image_path``, one column per seed, plus the column ``label``.
    """
    members = runs[["run_id", "seed"]]
    chosen = predictions[
        (predictions["split"] == split) & predictions["run_id"].isin(members["run_id"])
    ].merge(members, on="run_id")
    table = chosen.pivot_table(
        index="image_path", columns="seed", values="predicted", aggfunc="first"
    )
    table["label"] = chosen.drop_duplicates("image_path").set_index("image_path")["label"]
    return table


def paired_predictions(runs, predictions, method, comparator):
    """Test labels and the two methods' predictions, seed by seed on the same images.

    Parameters
    ----------
    runs : pandas.DataFrame
        Complete runs of one setting, with ``run_id``, ``method`` and ``seed``.
    predictions : pandas.DataFrame
        The study's predictions table (``run_id``, ``split``, ``image_path``, ``label``,
        ``predicted``).
    method, comparator : str
        Method labels (``runs["method"]``).

    Returns
    -------
    labels : numpy.ndarray, shape (N,)
    ours, theirs : numpy.ndarray, shape (S, N)
        Predicted classes, one row per seed both methods have, over the images every one of
        those runs predicted (folds of a seed pooled).
    """
    arms = [
        seed_predictions(runs[runs["method"] == name], predictions) for name in (method, comparator)
    ]
    seeds = sorted((set(arms[0].columns) & set(arms[1].columns)) - {"label"})
    images = arms[0][seeds].dropna().index.intersection(arms[1][seeds].dropna().index)
    ours, theirs = (arm.loc[images, seeds].to_numpy(int).T for arm in arms)
    return arms[0].loc[images, "label"].to_numpy(int), ours, theirs


def _main_runs(runs):
    """The complete runs of the experiment ``main``, one per setting, method, seed (and fold)."""
    member = runs["experiments"].fillna("").str.split(";").apply(lambda names: "main" in names)
    done = runs[member & (runs["status"] == "done")]
    keys = [*SETTING, "method", "seed", *(["fold"] if "fold" in done else [])]
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


def comparisons(runs, predictions, *, alpha=0.05, n_resamples=2000, seed=0):
    """Every pre-registered comparison of a study, Holm-adjusted together (see the module).

    Only the runs of the experiment ``main`` are compared (the main grid of a study file).

    Returns
    -------
    pandas.DataFrame
        One row per setting, VALF reading (``loss``, e.g. ``VALF (r=0.01)``) and
        ``comparator``: ``mean_diff`` (macro-F1 of VALF minus the comparator's),
        ``ci_low``/``ci_high`` at ``ci_level``, ``p_value``, ``p_adjusted``, ``verdict``,
        ``seeds`` and ``images`` it rests on, and a ``note`` where it rests on one seed.
    """
    if "split" not in predictions or runs.empty:  # nothing complete yet
        return pd.DataFrame(columns=_COLUMNS)
    done = _main_runs(runs)
    rows, estimates = [], []
    for setting, part in done.groupby(list(SETTING), sort=True):
        methods = set(part["method"])
        for treatment in _treatments(methods):
            for comparator in (c for c in COMPARATORS if c in methods):
                labels, ours, theirs = paired_predictions(part, predictions, treatment, comparator)
                if not len(labels) or not len(ours):
                    continue
                estimate = seed_and_image_interval(
                    labels, ours, theirs, n_resamples=n_resamples, seed=seed
                )
                estimates.append(estimate)
                rows.append(
                    {**dict(zip(SETTING, setting)), "loss": treatment, "comparator": comparator}
                )
    if not rows:
        return pd.DataFrame(columns=_COLUMNS)
    adjusted, levels = holm([e.p_value for e in estimates], alpha)
    for row, estimate, p_adjusted, level in zip(rows, estimates, adjusted, levels):
        low, high = estimate.interval(level)
        low, high = max(low, -1.0), min(high, 1.0)  # a difference of macro-F1 lies in [-1, 1]
        row.update(
            mean_diff=estimate.mean,
            ci_low=low,
            ci_high=high,
            ci_level=level,
            p_value=estimate.p_value,
            p_adjusted=p_adjusted,
            standard_error=estimate.standard_error,
            df=estimate.df,
            seeds=estimate.seeds,
            images=estimate.images,
            verdict=_verdict(row["loss"], row["comparator"], low, high),
            note="one seed: the interval covers the test images only" if estimate.seeds < 2 else "",
        )
    return pd.DataFrame(rows)[_COLUMNS]


def _verdict(treatment, comparator, low, high):
    if low > 0:
        return f"{treatment} better"
    if high < 0:
        return f"{comparator} better"
    return "no clear difference"


def count_verdicts(table):
    """How many comparisons favour VALF, favour the comparator, or show no clear difference.

    Examples
    --------
    >>> table = pd.DataFrame({"loss": ["VALF (r=1)"] * 3, "comparator": ["FL", "CCE", "FL"],
    ...                       "verdict": ["VALF (r=1) better", "no clear difference",
    ...                                   "FL better"]})
    >>> count_verdicts(table)
    {'valf_better': 1, 'no_clear_difference': 1, 'comparator_better': 1}
    """
    valf = sum(v == f"{t} better" for t, v in zip(table["loss"], table["verdict"]))
    other = sum(v == f"{c} better" for c, v in zip(table["comparator"], table["verdict"]))
    unclear = int((table["verdict"] == "no clear difference").sum())
    if valf + other + unclear != len(table):
        raise ValueError(f"Unknown verdicts in {sorted(set(table['verdict']))}.")
    return {
        "valf_better": int(valf),
        "no_clear_difference": unclear,
        "comparator_better": int(other),
    }
