"""From a checked study to its runs: every grid expanded, resolved and named by its run id.

Runs are unique by run id, so a run that several experiments of a study (or several studies)
share is planned once and trained once; each :class:`PlannedRun` lists the experiments it
belongs to. An experiment that selects a parameter from runs that are not complete yet is
*waiting* (:class:`Waiting`), and the sweep runs it in a later stage.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from valf.run import rundir
from valf.run.parameters import ParameterError, resolve_parameters, run_id
from valf.study.spec import StudyError, where

__all__ = ["PlannedRun", "Waiting", "check_runs", "expand"]


@dataclass
class PlannedRun:
    """One run of a study: its parameters, id, directory and experiments."""

    params: dict
    run_id: str
    run_dir: Path
    experiments: list = field(default_factory=list)

    @property
    def status(self):
        """``done``, ``running``, ``ok`` (trained, DONE not yet written), ``failed`` or
        ``pending``."""
        if rundir.is_done(self.run_dir):
            return "done"
        return rundir.read_status(self.run_dir)["status"]


@dataclass
class Waiting:
    """An experiment that needs finished runs it selects a parameter from."""

    experiment: str
    reason: str
    source_study: str
    source_experiment: str


def check_runs(study):
    """Resolve every run of every experiment (selected values stood in for) and check that each
    selection names an experiment that varies the parameter; raise :class:`StudyError`."""
    for name, experiment in study.experiments.items():
        for parameter, rule in experiment["select"].items():
            if rule["study"] in (None, study.name):
                _check_local_source(study, name, parameter, rule)
        _check_no_cycle(study, name, [])
        stand_in = dict.fromkeys(experiment["select"])
        for combination in _combinations(experiment):
            _resolve(study, name, combination, stand_in, check_only=True)


def _check_local_source(study, name, parameter, rule):
    place = where(study.path, "experiments", name, "select", parameter)
    source = study.experiments.get(rule["experiment"])
    if source is None:
        raise StudyError(
            f"{place}: no experiment {rule['experiment']!r} in this study; "
            f"experiments: {sorted(study.experiments)}."
        )
    if parameter not in source["grid"]:
        raise StudyError(
            f"{place}: experiment {rule['experiment']!r} does not vary "
            f"`{parameter}` in its grid, so there is nothing to choose from."
        )


def _check_no_cycle(study, name, path):
    # Selections within the study must form a chain that ends: A may select from B, B from C.
    if name in path:
        chain = " -> ".join([*path, name])
        raise StudyError(
            f"{where(study.path, 'experiments', path[0], 'select')}: experiments "
            f"select from each other in a circle ({chain})."
        )
    for rule in study.experiments[name]["select"].values():
        if rule["study"] in (None, study.name):
            _check_no_cycle(study, rule["experiment"], [*path, name])


def _combinations(experiment):
    grid = experiment["grid"]
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, values))


def _resolve(study, name, combination, selected, check_only=False):
    experiment = study.experiments[name]
    params = {**study.defaults, **experiment["fixed"], **combination}
    params.update({k: v for k, v in selected.items() if v is not None})
    params.update(study.data_values())
    try:
        return resolve_parameters(params)
    except ParameterError as error:
        if check_only and any(f"`{p}`" in str(error) for p in selected):
            return None
        shown = ", ".join(f"{k}={v!r}" for k, v in combination.items())
        raise StudyError(f"{where(study.path, 'experiments', name)} ({shown}): {error}") from None


def expand(study, experiments=None):
    """The runs ``study`` can run now, and the experiments still waiting for sources.

    Parameters
    ----------
    study : valf.study.spec.Study
    experiments : list of str, optional
        Expand only these experiments (default: all).

    Returns
    -------
    runs : list of PlannedRun
        Unique by run id, in file order; ``experiments`` lists each run's experiments.
    waiting : list of Waiting
    """
    from valf.study.selection import NotReady, choose_for, make_selection

    runs, waiting = {}, []
    for name, experiment in study.experiments.items():
        if experiments is not None and name not in experiments:
            continue
        try:
            made = {p: make_selection(study, p, rule) for p, rule in experiment["select"].items()}
        except NotReady as not_ready:
            waiting.append(Waiting(name, str(not_ready), not_ready.study, not_ready.experiment))
            continue
        for combination in _combinations(experiment):
            provisional = _resolve(study, name, combination, {})  # defaults stand in
            selected = {p: choose_for(study, name, p, made[p], provisional) for p in made}
            params = _resolve(study, name, combination, selected)
            identity = run_id(params)
            run = runs.setdefault(
                identity, PlannedRun(params, identity, rundir.run_directory(params))
            )
            if name not in run.experiments:
                run.experiments.append(name)
    return list(runs.values()), waiting
