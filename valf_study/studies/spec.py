"""Study files: a YAML description of a set of runs, checked whole before any run starts.

A study file names its data set, the parameters every run shares, and one or more
*experiments*, each a grid of run parameters::

    name: quick                        # the study's name (results/<name>/)
    title: Quick study on the embedded data set
    data:                              # where the images come from
      dataset: synthetic               # or lunghist700, or folder (your own images)
      root: data/synthetic
      synthetic: {difficulty: 1.0}     # generator settings (synthetic only)
      # folder only: split_csv (path, split and/or group), group (a regular expression)
    defaults:                          # run parameters of every run
      backbone: SmallCNN
      epochs: 20
    analysis:                          # optional: how the comparisons are judged
      margin: 0.02                     # equivalence margin in macro-F1 (the default)
    experiments:
      main:
        grid:                          # every combination is one run
          loss: [CCE, WCCE, FL, VALF]
          magnification: [20x, 40x]
          seed: [0, 1, 2]
      gamma:
        fixed: {loss: VALF, magnification: 20x}
        grid: {gamma: [0, 1, 2, 5]}

A ``grid`` may also be a list of grids, as scikit-learn's ``ParameterGrid`` takes them: the
experiment runs the union of their combinations (long-tailed MNIST runs every loss at one
imbalance ratio and a few at another, all in its experiment ``main``)::

      main:
        grid:
          - {loss: [CCE, FL, VALF], imbalance_ratio: [100], seed: [0, 1]}
          - {loss: [CCE], imbalance_ratio: [10], seed: [0, 1]}

A parameter is set in one place per experiment: in ``fixed``, in ``grid`` or by ``select``.
It may instead be *selected* from finished runs: for each group of runs sharing the ``by``
parameters, the value of ``parameter`` whose source runs have the best mean ``metric`` (the
paper's learning rate per backbone; the red-blood-cell study's alpha by cross-validation)::

      main:
        select:
          learning_rate: {study: lr-selection, experiment: main,
                          metric: val_accuracy, by: [backbone]}

The source experiment may belong to the same study (the sweep runs it first) or to another
(which must be complete). Ties go to the value listed first in the source grid
(:mod:`valf_study.studies.selection`).

A study may take the ``data`` and ``defaults`` of another with ``extends: <name>`` (its own
defaults win; experiments are never inherited), so the ablations run in the setting of the
study they ablate.

A run's identity is its resolved parameters (:func:`valf_study.run.parameters.run_id`), so a run
shared by two experiments, or by two studies, is trained once (:mod:`valf_study.studies.plan`).

This module reads and checks; :mod:`valf_study.studies.plan` expands a checked study into its
runs, making the selections that :mod:`valf_study.studies.selection` defines.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from valf_study.files import inside
from valf_study.run.parameters import (
    DATA_OPTIONS,
    PARAMETERS,
    ParameterError,
    check_parameter,
    resolve_parameters,
)

__all__ = [
    "SELECTION_METRICS",
    "Study",
    "StudyError",
    "check_runs",
    "combinations",
    "find_study_file",
    "load_study",
    "resolve_run",
    "varied",
]

_TOP_KEYS = {
    "name",
    "title",
    "description",
    "extends",
    "data",
    "defaults",
    "experiments",
    "book",
    "analysis",
}
_ANALYSIS_KEYS = {"margin", "controls"}
_CONTROL_KEYS = {"name", "expect", "treatment", "comparator", "metrics"}
#: The equivalence margin in macro-F1 without ``analysis: margin`` (about one test image of
#: LungHist700; valf_study.studies.comparisons.DEFAULT_MARGIN).
DEFAULT_MARGIN = 0.02
_EXPERIMENT_KEYS = {"description", "fixed", "grid", "select"}
# The data block: the data set, its root, and the options data sets take (their run parameters,
# valf_study.run.parameters.DATA_OPTIONS); a study file writes `group_rule` as `group`.
_DATA_ALIASES = {"group_rule": "group"}
_DATA_KEYS = {"dataset", "root"} | {_DATA_ALIASES.get(o, o) for o in DATA_OPTIONS}
_SELECT_KEYS = {"study", "experiment", "metric", "by"}
# Set by the data block or the sweep, never by a study's parameters.
RESERVED = {"runs_root", "dataset", "data_root", *DATA_OPTIONS}
#: Metrics a selection can maximise (recorded in metrics.json).
SELECTION_METRICS = ("val_accuracy", "val_f1", "val_balanced_accuracy", "accuracy", "f1")


class StudyError(ValueError):
    """A study file is malformed, or a selection cannot be made yet."""


def where(path, *keys):
    """``path: key > key`` (the place in a study file an error message names)."""
    return f"{path}: " + " > ".join(str(k) for k in keys) if keys else f"{path}"


@dataclass
class Study:
    """A checked study file.

    Attributes
    ----------
    path : pathlib.Path
    runs_root : pathlib.Path
        Folder of the run directories (shared by every study).
    name, title, description : str
    book : dict
    data : dict
        ``dataset``, ``root`` and every data-set option (``synthetic``, ``split_csv``,
        ``group_rule``, ...), None where the data set does not take it.
    defaults : dict
    experiments : dict
        name -> ``{"fixed", "grids", "select", "description"}`` (``grids``: the list of its
        grids, one where the file gives a mapping; :func:`varied` merges them).
    analysis : dict
        How the comparisons are judged: ``margin``, the equivalence margin in macro-F1.
    """

    path: Path
    runs_root: Path
    name: str
    title: str
    description: str
    book: dict
    data: dict
    defaults: dict
    experiments: dict
    analysis: dict = field(default_factory=lambda: {"margin": DEFAULT_MARGIN, "controls": []})

    def data_values(self):
        """The run parameters the study's data block (and its runs root) sets in every run."""
        return {
            "runs_root": str(self.runs_root),
            "dataset": self.data["dataset"],
            "data_root": self.data["root"],
            **{option: self.data[option] for option in DATA_OPTIONS},
        }

    def data_parameters(self):
        """Resolved run parameters of the study's defaults and data block: enough to check the
        data before any run is planned."""
        return resolve_parameters({**self.defaults, **self.data_values()})

    @property
    def directory(self):
        """Where the study keeps its own files (manifest, sweep lock):
        ``<runs_root>/_studies/<name>``."""
        return inside(self.runs_root, "_studies", self.name)

    def __repr__(self):
        return f"Study({self.name!r}, {len(self.experiments)} experiments)"


def find_study_file(name_or_path, studies_dir=None):
    """A study file from a path, or from a name looked up as ``<studies_dir>/<name>.yaml``
    (default: the project's ``studies/``, :func:`valf_study.project.root`)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise StudyError(f"No study file {path}.")
        return path
    if studies_dir is None:
        from valf_study import project

        try:
            studies_dir = project.root() / "studies"
        except project.ProjectNotFound as error:
            raise StudyError(f"No study file {name_or_path!r}: {error}") from None
    candidate = Path(studies_dir) / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in Path(studies_dir).glob("*.yaml"))
    raise StudyError(
        f"No study {name_or_path!r}: {candidate} does not exist. Known studies: {known}."
    )


def load_study(path, runs_root="runs"):
    """Read and check a study file; return a :class:`Study`.

    Every run the file describes is resolved here (selected parameters with a stand-in value),
    so a typo anywhere is reported before any run starts.
    """
    path = Path(path)
    spec = _read_yaml(path)
    spec = _extended(path, spec, ())
    study = _checked(path, spec, Path(runs_root))
    check_runs(study)
    return study


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key, first, second):
        super().__init__(f"{key!r} at lines {first} and {second}")
        self.key, self.first, self.second = key, first, second


class _StudyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last one
    silently: a second ``main:`` experiment would drop the first)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(key, seen[key], line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path):
    try:
        # A subclass of the safe loader: it builds plain values only.
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_StudyLoader)
    except FileNotFoundError:
        raise StudyError(f"No study file {path}.") from None
    except _DuplicateKey as twice:
        raise StudyError(
            f"{path}: the key {twice.key!r} is given twice in one mapping, at lines "
            f"{twice.first} and {twice.second}; YAML would keep only the second. Rename or "
            "merge them."
        ) from None
    except yaml.YAMLError as error:
        raise StudyError(f"{path} is not valid YAML: {error}") from None


def _extended(path, spec, seen):
    """``spec`` with the data and defaults of the study it extends (recursively)."""
    if not isinstance(spec, dict) or spec.get("extends") is None:
        return spec
    name, chain = str(spec["extends"]), (*seen, str(spec.get("name")))
    if name in chain:
        raise StudyError(
            f"{where(path, 'extends')}: studies extend each other in a circle "
            f"({' -> '.join([*chain, name])})."
        )
    base_path = find_study_file(name, path.parent)
    base = _extended(base_path, _read_yaml(base_path), chain)
    if not isinstance(base, dict):
        raise StudyError(f"{base_path} (extended by {path}) must hold a mapping.")
    merged = {key: value for key, value in spec.items() if key != "extends"}
    merged.setdefault("data", base.get("data"))
    if base.get("analysis") is not None:
        merged.setdefault("analysis", base.get("analysis"))
    merged["defaults"] = {**(base.get("defaults") or {}), **(spec.get("defaults") or {})}
    return merged


def _checked(path, spec, runs_root):
    if not isinstance(spec, dict):
        raise StudyError(f"{path} must hold a mapping with keys {sorted(_TOP_KEYS)}.")
    # Top-level keys starting with "x-" hold YAML anchors for reuse (as in Docker Compose).
    _check_keys(path, {k: v for k, v in spec.items() if not str(k).startswith("x-")}, _TOP_KEYS, ())
    for key in ("data", "experiments"):
        if key not in spec:
            raise StudyError(f"{where(path)} lacks the key `{key}`.")
    name = _check_name(path, spec.get("name"))
    experiments = spec["experiments"]
    if not isinstance(experiments, dict) or not experiments:
        raise StudyError(f"{where(path, 'experiments')} must map experiment names to their grids.")
    return Study(
        path=path,
        runs_root=runs_root,
        name=name,
        title=str(spec.get("title", name)),
        description=str(spec.get("description", "")).strip(),
        book=spec.get("book") or {},
        data=_check_data(path, spec["data"]),
        defaults=_check_parameters(path, spec.get("defaults") or {}, ("defaults",)),
        experiments={
            str(name): _check_experiment(path, str(name), value)
            for name, value in experiments.items()
        },
        analysis=_check_analysis(path, spec.get("analysis")),
    )


def _check_analysis(path, analysis):
    """The optional ``analysis`` block: ``margin``, a number in (0, 1), and ``controls``, the
    positive controls (:func:`_check_control`)."""
    if analysis is None:
        return {"margin": DEFAULT_MARGIN, "controls": []}
    if not isinstance(analysis, dict):
        raise StudyError(
            f"{where(path, 'analysis')} must be a mapping with keys {sorted(_ANALYSIS_KEYS)}."
        )
    _check_keys(path, analysis, _ANALYSIS_KEYS, ("analysis",))
    margin = analysis.get("margin", DEFAULT_MARGIN)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < 1:
        raise StudyError(
            f"{where(path, 'analysis', 'margin')} must be a number between 0 and 1 (a "
            f"difference in macro-F1 taken as practically none), received {margin!r}."
        )
    controls = analysis.get("controls") or []
    if not isinstance(controls, list):
        raise StudyError(f"{where(path, 'analysis', 'controls')} must be a list of controls.")
    checked = [_check_control(path, i, control) for i, control in enumerate(controls)]
    return {"margin": float(margin), "controls": checked}


def _check_control(path, index, control):
    """A positive control: a ``name``, the ``treatment`` and ``comparator`` arms (run
    parameters that select runs of the main experiment), what the literature ``expect``s of the
    treatment (``better`` or ``worse``) and the ``metrics`` judged (of
    :data:`valf_study.studies.comparisons.CONTROL_METRICS`)."""
    from valf_study.studies.comparisons import CONTROL_METRICS

    place = ("analysis", "controls", index)
    if not isinstance(control, dict):
        raise StudyError(
            f"{where(path, *place)} must be a mapping with keys {sorted(_CONTROL_KEYS)}."
        )
    _check_keys(path, control, _CONTROL_KEYS, place)
    missing = sorted(_CONTROL_KEYS - {"expect", "metrics"} - set(control))
    if missing:
        raise StudyError(f"{where(path, *place)} lacks {missing}.")
    expect = control.get("expect", "better")
    if expect not in ("better", "worse"):
        raise StudyError(
            f"{where(path, *place, 'expect')} must be better or worse, not {expect!r}."
        )
    metrics = control.get("metrics", ["f1"])
    unknown = [m for m in metrics if m not in CONTROL_METRICS] if isinstance(metrics, list) else 0
    if not isinstance(metrics, list) or not metrics or unknown:
        raise StudyError(
            f"{where(path, *place, 'metrics')} must list metrics among "
            f"{sorted(CONTROL_METRICS)}, received {metrics!r}."
        )
    arms = {
        arm: _check_parameters(path, control[arm], (*place, arm))
        for arm in ("treatment", "comparator")
    }
    if arms["treatment"] == arms["comparator"]:
        raise StudyError(f"{where(path, *place)}: the treatment and the comparator are the same.")
    return {"name": str(control["name"]), "expect": expect, "metrics": list(metrics), **arms}


#: What a study's name may be made of: it names folders (results/<name>, runs/_studies/<name>).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _check_name(path, given):
    """A study's name is its file's name (``studies/mine.yaml`` is the study ``mine``); a
    ``name:`` in the file must agree with it."""
    name = path.stem
    if not NAME.fullmatch(name):
        raise StudyError(
            f"{path}: a study's name is its file's name, {name!r}, which must be letters, "
            "digits, '.', '_' or '-' (starting with a letter or digit); rename the file."
        )
    if given is not None and str(given) != name:
        raise StudyError(
            f"{where(path, 'name')}: the file says `name: {given}`, but a study's name is its "
            f"file's name, {name!r} (it names results/{name}/ and the book's study). Set "
            f"`name: {name}` or leave `name` out."
        )
    return name


def _check_keys(path, mapping, allowed, keys):
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise StudyError(
            f"{where(path, *keys)}: unknown key(s) {unknown}; valid keys are {sorted(allowed)}."
        )


def _check_data(path, data):
    if not isinstance(data, dict):
        raise StudyError(f"{where(path, 'data')} must be a mapping with keys {sorted(_DATA_KEYS)}.")
    _check_keys(path, data, _DATA_KEYS, ("data",))
    if "dataset" not in data or "root" not in data:
        raise StudyError(f"{where(path, 'data')} needs `dataset` and `root`.")
    try:
        resolved = resolve_parameters(
            dataset=data["dataset"],
            data_root=data["root"],
            **{o: data.get(_DATA_ALIASES.get(o, o)) for o in DATA_OPTIONS},
        )
    except ParameterError as error:
        raise StudyError(f"{where(path, 'data')}: {error}") from None
    return {
        "dataset": resolved["dataset"],
        "root": resolved["data_root"],
        **{option: resolved[option] for option in DATA_OPTIONS},
    }


def _check_parameters(path, mapping, keys):
    """Names and single values; combinations are checked when the runs are expanded."""
    if not isinstance(mapping, dict):
        raise StudyError(f"{where(path, *keys)} must be a mapping of run parameters.")
    reserved = sorted(set(mapping) & RESERVED)
    if reserved:
        raise StudyError(
            f"{where(path, *keys)}: {reserved} are set by the `data` block or the "
            "sweep, not by run parameters."
        )
    for name, value in mapping.items():
        try:
            check_parameter(name, value)
        except ParameterError as error:
            raise StudyError(f"{where(path, *keys)}: {error}") from None
    return dict(mapping)


def _check_experiment(path, name, value):
    keys = ("experiments", name)
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise StudyError(
            f"{where(path, *keys)} must be a mapping with keys {sorted(_EXPERIMENT_KEYS)}."
        )
    _check_keys(path, value, _EXPERIMENT_KEYS, keys)
    if "grid" in value and not value["grid"]:
        raise StudyError(
            f"{where(path, *keys, 'grid')} is empty, which would be one run of the defaults; "
            "list the parameters to vary with their values, or use `fixed` for one run."
        )
    if not any(value.get(k) for k in ("grid", "fixed", "select")):
        raise StudyError(
            f"{where(path, *keys)} names no run parameter (no `grid`, `fixed` or `select`); "
            "say what the experiment runs."
        )
    grids = _check_grids(path, value.get("grid") or {}, keys)
    grid = varied({"grids": grids})
    fixed = _check_parameters(path, value.get("fixed") or {}, (*keys, "fixed"))
    twice = sorted(set(fixed) & set(grid))
    if twice:
        raise StudyError(
            f"{where(path, *keys)}: {twice} given both in `fixed` and in `grid`; "
            "set each parameter in one place."
        )
    select = value.get("select") or {}
    if not isinstance(select, dict):
        raise StudyError(f"{where(path, *keys, 'select')} must map parameters to selections.")
    checked_select = {
        parameter: _check_select(path, (*keys, "select", parameter), parameter, rule, grid, fixed)
        for parameter, rule in select.items()
    }
    return {
        "description": str(value.get("description", "")).strip(),
        "fixed": fixed,
        "grids": grids,
        "select": checked_select,
    }


def _check_grids(path, grid, keys):
    place = (*keys, "grid")
    if not isinstance(grid, list):
        return [_check_grid(path, grid, place)]
    for i, one in enumerate(grid):
        if not one:
            raise StudyError(
                f"{where(path, *place)}: grid {i + 1} of the list is empty, which would be one "
                "run of the defaults; list the parameters it varies."
            )
    return [_check_grid(path, one, (*place, f"grid {i + 1}")) for i, one in enumerate(grid)]


def _check_grid(path, grid, place):
    if not isinstance(grid, dict):
        raise StudyError(
            f"{where(path, *place)} must map parameters to lists (or be a list of such grids)."
        )
    for parameter, values in grid.items():
        if not isinstance(values, list) or not values:
            raise StudyError(
                f"{where(path, *place, parameter)} must be a non-empty list "
                f"of values, received {values!r}."
            )
        for item in values:
            _check_parameters(path, {parameter: item}, place)
    return grid


def _check_select(path, place, parameter, rule, grid, fixed):
    if parameter not in PARAMETERS or parameter in RESERVED:
        raise StudyError(
            f"{where(path, *place)}: `{parameter}` is not a run parameter a study "
            f"can set; valid: {sorted(set(PARAMETERS) - RESERVED)}."
        )
    if parameter in grid or parameter in fixed:
        raise StudyError(
            f"{where(path, *place)}: `{parameter}` is selected, so it cannot also "
            "be in `grid` or `fixed`."
        )
    if not isinstance(rule, dict):
        raise StudyError(
            f"{where(path, *place)} must be a mapping with keys {sorted(_SELECT_KEYS)}."
        )
    _check_keys(path, rule, _SELECT_KEYS, place)
    if "experiment" not in rule or "metric" not in rule:
        raise StudyError(f"{where(path, *place)} needs `experiment` and `metric`.")
    if rule["metric"] not in SELECTION_METRICS:
        raise StudyError(
            f"{where(path, *place, 'metric')} must be one of "
            f"{list(SELECTION_METRICS)}, received {rule['metric']!r}."
        )
    by = rule.get("by") or []
    if not isinstance(by, list) or any(b not in PARAMETERS for b in by):
        raise StudyError(
            f"{where(path, *place, 'by')} must be a list of run parameters, received {by!r}."
        )
    return {
        "study": rule.get("study"),
        "experiment": str(rule["experiment"]),
        "metric": rule["metric"],
        "by": list(by),
    }


# -- every run of the file, checked -----------------------------------------------------------


def varied(experiment):
    """Every parameter an experiment's grids vary, with its values in the order first listed
    (what a selection from the experiment chooses among)."""
    found = {}
    for grid in experiment["grids"]:
        for parameter, values in grid.items():
            known = found.setdefault(parameter, [])
            known.extend(v for v in values if v not in known)
    return found


def combinations(experiment):
    """Every combination of an experiment's grids (one after another), as dicts, in file
    order."""
    for grid in experiment["grids"]:
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            yield dict(zip(keys, values))


def resolve_run(study, name, combination, selected, check_only=False):
    """The resolved parameters of one run of experiment ``name``: the study's defaults, the
    experiment's fixed values, the grid ``combination``, the ``selected`` values, the data
    block. With ``check_only``, a combination that fails only because a selected parameter is
    stood in for gives None."""
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


def check_runs(study):
    """Resolve every run of every experiment (selected values stood in for) and check that each
    selection names an experiment that varies the parameter; raise :class:`StudyError`."""
    for name, experiment in study.experiments.items():
        for parameter, rule in experiment["select"].items():
            if rule["study"] in (None, study.name):
                _check_local_source(study, name, parameter, rule)
        _check_no_cycle(study, name, [])
        stand_in = dict.fromkeys(experiment["select"])
        resolved = [
            resolve_run(study, name, combination, stand_in, check_only=True)
            for combination in combinations(experiment)
        ]
        if name == "main":
            _check_controls_have_runs(study, [r for r in resolved if r is not None], stand_in)


def _check_controls_have_runs(study, main_runs, selected):
    """Each arm of each positive control selects at least one run of ``main`` (what the
    controls compare, matched as they will be), so that a control cannot drop out of the
    results unseen."""
    controls = study.analysis.get("controls", [])
    if not controls:
        return
    import pandas as pd

    from valf_study.studies.comparisons import matching_runs

    runs = pd.DataFrame(main_runs)
    for index, control in enumerate(controls):
        for arm in ("treatment", "comparator"):
            values = {k: v for k, v in control[arm].items() if k not in selected}
            if runs.empty or matching_runs(runs, values).empty:
                shown = ", ".join(f"{k} {v}" for k, v in control[arm].items())
                raise StudyError(
                    f"{where(study.path, 'analysis', 'controls', index, arm)}: no run of the "
                    f"experiment `main` has {shown}; a control compares runs of `main`, so add "
                    "them to its grid."
                )


def _check_local_source(study, name, parameter, rule):
    place = where(study.path, "experiments", name, "select", parameter)
    source = study.experiments.get(rule["experiment"])
    if source is None:
        raise StudyError(
            f"{place}: no experiment {rule['experiment']!r} in this study; "
            f"experiments: {sorted(study.experiments)}."
        )
    if parameter not in varied(source):
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
