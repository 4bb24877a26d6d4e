"""Parameters chosen from finished runs: for each group of source runs, the value with the best
mean metric (the paper's learning rate per backbone; alpha by cross-validation).

This module decides, given the source runs' metrics; :func:`valf_study.studies.plan.make_plan`
finds the source runs and hands them here.
"""

from __future__ import annotations

import numpy as np

from valf_study.studies.spec import StudyError, where

__all__ = ["NotReady", "choose", "choose_for", "group_key", "plain_selection"]


class NotReady(Exception):
    """The source runs of a selection are not all complete."""

    def __init__(self, message, study, experiment):
        super().__init__(message)
        self.study, self.experiment = study, experiment


def choose_for(study, experiment, parameter, made, params):
    """The value ``made`` (from :func:`choose`) chose for the group of ``params``."""
    rule = study.experiments[experiment]["select"][parameter]
    group = tuple(group_key(params[b]) for b in rule["by"])
    if group not in made["chosen"]:
        raise StudyError(
            f"{where(study.path, 'experiments', experiment, 'select', parameter)}: the source "
            f"runs have no group {dict(zip(rule['by'], group))}; they have "
            f"{list(made['chosen'])}."
        )
    return made["chosen"][group]


def group_key(value):
    """A parameter value in hashable, comparable form (lists become tuples)."""
    return tuple(value) if isinstance(value, list) else value


def choose(parameter, rule, candidates, rows, source):
    """For each group, the candidate with the best mean metric (ties: the first listed).

    Parameters
    ----------
    parameter : str
    rule : dict
        The selection's ``metric`` and ``by``.
    candidates : list
        The values of the source grid, in its order.
    rows : list of (group, value, score)
        One per source run: its ``by`` values, its value of ``parameter``, its metric.
    source : str
        ``<study>/<experiment>`` of the source runs, for the record.

    Examples
    --------
    >>> rows = [(("A",), 1e-4, 0.8), (("A",), 1e-5, 0.9), (("A",), 1e-4, 0.7)]
    >>> rule = {"metric": "val_accuracy", "by": ["backbone"]}
    >>> choose("learning_rate", rule, [1e-4, 1e-5], rows, "s/e")["chosen"]
    {('A',): 1e-05}
    """
    table, chosen = [], {}
    for group in sorted({row[0] for row in rows}, key=str):
        best = None
        for value in candidates:
            scores = [
                score for g, v, score in rows if g == group and group_key(v) == group_key(value)
            ]
            if not scores:
                continue
            mean = float(np.mean(scores))
            table.append(
                {
                    **dict(zip(rule["by"], group)),
                    parameter: value,
                    f"mean_{rule['metric']}": mean,
                    "runs": len(scores),
                }
            )
            if best is None or mean > best[1]:
                best = (value, mean)
        chosen[group] = best[0]
        for row in table:
            if all(row.get(b) == g for b, g in zip(rule["by"], group)):
                row["chosen"] = group_key(row[parameter]) == group_key(best[0])
    return {
        "parameter": parameter,
        "metric": rule["metric"],
        "by": rule["by"],
        "source": source,
        "table": table,
        "chosen": chosen,
    }


def plain_selection(made):
    """A selection without its tuple-keyed ``chosen`` (the table says it), for JSON files."""
    return {k: v for k, v in made.items() if k != "chosen"}
