"""Figures of a data set: its class counts and sample tiles (the paper's Figs. 1-3).

Each function takes a frame of :func:`valf.data.lunghist700.read_release` (with a ``split``
column for the counts) and returns a :class:`matplotlib.figure.Figure`; they draw the real
release and the generated one alike.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from valf.data.lunghist700 import CLASS_NAMES, MAGNIFICATIONS
from valf.data.splits import SPLITS

__all__ = ["plot_class_counts", "plot_sample_tiles"]


def plot_class_counts(frame):
    """Images per class, split and magnification (the paper's Figs. 1-2)."""
    import seaborn as sns

    counts = frame.groupby(["resolution", "split", "superclass"]).size().rename("images") \
        .reset_index()
    counts["class"] = counts["superclass"].str.upper()
    figure = Figure(figsize=(8, 3.2), layout="constrained")
    axes = figure.subplots(1, len(MAGNIFICATIONS), sharey=True)
    for ax, magnification in zip(axes, MAGNIFICATIONS):
        part = counts[counts["resolution"] == magnification]
        sns.barplot(part, x="split", y="images", hue="class", order=list(SPLITS),
                    hue_order=list(CLASS_NAMES), ax=ax)
        ax.set(title=magnification, xlabel="")
        for container in ax.containers:
            ax.bar_label(container, fontsize="x-small")
        if ax is not axes[-1]:
            ax.get_legend().remove()
    return figure


def plot_sample_tiles(frame, per_class=2, seed=0):
    """``per_class`` images of each class at each magnification (the paper's Fig. 3).

    Examples
    --------
    >>> import tempfile
    >>> from valf.data import lunghist700, synthetic
    >>> root = synthetic.make_synthetic_release(tempfile.mkdtemp(), scale=0.05,
    ...                                         image_size=(24, 32), progress=False)
    >>> figure = plot_sample_tiles(lunghist700.read_release(root), per_class=1)
    >>> len(figure.axes)
    6
    """
    import cv2

    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"`per_class` must be an integer >= 1, received {per_class!r}.")
    figure = Figure(figsize=(2.0 * per_class * 2, 1.6 * len(CLASS_NAMES)), layout="constrained")
    axes = figure.subplots(len(CLASS_NAMES), per_class * len(MAGNIFICATIONS), squeeze=False)
    rng = np.random.default_rng(seed)
    for row, name in enumerate(CLASS_NAMES):
        for m, magnification in enumerate(MAGNIFICATIONS):
            part = frame[(frame["class_name"] == name) & (frame["resolution"] == magnification)]
            chosen = part.iloc[rng.choice(len(part), size=min(per_class, len(part)),
                                          replace=False)]
            for k in range(per_class):
                ax = axes[row, m * per_class + k]
                ax.set_xticks([])
                ax.set_yticks([])
                if k < len(chosen):
                    image = cv2.imread(str(chosen["path"].iloc[k]))
                    ax.imshow(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                if row == 0:
                    ax.set_title(magnification, fontsize="small")
                if m == 0 and k == 0:
                    ax.set_ylabel(name)
    return figure
