"""Which rows a generated release holds: the release's own metadata, subsampled or recounted."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pandas as pd

from valf_study.data.synthetic.settings import (
    COLUMNS,
    check_class_counts,
    check_seed,
    check_unit_interval,
)

__all__ = ["image_dir", "synthetic_metadata"]


def _release_metadata():
    """The packaged ``data.csv`` of the real release, as read by pandas."""
    resource = importlib.resources.files("valf_study.data").joinpath("resources/data.csv")
    with resource.open("rb") as handle:
        return pd.read_csv(handle)


def image_dir(superclass, subclass):
    """Folder name of the release: ``aca_bd`` ... or ``nor`` (whose subclass is empty)."""
    return (
        superclass if not isinstance(subclass, str) or not subclass else f"{superclass}_{subclass}"
    )


def synthetic_metadata(seed=0, scale=1.0, class_counts=None):
    """The rows :func:`make_synthetic_release` writes to ``data.csv``, as a DataFrame.

    Parameters
    ----------
    seed : int
        Seed of the row subset (``scale < 1``) and of the extra rows (``class_counts``).
    scale : float
        In (0, 1]: keeps ``max(1, round(scale * n))`` of the n rows of every
        (patient, magnification, subclass) group of the release, so every patient and every
        group stays. Subsets are nested: a smaller scale keeps a subset of a larger one.
    class_counts : dict, optional
        ``{"aca": n, "nor": n, "scc": n}``: exactly n images of that class at *each*
        magnification, in place of the release's counts (a missing class keeps them). Below
        the release count, rows are dropped spreading the loss over patients and subclasses;
        above it, new rows with fresh image ids cycle over the class's existing
        (patient, subclass) groups. Cannot be combined with ``scale < 1``.

    Returns
    -------
    pandas.DataFrame
        Columns ``superclass, subclass, resolution, image_id, patient_id`` with the dtypes of
        the packaged ``data.csv``, rows in the release's order (new rows after the release's).

    Examples
    --------
    >>> len(synthetic_metadata()), synthetic_metadata().patient_id.nunique()
    (691, 45)
    >>> small = synthetic_metadata(scale=0.1)
    >>> len(small), small.patient_id.nunique()
    (116, 45)
    >>> counts = synthetic_metadata(class_counts={"nor": 10, "scc": 200})
    >>> counts.groupby(["superclass", "resolution"]).size().tolist()
    [146, 134, 10, 10, 200, 200]
    """
    seed = check_seed(seed)
    scale = check_unit_interval(scale, "scale", open_low=True)
    counts = check_class_counts(class_counts)
    if counts is not None and scale < 1.0:
        raise ValueError(
            f"`scale` must be 1.0 when `class_counts` is given (the counts fix the size); "
            f"received scale={scale!r}."
        )
    release = _release_metadata()
    rng = np.random.default_rng([seed, 0x5CA1E])
    # One random key per row; keeping the lowest keys of each group makes subsets nested.
    key = pd.Series(rng.random(len(release)), index=release.index)
    group_columns = ["patient_id", "resolution", "subclass"]
    rank = key.groupby([release[c] for c in group_columns], dropna=False).rank(method="first")
    if counts is None:
        group_size = release.groupby(group_columns, dropna=False)["image_id"].transform("size")
        keep = rank <= np.maximum(1, np.round(scale * group_size))
        return release[keep].reset_index(drop=True)

    kept, extra = [], []
    for (superclass, resolution), rows in release.groupby(["superclass", "resolution"], sort=False):
        target = counts.get(superclass, len(rows))
        # Lowest rank first (one image per group before any group's second), ties by key.
        order = rows.assign(_rank=rank[rows.index], _key=key[rows.index])
        order = order.sort_values(["_rank", "_key"])
        kept.append(order.index[:target])
        missing = target - len(rows)
        if missing > 0:
            groups = order.drop_duplicates(["patient_id", "subclass"])
            next_id = {}
            for i in range(missing):
                donor = groups.iloc[i % len(groups)]
                folder = image_dir(donor.superclass, donor.subclass)
                if folder not in next_id:
                    same_folder = (release.superclass == donor.superclass) & (
                        release.resolution == resolution
                    )
                    if isinstance(donor.subclass, str):
                        same_folder &= release.subclass == donor.subclass
                    next_id[folder] = int(release.image_id[same_folder].max()) + 1
                extra.append(
                    {
                        "superclass": donor.superclass,
                        "subclass": donor.subclass,
                        "resolution": resolution,
                        "image_id": next_id[folder],
                        "patient_id": int(donor.patient_id),
                    }
                )
                next_id[folder] += 1
    index = np.sort(np.concatenate(kept))
    frame = release.loc[index]
    if extra:
        frame = pd.concat([frame, pd.DataFrame(extra, columns=COLUMNS)], ignore_index=True)
        frame = frame.astype(release.dtypes.to_dict())
    return frame.reset_index(drop=True)
