"""Figures of a data set: its class counts and sample images (the paper's Figs. 1-3).

Each function takes a frame of a reader (:func:`valf_study.data.lunghist700.read_release`,
:func:`valf_study.data.folder.read_image_folder`) with ``class_name`` and ``label``, a ``split``
column for the counts, and ``resolution`` where the data set has magnifications; they draw the
real release, the generated one and a folder of one's own images alike.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from valf_study.data.splits import SPLITS

__all__ = ["plot_class_counts", "plot_sample_tiles"]


def _class_order(frame):
    return list(frame.drop_duplicates("label").sort_values("label")["class_name"])


def _worlds(frame):
    """The magnifications of a frame, or one world (None) for a data set without them."""
    return sorted(frame["resolution"].unique()) if "resolution" in frame else [None]


def _in_world(frame, world):
    return frame if world is None else frame[frame["resolution"] == world]


def plot_class_counts(frame):
    """Images per class and split, one panel per magnification (the paper's Figs. 1-2).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"class_name": ["a", "b", "b"], "label": [0, 1, 1],
    ...                       "split": ["train", "train", "test"]})
    >>> [ax.get_title() for ax in plot_class_counts(frame).axes]
    ['']
    """
    import seaborn as sns

    names, worlds = _class_order(frame), _worlds(frame)
    panel = min(16 / len(worlds), 1.5 + 0.55 * len(names))  # wider with more classes
    figure = Figure(figsize=(max(4.0, panel * len(worlds)), 3.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(worlds), sharey=True, squeeze=False)[0])
    for ax, world in zip(axes, worlds):
        part = _in_world(frame, world).groupby(["class_name", "split"]).size()
        part = part.rename("images").reset_index()
        sns.barplot(
            part,
            x="class_name",
            y="images",
            hue="split",
            order=names,
            hue_order=[s for s in SPLITS if s in set(part["split"])],
            ax=ax,
        )
        ax.set(title=world or "", xlabel="")
        if len(names) > 6:
            ax.tick_params(axis="x", labelrotation=90)
        if len(names) <= 12:
            for container in ax.containers:
                ax.bar_label(container, fontsize="x-small")
        if ax is not axes[-1]:
            ax.get_legend().remove()
    return figure


def plot_sample_tiles(frame, per_class=2, seed=0, max_classes=12):
    """``per_class`` images of each class (the first ``max_classes``) at each magnification
    (the paper's Fig. 3), as the study decodes them (RGB, whatever their mode).

    Examples
    --------
    >>> import tempfile
    >>> from valf_study.data import lunghist700, synthetic
    >>> root = synthetic.make_synthetic_release(tempfile.mkdtemp(), scale=0.05,
    ...                                         image_size=(24, 32), progress=False)
    >>> figure = plot_sample_tiles(lunghist700.read_release(root), per_class=1)
    >>> len(figure.axes)
    6
    """
    from valf_study.data.decode import decode_image

    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"`per_class` must be an integer >= 1, received {per_class!r}.")
    names, worlds = _class_order(frame)[:max_classes], _worlds(frame)
    figure = Figure(figsize=(2.0 * per_class * len(worlds), 1.6 * len(names)), layout="constrained")
    axes = figure.subplots(len(names), per_class * len(worlds), squeeze=False)
    rng = np.random.default_rng(seed)
    for row, name in enumerate(names):
        for m, world in enumerate(worlds):
            part = _in_world(frame, world)
            part = part[part["class_name"] == name]
            chosen = part.iloc[rng.choice(len(part), size=min(per_class, len(part)), replace=False)]
            for k in range(per_class):
                ax = axes[row, m * per_class + k]
                ax.set_xticks([])
                ax.set_yticks([])
                if k < len(chosen):
                    ax.imshow(decode_image(chosen["path"].iloc[k]))
                if row == 0 and world is not None:
                    ax.set_title(world, fontsize="small")
                if m == 0 and k == 0:
                    ax.set_ylabel(name)
    return figure
