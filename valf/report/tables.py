"""The book's tables, computed from a study's results tables (:mod:`valf.study.results`).

Every function takes the tidy tables (or the study's own files) and returns a DataFrame (or a
pandas Styler); the book's pages only call them and glue their numbers. Intervals are 95 %
Student-t intervals of the mean over seeds (the seeds are the replicates; a single seed has no
interval), and paired comparisons pair runs that share a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from valf.data.lunghist700 import CLASS_NAMES
from valf.report.stats import mean_ci
from valf.study.results import experiment_runs

__all__ = [
    "METRICS",
    "SETTING",
    "ablation_table",
    "compare_with_paper",
    "done",
    "one_image_f1_steps",
    "paired_comparison",
    "per_class_recall",
    "read_environments",
    "read_paper_table",
    "summary_table",
    "table2",
    "wins",
]

#: The metrics of the paper's Table 2, in its order.
METRICS = ("accuracy", "precision", "recall", "f1")
SETTING = ("backbone", "magnification")
PAPER_TABLE = Path(__file__).resolve().parents[2] / "book" / "data" / "paper_table2.csv"


def done(runs):
    """The complete runs of a runs table."""
    return runs[runs["status"] == "done"]


def summary_table(runs, keys=("backbone", "loss", "magnification"), metrics=METRICS):
    """Mean and CI half-width of each metric over the runs of each ``keys`` group (its seeds,
    or its folds); ``best`` marks the loss with the highest mean F1 in each (backbone,
    magnification) setting."""
    rows = []
    for group, part in done(runs).groupby(list(keys), sort=False, dropna=False):
        row = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        row["seeds"] = int(part["seed"].nunique())
        row["runs"] = len(part)  # replicates: seeds, or folds of a cross-validation
        for metric in metrics:
            row[f"{metric}_mean"], row[f"{metric}_ci"] = mean_ci(part[metric])
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    setting = [k for k in SETTING if k in keys]
    if "loss" in keys and "f1_mean" in table:
        best = (
            table.groupby(setting, sort=False)["f1_mean"].transform("max")
            if setting
            else table["f1_mean"].max()
        )
        table["best"] = np.isclose(table["f1_mean"], best)
    return table


def table2(summary, metrics=METRICS):
    """The summary shaped like the paper's Table 2: one row per backbone, magnification and
    loss, each cell ``mean ± half-width``, as a pandas Styler with the best F1 per setting in
    bold."""
    shown = summary.copy()
    labels = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1"}
    for metric in metrics:
        shown[labels[metric]] = [
            f"{m:.3f}" if not np.isfinite(h) else f"{m:.3f} ± {h:.3f}"
            for m, h in zip(shown[f"{metric}_mean"], shown[f"{metric}_ci"])
        ]
    shown = shown.sort_values(["backbone", "magnification"], kind="stable")
    best = shown["best"].to_numpy()
    shown = shown.set_index(["backbone", "magnification", "loss"])[
        [labels[m] for m in metrics] + ["seeds"]
    ]

    def bold(row):
        return ["font-weight: bold" if best[shown.index.get_loc(row.name)] else "" for _ in row]

    return shown.style.apply(bold, axis=1)


def read_paper_table(path=PAPER_TABLE):
    """The paper's Table 2 (typed from the paper; cited, never computed)."""
    return pd.read_csv(path)


def compare_with_paper(summary, paper):
    """Our mean F1 (and CI) beside the paper's, with the difference and whether the paper's
    value lies inside our interval."""
    merged = summary.merge(
        paper, on=["backbone", "loss", "magnification"], how="inner", suffixes=("", "_paper")
    )
    table = merged[["backbone", "magnification", "loss", "f1_mean", "f1_ci", "f1"]].rename(
        columns={"f1_mean": "ours", "f1_ci": "ours_ci", "f1": "paper"}
    )
    table["difference"] = table["ours"] - table["paper"]
    table["paper_inside_ci"] = table["difference"].abs() <= table["ours_ci"]
    return table


def wins(summary, loss="VALF"):
    """In how many (backbone, magnification) settings ``loss`` has the best mean F1."""
    part = summary[summary["loss"] == loss]
    return int(part["best"].sum()), len(part)


def paired_comparison(runs, loss="VALF", metric="f1"):
    """``loss`` against the best other loss of each setting (by mean ``metric``), paired by
    seed: mean difference, its CI, the seeds won, and what the interval allows one to say."""
    rows = []
    for setting, part in done(runs).groupby(list(SETTING), sort=True):
        means = part.groupby("loss")[metric].mean()
        if loss not in means or len(means) < 2:
            continue
        baseline = means.drop(loss).idxmax()
        ours = part[part["loss"] == loss].set_index("seed")[metric]
        theirs = part[part["loss"] == baseline].set_index("seed")[metric]
        seeds = ours.index.intersection(theirs.index)
        difference = (ours[seeds] - theirs[seeds]).to_numpy(float)
        mean, half = mean_ci(difference)
        if not np.isfinite(half):
            verdict = "one seed: no interval"
        elif mean - half > 0:
            verdict = f"{loss} better"
        elif mean + half < 0:
            verdict = f"{baseline} better"
        else:
            verdict = "no clear difference"
        rows.append(
            {
                **dict(zip(SETTING, setting)),
                "baseline": baseline,
                f"{loss}_{metric}": float(ours[seeds].mean()),
                f"baseline_{metric}": float(theirs[seeds].mean()),
                "difference": mean,
                "ci": half,
                "seeds": len(seeds),
                "seeds_won": int((difference > 0).sum()),
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


def per_class_recall(runs, keys=("backbone", "magnification", "loss")):
    """Test recall per class (``recall_<class>`` of each run's metrics.json), mean over seeds,
    per ``keys``."""
    columns = [f"recall_{c}" for c in CLASS_NAMES]
    table = done(runs).groupby(list(keys), sort=False)[columns].mean()
    return table.rename(columns=dict(zip(columns, CLASS_NAMES))).reset_index()


def ablation_table(runs, experiment, knob, metrics=("f1", "balanced_accuracy"), by=()):
    """Mean and CI over seeds of ``metrics`` for each value of ``knob`` in ``experiment``."""
    part = done(experiment_runs(runs, experiment)).copy()
    part[knob] = part[knob].astype(object).where(part[knob].notna(), "none")
    table = summary_table(part, keys=(*by, knob), metrics=metrics)
    table = table.sort_values([*by, knob], key=knob_order, kind="stable")
    return table.drop(columns="best", errors="ignore").reset_index(drop=True)


def knob_order(values):
    """Sort key of a knob's values: numerically where they are numbers ("none" first)."""
    numeric = pd.to_numeric(values, errors="coerce")
    return numeric.fillna(-np.inf) if numeric.notna().any() else values


def read_environments(runs):
    """Device and versions the runs recorded (the runs table's ``*_version`` columns), one row
    per distinct environment, with how many runs used it and at which commits."""
    keys = ["device"] + [c for c in runs.columns if c.endswith("_version")]
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
    for run_id in run_ids:
        part = test[test["run_id"] == run_id]
        y, predicted = part["label"].to_numpy(), part["predicted"].to_numpy()
        base = f1_score(y, predicted, average="macro", zero_division=0)
        for i in np.flatnonzero(y == predicted):
            changed = predicted.copy()
            changed[i] = (changed[i] + 1) % len(CLASS_NAMES)
            steps.append(base - f1_score(y, changed, average="macro", zero_division=0))
    return np.asarray(steps)
