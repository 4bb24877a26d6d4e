"""The book's tables, computed from a study's results tables (:mod:`valf_study.studies.results`).

Every function takes the tidy tables and returns a DataFrame (or a pandas Styler); the book's
pages only call them and glue their numbers.

Uncertainty. A study's mean over seeds varies with the seeds and with the test images, which
every seed shares; intervals state both (:func:`valf_study.stats.seed_and_image_interval`), at 95 %.
AUC and ECE, which need the predicted probabilities, get Student-t intervals over seeds only,
and say so. Beside the paper, one of the paper's runs is judged against the interval for *one*
run of ours (:func:`valf_study.stats.prediction_interval`), on the same quantity: the paper's F1
column is 2PR/(P+R) of macro precision and recall (``f1_of_means``), not the mean of
per-class F1 (``f1``, the study's own measure).
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pandas as pd

from valf_study.data.lunghist700 import CLASS_NAMES
from valf_study.run.backbones import PAPER_NAMES
from valf_study.stats import (
    detectable_difference,
    mean_ci,
    prediction_interval,
    seed_and_image_interval,
)
from valf_study.studies.comparisons import SETTING, seed_predictions
from valf_study.studies.results import NO_MAGNIFICATION, experiment_runs

__all__ = [
    "INTERVAL_METRICS",
    "METRICS",
    "SETTING",
    "ablation_table",
    "accuracy_check",
    "claimed_gains",
    "class_names",
    "compare_with_paper",
    "detectable_differences",
    "done",
    "f1_check",
    "fig4_check",
    "knob_order",
    "official_test_sizes",
    "one_image_f1_steps",
    "per_class_recall",
    "read_environments",
    "read_fig4_claims",
    "read_paper_table",
    "shown",
    "summary_table",
    "table2",
    "weight_reach_table",
    "wins",
]

#: The metrics of the paper's Table 2, in its order (its F1 is ``f1_of_means``).
METRICS = ("accuracy", "precision", "recall", "f1")
#: The metrics whose intervals cover the seeds and the test images.
INTERVAL_METRICS = ("accuracy", "precision", "recall", "f1", "f1_of_means")
# The paper's own numbers (typed from the paper, quoted; never computed), shipped with the
# study's package so the report reads them wherever it runs.
PAPER_TABLE = resources.files("valf_study.report") / "resources" / "paper_table2.csv"
FIG4_CLAIMS = resources.files("valf_study.report") / "resources" / "paper_fig4_claims.csv"
_LABELS = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1 (eq. 12)",
    "f1_of_means": "F1 of means",
    "auc": "AUC",
    "ece": "ECE",
}


def done(runs):
    """The complete runs of a runs table."""
    return runs[runs["status"] == "done"]


def shown(table, digits=3):
    """A table as a page shows it: numbers rounded, without pandas' row numbers."""
    return table.style.hide(axis="index").format(precision=digits, na_rep="–")


def _group_row(part, predictions, metrics, n_resamples):
    """Means and 95 % intervals of one group of runs (its seeds, folds pooled)."""
    row = {"seeds": int(part["seed"].nunique()), "runs": len(part)}
    table = seed_predictions(part, predictions)
    seeds = [c for c in table.columns if c != "label"]
    table = table.dropna()
    predicted = table[seeds].to_numpy(int).T
    row["images"] = len(table)
    for metric in metrics:
        estimate = seed_and_image_interval(
            table["label"].to_numpy(int), predicted, metric=metric, n_resamples=n_resamples
        )
        low, high = estimate.interval(0.95)
        row.update(
            {
                f"{metric}_mean": estimate.mean,
                f"{metric}_low": max(low, 0.0),
                f"{metric}_high": min(high, 1.0),
            }
        )
    for metric in ("auc", "ece"):  # probabilities: seeds only
        if metric in part:
            mean, half = mean_ci(part.groupby("seed")[metric].mean())
            row.update(
                {
                    f"{metric}_mean": mean,
                    f"{metric}_low": max(mean - half, 0.0),
                    f"{metric}_high": min(mean + half, 1.0),
                }
            )
    return row


def summary_table(
    runs, predictions, keys=(*SETTING, "method"), metrics=INTERVAL_METRICS, n_resamples=1000
):
    """Mean and 95 % interval (seeds and test images) of each metric per ``keys`` group;
    ``best`` marks, descriptively, the method with the highest mean F1 in each setting.

    Intervals are clipped to [0, 1], the range of every metric here.
    """
    rows = []
    for group, part in done(runs).groupby(list(keys), sort=False, dropna=False):
        key = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        rows.append({**key, **_group_row(part, predictions, metrics, n_resamples)})
    table = pd.DataFrame(rows)
    if table.empty or "f1_mean" not in table:
        return table
    setting = [k for k in SETTING if k in keys]
    best = (
        table.groupby(setting, sort=False)["f1_mean"].transform("max")
        if setting
        else table["f1_mean"].max()
    )
    table["best"] = np.isclose(table["f1_mean"], best)
    return table


def _cell(mean, low, high):
    if not np.isfinite(mean):
        return "–"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def table2(summary, metrics=("accuracy", "precision", "recall", "f1", "f1_of_means", "auc", "ece")):
    """The summary shaped like the paper's Table 2, with AUC and ECE: one row per backbone,
    magnification and method, each cell ``mean [95 % interval]``; the best mean F1 of each
    setting in bold (a description of the table, not a test)."""
    shown = summary.copy()
    present = [m for m in metrics if f"{m}_mean" in shown]
    for metric in present:
        shown[_LABELS[metric]] = [
            _cell(*v)
            for v in zip(shown[f"{metric}_mean"], shown[f"{metric}_low"], shown[f"{metric}_high"])
        ]
    setting = shown_settings(shown)
    shown = shown.sort_values(setting, kind="stable")
    best = shown["best"].to_numpy()
    shown = shown.set_index([*setting, "method"])[[_LABELS[m] for m in present] + ["seeds"]]

    def bold(row):
        return ["font-weight: bold" if best[shown.index.get_loc(row.name)] else "" for _ in row]

    return shown.style.apply(bold, axis=1)


def wins(summary, method_prefix="VALF"):
    """In how many settings a method starting with ``method_prefix`` has the best mean F1
    (descriptive), and how many settings there are."""
    settings = summary.groupby(list(SETTING)).ngroups
    part = summary[summary["method"].str.startswith(method_prefix) & summary["best"]]
    return int(part.groupby(list(SETTING)).ngroups), int(settings)


# -- the paper ----------------------------------------------------------------------------------


def read_paper_table(path=PAPER_TABLE):
    """The paper's Table 2 (typed from the paper; cited, never computed), its backbones named
    as this study names them (``paper_backbone`` keeps the paper's name).

    Raises
    ------
    ValueError
        A backbone the map :data:`valf_study.run.backbones.PAPER_NAMES` does not know: a row is
        never dropped silently.
    """
    paper = pd.read_csv(path)
    unknown = sorted(set(paper["backbone"]) - set(PAPER_NAMES))
    if unknown:
        raise ValueError(
            f"{path} names backbones {unknown} that valf_study.run.backbones.PAPER_NAMES "
            f"does not map; it knows {sorted(PAPER_NAMES)}."
        )
    paper = paper.rename(columns={"backbone": "paper_backbone"})
    paper.insert(0, "backbone", paper["paper_backbone"].map(PAPER_NAMES))
    return paper


def f1_check(paper):
    """The paper's F1 beside 2PR/(P+R) of its printed macro precision and recall: ``same``
    where the two agree to the paper's three decimals (within 0.001: it rounds some and cuts
    others)."""
    from valf_study.metrics import f1_of_means

    table = paper[["backbone", "loss", "magnification", "precision", "recall", "f1"]].copy()
    table["f1_of_means"] = [f1_of_means(p, r) for p, r in zip(table["precision"], table["recall"])]
    table["same"] = (table["f1_of_means"] - table["f1"]).abs() < 0.001
    return table


def official_test_sizes():
    """Test images per magnification in LungHist700's official split (its shipped metadata)."""
    from valf_study.data.lunghist700 import official_split, reference_metadata

    split = official_split(reference_metadata())
    return split[split["split"] == "test"].groupby("resolution").size().to_dict()


def accuracy_check(paper, test_sizes=None, classes=3):
    """Could each of the paper's accuracies arise, with its magnification's N test images, as
    ordinary accuracy k/N, and as eq. 9 as printed (mean one-vs-rest accuracy,
    1 - 2(1 - k/N)/C), both to the paper's two decimals?"""
    sizes = test_sizes or official_test_sizes()
    table = paper[["backbone", "loss", "magnification", "accuracy"]].copy()
    value = table["accuracy"].round(2)
    table["test_images"] = table["magnification"].map(sizes)
    table["as_accuracy"] = [
        v in {round(k / n, 2) for k in range(n + 1)} for v, n in zip(value, table["test_images"])
    ]
    table["as_eq9"] = [
        v in {round(1 - 2 * (1 - k / n) / classes, 2) for k in range(n + 1)}
        for v, n in zip(value, table["test_images"])
    ]
    return table


def claimed_gains(paper):
    """Per setting of the paper: VALF's F1 minus the best other loss's (its claimed gains)."""
    rows = []
    for setting, part in paper.groupby(list(SETTING), sort=True):
        valf = part.loc[part["loss"] == "VALF", "f1"]
        others = part.loc[part["loss"] != "VALF"]
        if len(valf) and len(others):
            best = others.loc[others["f1"].idxmax()]
            rows.append(
                {
                    **dict(zip(SETTING, setting)),
                    "best_other": best["loss"],
                    "gain": float(valf.iloc[0] - best["f1"]),
                }
            )
    return pd.DataFrame(rows)


def _paper_loss(method):
    return "VALF" if method.startswith("VALF") else method


def compare_with_paper(runs, paper):
    """Each of the paper's numbers beside ours for the same backbone, magnification and loss
    (both readings of VALF against the paper's VALF), on the same quantities: its accuracy
    against our accuracy, its F1 against our ``f1_of_means``; ``inside`` says whether the
    paper's value lies in the 95 % prediction interval of one run of ours.

    Every row of the paper whose loss the study ran is kept; an unknown backbone is an error.
    """
    ours = {"accuracy": "accuracy", "f1": "f1_of_means"}
    rows = []
    for key, part in done(runs).groupby([*SETTING, "method"], sort=True):
        backbone, magnification, method = key
        match = paper[
            (paper["backbone"] == backbone)
            & (paper["magnification"] == magnification)
            & (paper["loss"] == _paper_loss(method))
        ]
        for _, reported in match.iterrows():
            for metric, column in ours.items():
                low, high = prediction_interval(part[column])
                rows.append(
                    {
                        "backbone": backbone,
                        "magnification": magnification,
                        "method": method,
                        "metric": metric,
                        "paper": reported[metric],
                        "ours": float(part[column].mean()),
                        "pi_low": low,
                        "pi_high": high,
                        "runs": len(part),
                        "inside": bool(low <= reported[metric] <= high)
                        if np.isfinite(low)
                        else None,
                    }
                )
    return pd.DataFrame(rows)


def read_fig4_claims(path=FIG4_CLAIMS):
    """The paper's Fig. 4 claims (typed from the paper, quoted; never computed)."""
    return pd.read_csv(path, comment="#")


def fig4_check(runs, claims):
    """Each Fig. 4 claim beside our per-class recall: the mean over complete runs of the
    methods the claim is about (every loss: all of them; VALF: both readings)."""
    complete = done(runs)
    rows = []
    for claim in claims.itertuples():
        if claim.losses == "all":
            chosen = complete
        elif claim.losses == "others":
            chosen = complete[~complete["method"].str.startswith("VALF")]
        else:
            chosen = complete[complete["method"].str.startswith(claim.losses)]
        column = f"recall_{claim.class_name}"
        value = float(chosen[column].mean()) if len(chosen) and column in chosen else np.nan
        rows.append(
            {
                "claim": claim.claim,
                "class": claim.class_name,
                "losses": claim.losses,
                "paper": claim.paper_value,
                "ours": value,
                "runs": len(chosen),
            }
        )
    return pd.DataFrame(rows)


# -- the weights, the power, the ablations -------------------------------------------------------


def weight_reach_table(runs):
    """How far the adaptive weights spread by the end of training (largest / smallest), per
    method and magnification: mean, least and most over runs."""
    part = done(runs).dropna(subset=["weight_reach"]) if "weight_reach" in runs else runs.iloc[:0]
    if part.empty:
        return pd.DataFrame(columns=["method", "magnification", "runs", "mean", "min", "max"])
    grouped = part.groupby(["method", "magnification"])["weight_reach"]
    return grouped.agg(runs="size", mean="mean", min="min", max="max").reset_index()


def detectable_differences(comparisons, power=0.8, alpha=0.05):
    """The smallest true difference in macro-F1 each comparison detects at ``power``."""
    table = comparisons[[*SETTING, "loss", "comparator", "seeds", "images"]].copy()
    table["detectable"] = [
        detectable_difference(se, df, power, alpha)
        for se, df in zip(comparisons["standard_error"], comparisons["df"])
    ]
    return table


def ablation_table(
    runs, predictions, experiment, knob, metrics=("f1", "accuracy"), by=(), n_resamples=1000
):
    """Mean and 95 % interval (seeds and test images) of ``metrics`` for each value of
    ``knob`` in ``experiment``.

    A cross-validation experiment whose replicates are folds with different validation images
    is summarised by ``val_f1`` over folds instead (Student-t over folds, which vary the images
    as well); its table has ``val_f1_mean``/``_low``/``_high``.
    """
    part = done(experiment_runs(runs, experiment)).copy()
    part[knob] = part[knob].astype(object).where(part[knob].notna(), "none")
    if part.empty:
        return pd.DataFrame()
    if part["split"].eq("cv").all():
        rows = []
        for group, members in part.groupby([*by, knob], sort=False):
            mean, half = mean_ci(members["val_f1"])
            key = dict(zip([*by, knob], group if isinstance(group, tuple) else (group,)))
            rows.append(
                {
                    **key,
                    "folds": len(members),
                    "val_f1_mean": mean,
                    "val_f1_low": mean - half,
                    "val_f1_high": mean + half,
                }
            )
        table = pd.DataFrame(rows)
    else:
        table = summary_table(
            part, predictions, keys=(*by, knob), metrics=metrics, n_resamples=n_resamples
        )
    table = table.sort_values([*by, knob], key=knob_order, kind="stable")
    return table.drop(columns="best", errors="ignore").reset_index(drop=True)


def knob_order(values):
    """Sort key of a knob's values: numerically where they are numbers ("none" first)."""
    numeric = pd.to_numeric(values, errors="coerce")
    return numeric.fillna(-np.inf) if numeric.notna().any() else values


def shown_settings(table):
    """The setting columns a table shows: backbone, and magnification unless the data set has
    none (every row ``all``, :data:`valf_study.studies.results.NO_MAGNIFICATION`)."""
    no_magnification = (
        "magnification" in table and (table["magnification"] == NO_MAGNIFICATION).all()
    )
    return [k for k in SETTING if not (k == "magnification" and no_magnification)]


def class_names(runs):
    """The class names of a study's runs, in label order: what their metrics.json records
    (LungHist700's for runs recorded before the runs named their classes).

    Examples
    --------
    >>> class_names(pd.DataFrame({"status": ["done"], "class_names": ['["cat", "dog"]']}))
    ['cat', 'dog']
    """
    recorded = done(runs)["class_names"].dropna() if "class_names" in runs else []
    for value in recorded:
        return list(json.loads(value)) if isinstance(value, str) else list(value)
    return list(CLASS_NAMES)


def per_class_recall(runs, keys=("backbone", "magnification", "method")):
    """Test recall per class (``recall_<class>`` of each run's metrics.json), mean over seeds,
    per ``keys``; a setting's column is left out where every run shares it (``all``)."""
    names = class_names(runs)
    columns = [f"recall_{c}" for c in names]
    keys = [k for k in keys if k in shown_settings(runs) or k not in SETTING]
    table = done(runs).groupby(keys, sort=False)[columns].mean()
    return table.rename(columns=dict(zip(columns, names))).reset_index()


def read_environments(runs):
    """Device, backend and versions the runs recorded (the runs table's ``*_version`` and
    ``keras_backend`` columns), one row per distinct environment, with how many runs used it
    and at which commits."""
    keys = (
        ["device"]
        + [c for c in ("keras_backend",) if c in runs]
        + [c for c in runs.columns if c.endswith("_version")]
    )
    if "valf_git_commit" not in runs or runs["valf_git_commit"].isna().all():
        return pd.DataFrame()
    table = runs.dropna(subset=["valf_git_commit"])[[*keys, "valf_git_commit"]].astype(str)
    return (
        table.groupby(keys, sort=False)
        .agg(
            runs=("valf_git_commit", "size"),
            git_commits=("valf_git_commit", lambda c: ", ".join(sorted(set(c)))),
        )
        .reset_index()
    )


def one_image_f1_steps(predictions, runs, max_runs=12):
    """How much macro-F1 moves when one correctly classified test image is misclassified:
    the change for every such image of up to ``max_runs`` runs (the test split's resolution)."""
    from sklearn.metrics import f1_score

    steps = []
    test = predictions[predictions["split"] == "test"]
    with_predictions = set(test["run_id"])
    run_ids = [r for r in done(runs)["run_id"] if r in with_predictions][:max_runs]
    num_classes = len(class_names(runs))
    for run_id in run_ids:
        part = test[test["run_id"] == run_id]
        y, predicted = part["label"].to_numpy(), part["predicted"].to_numpy()
        base = f1_score(y, predicted, average="macro", zero_division=0)
        for i in np.flatnonzero(y == predicted):
            changed = predicted.copy()
            changed[i] = (changed[i] + 1) % num_classes
            steps.append(base - f1_score(y, changed, average="macro", zero_division=0))
    return np.asarray(steps)
