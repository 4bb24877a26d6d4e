"""Fetching LungHist700 from figshare: resumable download, extraction, a check of the result.

``download_lunghist700(dest)`` leaves the release root *at* ``dest``: ``dest/data.csv`` and
``dest/images/...``, whatever folders the archive nests them in, so a study whose data root is
``dest`` reads it as it is. How it gets there, so that no interruption ever looks complete:

1. The archive (``dest/LungHist700.zip``, downloaded with HTTP Range resumption from
   ``LungHist700.zip.part``, or the file given with ``archive``) is extracted into the hidden
   staging folder ``dest/.valf-extracting``; a staging folder left by a killed run is removed
   first.
2. The staged tree is checked before anything reaches ``dest``: no ``SYNTHETIC.json`` anywhere
   (a generated stand-in is never taken for the release), one folder holding ``data.csv`` and
   ``images/``, its image tree exactly what its ``data.csv`` names, and its ``data.csv`` the
   release's own (:func:`valf_study.data.lunghist700.reference_metadata`, 691 images of 45
   patients), naming every image that differs.
3. The content of that folder is renamed into ``dest``, ``data.csv`` last, with a journal
   (``dest/.valf-download.json``) naming what was moved; a later run removes what a killed move
   left. A tree this command installed and later found damaged is installed again from the
   archive; a tree it did not install is never deleted.

A damaged or wrong archive that this command downloaded is set aside as
``LungHist700.zip.corrupt`` (so the next run downloads afresh); an archive given by hand is left
where it is. Extraction is safe: tar members pass ``filter="data"``, and zip members with ``..``
or absolute paths are written inside the staging folder (``zipfile``'s own sanitising).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from valf_study.data.errors import DataError
from valf_study.data.lunghist700 import (
    DOWNLOAD_URL,
    HOW_TO_GET,
    read_release,
    reference_metadata,
    release_differences,
)
from valf_study.data.synthetic.settings import SYNTHETIC_INFO_FILE

__all__ = ["ARCHIVE_NAME", "EXPECTED_IMAGES", "download_lunghist700"]

#: Images in the release.
EXPECTED_IMAGES = 691
#: Name of the downloaded archive inside ``dest``.
ARCHIVE_NAME = "LungHist700.zip"
STAGING = ".valf-extracting"
JOURNAL = ".valf-download.json"
LOCK = ".valf-download.lock"
#: Where earlier versions of this command extracted to (removed once the release is in place).
OLD_FOLDERS = ("extracted", "extracted.tmp")


def download_lunghist700(
    dest, url=DOWNLOAD_URL, progress=True, timeout=10, archive=None, *, reference=None
):
    """Download (resuming a partial file), extract and check LungHist700 into ``dest``.

    Parameters
    ----------
    dest : path
        The release root to make: ``dest/data.csv`` and ``dest/images/`` (the downloaded
        archive is kept beside them, as ``dest/LungHist700.zip``).
    url : str
        Where to download from (default figshare's file URL).
    progress : bool
        Show a progress bar.
    timeout : float
        Seconds to wait for the server before failing.
    archive : path, optional
        An archive already downloaded by hand: extract and check it instead.
    reference : pandas.DataFrame, optional
        The metadata the release must match (default: the release's ``data.csv`` as packaged
        with valf, 691 images; tests pass a part of it).

    Returns
    -------
    pathlib.Path
        ``dest``, now holding the release.

    Raises
    ------
    DataError
        Offline or a failed download (saying how to fetch the archive by hand), a damaged or
        wrong archive, a generated data set, or a ``dest`` holding a tree this command did not
        install.

    References
    ----------
    - LungHist700, figshare article 25459174 (CC BY 4.0).
      https://doi.org/10.6084/m9.figshare.25459174
    """
    from filelock import FileLock

    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    reference = reference_metadata() if reference is None else reference
    with FileLock(str(dest / LOCK)):  # two commands at once: the second waits, then finds it
        _clean_leftovers(dest)
        if _installed_release(dest, reference):
            return dest
        downloaded = archive is None or _same_file(archive, dest / ARCHIVE_NAME)
        if archive is None:
            archive = dest / ARCHIVE_NAME
            if not archive.exists():
                _fetch(url, archive, progress, timeout)
        archive = Path(archive).expanduser()
        if not archive.is_file():
            raise DataError(f"The archive {archive} does not exist. {HOW_TO_GET}")
        staging = dest / STAGING
        try:
            root = _stage(archive, staging, reference, downloaded)
            _move_into_place(root, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for name in OLD_FOLDERS:
            shutil.rmtree(dest / name, ignore_errors=True)
    return dest


def _same_file(path, other):
    path = Path(path).expanduser()
    return path.exists() and other.exists() and path.samefile(other)


def _clean_leftovers(dest):
    """Remove what a killed run left: its staging folder, and what a killed move put in place."""
    shutil.rmtree(dest / STAGING, ignore_errors=True)
    journal = _read_journal(dest)
    if journal is not None and not journal.get("complete"):
        _remove_installed(dest, journal)


def _read_journal(dest):
    path = dest / JOURNAL
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"entries": ["data.csv", "images"], "complete": False}


def _write_journal(dest, entries, complete):
    temporary = dest / (JOURNAL + ".tmp")
    temporary.write_text(
        json.dumps({"entries": entries, "complete": complete}, indent=2) + "\n", encoding="utf-8"
    )
    os.replace(temporary, dest / JOURNAL)


def _remove_installed(dest, journal):
    # data.csv first, so that what is left never looks like a release
    for name in sorted(journal.get("entries", []), key=lambda n: n != "data.csv"):
        target = dest / Path(name).name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    (dest / JOURNAL).unlink(missing_ok=True)


def _installed_release(dest, reference):
    """True when ``dest`` holds the release; a tree this command installed that is damaged
    since is removed (to be installed again); anything else at ``dest`` is refused, never
    deleted."""
    journal = _read_journal(dest)
    if not (dest / "data.csv").exists():
        if journal is not None:  # ours, its data.csv deleted since
            _remove_installed(dest, journal)
        return False
    if (dest / SYNTHETIC_INFO_FILE).exists():
        raise DataError(
            f"{dest} holds a generated data set ({SYNTHETIC_INFO_FILE}), not the LungHist700 "
            f"release. Give the download another --dest, or delete {dest} first."
        )
    try:
        problem = _release_problem(read_release(dest), reference)
        problem = problem and f"the tree {problem}"
    except DataError as error:
        problem = str(error)
    if problem is None:
        return True
    if journal is not None:  # ours, damaged since: install it again
        _remove_installed(dest, journal)
        return False
    raise DataError(
        f"{dest} already holds a data.csv that is not the LungHist700 release, and this command "
        f"did not put it there, so it is left alone. Delete {dest / 'data.csv'} and "
        f"{dest / 'images'} (or give another --dest), then run the command again. What is "
        f"wrong: {problem}"
    )


def _release_problem(frame, reference):
    """What makes the checked tree ``frame`` not the release (a predicate with a listing of
    the images that differ), or None."""
    differences = release_differences(frame, reference)
    if not differences:
        return None
    count = (
        f"holds {len(frame)} images, not the {len(reference)} of the release, and "
        if len(frame) != len(reference)
        else ""
    )
    return f"{count}differs from the release's data.csv (packaged with valf). " + " ".join(
        differences
    )


def _stage(archive, staging, reference, downloaded):
    """Extract ``archive`` into ``staging`` and check it; return the release root inside."""

    def refuse(what, details=""):
        if downloaded:
            aside = archive.with_name(archive.name + ".corrupt")
            os.replace(archive, aside)
            todo = (
                f"It was set aside as {aside}; run the command again to download it afresh. "
                f"If that fails too: {HOW_TO_GET}"
            )
        else:
            todo = f"It is left as it is. {HOW_TO_GET}"
        raise DataError(f"{archive} {what}." + (f" {details}\n" if details else " ") + todo)

    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                for member in bundle.infolist():  # writes only inside staging (sanitised names)
                    bundle.extract(member, staging)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as bundle:
                bundle.extractall(staging, filter="data")
        else:
            refuse("is neither a zip nor a tar archive (damaged, or not the archive)")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError) as error:
        refuse(f"is damaged ({error})")
    generated = sorted(staging.rglob(SYNTHETIC_INFO_FILE))
    if generated:
        inside = generated[0].relative_to(staging).as_posix()
        refuse(
            f"holds a generated data set ({inside}, written by `valf data make-synthetic`), "
            "not the LungHist700 release"
        )
    root = _find_release_root(staging)
    if root is None:
        refuse("holds no folder with data.csv and images/, so it is not the LungHist700 archive")
    try:
        frame = read_release(root)
    except DataError as error:
        inside = str(error).replace(str(staging) + os.sep, "").replace(str(staging), ".")
        refuse("does not hold a sound LungHist700 release", f"Inside the archive: {inside}")
    problem = _release_problem(frame, reference)
    if problem is not None:
        refuse("is not the LungHist700 release", f"The tree in the archive {problem}")
    return root


def _move_into_place(root, dest):
    """Rename the content of ``root`` into ``dest``, ``data.csv`` last, under a journal."""
    entries = sorted((p.name for p in root.iterdir()), key=lambda n: (n == "data.csv", n))
    taken = [name for name in entries if (dest / name).exists() or (dest / name).is_symlink()]
    if taken:
        raise DataError(
            f"{dest} already holds {', '.join(taken)}, which the release would replace; this "
            f"command did not put them there, so they are left alone. Move them away (or give "
            "another --dest), then run the command again."
        )
    _write_journal(dest, entries, complete=False)
    for name in entries:
        os.replace(root / name, dest / name)
    _write_journal(dest, entries, complete=True)


def _fetch(url, target, progress, timeout):
    from tqdm.auto import tqdm

    partial = target.with_name(target.name + ".part")
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the partial file is already complete
            partial.rename(target)
            return
        raise DataError(f"Downloading {url} failed: HTTP {error.code}. {HOW_TO_GET}") from None
    except (TimeoutError, urllib.error.URLError, OSError) as error:
        raise DataError(
            f"Cannot reach {url} ({getattr(error, 'reason', error)}): this machine "
            f"seems offline. {HOW_TO_GET}"
        ) from None
    with response:
        if offset and response.status != 206:  # the server ignored Range: start over
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else None
        mode = "ab" if offset else "wb"
        with (
            open(partial, mode) as handle,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                desc="LungHist700",
                disable=not progress,
            ) as bar,
        ):
            while chunk := response.read(1 << 20):
                handle.write(chunk)
                bar.update(len(chunk))
    if total is not None and partial.stat().st_size != total:
        raise DataError(
            f"The download of {url} stopped at {partial.stat().st_size} of {total} "
            "bytes; run the command again to resume."
        )
    partial.rename(target)


def _find_release_root(folder):
    """The shallowest folder under ``folder`` holding ``data.csv`` and ``images/``."""
    found = [
        csv_path.parent
        for csv_path in Path(folder).rglob("data.csv")
        if (csv_path.parent / "images").is_dir()
    ]
    return min(found, key=lambda p: (len(p.parts), str(p))) if found else None
