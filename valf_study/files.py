"""Writing files so that a reader never sees half of one: every write goes to a temporary name
in the same folder and is renamed into place (atomic on POSIX), and the plain-value readers and
writers of the study's JSON and YAML records.

Every stage writes through here (a data check's memory, a run's files, a study's manifest, the
results tables), so a process killed at any moment leaves complete files or none.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
from pathlib import Path

import yaml

from valf_study.plain import plain

__all__ = ["inside", "now", "read_json", "read_yaml", "write_atomic", "write_json", "write_yaml"]


def write_atomic(path, data):
    """Write text or bytes to ``path`` through a temporary file and a rename; return the path.

    The temporary name is unique per process and thread, so concurrent writers of one file do
    not collide: the last rename wins and every version is complete.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = write_atomic(pathlib.Path(tempfile.mkdtemp()) / "a" / "b.txt", "hello")
    >>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
    ('hello', ['b.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
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
    """``value`` (made plain) as indented JSON, atomically."""
    return write_atomic(path, json.dumps(plain(value), indent=2, default=str) + "\n")


def write_yaml(path, value):
    """``value`` (made plain) as YAML in its own key order, atomically."""
    return write_atomic(path, yaml.safe_dump(plain(value), sort_keys=False))


def read_json(path):
    """A JSON file's value; a file that is not JSON raises a ValueError naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); it may have been cut short. Delete it and "
            "run the step that writes it again."
        ) from None


def read_yaml(path):
    """A YAML file's value (safe loader)."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def now():
    """The current time in UTC, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def inside(root, *parts):
    """``root / parts``, checked to stay under ``root`` once resolved (no ``..``, no absolute
    part, no link out); a ValueError names the path otherwise.

    Examples
    --------
    >>> inside("results", "quick").as_posix()
    'results/quick'
    >>> inside("results", "../elsewhere")
    Traceback (most recent call last):
    ...
    ValueError: results/../elsewhere is outside results; names that make paths must not ...
    """
    root = Path(root)
    path = root.joinpath(*parts)
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(
            f"{path.as_posix()} is outside {root.as_posix()}; names that make paths must not "
            "hold '..', '/' or an absolute path."
        )
    return path
