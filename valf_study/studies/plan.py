"""From a checked study to its runs: every grid expanded, resolved and named by its run id.

:func:`make_plan` expands a study once: every experiment's runs, the selections it can make now
(each from the source runs it reads, loaded once), and the experiments still waiting for
sources. Runs are unique by run id, so a run that several experiments of a study (or several
studies) share is planned once and trained once; each :class:`PlannedRun` lists the
experiments it belongs to. An experiment that selects a parameter from runs that are not
complete yet is *waiting* (:class:`Waiting`), and the sweep plans it again in a later stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from valf_study.run.parameters import check_parameter, run_id
from valf_study.run.rundir import RunDirectory
from valf_study.studies.selection import NotReady, choose, choose_for, group_key, plain_selection
from valf_study.studies.spec import (
    StudyError,
    combinations,
    find_study_file,
    load_study,
    resolve_run,
    varied,
)

__all__ = ["Plan", "PlannedRun", "Waiting", "make_plan"]


@dataclass
class PlannedRun:
    """One run of a study: its parameters, id, directory and experiments."""

    params: dict
    run_id: str
    run_dir: RunDirectory
    experiments: list = field(default_factory=list)

    @property
    def status(self):
        """``done``, ``running``, ``ok`` (trained, DONE not yet written), ``failed`` or
        ``pending``."""
        if self.run_dir.is_done():
            return "done"
        return self.run_dir.status()["status"]


@dataclass
class Waiting:
    """An experiment that needs finished runs it selects a parameter from."""

    experiment: str
    reason: str
    source_study: str
    source_experiment: str


@dataclass
class Plan:
    """A study expanded once: its runs, the experiments waiting, the selections made."""

    study: object
    runs: list
    waiting: list
    selections: dict  # experiment -> parameter -> what selection.choose returned

    def selection_tables(self):
        """The selections as plain values, for JSON files."""
        return {
            experiment: {parameter: plain_selection(made) for parameter, made in chosen.items()}
            for experiment, chosen in self.selections.items()
        }

    def experiment_runs(self, experiment):
        return [run for run in self.runs if experiment in run.experiments]


def make_plan(study, experiments=None, _sources=None):
    """The runs ``study`` can run now, the experiments waiting, and the selections made.

    Parameters
    ----------
    study : valf_study.studies.spec.Study
    experiments : list of str, optional
        Expand only these experiments (default: all).

    Returns
    -------
    Plan
        ``runs`` unique by run id, in file order.
    """
    sources = {} if _sources is None else _sources
    runs, waiting, selections = {}, [], {}
    for name, experiment in study.experiments.items():
        if experiments is not None and name not in experiments:
            continue
        try:
            made = {
                p: _make_selection(study, p, rule, sources)
                for p, rule in experiment["select"].items()
            }
        except NotReady as not_ready:
            waiting.append(Waiting(name, str(not_ready), not_ready.study, not_ready.experiment))
            continue
        if made:
            selections[name] = made
        for combination in combinations(experiment):
            provisional = resolve_run(study, name, combination, {})  # defaults stand in
            selected = {p: choose_for(study, name, p, made[p], provisional) for p in made}
            params = resolve_run(study, name, combination, selected)
            identity = run_id(params)
            run = runs.setdefault(identity, PlannedRun(params, identity, RunDirectory.of(params)))
            if name not in run.experiments:
                run.experiments.append(name)
    return Plan(study, list(runs.values()), waiting, selections)


def _source_plan(study, rule, sources):
    """The plan of the source experiment of a selection, made once per sweep stage."""
    key = (rule["study"] or study.name, rule["experiment"])
    if key not in sources:
        if rule["study"] in (None, study.name):
            source = study
        else:
            source = load_study(find_study_file(rule["study"], study.path.parent), study.runs_root)
        if rule["experiment"] not in source.experiments:
            raise StudyError(
                f"{source.path}: no experiment {rule['experiment']!r} to select from; "
                f"experiments: {sorted(source.experiments)}."
            )
        # Only the source experiment: expanding all of them would come back here.
        sources[key] = make_plan(source, [rule["experiment"]], sources)
    return sources[key]


def _make_selection(study, parameter, rule, sources):
    """Mean metric per (group, value) over the source runs, and the chosen value per group.

    Raises :class:`NotReady` while a source run is not complete.
    """
    plan = _source_plan(study, rule, sources)
    source = plan.study
    members = plan.experiment_runs(rule["experiment"])
    missing = [r for r in members if not r.run_dir.is_done()]
    if missing or not members or any(w.experiment == rule["experiment"] for w in plan.waiting):
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
        for v in varied(source.experiments[rule["experiment"]])[parameter]
    ]
    rows = [
        (
            tuple(group_key(run.params[b]) for b in rule["by"]),
            run.params[parameter],
            run.run_dir.read_metrics()[rule["metric"]],
        )
        for run in members
    ]
    return choose(parameter, rule, candidates, rows, f"{source.name}/{rule['experiment']}")
