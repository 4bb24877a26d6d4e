"""The split vocabulary and the check every split builder runs: no group in two splits.

A *group* is what must never be divided between training and testing: a LungHist700 patient
(at one magnification), a slide or a patient of a user's own data set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from valf_study.data.errors import DataError, listing

__all__ = [
    "SPLITS",
    "check_fractions",
    "check_no_group_leakage",
    "counted_split",
    "group_kfold_split",
    "grouped_split",
    "training_folds_split",
]

#: The splits of every data set, in order.
SPLITS = ("train", "val", "test")


def check_no_group_leakage(frame, group="group", within=(), what="groups", source=None, label=None):
    """Raise :class:`DataError` naming every group found in more than one split.

    Parameters
    ----------
    frame : pandas.DataFrame
        With a ``split`` column and the ``group`` column.
    group : str
        Column of the group.
    within : sequence of str
        Columns that make separate worlds (LungHist700's magnification): a group may sit in
        different splits in different worlds.
    what : str
        What a group is, for the message ("patients").
    source : str, optional
        Where the split came from, for the message.
    label : str, optional
        How one group is named in the message (default: the column's name).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"group": ["a", "a", "b"], "split": ["train", "test", "val"]})
    >>> check_no_group_leakage(frame, what="slides")
    Traceback (most recent call last):
    ...
    valf_study.data.errors.DataError: Slides appear in more than one split:
      group a: test, train
    """
    keys = [*within, group]
    counts = frame.groupby(keys)["split"].nunique()
    suspects = counts.index[counts > 1]
    if len(suspects):
        part = frame.set_index(keys).loc[suspects]
        leaked = part.groupby(level=keys if within else group)["split"].agg(
            lambda splits: sorted(set(splits))
        )
        details = [
            f"{label or group} {_place(key, within)}: {', '.join(splits)}"
            for key, splits in leaked.items()
        ]
        where = f" ({source})" if source else ""
        raise DataError(
            f"{what.capitalize()} appear in more than one split{where}:{listing(details)}"
        )


def _place(key, within):
    # (magnification, patient) reads "7 at 20x"; a bare group reads as itself.
    if not within:
        return str(key)
    *worlds, value = key
    return f"{value} at {', '.join(str(w) for w in worlds)}"


def check_fractions(fractions):
    """Three positive shares (train, val, test) summing to 1, as a float array.

    Examples
    --------
    >>> check_fractions([0.7, 0.15, 0.15]).tolist()
    [0.7, 0.15, 0.15]
    >>> check_fractions([0.5, 0.5])
    Traceback (most recent call last):
    ...
    ValueError: `fractions` must be three positive shares (train, val, test) summing to 1, \
received [0.5, 0.5].
    """
    array = np.asarray(fractions, dtype=float)
    if array.shape != (3,) or np.any(array <= 0) or not np.isclose(array.sum(), 1):
        raise ValueError(
            "`fractions` must be three positive shares (train, val, test) summing to 1, "
            f"received {list(np.ravel(array).tolist())}."
        )
    return array


def grouped_split(frame, fractions=(0.7, 0.15, 0.15), seed=0, *, group, label=None, within=()):
    """A seeded split of ``frame`` into train/val/test that never divides a group.

    Within each world (the ``within`` columns: LungHist700's magnification) and, with
    ``label``, within each class (a group counts for the class most of its images have), the
    groups are shuffled and assigned greedily, in that order, to the split whose share of
    images is furthest below its target fraction. With ``label`` the split is stratified: each
    class is divided in the given fractions as nearly as whole groups allow. A frame where
    every image is its own group is split image by image.

    Parameters
    ----------
    frame : pandas.DataFrame
    fractions : three floats
        Shares of train, val and test.
    seed : int
    group : str
        Column of the groups (a patient, a slide; the image itself when nothing groups them).
    label : str, optional
        Column of the class, to stratify by.
    within : sequence of str
        Columns splitting the frame into worlds split separately.

    Returns
    -------
    pandas.DataFrame
        A copy with a ``split`` column.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"image": range(20), "label": [0] * 10 + [1] * 10})
    >>> split = grouped_split(frame, (0.6, 0.2, 0.2), seed=0, group="image", label="label")
    >>> split.groupby(["label", "split"]).size().tolist()  # test, train, val of each class
    [2, 6, 2, 2, 6, 2]
    """
    fractions = check_fractions(fractions)
    rng = np.random.default_rng(seed)
    keys = [*within, group]
    table = frame.groupby(keys, sort=True).size().rename("size").reset_index()
    if label is None:
        table["stratum"] = 0
    else:  # a group counts for its most common class (the smallest label on a tie)
        counts = frame.groupby([*keys, label], sort=True).size().rename("n").reset_index()
        counts = counts.sort_values("n", ascending=False, kind="stable").drop_duplicates(keys)
        table = table.merge(counts[[*keys, label]].rename(columns={label: "stratum"}), on=keys)
    sizes, choice = table["size"].to_numpy(), np.empty(len(table), dtype=int)
    for members in table.groupby([*within, "stratum"], sort=True).indices.values():
        filled, targets = np.zeros(3), fractions * sizes[members].sum()
        for row in members[rng.permutation(len(members))]:
            choice[row] = np.argmax(targets - filled)
            filled[choice[row]] += sizes[row]
    table["split"] = np.asarray(SPLITS)[choice]
    result = frame.drop(columns=["split"], errors="ignore").merge(
        table[[*keys, "split"]], on=keys, how="left", validate="many_to_one"
    )
    result.index = frame.index
    check_no_group_leakage(result, group, within)
    return result


def group_kfold_split(frame, n_folds=5, fold=0, seed=0, *, group, label, within=()):
    """Fold ``fold`` of a k-fold cross-validation over every image, grouped and stratified.

    The images of each world are put in ``n_folds`` folds by group, stratified by ``label``
    (scikit-learn's ``StratifiedGroupKFold``, shuffled with ``seed``). Fold ``fold`` is the
    test split, the next fold (cyclically) the validation split, the others training:
    60/20/20 with five folds. Over the folds every image is tested once.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"image": range(20), "label": [0, 1] * 10})
    >>> folds = [group_kfold_split(frame, 5, k, group="image", label="label") for k in range(5)]
    >>> sorted(i for f in folds for i in f[f.split == "test"]["image"]) == list(range(20))
    True
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if not 0 <= fold < n_folds:
        raise ValueError(f"`fold` must be in [0, {n_folds}), received {fold}.")
    parts = []
    for _, part in _worlds(frame, within):
        part = part.copy()
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        held_out = [test for _, test in splitter.split(part, part[label], groups=part[group])]
        part["split"] = "train"
        part.iloc[held_out[(fold + 1) % n_folds], part.columns.get_loc("split")] = "val"
        part.iloc[held_out[fold], part.columns.get_loc("split")] = "test"
        parts.append(part)
    result = pd.concat(parts)
    check_no_group_leakage(result, group, within)
    return result


def training_folds_split(frame, n_folds=5, fold=0, seed=0, *, group, label, within=()):
    """Fold ``fold`` of a grouped, stratified k-fold split of the *training* split.

    The training images (``split == "train"``) are divided by group into ``n_folds`` folds
    (``StratifiedGroupKFold``, shuffled with ``seed``, per world); fold ``fold`` becomes
    ``"val"``, the rest stays ``"train"``. The validation images are dropped and the test split
    is kept untouched, so a parameter chosen on the folds never sees a test image.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"image": range(12), "label": [0, 1] * 6,
    ...                       "split": ["train"] * 10 + ["test"] * 2})
    >>> split = training_folds_split(frame, 5, 0, group="image", label="label")
    >>> split["split"].value_counts().to_dict()
    {'train': 8, 'val': 2, 'test': 2}
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if not 0 <= fold < n_folds:
        raise ValueError(f"`fold` must be in [0, {n_folds}), received {fold}.")
    parts = []
    for _, part in _worlds(frame, within):
        train = part[part["split"] == "train"].copy()
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        folds = list(splitter.split(train, train[label], groups=train[group]))
        train.loc[train.index[folds[fold][1]], "split"] = "val"
        parts += [train, part[part["split"] == "test"]]
    result = pd.concat(parts)
    check_no_group_leakage(result, group, within)
    return result


def _worlds(frame, within):
    return frame.groupby(list(within), sort=True) if within else [((), frame)]


def counted_split(frame, counts, seed=0, *, group, label):
    """A seeded split with a fixed number of images per class in the held-out splits: each
    class gives ``counts[split]`` images to each split named there (say ``{"test": 100, "val":
    25}``: balanced and of known size whatever the class's share), the rest to ``train``.

    Groups are never divided: within each class the groups are shuffled and assigned whole, in
    that order, to the first held-out split that still needs images (a group that would
    overshoot goes on to the next split, or to training), so a split may hold a little less
    than asked when the groups do not fit exactly. A class without enough images for the
    held-out splits is an error.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"image": range(30), "label": [0] * 20 + [1] * 10})
    >>> split = counted_split(frame, {"test": 4, "val": 2}, group="image", label="label")
    >>> split.groupby(["label", "split"]).size().tolist()  # test, train, val of each class
    [4, 14, 2, 4, 4, 2]
    """
    wanted = {split: int(n) for split, n in counts.items()}
    unknown = sorted(set(wanted) - {"val", "test"})
    if unknown or any(n < 0 for n in wanted.values()):
        raise ValueError(f"`counts` must give images per class for 'val' and/or 'test': {counts}")
    rng = np.random.default_rng(seed)
    table = frame.groupby(group, sort=True)[label].agg(["first", "size"])
    assignment = {}
    for value, members in table.groupby("first", sort=True):
        if members["size"].sum() <= sum(wanted.values()):
            raise DataError(
                f"Class {value!r} has {members['size'].sum()} images, not more than the "
                f"{sum(wanted.values())} the held-out splits take ({counts})."
            )
        filled = dict.fromkeys(wanted, 0)
        for name in members.index[rng.permutation(len(members))]:
            size = members.loc[name, "size"]
            target = next((s for s in wanted if filled[s] + size <= wanted[s]), "train")
            if target != "train":
                filled[target] += size
            assignment[name] = target
    result = frame.copy()
    result["split"] = result[group].map(assignment)
    check_no_group_leakage(result, group)
    return result
