"""The book's figures, computed from a study's results tables.

Every function returns a :class:`matplotlib.figure.Figure` (no pyplot state); the pages display
them. The figures of one run are :mod:`valf_study.run.figures`, those of a data set
:mod:`valf_study.data.figures`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from valf_study.report.colours import method_colour
from valf_study.report.tables import SETTING, class_names, done, knob_order
from valf_study.studies.results import NO_MAGNIFICATION, experiment_runs

#: What makes a setting in a figure's labels (the imbalance ratio where a study varies it).
SETTING_COLUMNS = (*SETTING, "imbalance_ratio")

__all__ = [
    "plot_ablation",
    "plot_comparisons",
    "plot_confusions",
    "plot_critical_difference",
    "plot_loss_curves",
    "plot_methods",
    "plot_p_values",
    "plot_reliability",
    "plot_update_replay",
    "plot_weight_trajectories",
]


def _seed_differences(runs, comparison, metric="f1"):
    """Each seed's ``metric`` of a comparison's VALF reading minus its comparator's, in the
    comparison's setting (folds of a seed averaged)."""
    complete = done(runs)
    for key in SETTING_COLUMNS:
        if key in comparison and key in complete:
            complete = complete[complete[key].astype(str) == str(comparison[key])]
    by_seed = complete.groupby(["method", "seed"])[metric].mean()
    if comparison["loss"] not in by_seed or comparison["comparator"] not in by_seed:
        return np.array([])
    difference = by_seed[comparison["loss"]] - by_seed[comparison["comparator"]]
    return difference.dropna().to_numpy(float)


def plot_comparisons(comparisons, runs=None):
    """The pre-registered comparisons (:mod:`valf_study.studies.comparisons`): each reading of
    VALF minus a comparator, per setting, the mean difference in macro-F1 with its
    Holm-adjusted interval for new test data (thick: the one for this test split), in the
    reading's colour; with ``runs``, each seed's paired difference as a small dot. Right of
    zero, VALF is ahead."""
    figure = Figure(figsize=(6.4, 0.42 * len(comparisons) + 1.3), layout="constrained")
    ax = figure.subplots()
    keys = [k for k in SETTING_COLUMNS if k in comparisons]
    labels = [
        _title(f"{r['loss']} − {r['comparator']}", _setting_title(keys, [r[k] for k in keys]))
        for _, r in comparisons.iterrows()
    ]
    y = np.arange(len(comparisons))[::-1]
    for position, (_, row) in zip(y, comparisons.iterrows()):
        colour = method_colour(row["loss"])
        mean = row["mean_diff"]
        ax.errorbar(
            mean,
            position,
            xerr=[[mean - row["ci_new_low"]], [row["ci_new_high"] - mean]],
            fmt="o",
            capsize=3,
            color=colour,
            zorder=3,
        )
        if np.isfinite(row.get("ci_split_low", np.nan)):
            ax.plot(
                [row["ci_split_low"], row["ci_split_high"]],
                [position, position],
                color=colour,
                linewidth=4,
                alpha=0.5,
                zorder=2,
            )
        if runs is not None:
            seeds = _seed_differences(runs, row)
            ax.scatter(seeds, np.full(len(seeds), position + 0.22), s=9, color="0.35", zorder=1)
    ax.axvline(0, color="0.5", linewidth=0.8)
    ax.set_yticks(y, labels, fontsize="small")
    ax.set(xlabel="difference in macro-F1 (dots: seeds; thick: this split; thin: new test data)")
    ax.xaxis.label.set_fontsize("small")
    return figure


def plot_methods(runs, summary, metric="f1", columns=3):
    """Each method's mean test ``metric`` per setting with its 95 % interval (seeds and new test
    data, from :func:`valf_study.report.tables.summary_table`), every seed's run as a small dot,
    one panel per setting; each method in its colour (:mod:`valf_study.report.colours`)."""
    keys = [k for k in SETTING_COLUMNS if k in summary and summary[k].nunique() >= 1]
    keys = [k for k in keys if k in runs]
    settings = list(summary.groupby(keys, sort=True).groups) if keys else [()]
    methods = list(dict.fromkeys(summary["method"]))
    columns = max(1, min(columns, len(settings)))
    rows = -(-len(settings) // columns)
    figure = Figure(
        figsize=(3.3 * columns, 0.28 * len(methods) * rows + 0.9 * rows + 0.4), layout="constrained"
    )
    axes = np.atleast_1d(figure.subplots(rows, columns, sharex=True, squeeze=False)).ravel()
    complete = done(runs)
    y = np.arange(len(methods))[::-1]
    for ax, setting in zip(axes, settings):
        setting = setting if isinstance(setting, tuple) else (setting,)
        part, members = summary, complete
        for key, value in zip(keys, setting):
            part = part[part[key].astype(str) == str(value)]
            members = members[members[key].astype(str) == str(value)]
        for position, method in zip(y, methods):
            colour = method_colour(method)
            row = part[part["method"] == method]
            if not row.empty:
                mean = float(row[f"{metric}_mean"].iloc[0])
                low, high = (
                    float(row[f"{metric}_low"].iloc[0]),
                    float(row[f"{metric}_high"].iloc[0]),
                )
                ax.errorbar(
                    mean,
                    position,
                    xerr=[[mean - low], [high - mean]],
                    fmt="o",
                    capsize=3,
                    color=colour,
                    zorder=2,
                )
            seeds = members.loc[members["method"] == method].groupby("seed")[metric].mean()
            ax.scatter(seeds, np.full(len(seeds), position + 0.25), s=9, color="0.35", zorder=1)
        ax.set_yticks(y, methods, fontsize="small")
        ax.set_title(_setting_title(keys, setting) or "all runs", fontsize="small")
        ax.grid(axis="x", color="0.9", linewidth=0.6)
    for ax in axes[len(settings) :]:
        ax.set_visible(False)
    label = {"f1": "macro-F1 (eq. 12)", "f1_of_means": "F1 of means"}.get(metric, metric)
    figure.supxlabel(
        f"test {label}: mean, 95 % interval (seeds, new test data); dots: seeds", fontsize="small"
    )
    return figure


def plot_reliability(predictions, runs, bins=10):
    """Reliability diagram per method: the accuracy of the test predictions against their
    confidence (the largest predicted probability), pooled over the method's runs, in
    ``bins`` equal-width bins; the diagonal is perfect calibration, and the bar under each
    point the share of predictions in its bin."""
    complete = done(runs)[["run_id", "method"]]
    test = predictions[predictions["split"] == "test"].merge(complete, on="run_id")
    probability = test[[c for c in test.columns if c.startswith("prob_")]].to_numpy(float)
    test = test.assign(
        confidence=probability.max(axis=1),
        correct=(test["predicted"] == test["label"]).astype(float),
    )
    methods = list(dict.fromkeys(complete["method"]))
    figure = Figure(figsize=(2.3 * len(methods), 2.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(methods), sharey=True))
    edges = np.linspace(0, 1, bins + 1)
    for ax, method in zip(axes, methods):
        part = test[test["method"] == method]
        which = np.clip(np.digitize(part["confidence"], edges[1:-1], right=True), 0, bins - 1)
        grouped = part.groupby(which)
        centres = (edges[:-1] + edges[1:]) / 2
        share = grouped.size().reindex(range(bins), fill_value=0) / max(len(part), 1)
        ax.bar(centres, share, width=1 / bins, color="0.85", zorder=0)
        accuracy = grouped["correct"].mean()
        ax.plot(
            centres[accuracy.index],
            accuracy.to_numpy(),
            "o-",
            markersize=3,
            zorder=2,
            color=method_colour(method),
        )
        ax.plot([0, 1], [0, 1], color="0.5", linewidth=0.8, linestyle=":", zorder=1)
        ax.set(title=method, xlabel="confidence", xlim=(0, 1), ylim=(0, 1.02))
        ax.title.set_fontsize("small")
    axes[0].set_ylabel("accuracy (bars: share of images)")
    return figure


def plot_loss_curves(gamma=2.0, weight=2.0):
    """Per-sample loss against the true-class probability p_t for CE, FL, CEFL, CEFL2 and the
    class-weighted variants (weight ``weight``), computed with :mod:`valf.losses` itself."""
    import keras

    from valf import losses

    p_t = np.linspace(0.005, 1.0, 400)
    y_pred = np.stack([p_t, 1 - p_t], axis=1).astype("float32")
    y_true = np.zeros(len(p_t), dtype="int32")
    weights = [weight, 1.0]

    def value(loss):
        return keras.ops.convert_to_numpy(loss)

    curves = {
        "CE": value(losses.weighted_categorical_crossentropy(y_true, y_pred, [1.0, 1.0])),
        f"FL (γ={gamma:g})": value(losses.focal_loss(y_true, y_pred, gamma=gamma)),
        f"CEFL (γ={gamma:g})": value(losses.cefl(y_true, y_pred, gamma=gamma)),
        f"CEFL2 (γ={gamma:g})": value(losses.cefl2(y_true, y_pred, gamma=gamma)),
        f"WCCE (w={weight:g})": value(
            losses.weighted_categorical_crossentropy(y_true, y_pred, weights)
        ),
        f"VALF (w={weight:g}, γ={gamma:g})": value(
            losses.validation_adaptive_focal_loss(y_true, y_pred, weights, gamma=gamma)
        ),
    }
    figure = Figure(figsize=(6.5, 3.6), layout="constrained")
    ax = figure.subplots()
    methods = ("CCE", "FL", "CEFL", "CEFL2", "WCCE", "VALF (r=0.01)")  # the colours' methods
    for i, ((name, curve), method) in enumerate(zip(curves.items(), methods)):
        ax.plot(
            p_t, curve, label=name, linestyle="--" if i >= 4 else "-", color=method_colour(method)
        )
    ax.set(
        xlabel="probability of the true class, $p_t$",
        ylabel="per-sample loss",
        ylim=(0, 5),
        xlim=(0, 1),
    )
    ax.legend(frameon=False, fontsize="small")
    return figure


def plot_update_replay(class_weights, run_id, warmup_epochs, rates=(0.01, 0.1, 1.0)):
    """Eq. 7-8 replayed on the validation accuracies one VALF run recorded, for several rates
    r: how far the rule moves the weights when accuracies are read as fractions (r = 0.01) or
    as percentages (r = 1)."""
    from valf.reweighting import update_class_weights

    run = class_weights[class_weights["run_id"] == run_id].sort_values("epoch")
    run = run.dropna(axis=1, how="all")  # another data set's classes, in a shared table
    columns = [c for c in run.columns if c.startswith("val_acc_")]
    names = [c.removeprefix("val_acc_") for c in columns]
    accuracies = run[columns].to_numpy(float)
    epochs = run["epoch"].to_numpy(int)
    figure = Figure(figsize=(3.2 * len(rates), 3.0), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(rates), sharey=False))
    for ax, rate in zip(axes, rates):
        weights, rows = np.ones(len(names)), []
        for epoch, accuracy in zip(epochs, accuracies):
            if epoch >= warmup_epochs and np.all(np.isfinite(accuracy)):
                weights = np.asarray(update_class_weights(weights, accuracy, rate))
            rows.append(weights.copy())
        rows = np.array(rows)
        for c, name in enumerate(names):
            ax.plot(epochs, rows[:, c], label=name)
        ax.axvline(warmup_epochs, color="0.6", linewidth=0.8, linestyle=":")
        ax.set(title=f"r = {rate:g}", xlabel="epoch")
    axes[0].set_ylabel("class weight")
    axes[-1].legend(frameon=False, fontsize="small")
    return figure


def plot_confusions(predictions, runs, backbone, methods=None):
    """Row-normalised test confusion matrices, one per method and magnification, pooled over
    seeds (the paper's Fig. 4)."""
    from sklearn.metrics import confusion_matrix

    from valf_study.run.figures import plot_confusion

    names = class_names(runs)
    complete = done(runs)
    complete = complete[complete["backbone"] == backbone]
    losses = list(methods or dict.fromkeys(complete["method"]))
    magnifications = sorted(complete["magnification"].unique())
    test = predictions[predictions["split"] == "test"].merge(
        complete[["run_id", "method", "magnification"]], on="run_id"
    )
    side = 2.1 + 0.12 * max(0, len(names) - 3)  # room for the class names
    figure = Figure(
        figsize=(side * len(losses), side * len(magnifications) + 0.4), layout="constrained"
    )
    axes = np.atleast_2d(figure.subplots(len(magnifications), len(losses), squeeze=False))
    for i, magnification in enumerate(magnifications):
        for j, loss in enumerate(losses):
            part = test[(test["method"] == loss) & (test["magnification"] == magnification)]
            counts = confusion_matrix(
                part["label"], part["predicted"], labels=list(range(len(names)))
            ).astype(float)
            normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
            ax = axes[i, j]
            plot_confusion(
                pd.DataFrame(normalised, index=names, columns=names),
                title=_title(loss, magnification),
                ax=ax,
            )
            ax.title.set_fontsize("small")
            ax.tick_params(labelsize="x-small")
            ax.set_xlabel("")
            ax.set_ylabel("")
    figure.supxlabel("predicted", fontsize="small")
    figure.supylabel("true", fontsize="small")
    return figure


def _title(*parts):
    """Panel title from setting values, leaving out a magnification the data set lacks."""
    return " · ".join(str(p) for p in parts if p != NO_MAGNIFICATION)


def _setting_title(keys, values):
    """Panel title of a setting: its values, the imbalance ratio as ``ρ = 10``."""
    return _title(
        *(
            f"ρ = {float(value):g}" if key == "imbalance_ratio" else value
            for key, value in zip(keys, values)
        )
    )


def plot_weight_trajectories(class_weights, runs, method="VALF (r=0.01)"):
    """Class weights per epoch of every run of ``method``, mean over seeds with their range,
    one panel per backbone and magnification."""
    complete = done(runs)
    complete = complete[complete["method"] == method]
    keys = list(SETTING)
    if "imbalance_ratio" in complete and complete["imbalance_ratio"].nunique() > 1:
        keys.append("imbalance_ratio")  # long-tailed MNIST: one panel per ratio
    table = class_weights.merge(complete[["run_id", *keys, "seed"]], on="run_id")
    settings = list(table.groupby(keys).groups)
    figure = Figure(figsize=(3.4 * max(1, len(settings)), 3.0), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, max(1, len(settings)), sharey=True))
    for ax, setting in zip(axes, settings):
        part = table
        for key, value in zip(keys, setting):
            part = part[part[key] == value]
        for name in class_names(runs):
            by_epoch = part.groupby("epoch")[f"weight_{name}"]
            mean = by_epoch.mean()
            ax.plot(mean.index, mean.to_numpy(), label=name)
            ax.fill_between(
                mean.index, by_epoch.min().to_numpy(), by_epoch.max().to_numpy(), alpha=0.2
            )
        ax.axhline(1.0, color="0.6", linewidth=0.8, linestyle=":")
        ax.set(title=_setting_title(keys, setting), xlabel="epoch")
    axes[0].set_ylabel(f"{method}: class weight")
    # One column of names up to a dozen classes; beyond, the legend would hide the lines.
    axes[-1].legend(frameon=False, fontsize="small", ncols=1 + len(class_names(runs)) // 12)
    return figure


def plot_ablation(runs, table, experiment, knob, metric="f1", hue=None, title=None):
    """Test ``metric`` against the values of ``knob``: each seed's run (dots) and the mean with
    its 95 % interval, from the seeds and the test images (``table``, from
    :func:`valf_study.report.tables.ablation_table`)."""
    part = done(experiment_runs(runs, experiment)).copy()
    part[knob] = part[knob].astype(object).where(part[knob].notna(), "none")
    table = table.copy()
    table[knob] = table[knob].astype(str)
    order = [str(v) for v in dict.fromkeys(part.sort_values(knob, key=knob_order)[knob])]
    position = {value: i for i, value in enumerate(order)}
    groups = list(part.groupby(hue, sort=False)) if hue else [(None, part)]
    offsets = np.linspace(-0.15, 0.15, len(groups)) if len(groups) > 1 else [0.0]
    figure = Figure(figsize=(4.2, 3.0), layout="constrained")
    ax = figure.subplots()
    for g, ((name, group), offset) in enumerate(zip(groups, offsets)):
        rows = table if name is None else table[table[hue] == name]
        rows = rows.set_index(knob)
        x = [position[v] + offset for v in rows.index]
        mean = rows[f"{metric}_mean"]
        error = np.array([mean - rows[f"{metric}_low"], rows[f"{metric}_high"] - mean])
        for i, (value, centre) in enumerate(zip(rows.index, mean)):
            # A method's own colour where the points are methods; otherwise one marker per hue.
            if knob in ("method", "loss"):
                colour, marker = method_colour(value), "o"
            elif hue in ("method", "loss"):
                colour, marker = method_colour(name), "o"
            else:
                colour, marker = ("0.15", "0.5")[g % 2], "os^D"[g % 4]
            ax.errorbar(
                x[i],
                centre,
                yerr=error[:, i : i + 1],
                fmt=marker,
                capsize=3,
                zorder=2,
                color=colour,
                label=None if name is None or i else str(name),
            )
        for value, members in group.groupby(group[knob].astype(str), sort=False):
            ax.scatter(
                np.full(len(members), position[value] + offset),
                members[metric],
                s=10,
                alpha=0.35,
                color="0.4",
                zorder=1,
            )
    ax.set_xticks(range(len(order)), order)
    ax.set_ylim(0, 1.02)  # the metrics are fractions
    ax.set(
        title=title or experiment,
        xlabel=knob,
        ylabel=metric if metric.startswith("val_") else f"test {metric}",
    )
    if hue:
        ax.legend(frameon=False, fontsize="small", title=hue)
    return figure


def plot_critical_difference(ranks, title=None):
    """Critical-difference diagram (Demšar 2006) of one reading of VALF and the paper's other
    losses: each method at its average rank over the settings (1 is best, on the left), the
    Nemenyi critical difference as a bar, and a thick line from VALF to every method whose rank
    does not differ from it by Holm's test against VALF.

    ``ranks`` is the part of :func:`valf_study.report.tables.critical_difference_table` for one
    ``valf_reading``.
    """
    ranks = ranks.sort_values("average_rank", kind="stable").reset_index(drop=True)
    methods = len(ranks)
    control = ranks["valf_reading"].iloc[0]
    figure = Figure(figsize=(6.4, 0.32 * methods + 1.6), layout="constrained")
    ax = figure.subplots()
    ax.set_xlim(0.7, methods + 0.3)  # the best rank on the left
    ax.set_ylim(-methods - 0.5, 1.6)
    ax.set_yticks([])
    for side in ("left", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.xaxis.set_ticks_position("top")
    ax.set_xticks(range(1, methods + 1))
    ax.set_xlabel("average rank over settings (1 = best macro-F1)")
    ax.xaxis.set_label_position("top")
    for i, row in ranks.iterrows():
        y = -(i + 0.6)
        ax.plot([row.average_rank, row.average_rank], [0, y], color="0.4", linewidth=0.8)
        left = row.average_rank <= (methods + 1) / 2
        end = 0.7 if left else methods + 0.3
        ax.plot([row.average_rank, end], [y, y], color="0.4", linewidth=0.8)
        weight = "bold" if row.method == control else "normal"
        ax.text(
            end,
            y,
            f" {row.method} ({row.average_rank:.2f}) ",
            ha="right" if left else "left",
            va="center",
            fontsize="small",
            fontweight=weight,
            color=method_colour(row.method),
        )
    cd = float(ranks["critical_difference"].iloc[0])
    if np.isfinite(cd):
        ax.plot([1, 1 + cd], [1.1, 1.1], color="k", linewidth=2)
        ax.text(1 + cd / 2, 1.25, f"CD = {cd:.2f}", ha="center", fontsize="small")
    base = ranks.loc[ranks["method"] == control, "average_rank"].iloc[0]
    same = ranks[(ranks["method"] != control) & ~ranks["different_from_valf"].astype(bool)]
    if len(same):
        reach = [base, *same["average_rank"]]
        ax.plot([min(reach), max(reach)], [0.45, 0.45], color="C3", linewidth=4, alpha=0.7)
    ax.set_title(
        title
        or f"{control} against the paper's losses ({int(ranks['settings'].iloc[0])} settings)",
        fontsize="medium",
    )
    return figure


def plot_p_values(p_values, alpha=0.05, bins=20, title="A/A control"):
    """Histogram of p-values of comparisons with no true difference (the A/A control): flat,
    at the dashed line, when the machinery is calibrated; the bar left of ``alpha`` holds its
    false-positive rate."""
    p_values = np.asarray(p_values, dtype=float)
    p_values = p_values[np.isfinite(p_values)]
    figure = Figure(figsize=(4.2, 3.0), layout="constrained")
    ax = figure.subplots()
    ax.hist(p_values, bins=bins, range=(0, 1), color="0.55")
    ax.axhline(len(p_values) / bins, color="0.3", linestyle="--", linewidth=0.8)
    ax.axvline(alpha, color="C3", linewidth=0.8)
    rate = float(np.mean(p_values < alpha)) if len(p_values) else np.nan
    ax.set(
        xlabel="p-value",
        ylabel="comparisons",
        xlim=(0, 1),
        title=f"{title}: {rate:.1%} below {alpha:g} ({len(p_values)} comparisons)",
    )
    ax.title.set_fontsize("small")
    return figure
