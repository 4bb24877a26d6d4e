"""The book's tables, computed from a study's results tables (:mod:`valf_study.studies.results`).

Every function takes the tidy tables and returns a DataFrame (or a pandas Styler); the book's
pages only call them and glue their numbers.

Uncertainty. A study's mean over seeds varies with the seeds and with the test data, which
every seed shares; the summary's intervals are for new test data, so they cover both
(:func:`valf_study.stats.seed_and_image_interval`, patients or a folder's groups resampled as
clusters), at 95 %. AUC and ECE, which need the predicted probabilities, get Student-t intervals
over seeds only, and say so. Intervals over cross-validation folds use Nadeau and Bengio's
corrected resampled t (:func:`valf_study.stats.nadeau_bengio_interval`).

Beside the paper, one of the paper's runs is judged against the interval for *one* run of ours
(:func:`valf_study.stats.prediction_interval`), on the same quantity: the paper's F1 column is
2PR/(P+R) of macro precision and recall (``f1_of_means``), not the mean of per-class F1
(``f1``, the study's own measure).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from valf_study.data.lunghist700 import CLASS_NAMES
from valf_study.stats import (
    detectable_difference,
    mean_ci,
    nadeau_bengio_interval,
    prediction_interval,
    seed_and_image_interval,
    seeds_needed,
)
from valf_study.studies.comparisons import SETTING, seed_predictions, study_classes
from valf_study.studies.paper import FIG4_CLAIMS, PAPER_TABLE, read_fig4_claims, read_paper_table  # noqa: F401 - the book reads them from here
from valf_study.studies.results import NO_MAGNIFICATION, experiment_runs

__all__ = [
    "INTERVAL_METRICS",
    "METRICS",
    "PROBABILITY_METRICS",
    "SETTING",
    "TABLE2_METRICS",
    "ablation_table",
    "accuracy_check",
    "claimed_gains",
    "class_names",
    "compact",
    "compare_with_paper",
    "comparison_display",
    "critical_difference_table",
    "detectable_differences",
    "done",
    "f1_check",
    "fig4_check",
    "folded",
    "interval_text",
    "knob_order",
    "official_test_sizes",
    "one_image_f1_steps",
    "paper_agreement",
    "patients_per_class",
    "per_class_recall",
    "power_summary",
    "power_table",
    "primary_display",
    "range_text",
    "read_environments",
    "read_fig4_claims",
    "read_paper_table",
    "setting_text",
    "shown",
    "split_counts",
    "summary_table",
    "table2",
    "weight_reach_table",
    "wins",
]

#: The metrics of the paper's Table 2, in its order (its F1 is ``f1_of_means``).
METRICS = ("accuracy", "precision", "recall", "f1")
#: The metrics whose intervals cover the seeds and the test images.
INTERVAL_METRICS = ("accuracy", "precision", "recall", "f1", "f1_of_means")
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


def folded(*tables, title="The table"):
    """Tables (DataFrames or Stylers) folded away under a line the reader clicks to open: for a
    long table whose figure stays in view above it."""
    from IPython.display import HTML

    parts = [t if isinstance(t, str) else _html(t) for t in tables]
    return HTML(f"<details><summary>{title}</summary>{''.join(parts)}</details>")


def _html(table):
    styler = table if hasattr(table, "to_html") and hasattr(table, "data") else shown(table)
    return styler.to_html()


def shown(table, digits=3):
    """A table as a page shows it: numbers rounded, without pandas' row numbers."""
    return table.style.hide(axis="index").format(precision=digits, na_rep="–")


def _group_row(part, predictions, metrics, n_resamples, num_classes):
    """Means and 95 % intervals (new test data) of one group of runs (its seeds, folds
    pooled)."""
    row = {"seeds": int(part["seed"].nunique()), "runs": len(part)}
    table = seed_predictions(part, predictions)
    seeds = [c for c in table.columns if c not in ("label", "group")]
    table = table.dropna()
    predicted = table[seeds].to_numpy(int).T
    groups = table["group"].to_numpy() if "group" in table else None
    row["images"] = len(table)
    for metric in metrics:
        estimate = seed_and_image_interval(
            table["label"].to_numpy(int),
            predicted,
            metric=metric,
            n_resamples=n_resamples,
            groups=groups,
            num_classes=num_classes,
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
    """Mean and 95 % interval (seeds and new test data) of each metric per ``keys`` group;
    ``best`` marks, descriptively, the method with the highest mean F1 in each setting.

    Intervals are clipped to [0, 1], the range of every metric here. The macro averages run
    over the study's class list (:func:`valf_study.studies.comparisons.study_classes`).
    """
    rows = []
    complete = done(runs)
    classes = study_classes(complete, predictions) if len(complete) else None
    for group, part in complete.groupby(list(keys), sort=False, dropna=False):
        key = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        rows.append({**key, **_group_row(part, predictions, metrics, n_resamples, classes)})
    table = pd.DataFrame(rows)
    if table.empty or "f1_mean" not in table:
        return table
    setting = [k for k in (*SETTING, "imbalance_ratio") if k in keys]
    best = (
        table.groupby(setting, sort=False)["f1_mean"].transform("max")
        if setting
        else table["f1_mean"].max()
    )
    table["best"] = np.isclose(table["f1_mean"], best)
    return table


_SPACE = "\u00a0"  # no break inside an interval
_DASH = "\u2060–\u2060"  # an en dash joined to its numbers (a browser may break after a dash)


def _number(value, digits):
    return f"{value:.{digits}f}".replace("-", "−")  # a minus sign, not a hyphen


def interval_text(mean, low, high, digits=2):
    """A mean with its interval on one line, compactly: ``0.92 (0.86-0.99)``; with a negative
    bound, ``−0.012 (−0.051 to 0.027)``, so that a minus sign is never read as a dash. The spaces
    are non-breaking, so that a narrow table column never wraps an interval.

    Examples
    --------
    >>> print(interval_text(0.924, 0.857, 0.993))
    0.92\u00a0(0.86\u2060–\u20600.99)
    >>> print(interval_text(-0.0123, -0.051, 0.027, digits=3))
    −0.012\u00a0(−0.051\u00a0to\u00a00.027)
    >>> interval_text(0.5, float("nan"), float("nan"))
    '0.50'
    """
    if not np.isfinite(mean):
        return "–"
    if not (np.isfinite(low) and np.isfinite(high)):
        return _number(mean, digits)
    return f"{_number(mean, digits)}{_SPACE}({range_text(low, high, digits)})"


def range_text(low, high, digits=2):
    """An interval alone, as :func:`interval_text` writes it: ``0.86–0.99``, ``−0.05 to 0.03``;
    ``–`` where a bound is missing."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "–"
    between = f"{_SPACE}to{_SPACE}" if min(low, high) < 0 else _DASH
    return f"{_number(low, digits)}{between}{_number(high, digits)}"


def _cell(mean, low, high):
    return interval_text(mean, low, high)


def compact(table, metrics, digits=2):
    """``table`` with each metric's ``<metric>_mean``, ``_low`` and ``_high`` columns folded into
    one text column (:func:`interval_text`) named after the metric, in place of the first."""
    shown = table.copy()
    for metric in metrics:
        if f"{metric}_mean" not in shown:
            continue
        text = [
            interval_text(*values, digits=digits)
            for values in zip(
                shown[f"{metric}_mean"], shown[f"{metric}_low"], shown[f"{metric}_high"]
            )
        ]
        position = shown.columns.get_loc(f"{metric}_mean")
        shown = shown.drop(columns=[f"{metric}_mean", f"{metric}_low", f"{metric}_high"])
        shown.insert(position, _LABELS.get(metric, metric), text)
    return shown


def comparison_display(comparisons):
    """The per-setting comparisons as a page shows them: one line per setting and question, the
    mean difference and its two intervals (each on one line, at the Holm-adjusted level the
    verdict uses), the verdict (with "gate open" where the question's primary test rejected),
    the paper's claimed gain where any comparison has one, P(VALF better) and the data (seeds
    and test units; in ``attrs["data"]`` instead of a column when every row has the same)."""
    keys = [k for k in comparisons.columns if k in (*SETTING, "imbalance_ratio")]
    rows = []
    for row in comparisons.itertuples():
        setting = [
            f"ρ={float(getattr(row, k)):g}" if k == "imbalance_ratio" else str(getattr(row, k))
            for k in keys
        ]
        rows.append(
            {
                "setting": " · ".join(v for v in setting if v != NO_MAGNIFICATION),
                "comparison": f"{row.loss} − {row.comparator}",
                "difference": _number(row.mean_diff, 3),
                "this split": range_text(row.ci_split_low, row.ci_split_high, 3),
                "new test data": range_text(row.ci_new_low, row.ci_new_high, 3),
                # an open gate: the primary test of this question rejected, so the verdict is
                # confirmatory; closed, it describes
                "verdict": row.verdict + (" (gate open)" if row.gate == "open" else ""),
                "paper's gain": _number(row.claim, 3) if np.isfinite(row.claim) else "–",
                "P(VALF better)": interval_text(row.p_better, row.p_better_low, row.p_better_high),
                "data": f"{int(row.seeds)} seeds, {int(row.units)}{_SPACE}{row.unit}s",
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    if (table["paper's gain"] == "–").all():
        table = table.drop(columns="paper's gain")
    if table["data"].nunique() == 1:  # the same for every row: said once, under the table
        table.attrs["data"] = table["data"].iloc[0]
        table = table.drop(columns="data")
    return table


def primary_display(primary):
    """The primary tests as a page shows them: the pooled questions (estimate, 95 % interval,
    Holm-adjusted p-value, the prediction interval for a new setting) and the headline tests."""
    rows = []
    for row in primary.itertuples():
        pooled = row.family in ("primary", "readings of eq. 7")
        rows.append(
            {
                "test": row.test,
                "family": row.family,
                "estimate": interval_text(row.estimate, row.ci_low, row.ci_high, digits=3),
                "p (adjusted)": f"{row.p_adjusted:.3g}" if np.isfinite(row.p_adjusted) else "–",
                "significant": ("yes" if row.significant else "no")
                if np.isfinite(row.p_adjusted)
                else "–",
                "new setting": range_text(row.pi_low, row.pi_high, digits=3) if pooled else "–",
                "settings": int(row.settings) if np.isfinite(row.settings) else "–",
            }
        )
    return pd.DataFrame(rows)


#: Table 2's metrics (the paper's four: its F1 is F1 of means), then the study's own macro-F1
#: (eq. 12) with the metrics of the predicted probabilities: two tables, so that each fits a
#: page's column.
TABLE2_METRICS = ("accuracy", "precision", "recall", "f1_of_means")
PROBABILITY_METRICS = ("f1", "auc", "ece")


def setting_text(row, keys):
    """A setting as one short label, ``SmallCNN · 20x · ρ=10``: the values of ``keys``, the
    imbalance ratio as ρ, a magnification the data set lacks left out."""
    values = []
    for key in keys:
        value = row[key]
        if key == "imbalance_ratio":
            values.append(f"ρ={float(value):g}")
        elif value != NO_MAGNIFICATION:
            values.append(str(value))
    return " · ".join(values)


def table2(summary, metrics=TABLE2_METRICS):
    """The summary shaped like the paper's Table 2: one row per setting (backbone, magnification
    and, where a study varies it, the imbalance ratio) and method, each cell the mean with its
    95 % interval, ``0.92 (0.86–0.99)``; the best mean F1 of each setting in bold (a
    description of the table, not a test). :data:`PROBABILITY_METRICS` gives the AUC and ECE
    table."""
    keys = list(shown_settings(summary)) + [
        k for k in ("imbalance_ratio",) if k in summary and summary[k].nunique() > 1
    ]
    shown = summary.sort_values(keys, kind="stable").reset_index(drop=True)
    present = [m for m in metrics if f"{m}_mean" in shown]
    table = pd.DataFrame(
        {
            "setting": [setting_text(row, keys) for _, row in shown.iterrows()],
            "method": shown["method"],
            **{
                _LABELS[m]: [
                    _cell(*v)
                    for v in zip(shown[f"{m}_mean"], shown[f"{m}_low"], shown[f"{m}_high"])
                ]
                for m in present
            },
        }
    )
    best = shown["best"].to_numpy()

    def bold(row):
        return ["font-weight: bold" if best[row.name] else "" for _ in row]

    return table.style.apply(bold, axis=1).hide(axis="index")


def wins(summary, method_prefix="VALF"):
    """In how many settings a method starting with ``method_prefix`` has the best mean F1
    (descriptive), and how many settings there are."""
    settings = summary.groupby(list(SETTING)).ngroups
    part = summary[summary["method"].str.startswith(method_prefix) & summary["best"]]
    return int(part.groupby(list(SETTING)).ngroups), int(settings)


# -- the paper ----------------------------------------------------------------------------------


def f1_check(paper):
    """The paper's F1 beside 2PR/(P+R) of its printed macro precision and recall: ``same``
    where the two agree to the paper's three decimals (within 0.001: it rounds some and cuts
    others)."""
    from valf_study.metrics import f1_of_means

    table = paper[["backbone", "loss", "magnification", "precision", "recall", "f1"]].copy()
    table["f1_of_means"] = [f1_of_means(p, r) for p, r in zip(table["precision"], table["recall"])]
    table["same"] = (table["f1_of_means"] - table["f1"]).abs() < 0.001
    return table


def patients_per_class(split, class_column="superclass", magnification_column="resolution"):
    """Patients (and images) of a split's test images per magnification and class: one row per
    magnification, each cell ``patients (images)``, and the magnification's total.

    Examples
    --------
    >>> frame = pd.DataFrame({"split": ["test"] * 3, "resolution": ["20x"] * 3,
    ...                       "superclass": ["aca", "aca", "nor"], "patient_id": [1, 2, 2]})
    >>> patients_per_class(frame).to_dict("records")
    [{'magnification': '20x', 'ACA': '2 (2)', 'NOR': '1 (1)', 'all classes': '2 (3)'}]
    """
    test = split[split["split"] == "test"]
    rows = []
    for magnification, part in test.groupby(magnification_column, sort=True):
        row = {"magnification": magnification}
        for name, members in part.groupby(class_column, sort=True):
            row[str(name).upper()] = f"{members['patient_id'].nunique()} ({len(members)})"
        row["all classes"] = f"{part['patient_id'].nunique()} ({len(part)})"
        rows.append(row)
    return pd.DataFrame(rows)


#: The splits of a run, in the order tables show them.
SPLITS = ("train", "val", "test")


def split_counts(run_dirs, class_names):
    """Images per class and split as the runs read them (each run's ``split.csv``): one row per
    class in ``class_names`` order, a column per split, a cell ``n`` or, where the runs differ
    (a training set cut per seed), ``min–max``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> runs = [pathlib.Path(tempfile.mkdtemp()) for _ in range(2)]
    >>> for run, kept in zip(runs, (2, 3)):
    ...     pd.DataFrame({"split": ["train"] * kept + ["test"],
    ...                   "class_name": [0] * kept + [1]}).to_csv(run / "split.csv")
    >>> split_counts(runs, ["0", "1"]).values.tolist()
    [['0', '2–3', '–', '–'], ['1', '–', '–', '1']]
    """
    rows = []
    for run_dir in run_dirs:
        # Class names as text: digits would otherwise be read as numbers.
        split = pd.read_csv(Path(run_dir) / "split.csv", dtype={"class_name": str})
        for (part, name), size in split.groupby(["split", "class_name"]).size().items():
            rows.append({"split": part, "class": name, "images": size})
    sizes = pd.DataFrame(rows, columns=["split", "class", "images"])
    ranges = sizes.groupby(["class", "split"])["images"].agg(["min", "max"])
    cells = {
        key: str(low) if low == high else f"{low}\u2013{high}"
        for key, low, high in zip(ranges.index, ranges["min"], ranges["max"])
    }
    return pd.DataFrame(
        [
            {"class": name, **{part: cells.get((name, part), "\u2013") for part in SPLITS}}
            for name in map(str, class_names)
        ]
    )


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
                values = part[column].dropna()
                n, sd = len(values), values.std(ddof=1) if len(values) > 1 else np.nan
                scale = sd * np.sqrt(1 + 1 / n) if n > 1 else np.nan
                rows.append(
                    {
                        "backbone": backbone,
                        "magnification": magnification,
                        "method": method,
                        "metric": metric,
                        "paper": reported[metric],
                        "ours": float(part[column].mean()),
                        "sd": float(sd),
                        "pi_low": low,
                        "pi_high": high,
                        "runs": len(part),
                        "inside": bool(low <= reported[metric] <= high)
                        if np.isfinite(low)
                        else None,
                        "residual": float((reported[metric] - values.mean()) / scale)
                        if n > 1 and scale > 0
                        else np.nan,
                    }
                )
    return pd.DataFrame(rows)


def paper_agreement(comparison, confidence=0.95):
    """How the paper's numbers sit beside ours, from :func:`compare_with_paper`'s table.

    Each row's standardised residual is ``(paper - our mean) / (our sd sqrt(1 + 1/n))``
    (``residual``), Student-t with ``n - 1`` degrees of freedom if the paper's run were one
    more run like ours; outside the 95 % prediction interval exactly when its size passes the
    t quantile. Per metric and per reading of VALF (the paper's baselines with that reading's
    VALF rows, so each paper number counts once): how many numbers, their mean offset
    ``paper - ours`` with a Student-t interval over the numbers (which treats them as
    independent; numbers of one setting share its test data), the mean residual, and how many
    lie outside the prediction interval against the 5 % expected, with a two-sided binomial
    test (scipy's ``binomtest``).
    """
    from scipy.stats import binomtest

    rows = []
    if comparison.empty:
        return pd.DataFrame(rows)
    readings = sorted(m for m in set(comparison["method"]) if m.startswith("VALF")) or [None]
    for metric, part in comparison.groupby("metric", sort=True):
        for reading in readings:
            chosen = part[~part["method"].str.startswith("VALF") | (part["method"] == reading)]
            chosen = chosen[chosen["inside"].notna()]
            if chosen.empty:
                continue
            offset = chosen["paper"] - chosen["ours"]
            mean, half = mean_ci(offset, confidence)
            outside = int((~chosen["inside"].astype(bool)).sum())
            rows.append(
                {
                    "metric": metric,
                    "valf_reading": reading or "none",
                    "numbers": len(chosen),
                    "mean_offset": mean,
                    "offset_low": mean - half,
                    "offset_high": mean + half,
                    "mean_residual": float(chosen["residual"].mean()),
                    "outside": outside,
                    "expected_outside": 0.05 * len(chosen),
                    "p_binomial": float(binomtest(outside, len(chosen), 0.05).pvalue),
                }
            )
    return pd.DataFrame(rows)


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


def _holm_levels(comparisons, alpha):
    """The smallest and the largest level Holm's procedure tests a family of ``m`` at:
    ``alpha / m`` (its first step) and ``alpha`` (its last)."""
    m = max(int(comparisons["p_value"].notna().sum()) if "p_value" in comparisons else 1, 1)
    return alpha / m, alpha


def detectable_differences(comparisons, power=0.8, alpha=0.05):
    """The smallest true difference in macro-F1 each comparison detects with ``power``, at the
    levels Holm's procedure actually tests it at.

    Columns: ``detectable`` (at ``alpha / m``, Holm's first step over the ``m`` comparisons:
    what a comparison needs to be the first rejected), ``detectable_last`` (at ``alpha``,
    Holm's last step, reached only when every other comparison is rejected) and
    ``detectable_unadjusted`` (at ``alpha`` as if alone: the same number as
    ``detectable_last``, named for what it is), with ``level_first`` and ``level_last``.
    """
    first, last = _holm_levels(comparisons, alpha)
    table = comparisons[[*SETTING, "loss", "comparator", "seeds", "images"]].copy()
    se, df = comparisons["standard_error"], comparisons["df"]
    table["level_first"], table["level_last"] = first, last
    table["detectable"] = [detectable_difference(e, d, power, first) for e, d in zip(se, df)]
    table["detectable_last"] = [detectable_difference(e, d, power, last) for e, d in zip(se, df)]
    table["detectable_unadjusted"] = table["detectable_last"]
    return table


def power_table(comparisons, power=0.8, alpha=0.05, claims=None):
    """Power, stated honestly, for one protocol's comparisons (the official split's, or the
    k-fold protocol's): per comparison, the detectable difference (``power``) at Holm's smallest
    and largest level (``detectable_first``, ``detectable_last``); its floor as the seeds grow
    with these test data fixed (S → ∞: only the test data's variance is left, with its
    degrees of freedom; ``floor_first``, ``floor_last``); and the seeds needed to detect the
    paper's claimed gain (``claim``, in the paper's F1; from the comparisons' ``claim``
    column or ``claims``) at each level (``seeds_first``, ``seeds_last``; ``inf`` where the
    floor is above the claim, NaN where there is no claim).

    The standard error with S seeds is ``sqrt(s²/S + v_data)`` with ``s²`` one seed's variance
    (``seed_variance * seeds``) and ``v_data`` the test data's (``image_variance``); the
    degrees of freedom are Welch-Satterthwaite's from ``S - 1`` and ``units - 1``.
    """
    first, last = _holm_levels(comparisons, alpha)
    table = comparisons[[*SETTING, "loss", "comparator", "seeds", "units"]].copy()
    claim = comparisons["claim"] if claims is None and "claim" in comparisons else claims
    table["claim"] = np.nan if claim is None else np.asarray(claim, dtype=float)
    table["level_first"], table["level_last"] = first, last
    rows = []
    for row, claimed in zip(comparisons.itertuples(), table["claim"]):
        data_df = row.units - 1 if row.units > 1 else np.inf
        data = row.image_variance
        per_seed = row.seed_variance * row.seeds if row.seeds > 1 else np.nan
        found = {}
        for name, level in (("first", first), ("last", last)):
            found[f"detectable_{name}"] = detectable_difference(
                row.standard_error, row.df, power, level
            )
            found[f"floor_{name}"] = detectable_difference(np.sqrt(data), data_df, power, level)
            found[f"seeds_{name}"] = seeds_needed(per_seed, data, data_df, claimed, power, level)
        rows.append(found)
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def power_summary(protocols, power=0.8, alpha=0.05):
    """One row per protocol (``{"official split": comparisons, "5-fold": comparisons}``): the
    median over comparisons of :func:`power_table`'s columns, and how many comparisons have a
    claim their floor lies above (no number of seeds detects it)."""
    rows = []
    for name, comparisons in protocols.items():
        if comparisons is None or not len(comparisons):
            continue
        table = power_table(comparisons, power, alpha)
        claimed = table["claim"].notna()
        rows.append(
            {
                "protocol": name,
                "comparisons": len(table),
                "seeds": int(table["seeds"].max()),
                "units": int(table["units"].median()),
                **{
                    column: float(table[column].median())
                    for column in (
                        "detectable_first",
                        "detectable_last",
                        "floor_first",
                        "floor_last",
                    )
                },
                "claims": int(claimed.sum()),
                "median_claim": float(table.loc[claimed, "claim"].median())
                if claimed.any()
                else np.nan,
                "median_seeds_first": float(table.loc[claimed, "seeds_first"].median())
                if claimed.any()
                else np.nan,
                "median_seeds_last": float(table.loc[claimed, "seeds_last"].median())
                if claimed.any()
                else np.nan,
                "claims_below_floor_first": int(np.isinf(table.loc[claimed, "seeds_first"]).sum()),
                "claims_below_floor_last": int(np.isinf(table.loc[claimed, "seeds_last"]).sum()),
            }
        )
    return pd.DataFrame(rows)


def _test_train_ratio(members):
    """Held-out over training images of cross-validation folds: the runs' recorded ``n_val``
    over ``n_train`` where the runs table has them, else ``1 / (k - 1)`` for k folds."""
    if {"n_val", "n_train"} <= set(members.columns):
        ratio = (members["n_val"] / members["n_train"]).mean()
        if np.isfinite(ratio) and ratio > 0:
            return float(ratio)
    k = int(members["n_folds"].iloc[0]) if "n_folds" in members else members["fold"].nunique()
    return 1 / (k - 1) if k > 1 else np.nan


def ablation_table(
    runs, predictions, experiment, knob, metrics=("f1", "accuracy"), by=(), n_resamples=1000
):
    """Mean and 95 % interval (seeds and new test data) of ``metrics`` for each value of
    ``knob`` in ``experiment``, per magnification.

    A seed of an experiment run at both magnifications is two runs on two test splits, so
    the rows are always per magnification (``magnification`` is added to ``by`` when the
    experiment has more than one and ``knob`` is not it): ``seeds`` counts seeds, ``runs``
    the runs a row rests on, and the interval is the one for the mean of those runs.

    A cross-validation experiment whose replicates are folds with different validation images
    is summarised by ``val_f1`` over folds instead, with Nadeau and Bengio's corrected
    resampled t (:func:`valf_study.stats.nadeau_bengio_interval`: the folds' training sets
    overlap, so the naive t over folds is too narrow); its table has
    ``val_f1_mean``/``_low``/``_high`` and the ``test_train_ratio`` used.
    """
    part = done(experiment_runs(runs, experiment)).copy()
    if part.empty:
        return pd.DataFrame()
    part[knob] = part[knob].astype(object).where(part[knob].notna(), "none")
    by = tuple(by)
    if (
        "magnification" not in by
        and knob != "magnification"
        and "magnification" in part
        and part["magnification"].nunique() > 1
    ):
        by = (*by, "magnification")
    if part["split"].eq("cv").all():
        rows = []
        for group, members in part.groupby([*by, knob], sort=False):
            ratio = _test_train_ratio(members)
            mean, half = nadeau_bengio_interval(members["val_f1"], ratio)
            key = dict(zip([*by, knob], group if isinstance(group, tuple) else (group,)))
            rows.append(
                {
                    **key,
                    "folds": len(members),
                    "val_f1_mean": mean,
                    "val_f1_low": mean - half,
                    "val_f1_high": mean + half,
                    "test_train_ratio": ratio,
                }
            )
        table = pd.DataFrame(rows)
    else:
        table = summary_table(
            part, predictions, keys=(*by, knob), metrics=metrics, n_resamples=n_resamples
        )
    table = table.sort_values([*by, knob], key=knob_order, kind="stable")
    return table.drop(columns="best", errors="ignore").reset_index(drop=True)


def critical_difference_table(friedman):
    """The data of a critical-difference figure, from
    :func:`valf_study.studies.comparisons.friedman_tests`: one row per reading of VALF and
    method, with its average rank (1 is best), the Nemenyi critical difference, the settings,
    Friedman's p-value, and, against VALF, the Holm-adjusted p-value of the rank difference
    and whether it is significant (Demšar 2006)."""
    rows = []
    for reading, result in friedman.items():
        against = (
            result["versus_control"].set_index("method")
            if len(result.get("versus_control", []))
            else pd.DataFrame()
        )
        for method, rank in result["ranks"].items():
            rows.append(
                {
                    "valf_reading": reading,
                    "method": method,
                    "average_rank": float(rank),
                    "critical_difference": result["critical_difference"],
                    "settings": result["settings"],
                    "p_friedman": result.get("p_value", np.nan),
                    "p_adjusted": against["p_adjusted"].get(method, np.nan)
                    if len(against)
                    else np.nan,
                    "different_from_valf": bool(against["significant"].get(method, False))
                    if len(against)
                    else False,
                }
            )
    return pd.DataFrame(rows)


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
