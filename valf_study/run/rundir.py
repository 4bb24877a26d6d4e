"""The run directory, ``<runs_root>/<run_id>/``: the unit of truth of the study.

A run's directory is named by its id alone, which hashes every parameter that defines it
(:func:`valf_study.run.parameters.run_id`), so a run that two studies share (the paper's grid
and the learning-rate selection, an ablation and the main grid) is trained once and read by
both. :class:`RunDirectory` is the one place that knows its files' names, how to read them and
how to write them:

=====================  =========================================================
``params.yaml``        the resolved parameters
``status.json``        ``running``, ``ok`` or ``failed`` (with the traceback)
``split.csv``          every image the run used, once: class, group, split
``history.csv``        one row per epoch, from 1 (Keras' CSVLogger writes ``backup/history_log.csv``
                       while training; this is its deduplicated copy)
``class_weights.csv``  weighted losses: the weights, per epoch for the adaptive ones
``metrics.json``       test and validation metrics, training summary, class names
``predictions.csv``    each val/test image: true class, probabilities, prediction
``confusion.csv``      row-normalised test confusion matrix
``environment.json``   package versions, git commit, device
``data.json``          the fingerprint of the images the run read (each split's files)
``best.weights.h5``    the best-val_loss weights (``keep_weights``)
``train.ipynb``        the executed notebook (sweep runs)
``run.log``            the run's process output (sweep runs): its first line names the run
``DONE``               written last: the run is complete
=====================  =========================================================

Every file is written to a temporary name and renamed into place (:mod:`valf_study.files`),
so a run killed at any moment leaves complete files or none; ``backup/`` holds the training
state between epochs and is removed once the run is complete.
"""

from __future__ import annotations

import os
import shutil
import traceback as _traceback
from pathlib import Path

from valf_study.files import now, read_json, read_yaml, write_atomic, write_json, write_yaml

__all__ = ["RunDirectory"]


class RunDirectory(os.PathLike):
    """One run's folder: its file names, and reading and writing them.

    Parameters
    ----------
    path : path-like
        ``<runs_root>/<run_id>``; its name is the run id.

    Examples
    --------
    >>> import tempfile
    >>> run = RunDirectory(tempfile.mkdtemp())
    >>> run.status()["status"], run.is_done()
    ('pending', False)
    >>> _ = run.write_status("ok")
    >>> run.mark_done()
    >>> run.status()["status"], run.is_done()
    ('ok', True)
    """

    PARAMS = "params.yaml"
    STATUS = "status.json"
    SPLIT = "split.csv"
    HISTORY = "history.csv"
    CLASS_WEIGHTS = "class_weights.csv"
    METRICS = "metrics.json"
    PREDICTIONS = "predictions.csv"
    CONFUSION = "confusion.csv"
    ENVIRONMENT = "environment.json"
    DATA = "data.json"
    BEST_WEIGHTS = "best.weights.h5"
    NOTEBOOK = "train.ipynb"
    LOG = "run.log"
    DONE = "DONE"
    BACKUP = "backup"
    #: What the sweep hands the run's own process (:mod:`valf_study.studies.execute`).
    REQUEST = ".execute.json"
    #: Who executes the run now (process, host, study), while it holds the run's lock.
    HOLDER = ".holder.json"

    def __init__(self, path):
        self.path = Path(path)

    @classmethod
    def of(cls, params):
        """``<runs_root>/<run_id>`` of resolved parameters."""
        from valf_study.run.parameters import run_id

        return cls(Path(params["runs_root"]) / run_id(params))

    def __fspath__(self):
        return os.fspath(self.path)

    def __str__(self):
        return str(self.path)

    def __truediv__(self, name):
        return self.path / name

    def __eq__(self, other):
        return isinstance(other, RunDirectory) and self.path == other.path

    def __hash__(self):
        return hash(self.path)

    def __repr__(self):
        return f"RunDirectory({str(self.path)!r})"

    @property
    def name(self):
        """The run id."""
        return self.path.name

    @property
    def backup(self):
        """The folder of the training state between epochs."""
        return self.path / self.BACKUP

    # -- status ----------------------------------------------------------------------------
    def lock(self, purpose="run"):
        """A lock that one process at a time holds while it works on the run (a ``filelock``).

        ``purpose`` names the lock: ``"run"`` is held by the process that executes a swept run's
        notebook, ``"train"`` by the process that trains it. Two sweeps that share a run, or a
        run retried while an orphaned attempt still dies, take turns instead of writing the same
        files at once; the operating system releases the lock of a process that dies.
        """
        from filelock import FileLock

        self.path.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path / f".{purpose}.lock"))

    def hold(self, **who):
        """Record who executes the run (with this process's id and host), for the messages of
        other processes that find its lock taken."""
        write_json(self.path / self.HOLDER, {"pid": os.getpid(), "host": _host(), **who})

    def holder(self):
        """Who last recorded executing the run, as one phrase, or None."""
        try:
            who = read_json(self.path / self.HOLDER)
        except (OSError, ValueError):
            return None
        study = f"the sweep of study {who['study']!r}, " if who.get("study") else ""
        return f"{study}process {who.get('pid')} on {who.get('host')}"

    def write_status(self, status, error=None, **extra):
        """Record ``running``, ``ok`` or ``failed``; an ``error`` (exception or text) adds its
        traceback. ``running`` records this process and host, so that a reader can tell a run
        whose process died from one still running."""
        record = {"status": status, "time": now(), **extra}
        if status == "running":
            record.update(pid=os.getpid(), host=_host())
        if error is not None:
            if isinstance(error, BaseException):
                record["error"] = f"{type(error).__name__}: {error}"
                record["traceback"] = "".join(_traceback.format_exception(error))
            else:
                text = str(error).strip()
                record["error"] = text.splitlines()[-1] if text else ""
                record["traceback"] = str(error)
        return write_json(self.path / self.STATUS, record)

    def status(self):
        """The run's status record, ``{"status": "pending"}`` if it never started.

        A run recorded as ``running`` whose process is gone (on this host) is reported as
        ``failed``: it died without saying why (killed, out of memory, out of disk), and a sweep
        resumes it from its last finished epoch.
        """
        path = self.path / self.STATUS
        if not path.is_file():
            return {"status": "pending"}
        record = read_json(path)
        if record.get("status") == "running" and _died(record):
            record = {
                **record,
                "status": "failed",
                "error": f"the run's process ({record['pid']} on {record['host']}) ended "
                "without recording why (killed, out of memory or out of disk); run the sweep "
                "again to resume it",
            }
        return record

    def is_done(self):
        return (self.path / self.DONE).is_file()

    def mark_done(self):
        """Write ``DONE`` (last of all files) and drop the training backup."""
        write_atomic(self.path / self.DONE, now() + "\n")
        shutil.rmtree(self.backup, ignore_errors=True)

    # -- records ---------------------------------------------------------------------------
    def read_params(self):
        return read_yaml(self.path / self.PARAMS)

    def write_params(self, record):
        return write_yaml(self.path / self.PARAMS, record)

    def read_metrics(self):
        """``metrics.json``, or None before the run wrote it."""
        path = self.path / self.METRICS
        return read_json(path) if path.is_file() else None

    def read_data(self):
        """``data.json`` (what the run read), or None for a run recorded before valf 0.2."""
        path = self.path / self.DATA
        return read_json(path) if path.is_file() else None

    def read_environment(self):
        path = self.path / self.ENVIRONMENT
        return read_json(path) if path.is_file() else None

    def write_json(self, name, value):
        return write_json(self.path / name, value)

    def write_table(self, name, frame, **to_csv):
        """A pandas frame as CSV (no index unless asked)."""
        return write_atomic(self.path / name, frame.to_csv(**{"index": False, **to_csv}))

    def read_table(self, name, **read_csv):
        """A CSV file of the run as a frame, or None when absent."""
        import pandas as pd

        path = self.path / name
        return pd.read_csv(path, **read_csv) if path.is_file() else None

    def read(self):
        """The tables of the run: ``params``, ``metrics``, ``history``, ``confusion``,
        ``predictions`` and ``class_weights`` (None when absent)."""
        return {
            "params": self.read_params(),
            "metrics": self.read_metrics(),
            "history": self.read_table(self.HISTORY),
            "confusion": self.read_table(self.CONFUSION, index_col=0),
            "predictions": self.read_table(self.PREDICTIONS),
            "class_weights": self.read_table(self.CLASS_WEIGHTS),
        }


def _host():
    import socket

    return socket.gethostname()


def _died(record):
    """Whether a ``running`` record's process is gone (only decidable on its own host)."""
    pid, host = record.get("pid"), record.get("host")
    if pid is None or host != _host():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
