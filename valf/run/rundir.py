"""The run directory, ``<runs_root>/<run_id>/``: the unit of truth of the study.

A run's directory is named by its id alone, which hashes every parameter that defines it
(:func:`valf.run.parameters.run_id`), so a run that two studies share (the paper's grid and the
learning-rate selection, an ablation and the main grid) is trained once and read by both.

Files (written by :func:`valf.run.train.train`; the log, the executed notebook and ``DONE`` of
a swept run by the sweep):

=====================  =========================================================
``params.yaml``        the resolved parameters
``status.json``        ``running``, ``ok`` or ``failed`` (with the traceback)
``split.csv``          every image the run used, once: class, group, split
``history.csv``        one row per epoch, from 1 (Keras' CSVLogger writes ``backup/history_log.csv``
                       while training; this is its deduplicated copy)
``class_weights.csv``  weighted losses: the weights, per epoch for DWFL/VALF
``metrics.json``       test and validation metrics, training summary, class names
``predictions.csv``    each val/test image: true class, probabilities, prediction
``confusion.csv``      row-normalised test confusion matrix
``environment.json``   package versions, git commit, device
``best.weights.h5``    the best-val_loss weights (``keep_weights``)
``train.ipynb``        the executed notebook (sweep runs)
``run.log``            the run's process output (sweep runs): its first line names the run
``DONE``               written last: the run is complete
=====================  =========================================================

Every file is written to a temporary name and renamed into place, so a run
killed at any moment leaves complete files or none; ``backup/`` holds the
training state between epochs and is removed once the run is complete.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import traceback as _traceback
from pathlib import Path

import yaml

from valf._plain import plain

__all__ = [
    "DONE",
    "LOG",
    "is_done",
    "mark_done",
    "read_status",
    "run_directory",
    "run_lock",
    "write_atomic",
    "write_json",
    "write_status",
]

DONE = "DONE"
STATUS = "status.json"
LOG = "run.log"


def run_directory(params):
    """``<runs_root>/<run_id>`` of resolved parameters."""
    from valf.run.parameters import run_id

    return Path(params["runs_root"]) / run_id(params)


def run_lock(run_dir, purpose="run"):
    """A lock that one process at a time holds while it works on the run (a ``filelock``).

    ``purpose`` names the lock: ``"run"`` is held by the process that executes a swept run's
    notebook, ``"train"`` by the process that trains it. Two sweeps that share a run, or a run
    retried while an orphaned attempt still dies, take turns instead of writing the same files
    at once; the operating system releases the lock of a process that dies.
    """
    from filelock import FileLock

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return FileLock(str(Path(run_dir) / f".{purpose}.lock"))


def write_atomic(path, data):
    """Write text or bytes to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        with open(temporary, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_json(path, value):
    return write_atomic(
        path, json.dumps(plain(value), indent=2, sort_keys=False, default=str) + "\n"
    )


def write_yaml(path, value):
    return write_atomic(path, yaml.safe_dump(plain(value), sort_keys=False))


def read_yaml(path):
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def now():
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_status(run_dir, status, error=None, **extra):
    """Record ``running``, ``ok`` or ``failed``; an ``error`` (exception or text) adds its
    traceback."""
    record = {"status": status, "time": now(), **extra}
    if error is not None:
        if isinstance(error, BaseException):
            record["error"] = f"{type(error).__name__}: {error}"
            record["traceback"] = "".join(_traceback.format_exception(error))
        else:
            record["error"] = str(error).strip().splitlines()[-1] if str(error).strip() else ""
            record["traceback"] = str(error)
    return write_json(Path(run_dir) / STATUS, record)


def read_status(run_dir):
    """The run's status record, ``{"status": "pending"}`` if it never started."""
    path = Path(run_dir) / STATUS
    if not path.is_file():
        return {"status": "pending"}
    return json.loads(path.read_text(encoding="utf-8"))


def is_done(run_dir):
    return (Path(run_dir) / DONE).is_file()


def mark_done(run_dir):
    """Write ``DONE`` (last of all files) and drop the training backup."""
    import shutil

    write_atomic(Path(run_dir) / DONE, now() + "\n")
    shutil.rmtree(Path(run_dir) / "backup", ignore_errors=True)
