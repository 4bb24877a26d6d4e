"""Figures of one run, drawn from the files of its run directory.

Each function takes the table it draws (as
:meth:`valf_study.run.rundir.RunDirectory.read` loads it) and returns a
:class:`matplotlib.figure.Figure` (no pyplot state, so they are safe in worker
processes and display in notebooks as they are).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_class_weights", "plot_confusion", "plot_training_curves"]


def plot_training_curves(history, best_epoch=None, title=None):
    """Loss and accuracy per epoch, training and validation; the best epoch marked.

    Examples
    --------
    >>> import pandas as pd
    >>> history = pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.5], "val_loss": [1.1, 0.7],
    ...                         "accuracy": [0.5, 0.7], "val_accuracy": [0.4, 0.6]})
    >>> [ax.get_ylabel() for ax in plot_training_curves(history, best_epoch=2).axes]
    ['loss', 'accuracy']
    """
    figure = Figure(figsize=(9, 3.2), layout="constrained")
    axes = figure.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for column, label in ((metric, "training"), (f"val_{metric}", "validation")):
            if column in history:
                ax.plot(history["epoch"], history[column], marker=".", label=label)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="0.5", linestyle=":", label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    if "loss" in history and (history["loss"] > 0).all():
        axes[0].set_yscale("log")
    axes[1].legend(loc="lower right", fontsize=8)
    if title:
        figure.suptitle(title)
    return figure


def plot_confusion(confusion, title=None, ax=None):
    """Row-normalised confusion matrix as an annotated heatmap (rows: true class).

    Examples
    --------
    >>> import pandas as pd
    >>> c = pd.DataFrame([[0.9, 0.1], [0.2, 0.8]], index=["A", "B"], columns=["A", "B"])
    >>> plot_confusion(c).axes[0].get_xlabel()
    'predicted'
    """
    figure = None
    if ax is None:
        figure = Figure(figsize=(3.8, 3.3), layout="constrained")
        ax = figure.subplots()
    values = np.asarray(confusion, dtype=float)
    ax.imshow(values, vmin=0, vmax=1, cmap="Blues")
    if len(values) <= 10:  # beyond ten classes the numbers would not fit; the colours tell
        for (row, column), value in np.ndenumerate(values):
            ax.text(
                column,
                row,
                f"{value:.2f}",
                ha="center",
                va="center",
                color="white" if value > 0.6 else "black",
            )
    ax.set_xticks(
        range(values.shape[1]),
        [str(c) for c in confusion.columns],
        rotation=90 if len(values) > 4 else 0,
    )
    ax.set_yticks(range(values.shape[0]), [str(r) for r in confusion.index])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return figure if figure is not None else ax.figure


def plot_class_weights(class_weights, warmup_epochs=None, title=None):
    """Per-class weights over epochs (epoch 0: before training) and, where recorded,
    the per-class accuracy the updates were computed from.

    Examples
    --------
    >>> import pandas as pd
    >>> w = pd.DataFrame({"epoch": [0, 1, 2], "weight_A": [1, 1, 1.01], "weight_B": [1, 1, .99],
    ...                   "val_acc_A": [np.nan, .5, .5], "val_acc_B": [np.nan, .9, .9]})
    >>> len(plot_class_weights(w, warmup_epochs=2).axes)
    2
    """
    weight_columns = [c for c in class_weights if c.startswith("weight_")]
    accuracy_columns = [c for c in class_weights if c.startswith(("val_acc_", "train_acc_"))]
    panels = 2 if accuracy_columns else 1
    figure = Figure(figsize=(4.5 * panels, 3.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, panels))
    for column in weight_columns:
        axes[0].plot(
            class_weights["epoch"],
            class_weights[column],
            marker=".",
            label=column.removeprefix("weight_"),
        )
    axes[0].axhline(1.0, color="0.6", linewidth=0.8)
    axes[0].set_ylabel("class weight (mean 1)")
    for column in accuracy_columns:
        name = column.split("_acc_")[1]
        axes[1].plot(class_weights["epoch"], class_weights[column], marker=".", label=name)
        which = "validation" if column.startswith("val_") else "training"
        axes[1].set_ylabel(f"{which} accuracy per class")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if warmup_epochs:
            ax.axvspan(0, warmup_epochs, color="0.9", zorder=0, label="warm-up")
    axes[0].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return figure
