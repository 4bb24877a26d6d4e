"""Where a project's own folders are: its study files, its training notebook, its book.

The study's code is installed (``valf_study``), the project is a folder: the one that holds
``studies/`` and ``notebooks/train.ipynb`` (this repository, or a copy of its layout). Commands
and book pages find it from the working directory, walking up, or from ``VALF_PROJECT``; no
module finds it from where the code is installed.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ProjectNotFound", "notebook", "root"]

VARIABLE = "VALF_PROJECT"


class ProjectNotFound(FileNotFoundError):
    """No project folder above the working directory."""


def _is_project(folder):
    return (folder / "studies").is_dir() and (folder / "notebooks" / "train.ipynb").is_file()


def root(start=None):
    """The project folder: ``VALF_PROJECT`` if set, else the first folder from ``start`` (the
    working directory) upwards that holds ``studies/`` and ``notebooks/train.ipynb``.

    Raises
    ------
    ProjectNotFound
        Saying where it looked and what to do.
    """
    if os.environ.get(VARIABLE):
        folder = Path(os.environ[VARIABLE]).expanduser().resolve()
        if not _is_project(folder):
            raise ProjectNotFound(
                f"{VARIABLE}={folder} is not a valf project: it needs studies/ and "
                "notebooks/train.ipynb."
            )
        return folder
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if _is_project(folder):
            return folder
    raise ProjectNotFound(
        f"No valf project at or above {start}: a project folder holds studies/ and "
        f"notebooks/train.ipynb. Run from inside one (a clone of the study's repository), or "
        f"set {VARIABLE} to it."
    )


def notebook(start=None):
    """The project's training notebook."""
    return root(start) / "notebooks" / "train.ipynb"
