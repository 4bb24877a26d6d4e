"""A study's run directories as tidy tables, the only input of the book's analysis pages.

:func:`collect` reads every run a study file plans (complete or not) and
returns pandas tables; :func:`write_results` writes them to
``results/<study>/`` as Parquet (and the run table also as CSV):

=======================  ================================================================
``runs``                 one row per run: ``run_id``, ``experiments`` (``;``-joined),
                         ``status``, ``method`` (the loss, and VALF's rate), every
                         parameter (``magnification`` is ``all`` on a data set without
                         magnifications), every metric (``class_names`` as JSON), timing,
                         ``<package>_version`` of every recorded package,
                         ``valf_git_commit``, ``keras_backend``, ``device``
``history``              one row per run and epoch (history.csv)
``class_weights``        one row per run and epoch of the weighted losses
``predictions``          one row per run and validation/test image
``comparisons``          the pre-registered comparisons of the main experiment, per setting
                         (:mod:`valf_study.studies.comparisons`; also as ``comparisons.csv``)
``primary``              its primary tests: each question pooled over the settings, the two
                         readings of eq. 7, Friedman's ranks, the paper's headline (also as
                         ``primary.csv``)
``controls``             the study's positive controls (``analysis: controls`` of its file),
                         judged with the same machinery (also as ``controls.csv``)
``selections.json``      the parameters chosen from other runs (learning rate, alpha)
=======================  ================================================================

Parameter values that are lists or mappings (a per-class alpha, the generator
settings) are stored as JSON text, so every column has one type.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd

from valf_study.files import inside, read_json, write_atomic, write_json
from valf_study.run.parameters import method_label
from valf_study.run.rundir import RunDirectory
from valf_study.studies.plan import make_plan
from valf_study.studies.spec import find_study_file, load_study

__all__ = ["NO_MAGNIFICATION", "collect", "experiment_runs", "load_results", "write_results"]

_TABLES = ("runs", "history", "class_weights", "predictions", "comparisons", "primary", "controls")
#: Tables an older ``valf results`` did not write: read as empty when absent.
_LATER_TABLES = ("primary", "controls")
#: The ``magnification`` of runs on a data set that has none (a folder of one's own images),
#: so that every table groups them as one setting instead of dropping them.
NO_MAGNIFICATION = "all"


def _flat(value):
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def _run_row(run):
    row = {
        "run_id": run.run_id,
        "experiments": ";".join(run.experiments),
        "status": run.status,
        "method": method_label(run.params),
    }
    row.update({name: _flat(value) for name, value in run.params.items()})
    status = run.run_dir.status()
    row["error"] = status.get("error")
    row["wall_seconds"] = status.get("wall_seconds")
    if row["magnification"] is None:  # a data set without magnifications: one setting
        row["magnification"] = NO_MAGNIFICATION
    metrics = run.run_dir.read_metrics() if row["status"] == "done" else None
    if metrics is not None:
        row.update({k: _flat(v) for k, v in metrics.items()})
    data = run.run_dir.read_data() if row["status"] == "done" else None
    row["data_fingerprint"] = data["fingerprint"] if data else None
    environment = run.run_dir.read_environment()
    if environment is not None:
        row.update(
            {
                "python_version": environment.get("python"),
                **{
                    f"{name}_version": version
                    for name, version in (environment.get("packages") or {}).items()
                },
                "valf_git_commit": environment.get("git_commit"),
                "keras_backend": environment.get("keras_backend"),
                "device": ", ".join(environment.get("gpus") or []) or environment.get("cpu"),
            }
        )
    row["run_dir"] = str(run.run_dir.path.resolve())  # readers (book pages) run elsewhere
    return row


def _per_run(runs, filename):
    frames = []
    for run in runs:
        frame = run.run_dir.read_table(filename) if run.status == "done" else None
        if frame is not None:
            frame.insert(0, "run_id", run.run_id)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"run_id": []})


def collect(study_file, runs_root="runs"):
    """The tables of a study (see the module's docstring) as a dict of DataFrames.

    Runs still waiting for a selection are not planned yet and have no row.
    """
    from valf_study.studies.comparisons import analysis, control_tests

    if not Path(runs_root).is_dir():
        raise FileNotFoundError(
            f"The runs root {runs_root} does not exist, so there are no runs to collect (and "
            "the tables would say every run is pending). Give the folder the sweep wrote "
            "(`--runs-root`, default runs)."
        )
    study = load_study(find_study_file(study_file), runs_root)
    plan = make_plan(study)
    runs = plan.runs
    table = pd.DataFrame([_run_row(run) for run in runs])
    predictions = _per_run(runs, RunDirectory.PREDICTIONS)
    found = analysis(table, predictions, margin=study.analysis["margin"])
    return {
        "runs": table,
        "history": _per_run(runs, RunDirectory.HISTORY),
        "class_weights": _per_run(runs, RunDirectory.CLASS_WEIGHTS),
        "predictions": predictions,
        "comparisons": found["comparisons"],
        "primary": found["primary"],
        "controls": control_tests(table, predictions, study.analysis["controls"]),
        "selections": plan.selection_tables(),
        "study": study,
    }


#: Written last into a results folder: the set is complete (and which files it holds).
MANIFEST = "MANIFEST.json"


def write_results(study_file, runs_root="runs", out="results"):
    """Write ``results/<study>/`` as one set and return the paths written.

    The tables are written into a new folder beside the old one, with :data:`MANIFEST` last,
    and the folder is then renamed into place: a ``valf results`` killed midway leaves the
    previous set whole (or none), never tables from different moments.
    """
    tables = collect(study_file, runs_root)
    folder = inside(out, tables["study"].name)
    staging = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    names = []
    for name in _TABLES:
        write_atomic(staging / f"{name}.parquet", tables[name].to_parquet(index=False))
        names.append(f"{name}.parquet")
    for name in ("runs", "comparisons", "primary", "controls"):
        write_atomic(staging / f"{name}.csv", tables[name].to_csv(index=False))
        names.append(f"{name}.csv")
    write_json(staging / "selections.json", tables["selections"])
    names.append("selections.json")
    # No time in the manifest: the same runs give the same files, byte for byte (the book keys
    # its pages' executions on them).
    write_json(
        staging / MANIFEST,
        {"study": tables["study"].name, "runs_root": str(runs_root), "files": names},
    )
    _swap_into_place(staging, folder)
    return [folder / name for name in [*names, MANIFEST]]


def _swap_into_place(staging, folder):
    """Rename ``staging`` to ``folder``; an existing ``folder`` is moved aside first and then
    removed, so at every moment ``folder`` is a complete set or absent."""
    old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)


def load_results(study_name, out="results"):
    """The tables :func:`write_results` wrote, as a dict of DataFrames (+ ``selections``)."""
    folder = inside(out, study_name)
    if not (folder / "runs.parquet").is_file():
        raise FileNotFoundError(
            f"No results for study {study_name!r} in {folder}. Run `valf sweep {study_name}` "
            f"and `valf results {study_name}` first."
        )
    if not (folder / MANIFEST).is_file():
        raise FileNotFoundError(
            f"The results in {folder} are not a complete set (no {MANIFEST}: written by an "
            f"older valf, or cut short). Run `valf results {study_name}` again."
        )
    tables = {
        name: pd.read_parquet(folder / f"{name}.parquet")
        if name not in _LATER_TABLES or (folder / f"{name}.parquet").is_file()
        else pd.DataFrame()
        for name in _TABLES
    }
    tables["selections"] = read_json(folder / "selections.json")
    return tables


def experiment_runs(runs, experiment):
    """The rows of ``runs`` that belong to ``experiment``.

    Examples
    --------
    >>> runs = pd.DataFrame({"run_id": ["a", "b"], "experiments": ["main;gamma", "gamma"]})
    >>> experiment_runs(runs, "main")["run_id"].tolist()
    ['a']
    """
    member = runs["experiments"].fillna("").str.split(";").apply(lambda names: experiment in names)
    return runs[member]
