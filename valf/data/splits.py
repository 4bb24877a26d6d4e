"""The split vocabulary and the check every split builder runs: no group in two splits.

A *group* is what must never be divided between training and testing: a LungHist700 patient
(at one magnification), a slide or a patient of a user's own data set.
"""

from __future__ import annotations

from valf.data.errors import DataError, listing

__all__ = ["SPLITS", "check_no_group_leakage"]

#: The splits of every data set, in order.
SPLITS = ("train", "val", "test")


def check_no_group_leakage(frame, group="group", within=(), what="groups", source=None,
                           label=None):
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
    valf.data.errors.DataError: Slides appear in more than one split:
      group a: test, train
    """
    keys = [*within, group]
    spread = frame.groupby(keys)["split"].agg(lambda splits: sorted(set(splits)))
    leaked = spread[spread.map(len) > 1]
    if len(leaked):
        details = [f"{label or group} {_place(key, within)}: {', '.join(splits)}"
                   for key, splits in leaked.items()]
        where = f" ({source})" if source else ""
        raise DataError(f"{what.capitalize()} appear in more than one split{where}:"
                        f"{listing(details)}")


def _place(key, within):
    # (magnification, patient) reads "7 at 20x"; a bare group reads as itself.
    if not within:
        return str(key)
    *worlds, value = key
    return f"{value} at {', '.join(str(w) for w in worlds)}"
