"""Parameters chosen from finished runs: for each group of source runs, the value with the best
mean metric (the paper's learning rate per backbone; alpha by cross-validation)."""

from __future__ import annotations

import json

import numpy as np

from valf.run import rundir
from valf.run.parameters import check_parameter
from valf.study.spec import StudyError, find_study_file, load_study, where

__all__ = ["NotReady", "choose_for", "make_selection", "selection_tables", "selections"]


class NotReady(Exception):
    """The source runs of a selection are not all complete."""

    def __init__(self, message, study, experiment):
        super().__init__(message)
        self.study, self.experiment = study, experiment


def selections(study):
    """Every selection that can be made now: experiment -> parameter -> table and choice."""
    made = {}
    for name, experiment in study.experiments.items():
        for parameter, rule in experiment["select"].items():
            try:
                made.setdefault(name, {})[parameter] = make_selection(study, parameter, rule)
            except NotReady:
                continue
    return made


def selection_tables(study):
    """:func:`selections` as plain values (no tuple-keyed ``chosen``), for JSON files."""
    return {
        experiment: {
            parameter: {k: v for k, v in made.items() if k != "chosen"}
            for parameter, made in chosen.items()
        }
        for experiment, chosen in selections(study).items()
    }


def _source_study(study, rule):
    if rule["study"] in (None, study.name):
        return study
    return load_study(find_study_file(rule["study"], study.path.parent), study.runs_root)


def make_selection(study, parameter, rule):
    """Mean metric per (group, value) over the source runs, and the chosen value per group.

    Raises :class:`NotReady` while a source run is not complete.
    """
    source = _source_study(study, rule)
    if rule["experiment"] not in source.experiments:
        raise StudyError(
            f"{source.path}: no experiment {rule['experiment']!r} to select from; "
            f"experiments: {sorted(source.experiments)}."
        )
    # Only the source experiment: expanding all of them would come back here.
    runs, source_waiting = source.expand([rule["experiment"]])
    members = [r for r in runs if rule["experiment"] in r.experiments]
    missing = [r for r in members if not rundir.is_done(r.run_dir)]
    if missing or not members or any(w.experiment == rule["experiment"] for w in source_waiting):
        hint = (
            f"run `valf sweep {source.path}` first"
            if source is not study
            else "the sweep runs it first"
        )
        raise NotReady(
            f"selects from {source.name}/{rule['experiment']}, which has "
            f"{len(members) - len(missing)} of {len(members)} runs done; {hint}.",
            source.name,
            rule["experiment"],
        )
    candidates = [
        check_parameter(parameter, v)
        for v in source.experiments[rule["experiment"]]["grid"][parameter]
    ]
    rows = []
    for run in members:
        metrics = json.loads((run.run_dir / "metrics.json").read_text())
        rows.append(
            (
                tuple(_key(run.params[b]) for b in rule["by"]),
                run.params[parameter],
                metrics[rule["metric"]],
            )
        )
    return choose(parameter, rule, candidates, rows, f"{source.name}/{rule['experiment']}")


def choose_for(study, experiment, parameter, made, params):
    """The value ``made`` chose for the group of ``params``."""
    rule = study.experiments[experiment]["select"][parameter]
    group = tuple(_key(params[b]) for b in rule["by"])
    if group not in made["chosen"]:
        raise StudyError(
            f"{where(study.path, 'experiments', experiment, 'select', parameter)}: the source "
            f"runs have no group {dict(zip(rule['by'], group))}; they have "
            f"{list(made['chosen'])}."
        )
    return made["chosen"][group]


def _key(value):
    # Hashable and comparable form of a parameter value (lists become tuples).
    return tuple(value) if isinstance(value, list) else value


def choose(parameter, rule, candidates, rows, source):
    """For each group, the candidate with the best mean metric (ties: the first listed).

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
            scores = [score for g, v, score in rows if g == group and _key(v) == _key(value)]
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
                row["chosen"] = _key(row[parameter]) == _key(best[0])
    return {
        "parameter": parameter,
        "metric": rule["metric"],
        "by": rule["by"],
        "source": source,
        "table": table,
        "chosen": chosen,
    }
