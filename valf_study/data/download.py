"""Fetching LungHist700 from figshare: resumable download, extraction, a check of the result."""

from __future__ import annotations

import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from valf_study.data.errors import DataError
from valf_study.data.lunghist700 import DOWNLOAD_URL, HOW_TO_GET, read_release

__all__ = ["EXPECTED_IMAGES", "download_lunghist700"]

#: Images in the release.
EXPECTED_IMAGES = 691


def download_lunghist700(
    dest, url=DOWNLOAD_URL, progress=True, timeout=10, archive=None, expected_images=EXPECTED_IMAGES
):
    """Download (resuming a partial file), extract and check LungHist700.

    Parameters
    ----------
    dest : path
        Folder for the archive and the extracted release.
    url : str
        Where to download from (default figshare's file URL).
    progress : bool
        Show a progress bar.
    timeout : float
        Seconds to wait for the server before failing.
    archive : path, optional
        An archive already downloaded by hand: extract and check it instead.
    expected_images : int
        Number of images the release must hold (691).

    Returns
    -------
    pathlib.Path
        The release root (the folder holding ``data.csv`` and ``images/``).

    References
    ----------
    - LungHist700, figshare article 25459174 (CC BY 4.0).
      https://doi.org/10.6084/m9.figshare.25459174
    """
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    if archive is None:
        archive = dest / "LungHist700.zip"
        if not archive.exists():
            _fetch(url, archive, progress, timeout)
    archive = Path(archive)
    if not archive.is_file():
        raise DataError(f"The archive {archive} does not exist. {HOW_TO_GET}")
    extracted = dest / "extracted"
    root = _find_release_root(extracted) if extracted.is_dir() else None
    if root is None:
        _extract(archive, extracted)
        root = _find_release_root(extracted)
    if root is None:
        raise DataError(
            f"{archive} holds no folder with data.csv and images/; is it the "
            f"LungHist700 archive? {HOW_TO_GET}"
        )
    frame = read_release(root)
    if len(frame) != expected_images:
        raise DataError(
            f"{root} holds {len(frame)} images, not the {expected_images} of the "
            "release. Download the archive again."
        )
    return root


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


def _extract(archive, folder):
    temporary = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(temporary)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as bundle:
                bundle.extractall(temporary, filter="data")
        else:
            raise DataError(f"{archive} is neither a zip nor a tar archive; download it again.")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
        raise DataError(f"{archive} is damaged ({error}); delete it and download again.") from None
    temporary.rename(folder)  # only a complete extraction gets the final name


def _find_release_root(folder):
    for csv_path in sorted(Path(folder).rglob("data.csv")):
        if (csv_path.parent / "images").is_dir():
            return csv_path.parent
    return None
