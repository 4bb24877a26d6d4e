"""Study files: a YAML description of a set of runs, checked whole before any run starts.

A study file names its data set, the parameters every run shares, and one or
more *experiments*, each a grid of run parameters::

    name: quick                        # runs go to <runs_root>/quick/
    title: Quick study on the embedded data set
    data:                              # where the images come from
      dataset: synthetic               # or lunghist700
      root: data/synthetic
      synthetic: {difficulty: 1.0}     # generator settings (synthetic only)
    defaults:                          # run parameters of every run
      backbone: SmallCNN
      epochs: 20
    experiments:
      main:
        grid:                          # every combination is one run
          loss: [CCE, WCCE, FL, VALF]
          magnification: [20x, 40x]
          seed: [0, 1, 2]
      gamma:
        fixed: {loss: VALF, magnification: 20x}
        grid: {gamma: [0, 1, 2, 5]}

A parameter may instead be *selected* from finished runs: for each group of
runs sharing the ``by`` parameters, the value of ``parameter`` whose source
runs have the best mean ``metric`` (the paper's learning rate per backbone; the
red-blood-cell study's alpha by cross-validation)::

      main:
        select:
          learning_rate: {study: lr-selection, experiment: main,
                          metric: val_accuracy, by: [backbone]}

The source experiment may belong to the same study (the sweep runs it first)
or to another (which must be complete). Ties go to the value listed first in
the source grid.

A study may take the ``data`` and ``defaults`` of another with ``extends:
<name>`` (its own defaults win; experiments are never inherited), so the
ablations run in the setting of the study they ablate.

A run's identity is its resolved parameters (:func:`valf.parameters.run_id`),
so a run shared by two experiments is trained once.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from valf import rundir
from valf.parameters import (PARAMETERS, ParameterError, check_parameter, resolve_parameters,
                             run_id)

__all__ = ["PlannedRun", "Study", "StudyError", "find_study_file", "load_study"]

_TOP_KEYS = {"name", "title", "description", "extends", "data", "defaults", "experiments",
             "book"}
_EXPERIMENT_KEYS = {"description", "fixed", "grid", "select"}
_DATA_KEYS = {"dataset", "root", "synthetic"}
_SELECT_KEYS = {"study", "experiment", "metric", "by"}
# Set by the data block or the sweep, never by a study's parameters.
_RESERVED = {"study", "runs_root", "dataset", "data_root", "synthetic"}
#: Metrics a selection can maximise (recorded in metrics.json).
SELECTION_METRICS = ("val_accuracy", "val_f1", "val_balanced_accuracy", "accuracy", "f1")


class StudyError(ValueError):
    """A study file is malformed, or a selection cannot be made yet."""


@dataclass
class PlannedRun:
    """One run of a study: its parameters, id, directory and experiments."""

    params: dict
    run_id: str
    run_dir: Path
    experiments: list = field(default_factory=list)

    @property
    def status(self):
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


def find_study_file(name_or_path, studies_dir="studies"):
    """A study file from a path, or from a name looked up as ``studies/<name>.yaml``."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise StudyError(f"No study file {path}.")
        return path
    candidate = Path(studies_dir) / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in Path(studies_dir).glob("*.yaml"))
    raise StudyError(f"No study {name_or_path!r}: {candidate} does not exist. Known studies: "
                     f"{known}.")


def load_study(path, runs_root="runs"):
    """Read and check a study file; see :class:`Study`.

    Every run the file describes is resolved here (selected parameters with a
    stand-in value), so a typo anywhere is reported before any run starts.
    """
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError(f"No study file {path}.") from None
    except yaml.YAMLError as error:
        raise StudyError(f"{path} is not valid YAML: {error}") from None
    spec = _extended(path, spec, ())
    study = Study(path, spec, runs_root)
    study.check()
    return study


def _extended(path, spec, seen):
    """``spec`` with the data and defaults of the study it extends (recursively)."""
    if not isinstance(spec, dict) or spec.get("extends") is None:
        return spec
    name, chain = str(spec["extends"]), (*seen, str(spec.get("name")))
    if name in chain:
        raise StudyError(f"{_where(path, 'extends')}: studies extend each other in a circle "
                         f"({' -> '.join([*chain, name])}).")
    base_path = find_study_file(name, path.parent)
    try:
        base = yaml.safe_load(base_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise StudyError(f"{base_path} is not valid YAML: {error}") from None
    base = _extended(base_path, base, chain)
    if not isinstance(base, dict):
        raise StudyError(f"{base_path} (extended by {path}) must hold a mapping.")
    merged = {key: value for key, value in spec.items() if key != "extends"}
    merged.setdefault("data", base.get("data"))
    merged["defaults"] = {**(base.get("defaults") or {}), **(spec.get("defaults") or {})}
    return merged


def _where(path, *keys):
    return f"{path}: " + " > ".join(str(k) for k in keys) if keys else f"{path}"


class Study:
    """A checked study file.

    Attributes
    ----------
    name, title, description : str
    data : dict
        ``dataset``, ``root``, ``synthetic``.
    defaults : dict
    experiments : dict
        name -> ``{"fixed", "grid", "select", "description"}``.
    """

    def __init__(self, path, spec, runs_root="runs"):
        self.path = Path(path)
        self.runs_root = Path(runs_root)
        if not isinstance(spec, dict):
            raise StudyError(f"{self.path} must hold a mapping with keys {sorted(_TOP_KEYS)}.")
        # Top-level keys starting with "x-" hold YAML anchors for reuse (as in Docker Compose).
        self._check_keys({k: v for k, v in spec.items() if not str(k).startswith("x-")},
                         _TOP_KEYS, ())
        for key in ("name", "data", "experiments"):
            if key not in spec:
                raise StudyError(f"{_where(self.path)} lacks the key `{key}`.")
        self.name = str(spec["name"])
        self.title = str(spec.get("title", self.name))
        self.description = str(spec.get("description", "")).strip()
        self.book = spec.get("book") or {}
        self.data = self._check_data(spec["data"])
        self.defaults = self._check_parameters(spec.get("defaults") or {}, ("defaults",))
        experiments = spec["experiments"]
        if not isinstance(experiments, dict) or not experiments:
            raise StudyError(f"{_where(self.path, 'experiments')} must map experiment names to "
                             "their grids.")
        self.experiments = {str(name): self._check_experiment(str(name), value)
                            for name, value in experiments.items()}

    # -- checks ---------------------------------------------------------------------------
    def _check_keys(self, mapping, allowed, keys):
        unknown = sorted(set(mapping) - allowed)
        if unknown:
            raise StudyError(f"{_where(self.path, *keys)}: unknown key(s) {unknown}; valid keys "
                             f"are {sorted(allowed)}.")

    def _check_data(self, data):
        if not isinstance(data, dict):
            raise StudyError(f"{_where(self.path, 'data')} must be a mapping with keys "
                             f"{sorted(_DATA_KEYS)}.")
        self._check_keys(data, _DATA_KEYS, ("data",))
        if "dataset" not in data or "root" not in data:
            raise StudyError(f"{_where(self.path, 'data')} needs `dataset` and `root`.")
        try:
            resolved = resolve_parameters(dataset=data["dataset"], data_root=data["root"],
                                          synthetic=data.get("synthetic"))
        except ParameterError as error:
            raise StudyError(f"{_where(self.path, 'data')}: {error}") from None
        return {"dataset": resolved["dataset"], "root": resolved["data_root"],
                "synthetic": resolved["synthetic"]}

    def _check_parameters(self, mapping, keys):
        """Names and single values; combinations are checked when the runs are expanded."""
        if not isinstance(mapping, dict):
            raise StudyError(f"{_where(self.path, *keys)} must be a mapping of run parameters.")
        reserved = sorted(set(mapping) & _RESERVED)
        if reserved:
            raise StudyError(f"{_where(self.path, *keys)}: {reserved} are set by the `data` "
                             "block or the sweep, not by run parameters.")
        for name, value in mapping.items():
            try:
                check_parameter(name, value)
            except ParameterError as error:
                raise StudyError(f"{_where(self.path, *keys)}: {error}") from None
        return dict(mapping)

    def _check_experiment(self, name, value):
        keys = ("experiments", name)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise StudyError(f"{_where(self.path, *keys)} must be a mapping with keys "
                             f"{sorted(_EXPERIMENT_KEYS)}.")
        self._check_keys(value, _EXPERIMENT_KEYS, keys)
        grid = value.get("grid") or {}
        if not isinstance(grid, dict):
            raise StudyError(f"{_where(self.path, *keys, 'grid')} must map parameters to lists.")
        for parameter, values in grid.items():
            if not isinstance(values, list) or not values:
                raise StudyError(f"{_where(self.path, *keys, 'grid', parameter)} must be a "
                                 f"non-empty list of values, received {values!r}.")
        for parameter, values in grid.items():
            for item in values:
                self._check_parameters({parameter: item}, (*keys, "grid"))
        fixed = self._check_parameters(value.get("fixed") or {}, (*keys, "fixed"))
        select = value.get("select") or {}
        if not isinstance(select, dict):
            raise StudyError(f"{_where(self.path, *keys, 'select')} must map parameters to "
                             "selections.")
        checked_select = {}
        for parameter, rule in select.items():
            where = (*keys, "select", parameter)
            if parameter not in PARAMETERS or parameter in _RESERVED:
                raise StudyError(f"{_where(self.path, *where)}: `{parameter}` is not a run "
                                 f"parameter a study can set; valid: "
                                 f"{sorted(set(PARAMETERS) - _RESERVED)}.")
            if parameter in grid or parameter in fixed:
                raise StudyError(f"{_where(self.path, *where)}: `{parameter}` is selected, so it "
                                 "cannot also be in `grid` or `fixed`.")
            if not isinstance(rule, dict):
                raise StudyError(f"{_where(self.path, *where)} must be a mapping with keys "
                                 f"{sorted(_SELECT_KEYS)}.")
            self._check_keys(rule, _SELECT_KEYS, where)
            if "experiment" not in rule or "metric" not in rule:
                raise StudyError(f"{_where(self.path, *where)} needs `experiment` and `metric`.")
            if rule["metric"] not in SELECTION_METRICS:
                raise StudyError(f"{_where(self.path, *where, 'metric')} must be one of "
                                 f"{list(SELECTION_METRICS)}, received {rule['metric']!r}.")
            by = rule.get("by") or []
            if not isinstance(by, list) or any(b not in PARAMETERS for b in by):
                raise StudyError(f"{_where(self.path, *where, 'by')} must be a list of run "
                                 f"parameters, received {by!r}.")
            checked_select[parameter] = {"study": rule.get("study"),
                                         "experiment": str(rule["experiment"]),
                                         "metric": rule["metric"], "by": list(by)}
        return {"description": str(value.get("description", "")).strip(), "fixed": fixed,
                "grid": grid, "select": checked_select}

    def check(self):
        """Resolve every run (selected values stood in for) and check the selections' sources."""
        for name, experiment in self.experiments.items():
            for parameter, rule in experiment["select"].items():
                if rule["study"] in (None, self.name):
                    source = self.experiments.get(rule["experiment"])
                    if source is None:
                        raise StudyError(
                            f"{_where(self.path, 'experiments', name, 'select', parameter)}: "
                            f"no experiment {rule['experiment']!r} in this study; experiments: "
                            f"{sorted(self.experiments)}.")
                    if parameter not in source["grid"]:
                        raise StudyError(
                            f"{_where(self.path, 'experiments', name, 'select', parameter)}: "
                            f"experiment {rule['experiment']!r} does not vary `{parameter}` in "
                            "its grid, so there is nothing to choose from.")
            stand_in = {p: None for p in experiment["select"]}
            self._check_no_cycle(name, [])
            for combination in self._combinations(name):
                self._resolve(name, combination, stand_in, check_only=True)

    def _check_no_cycle(self, name, path):
        # Selections within the study must form a chain that ends: A may select from B, B from C.
        if name in path:
            chain = " -> ".join(path + [name])
            raise StudyError(f"{_where(self.path, 'experiments', path[0], 'select')}: "
                             f"experiments select from each other in a circle ({chain}).")
        for rule in self.experiments[name]["select"].values():
            if rule["study"] in (None, self.name):
                self._check_no_cycle(rule["experiment"], path + [name])

    # -- expansion -------------------------------------------------------------------------
    def _combinations(self, name):
        grid = self.experiments[name]["grid"]
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            yield dict(zip(keys, values))

    def _resolve(self, name, combination, selected, check_only=False):
        experiment = self.experiments[name]
        params = {**self.defaults, **experiment["fixed"], **combination}
        params.update({k: v for k, v in selected.items() if v is not None})
        params.update(study=self.name, runs_root=str(self.runs_root),
                      dataset=self.data["dataset"], data_root=self.data["root"],
                      synthetic=self.data["synthetic"])
        try:
            return resolve_parameters(params)
        except ParameterError as error:
            if check_only and any(f"`{p}`" in str(error) for p in selected):
                return None
            shown = ", ".join(f"{k}={v!r}" for k, v in combination.items())
            raise StudyError(f"{_where(self.path, 'experiments', name)} ({shown}): {error}") \
                from None

    def expand(self, experiments=None):
        """The runs this study can run now, and the experiments still waiting for sources.

        Parameters
        ----------
        experiments : list of str, optional
            Expand only these experiments (default: all).

        Returns
        -------
        runs : list of PlannedRun
            Unique by run id, in file order; ``experiments`` lists each run's experiments.
        waiting : list of Waiting
        """
        runs, waiting = {}, []
        for name, experiment in self.experiments.items():
            if experiments is not None and name not in experiments:
                continue
            try:
                choices = {p: self._selection(p, rule) for p, rule in experiment["select"].items()}
            except _NotReady as not_ready:
                waiting.append(Waiting(name, str(not_ready), not_ready.study,
                                       not_ready.experiment))
                continue
            for combination in self._combinations(name):
                selected = {}
                provisional = self._resolve(name, combination, {})  # defaults stand in
                for parameter, rule in experiment["select"].items():
                    group = tuple(_key(provisional[b]) for b in rule["by"])
                    if group not in choices[parameter]["chosen"]:
                        raise StudyError(
                            f"{_where(self.path, 'experiments', name, 'select', parameter)}: "
                            f"the source runs have no group {dict(zip(rule['by'], group))}; "
                            f"they have {list(choices[parameter]['chosen'])}.")
                    selected[parameter] = choices[parameter]["chosen"][group]
                params = self._resolve(name, combination, selected)
                identity = run_id(params)
                if identity not in runs:
                    runs[identity] = PlannedRun(params, identity,
                                                rundir.run_directory(params), [])
                if name not in runs[identity].experiments:
                    runs[identity].experiments.append(name)
        return list(runs.values()), waiting

    def selections(self):
        """Every selection that can be made now: experiment -> parameter -> table and choice."""
        made = {}
        for name, experiment in self.experiments.items():
            for parameter, rule in experiment["select"].items():
                try:
                    made.setdefault(name, {})[parameter] = self._selection(parameter, rule)
                except _NotReady:
                    continue
        return made

    def selection_tables(self):
        """:meth:`selections` as plain values (no tuple-keyed ``chosen``), for JSON files."""
        return {experiment: {parameter: {k: v for k, v in made.items() if k != "chosen"}
                             for parameter, made in chosen.items()}
                for experiment, chosen in self.selections().items()}

    def _source_study(self, rule):
        if rule["study"] in (None, self.name):
            return self
        path = find_study_file(rule["study"], self.path.parent)
        return load_study(path, self.runs_root)

    def _selection(self, parameter, rule):
        """Mean metric per (group, value) over the source runs, and the chosen value per group."""
        source = self._source_study(rule)
        if rule["experiment"] not in source.experiments:
            raise StudyError(f"{source.path}: no experiment {rule['experiment']!r} to select "
                             f"from; experiments: {sorted(source.experiments)}.")
        # Only the source experiment: expanding all of them would come back here.
        runs, source_waiting = source.expand([rule["experiment"]])
        members = [r for r in runs if rule["experiment"] in r.experiments]
        missing = [r for r in members if not rundir.is_done(r.run_dir)]
        if missing or not members or any(w.experiment == rule["experiment"]
                                         for w in source_waiting):
            done = len(members) - len(missing)
            hint = (f"run `valf sweep {source.path}` first" if source is not self
                    else "the sweep runs it first")
            raise _NotReady(f"selects from {source.name}/{rule['experiment']}, which has {done} "
                            f"of {len(members)} runs done; {hint}.", source.name,
                            rule["experiment"])
        candidates = [check_parameter(parameter, v) for v in source.experiments[rule["experiment"]]["grid"][parameter]]
        rows = []
        for run in members:
            metrics = json.loads((run.run_dir / "metrics.json").read_text())
            rows.append((tuple(_key(run.params[b]) for b in rule["by"]), run.params[parameter],
                         metrics[rule["metric"]]))
        return _choose(parameter, rule, candidates, rows, f"{source.name}/{rule['experiment']}")

    # -- misc --------------------------------------------------------------------------------
    @property
    def directory(self):
        return self.runs_root / self.name

    def __repr__(self):
        return f"Study({self.name!r}, {len(self.experiments)} experiments)"


class _NotReady(Exception):
    def __init__(self, message, study, experiment):
        super().__init__(message)
        self.study, self.experiment = study, experiment


def _key(value):
    # Hashable and comparable form of a parameter value (lists become tuples).
    return tuple(value) if isinstance(value, list) else value


def _choose(parameter, rule, candidates, rows, source):
    """For each group, the candidate with the best mean metric (ties: the first listed).

    Examples
    --------
    >>> rows = [(("A",), 1e-4, 0.8), (("A",), 1e-5, 0.9), (("A",), 1e-4, 0.7)]
    >>> rule = {"metric": "val_accuracy", "by": ["backbone"]}
    >>> _choose("learning_rate", rule, [1e-4, 1e-5], rows, "s/e")["chosen"]
    {('A',): 1e-05}
    """
    import numpy as np

    table, chosen = [], {}
    for group in sorted({row[0] for row in rows}, key=str):
        best = None
        for value in candidates:
            scores = [score for g, v, score in rows if g == group and _key(v) == _key(value)]
            if not scores:
                continue
            mean = float(np.mean(scores))
            table.append({**dict(zip(rule["by"], group)), parameter: value,
                          f"mean_{rule['metric']}": mean, "runs": len(scores)})
            if best is None or mean > best[1]:
                best = (value, mean)
        chosen[group] = best[0]
        for row in table:
            if all(row.get(b) == g for b, g in zip(rule["by"], group)):
                row["chosen"] = _key(row[parameter]) == _key(best[0])
    return {"parameter": parameter, "metric": rule["metric"], "by": rule["by"],
            "source": source, "table": table, "chosen": chosen}
