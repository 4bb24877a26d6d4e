"""The book's tables and figures, computed from a study's results tables (:mod:`valf.results`).

Every function takes the tidy tables (or the study's own files) and returns a DataFrame or a
:class:`matplotlib.figure.Figure`; the book's pages only call them and glue their numbers.
Intervals are 95 % Student-t intervals of the mean over seeds (the seeds are the replicates; a
single seed has no interval), and paired comparisons pair runs that share a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from valf.data.lunghist700 import CLASS_NAMES

__all__ = [
    "METRICS", "ablation_table", "compare_with_paper", "mean_ci", "paired_comparison",
    "per_class_recall", "plot_ablation", "plot_paired", "plot_class_counts", "plot_confusions",
    "plot_loss_curves", "plot_sample_tiles", "plot_update_replay", "plot_weight_trajectories",
    "read_paper_table", "summary_table", "table2", "wins",
]

#: The metrics of the paper's Table 2, in its order.
METRICS = ("accuracy", "precision", "recall", "f1")
SETTING = ("backbone", "magnification")
PAPER_TABLE = Path(__file__).resolve().parents[1] / "book" / "data" / "paper_table2.csv"


def mean_ci(values, confidence=0.95):
    """Mean and half-width of the Student-t interval; the half-width is NaN for one value.

    Examples
    --------
    >>> mean, half = mean_ci([0.8, 0.9, 1.0])
    >>> round(mean, 3), round(half, 3)
    (0.9, 0.248)
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan
    sem = values.std(ddof=1) / np.sqrt(len(values))
    return mean, float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * sem)


def _done(runs):
    return runs[runs["status"] == "done"]


def summary_table(runs, keys=("backbone", "loss", "magnification"), metrics=METRICS):
    """Mean and CI half-width of each metric over the runs of each ``keys`` group (its seeds,
    or its folds); ``best`` marks the loss with the highest mean F1 in each (backbone,
    magnification) setting."""
    rows = []
    for group, part in _done(runs).groupby(list(keys), sort=False, dropna=False):
        row = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        row["seeds"] = int(part["seed"].nunique())
        row["runs"] = int(len(part))  # replicates: seeds, or folds of a cross-validation
        for metric in metrics:
            row[f"{metric}_mean"], row[f"{metric}_ci"] = mean_ci(part[metric])
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    setting = [k for k in SETTING if k in keys]
    if "loss" in keys and "f1_mean" in table:
        best = table.groupby(setting, sort=False)["f1_mean"].transform("max") if setting \
            else table["f1_mean"].max()
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
            for m, h in zip(shown[f"{metric}_mean"], shown[f"{metric}_ci"])]
    shown = shown.sort_values(["backbone", "magnification"], kind="stable")
    best = shown["best"].to_numpy()
    shown = shown.set_index(["backbone", "magnification", "loss"])[
        [labels[m] for m in metrics] + ["seeds"]]

    def bold(row):
        return ["font-weight: bold" if best[shown.index.get_loc(row.name)] else ""
                for _ in row]

    return shown.style.apply(bold, axis=1)


def read_paper_table(path=PAPER_TABLE):
    """The paper's Table 2 (typed from the paper; cited, never computed)."""
    return pd.read_csv(path)


def compare_with_paper(summary, paper):
    """Our mean F1 (and CI) beside the paper's, with the difference and whether the paper's
    value lies inside our interval."""
    merged = summary.merge(paper, on=["backbone", "loss", "magnification"], how="inner",
                           suffixes=("", "_paper"))
    table = merged[["backbone", "magnification", "loss", "f1_mean", "f1_ci", "f1"]].rename(
        columns={"f1_mean": "ours", "f1_ci": "ours_ci", "f1": "paper"})
    table["difference"] = table["ours"] - table["paper"]
    table["paper_inside_ci"] = (table["difference"].abs() <= table["ours_ci"])
    return table


def wins(summary, loss="VALF"):
    """In how many (backbone, magnification) settings ``loss`` has the best mean F1."""
    part = summary[summary["loss"] == loss]
    return int(part["best"].sum()), int(len(part))


def paired_comparison(runs, loss="VALF", metric="f1"):
    """``loss`` against the best other loss of each setting (by mean ``metric``), paired by
    seed: mean difference, its CI, the seeds won, and what the interval allows one to say."""
    done = _done(runs)
    rows = []
    for setting, part in done.groupby(list(SETTING), sort=True):
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
        rows.append({**dict(zip(SETTING, setting)), "baseline": baseline,
                     f"{loss}_{metric}": float(ours[seeds].mean()),
                     f"baseline_{metric}": float(theirs[seeds].mean()),
                     "difference": mean, "ci": half, "seeds": len(seeds),
                     "seeds_won": int((difference > 0).sum()), "verdict": verdict})
    return pd.DataFrame(rows)


def plot_paired(paired, loss="VALF"):
    """The paired differences of :func:`paired_comparison` with their intervals, one line per
    setting; right of zero, ``loss`` is ahead."""
    figure = Figure(figsize=(6.0, 0.45 * len(paired) + 1.2), layout="constrained")
    ax = figure.subplots()
    labels = [f"{r.backbone} · {r.magnification} (vs {r.baseline})"
              for r in paired.itertuples()]
    y = np.arange(len(paired))[::-1]
    halves = np.nan_to_num(paired["ci"].to_numpy(float), nan=0.0)
    ax.errorbar(paired["difference"], y, xerr=halves, fmt="o", capsize=3)
    ax.axvline(0, color="0.5", linewidth=0.8)
    ax.set_yticks(y, labels)
    ax.set(xlabel=f"macro-F1 of {loss} minus the best other loss (95 % interval over seeds)")
    return figure


def per_class_recall(runs, keys=("backbone", "magnification", "loss")):
    """Test recall per class (``recall_<class>`` of each run's metrics.json), mean over seeds,
    per ``keys``."""
    columns = [f"recall_{c}" for c in CLASS_NAMES]
    table = _done(runs).groupby(list(keys), sort=False)[columns].mean()
    return table.rename(columns=dict(zip(columns, CLASS_NAMES))).reset_index()


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


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
        f"FL (γ={gamma:g})": value(losses.focal_loss(y_true, y_pred, gamma)),
        f"CEFL (γ={gamma:g})": value(losses.cefl(y_true, y_pred, gamma)),
        f"CEFL2 (γ={gamma:g})": value(losses.cefl2(y_true, y_pred, gamma)),
        f"WCCE (w={weight:g})": value(losses.weighted_categorical_crossentropy(
            y_true, y_pred, weights)),
        f"VALF (w={weight:g}, γ={gamma:g})": value(losses.validation_adaptive_focal_loss(
            y_true, y_pred, weights, gamma)),
    }
    figure = Figure(figsize=(6.5, 3.6), layout="constrained")
    ax = figure.subplots()
    for i, (name, curve) in enumerate(curves.items()):
        ax.plot(p_t, curve, label=name, linestyle="--" if i >= 4 else "-")
    ax.set(xlabel="probability of the true class, $p_t$", ylabel="per-sample loss",
           ylim=(0, 5), xlim=(0, 1))
    ax.legend(frameon=False, fontsize="small")
    return figure


def plot_update_replay(class_weights, run_id, warmup_epochs, rates=(0.01, 0.1, 1.0)):
    """Eq. 7-8 replayed on the validation accuracies one VALF run recorded, for several rates
    r: how far the rule moves the weights when accuracies are read as fractions (r = 0.01) or
    as percentages (r = 1)."""
    from valf.reweighting import update_class_weights

    run = class_weights[class_weights["run_id"] == run_id].sort_values("epoch")
    accuracies = run[[f"val_acc_{c}" for c in CLASS_NAMES]].to_numpy(float)
    epochs = run["epoch"].to_numpy(int)
    figure = Figure(figsize=(3.2 * len(rates), 3.0), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(rates), sharey=False))
    for ax, rate in zip(axes, rates):
        weights, rows = np.ones(len(CLASS_NAMES)), []
        for epoch, accuracy in zip(epochs, accuracies):
            if epoch >= warmup_epochs and np.all(np.isfinite(accuracy)):
                weights = np.asarray(update_class_weights(weights, accuracy, rate))
            rows.append(weights.copy())
        rows = np.array(rows)
        for c, name in enumerate(CLASS_NAMES):
            ax.plot(epochs, rows[:, c], label=name)
        ax.axvline(warmup_epochs, color="0.6", linewidth=0.8, linestyle=":")
        ax.set(title=f"r = {rate:g}", xlabel="epoch")
    axes[0].set_ylabel("class weight")
    axes[-1].legend(frameon=False, fontsize="small")
    return figure


def plot_class_counts(frame):
    """Images per class, split and magnification (the paper's Figs. 1-2)."""
    import seaborn as sns

    counts = frame.groupby(["resolution", "split", "superclass"]).size().rename("images") \
        .reset_index()
    counts["class"] = counts["superclass"].str.upper()
    figure = Figure(figsize=(8, 3.2), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    for ax, magnification in zip(axes, ("20x", "40x")):
        part = counts[counts["resolution"] == magnification]
        sns.barplot(part, x="split", y="images", hue="class", order=["train", "val", "test"],
                    hue_order=list(CLASS_NAMES), ax=ax)
        ax.set(title=magnification, xlabel="")
        for container in ax.containers:
            ax.bar_label(container, fontsize="x-small")
        if ax is not axes[-1]:
            ax.get_legend().remove()
    return figure


def plot_sample_tiles(frame, per_class=2, seed=0):
    """``per_class`` images of each class at each magnification (the paper's Fig. 3), from a
    frame of :func:`valf.data.lunghist700.read_release`."""
    import cv2

    figure = Figure(figsize=(2.0 * per_class * 2, 1.6 * len(CLASS_NAMES)), layout="constrained")
    axes = figure.subplots(len(CLASS_NAMES), per_class * 2)
    rng = np.random.default_rng(seed)
    for row, name in enumerate(CLASS_NAMES):
        for m, magnification in enumerate(("20x", "40x")):
            part = frame[(frame["superclass"].str.upper() == name)
                         & (frame["resolution"] == magnification)]
            chosen = part.iloc[rng.choice(len(part), size=per_class, replace=False)]
            for k, path in enumerate(chosen["path"]):
                ax = axes[row, m * per_class + k]
                image = cv2.imread(str(path))
                ax.imshow(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(magnification, fontsize="small")
                if m == 0 and k == 0:
                    ax.set_ylabel(name)
    return figure


def plot_confusions(predictions, runs, backbone, losses=None):
    """Row-normalised test confusion matrices, one per loss and magnification, pooled over
    seeds (the paper's Fig. 4)."""
    from sklearn.metrics import confusion_matrix

    from valf.plots import plot_confusion

    done = _done(runs)
    done = done[done["backbone"] == backbone]
    losses = list(losses or dict.fromkeys(done["loss"]))
    magnifications = sorted(done["magnification"].unique())
    test = predictions[predictions["split"] == "test"].merge(
        done[["run_id", "loss", "magnification"]], on="run_id")
    figure = Figure(figsize=(2.1 * len(losses), 2.1 * len(magnifications) + 0.4),
                    layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(magnifications), len(losses), squeeze=False))
    for i, magnification in enumerate(magnifications):
        for j, loss in enumerate(losses):
            part = test[(test["loss"] == loss) & (test["magnification"] == magnification)]
            counts = confusion_matrix(part["label"], part["predicted"],
                                      labels=list(range(len(CLASS_NAMES)))).astype(float)
            normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
            ax = axes[i, j]
            plot_confusion(pd.DataFrame(normalised, index=CLASS_NAMES, columns=CLASS_NAMES),
                           title=f"{loss} · {magnification}", ax=ax)
            ax.title.set_fontsize("small")
            ax.tick_params(labelsize="x-small")
            ax.set_xlabel("")
            ax.set_ylabel("")
    figure.supxlabel("predicted", fontsize="small")
    figure.supylabel("true", fontsize="small")
    return figure


def plot_weight_trajectories(class_weights, runs, loss="VALF"):
    """Class weights per epoch of every ``loss`` run, mean over seeds with their range, one
    panel per backbone and magnification."""
    done = _done(runs)
    done = done[done["loss"] == loss]
    table = class_weights.merge(done[["run_id", "backbone", "magnification", "seed"]],
                                on="run_id")
    settings = list(table.groupby(list(SETTING)).groups)
    figure = Figure(figsize=(3.4 * max(1, len(settings)), 3.0), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, max(1, len(settings)), sharey=True))
    for ax, setting in zip(axes, settings):
        part = table[(table["backbone"] == setting[0]) & (table["magnification"] == setting[1])]
        for name in CLASS_NAMES:
            by_epoch = part.groupby("epoch")[f"weight_{name}"]
            mean = by_epoch.mean()
            ax.plot(mean.index, mean.to_numpy(), label=name)
            ax.fill_between(mean.index, by_epoch.min().to_numpy(), by_epoch.max().to_numpy(),
                            alpha=0.2)
        ax.axhline(1.0, color="0.6", linewidth=0.8, linestyle=":")
        ax.set(title=f"{setting[0]} · {setting[1]}", xlabel="epoch")
    axes[0].set_ylabel(f"{loss} class weight")
    axes[-1].legend(frameon=False, fontsize="small")
    return figure


def ablation_table(runs, experiment, knob, metrics=("f1", "balanced_accuracy"), by=()):
    """Mean and CI over seeds of ``metrics`` for each value of ``knob`` in ``experiment``."""
    from valf.results import experiment_runs

    part = _done(experiment_runs(runs, experiment)).copy()
    part[knob] = part[knob].astype(object).where(part[knob].notna(), "none")
    table = summary_table(part, keys=(*by, knob), metrics=metrics)
    table = table.sort_values([*by, knob], key=_sort_key, kind="stable")
    return table.drop(columns="best", errors="ignore").reset_index(drop=True)


def plot_ablation(runs, experiment, knob, metric="f1", hue=None, title=None):
    """Test ``metric`` against the values of ``knob``: each seed's run (dots) and the mean with
    its 95 % t-interval over seeds (the numbers of :func:`ablation_table`)."""
    from valf.results import experiment_runs

    part = _done(experiment_runs(runs, experiment)).copy()
    part[knob] = part[knob].astype(object).where(part[knob].notna(), "none")
    order = [str(v) for v in dict.fromkeys(part.sort_values(knob, key=_sort_key)[knob])]
    position = {value: i for i, value in enumerate(order)}
    groups = list(part.groupby(hue, sort=False)) if hue else [(None, part)]
    offsets = np.linspace(-0.15, 0.15, len(groups)) if len(groups) > 1 else [0.0]
    figure = Figure(figsize=(4.2, 3.0), layout="constrained")
    ax = figure.subplots()
    for (name, group), offset in zip(groups, offsets):
        x, means, halves = [], [], []
        for value, members in group.groupby(group[knob].astype(str), sort=False):
            mean, half = mean_ci(members[metric])
            x.append(position[value] + offset)
            means.append(mean)
            halves.append(0.0 if not np.isfinite(half) else half)
            ax.scatter(np.full(len(members), position[value] + offset), members[metric], s=10,
                       alpha=0.35, color="0.4", zorder=1)
        ax.errorbar(x, means, yerr=halves, fmt="o", capsize=3, zorder=2,
                    label=None if name is None else str(name))
    ax.set_xticks(range(len(order)), order)
    ax.set_ylim(0, 1.02)  # the metrics are fractions; a wide interval runs off the frame
    ax.set(title=title or experiment, xlabel=knob, ylabel=metric if metric.startswith("val_")
           else f"test {metric}")
    if hue:
        ax.legend(frameon=False, fontsize="small", title=hue)
    return figure


def _sort_key(values):
    numeric = pd.to_numeric(values, errors="coerce")
    return numeric.fillna(-np.inf) if numeric.notna().any() else values


def read_environments(runs):
    """Device and versions the runs recorded (the runs table's ``*_version`` columns), one row
    per distinct environment, with how many runs used it and at which commits."""
    keys = ["device"] + [c for c in runs.columns if c.endswith("_version")]
    if "valf_git_commit" not in runs or runs["valf_git_commit"].isna().all():
        return pd.DataFrame()
    table = runs.dropna(subset=["valf_git_commit"])[keys + ["valf_git_commit"]].astype(str)
    return (table.groupby(keys, sort=False)
            .agg(runs=("valf_git_commit", "size"),
                 git_commits=("valf_git_commit", lambda c: ", ".join(sorted(set(c)))))
            .reset_index())


def one_image_f1_steps(predictions, runs, max_runs=12):
    """How much macro-F1 moves when one correctly classified test image is misclassified:
    the change for every such image of up to ``max_runs`` runs (the test split's resolution)."""
    from sklearn.metrics import f1_score

    steps = []
    test = predictions[predictions["split"] == "test"]
    with_predictions = set(test["run_id"])
    run_ids = [r for r in _done(runs)["run_id"] if r in with_predictions][:max_runs]
    for run_id in run_ids:
        part = test[test["run_id"] == run_id]
        y, predicted = part["label"].to_numpy(), part["predicted"].to_numpy()
        base = f1_score(y, predicted, average="macro", zero_division=0)
        for i in np.flatnonzero(y == predicted):
            changed = predicted.copy()
            changed[i] = (changed[i] + 1) % len(CLASS_NAMES)
            steps.append(base - f1_score(y, changed, average="macro", zero_division=0))
    return np.asarray(steps)
