"""The summary chapter's table: every claim of the paper, one row each, beside what the study
measured, on which data, with the verdict in the statistics' own words and the section that
holds the evidence.

The claims are read from :func:`valf_study.studies.paper.read_paper_claims` (typed from the
paper, quoted); every number of a row is computed here from the results tables of the study the
book shows (or, for the overhead, from the recorded benchmarks), none typed. A study on data that
is not LungHist700 (the generated stand-in, a folder of one's own) measures the same things, but
its rows say that they do not test the paper's claims.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from valf_study import project
from valf_study.report.tables import done, fig4_check, interval_text, range_text
from valf_study.stats import prediction_interval
from valf_study.studies.comparisons import PAPER_LOSSES, setting_keys
from valf_study.studies.paper import read_fig4_claims, read_paper_claims

__all__ = ["claim_rows", "overhead_figures", "real_rows"]

_NOT_TESTED = "not tested (not LungHist700)"


def _settings(count):
    count = int(count)
    return f"{count} setting{'' if count == 1 else 's'}"


def _signed(value):
    return f"{value:+.3f}".replace("-", "−")


def _reading_rows(primary, family):
    return (
        primary[primary["family"].astype(str).str.startswith(family)] if len(primary) else primary
    )


def _headline(study):
    rows = _reading_rows(study.primary, "headline")
    if rows.empty:
        return "too few settings or losses to count", "–"
    parts, verdicts = [], []
    for row in rows.itertuples():
        needed = row.test.split("best in ")[-1]
        parts.append(
            f"{row.loss} best in {int(row.statistic)} of {int(row.settings)} settings; "
            f"P(best in {needed} in a rerun) = "
            f"{interval_text(row.estimate, row.ci_low, row.ci_high)}"
        )
        at_least = int(needed.split()[1])
        verdicts.append(
            f"{row.loss}: {'as claimed' if row.statistic >= at_least else 'not reproduced'}"
            f" here, {'likely' if row.estimate >= 0.5 else 'unlikely'} in a rerun"
        )
    friedman = _reading_rows(study.primary, "ranks")
    friedman = friedman[friedman["test"].str.startswith("Friedman")]
    for row in friedman.itertuples():
        parts.append(f"Friedman's test ({row.loss}): p = {row.p_value:.2g}")
    return "; ".join(parts), "; ".join(verdicts)


def _paper_f1_means(study):
    """Per setting and method, the mean over seeds of the paper's F1 (``f1_of_means``)."""
    complete = done(study.runs)
    return complete.groupby([*setting_keys(complete), "method"])["f1_of_means"].mean()


def _largest_gain(study):
    means = _paper_f1_means(study).unstack("method")
    readings = [c for c in means.columns if str(c).startswith("VALF")]
    others = [c for c in means.columns if c in PAPER_LOSSES and not str(c).startswith("VALF")]
    if not readings or not others:
        return "VALF or the paper's other losses missing", "–"
    parts = []
    for reading in readings:
        gain = means[reading] - means[others].max(axis=1)
        where = gain.idxmax()
        where = " ".join(map(str, where if isinstance(where, tuple) else (where,)))
        parts.append(
            f"{reading}: largest gain {_signed(gain.max())} ({where}), over the best of "
            f"{', '.join(others)} in the paper's F1"
        )
    table = study.comparisons
    with_claim = table[table["claim"].notna()] if len(table) else table
    if with_claim.empty:
        verdict = "no claimed gain to test on these data"
    else:
        counts = with_claim["verdict"].value_counts()
        verdict = (
            f"claim excluded in {counts.get('claim excluded', 0)} of {len(with_claim)} "
            f"comparisons with a claimed gain; better in {counts.get('better', 0)}"
        )
    return "; ".join(parts), verdict


def _consistent(study):
    complete = done(study.runs)
    means = complete.groupby([*setting_keys(complete), "method"])[
        ["accuracy", "precision", "recall"]
    ].mean()
    methods = set(complete["method"])
    readings = sorted(m for m in methods if m.startswith("VALF"))
    comparators = [m for m in ("FL", "CCE") if m in methods]
    parts = []
    for reading in readings:
        ahead, settings = 0, 0
        for _, part in means.groupby(level=list(range(means.index.nlevels - 1))):
            part = part.droplevel(list(range(part.index.nlevels - 1)))
            if reading not in part.index or not all(c in part.index for c in comparators):
                continue
            settings += 1
            ahead += int(all((part.loc[reading] > part.loc[c]).all() for c in comparators))
        parts.append(
            f"{reading} ahead of {' and '.join(comparators)} in accuracy, precision and recall "
            f"at once in {ahead} of {settings} settings (means, descriptive)"
        )
    return "; ".join(parts), _primary_verdict(study)


def _primary_verdict(study):
    rows = _reading_rows(study.primary, "primary")
    if rows.empty:
        return "–"
    rejected = rows[rows["significant"].astype(bool)]
    if rejected.empty:
        return f"none of the {len(rows)} primary tests rejects no difference (Holm, 5 %)"
    described = ", ".join(
        f"{r.loss} {'better' if r.estimate > 0 else 'worse'} than {r.comparator}"
        for r in rejected.itertuples()
    )
    return f"{len(rejected)} of {len(rows)} primary tests reject: {described}"


def _robust(study):
    rows = _reading_rows(study.primary, "primary")
    if rows.empty:
        return "no pooled test", "–"
    parts = []
    for row in rows.itertuples():
        new = range_text(row.pi_low, row.pi_high, 3)
        parts.append(
            f"{row.loss} − {row.comparator}: "
            f"{interval_text(row.estimate, row.ci_low, row.ci_high, 3)} pooled over "
            f"{_settings(row.settings)}" + (f", in a new setting {new}" if new != "–" else "")
        )
    spans = rows[np.isfinite(rows["pi_low"].astype(float))]
    if spans.empty:
        verdict = "fewer than three settings: no interval for a new setting"
    else:
        crossing = int(((spans["pi_low"] < 0) & (spans["pi_high"] > 0)).sum())
        verdict = (
            f"in {crossing} of {len(spans)} questions the difference in a new setting could "
            "have either sign"
        )
    return "; ".join(parts), verdict


def _fig4(study, claim):
    found = read_fig4_claims()
    found = found[found["claim"] == claim]
    if found.empty:
        return "–", "–"
    row = fig4_check(study.runs, found).iloc[0]
    complete = done(study.runs)
    column = f"recall_{row['class']}"
    if column not in complete:
        return f"no class {row['class']} in the study shown", "not applicable"
    if row["losses"] == "all":
        chosen = complete
    elif row["losses"] == "others":
        chosen = complete[~complete["method"].str.startswith("VALF")]
    else:
        chosen = complete[complete["method"].str.startswith(row["losses"])]
    low, high = prediction_interval(chosen[column].dropna())
    low, high = max(low, 0.0), min(high, 1.0)  # a recall lies in [0, 1]
    measured = (
        f"{row['class']} recall {row['ours']:.2f} (mean of {int(row['runs'])} runs; one run: "
        f"{range_text(low, high)}); the paper: {row['paper']:.2f}"
    )
    inside = np.isfinite(low) and low <= row["paper"] <= high
    return (
        measured,
        "within what one run of ours gives" if inside else "outside what one run of ours gives",
    )


def _auc_accuracy(study):
    complete = done(study.runs)
    part = complete[complete["method"].str.startswith("VALF")]
    if "magnification" in part and (part["magnification"] == "20x").any():
        part = part[part["magnification"] == "20x"]
    if part.empty:
        return "no VALF run at 20x", "–"
    by = [k for k in setting_keys(part) if k != "magnification"] + ["method"]
    means = part.groupby(by)[["auc", "accuracy"]].mean()
    best = means.max()
    measured = f"highest mean AUC {best['auc']:.2f}, accuracy {best['accuracy']:.2f} (VALF, 20x)"
    reached = best["auc"] >= 0.99 - 0.005 and best["accuracy"] >= 0.94 - 0.005
    return measured, "reached" if reached else "not reached"


def overhead_figures():
    """The recorded loss-overhead benchmarks (``benchmarks/results/loss_overhead-*.json``), one
    row per file: the backbone, backend, devices, the step-time ratio of VALF over CCE with its
    quartiles, and the per-epoch callback's share of an epoch where it was timed."""
    folder = project.root() / "benchmarks" / "results"
    rows = []
    for path in sorted(folder.glob("loss_overhead-*.json")):
        record = json.loads(path.read_text())
        step = record["step"]
        callback = record.get("callback", {})
        rows.append(
            {
                "file": path.name,
                "backbone": record["backbone"],
                "backend": record["backend"],
                "device": ", ".join(record["devices"]),
                "ratio": step["ratio_valf_over_cce"],
                "ratio_low": step["ratio_quartiles"][0],
                "ratio_high": step["ratio_quartiles"][1],
                "callback_share": callback.get("callback_share", math.nan),
            }
        )
    return pd.DataFrame(rows)


def _overhead(study):
    table = overhead_figures()
    if table.empty:
        return "no benchmark recorded", "–"
    parts = [
        f"{r.backbone} on {r.device} ({r.backend}): a step with VALF takes "
        f"{r.ratio:.2f} times one with CCE (quartiles {range_text(r.ratio_low, r.ratio_high)})"
        for r in table.itertuples()
        if "valf-first" not in r.file
    ]
    shares = table["callback_share"].dropna()
    if len(shares):
        parts.append(f"the validation pass after each epoch: {shares.max():.1%} of an epoch on CPU")
    return "; ".join(parts), "holds for the loss; the per-epoch validation pass is VALF's cost"


def _plug_and_play(study):
    return (
        "the losses are keras.losses.Loss subclasses with a callback that feeds them "
        "validation accuracy; the library's tests train them in jitted fits on TensorFlow, "
        "JAX and PyTorch",
        "holds for Keras models, given a validation set and the callback",
    )


_CHECKS = {
    "headline": _headline,
    "largest_gain": _largest_gain,
    "consistent": _consistent,
    "robust": _robust,
    "auc_accuracy": _auc_accuracy,
    "overhead": _overhead,
    "plug_and_play": _plug_and_play,
}
#: The checks that do not depend on the data (the paper's claims about the method itself).
_DATA_FREE = ("overhead", "plug_and_play")


def claim_rows(study):
    """One row per claim of the paper: ``claim``, ``where``, ``measured``, ``data``,
    ``verdict`` and ``evidence`` (the label of the book's section)."""
    rows = []
    for claim in read_paper_claims().itertuples():
        name, _, argument = claim.check.partition(":")
        if name == "fig4":
            measured, verdict = _fig4(study, argument)
        else:
            measured, verdict = _CHECKS[name](study)
        data_free = name in _DATA_FREE
        if not data_free and study.synthetic:
            verdict = f"{_NOT_TESTED}; here: {verdict}" if verdict not in ("–", "") else _NOT_TESTED
        rows.append(
            {
                "claim": claim.claim,
                "where": claim.where,
                "measured": measured,
                "data": "benchmarks and tests"
                if data_free
                else f"study {study.name} ({study.data_set.name})",
                "verdict": verdict,
                "evidence": claim.evidence,
            }
        )
    return pd.DataFrame(rows)


def real_rows(studies):
    """The primary questions and positive controls of the studies on real images, one row
    each: study, question, estimate (95 % interval for new test data), verdict."""
    rows = []
    for study in studies:
        primary = _reading_rows(study.primary, "primary")
        for row in primary.itertuples():
            verdict = (
                ("better" if row.estimate > 0 else "worse")
                if row.significant
                else "no difference detected"
            )
            rows.append(
                {
                    "study": study.name,
                    "question": f"{row.loss} − {row.comparator}, macro-F1 pooled over "
                    f"{_settings(row.settings)}",
                    "estimate": interval_text(row.estimate, row.ci_low, row.ci_high, 3),
                    "verdict": verdict,
                }
            )
        controls = study.controls
        for row in controls.itertuples() if len(controls) else ():
            rows.append(
                {
                    "study": study.name,
                    "question": f"positive control {row.control} ({row.metric})",
                    "estimate": interval_text(row.mean_diff, row.ci_new_low, row.ci_new_high, 3),
                    "verdict": row.verdict,
                }
            )
    return pd.DataFrame(rows)
