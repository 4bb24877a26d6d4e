"""Checking images before a study runs on them (``valf data check``, and the sweep's check).

The pass that looks at every image once, before any run trains:

- :func:`image_infos` reads each image whole (:func:`valf_study.data.images.verify_image`:
  the pixel limit on its header, then a full Pillow decode that notices a file cut short or
  corrupt), decodes it as training will (:func:`valf_study.data.decode.decode_image`), and
  returns an :class:`ImageInfo` per file: the digest of its decoded pixels, its size and mode,
  its file size and a hash of its bytes, or what is wrong with it. Given a cache file, it
  remembers every image that passed, by path, file size and modification time, so later calls
  read only new or changed files.
- :func:`image_problems` turns the files that failed into problems, one per kind (too large;
  cut short or corrupt), each naming every file and saying what to do.
- :func:`duplicate_problems` judges images that appear more than once (same decoded pixels,
  so a PNG and a JPEG copy of one picture count too): in two splits or two classes, a problem;
  copies within one class and split, a note.
- :func:`verify_decodable` is what every run on a folder repeats before it trains: the images
  through :func:`image_infos`, one :class:`~valf_study.data.errors.DataError` naming every
  file that failed.

:func:`check_image_folder` looks at a whole folder at once and collects every problem instead
of stopping at the first: the classes and their counts in each split, the imbalance ratio, the
images' sizes and modes, files too large or that do not decode, duplicates, groups in two
splits, a class missing from validation or test, and files skipped as not images.

Examples
--------
The sweep's check of a frame (``path``, ``image_path``, ``class_name``, ``split``):

>>> import tempfile, os, numpy as np, cv2, pandas as pd
>>> root = tempfile.mkdtemp()
>>> paths = [os.path.join(root, name) for name in ("a.png", "b.png", "c.png")]
>>> for path, value in zip(paths, (0, 0, 255)):
...     _ = cv2.imwrite(path, np.full((8, 8, 3), value, np.uint8))
>>> frame = pd.DataFrame({"path": paths, "image_path": ["a.png", "b.png", "c.png"],
...                       "class_name": ["x", "y", "y"], "split": ["train", "test", "train"]})
>>> infos = verify_decodable(frame["path"], os.path.join(root, "infos.json"))
>>> problems, notes = duplicate_problems(frame, infos)
>>> print(problems[0])  # doctest: +ELLIPSIS
1 images appear in more than one class (same pixels, different labels):
  a.png (class x, split train), b.png (class y, split test)
A picture has one label: ...
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from valf_study.data.decode import decode_image
from valf_study.data.errors import DataError, listing
from valf_study.data.folder import MAX_CLASSES, groups_by_rule, index_image_folder, read_split_file
from valf_study.data.images import (
    MAX_PIXELS_VARIABLE,
    ImageFileError,
    check_pixels,
    max_image_pixels,
    verify_image,
)
from valf_study.data.splits import SPLITS, check_no_group_leakage, grouped_split
from valf_study.files import write_atomic

__all__ = [
    "FolderReport",
    "ImageInfo",
    "check_image_folder",
    "duplicate_problems",
    "image_infos",
    "image_problems",
    "verify_decodable",
]

#: Threads that read images when not told: at most this many, so that as many images of up
#: to the pixel limit in memory at once (each decoded by Pillow and by OpenCV) stay a few GB.
MAX_DEFAULT_WORKERS = 8
#: The cache file's format; bumped when what an entry means changes (e.g. the digest).
CACHE_FORMAT = {"format": "valf image infos", "version": 1}
#: Seconds between two saves of the cache while a long pass runs.
SAVE_EVERY_S = 60.0


@dataclass(frozen=True)
class ImageInfo:
    """One image file as the check pass found it.

    Attributes
    ----------
    path : str
        The file, as the caller named it.
    file_size, mtime_ns : int or None
        From :func:`os.stat` (None when the file is missing).
    file_sha256 : str or None
        SHA-256 of the file's bytes: the same file, byte for byte.
    pixel_digest : str or None
        SHA-1 of the decoded 8-bit RGB pixels and their shape, as training reads them
        (:func:`~valf_study.data.decode.decode_image`): the same picture, whatever its
        format. None when the image failed.
    height, width : int or None
        Of the decoded pixels (after any EXIF rotation); for an image above the pixel limit,
        what its header says.
    mode, format : str or None
        Pillow's names for its pixel layout (``RGB``, ``L``, ``I;16``, ...) and format.
    error : str or None
        What is wrong, without the path (None when the image is fine).
    error_kind : str or None
        ``"too large"``, ``"truncated"``, ``"corrupt"`` or ``"missing"``.
    """

    path: str
    file_size: int | None = None
    mtime_ns: int | None = None
    file_sha256: str | None = None
    pixel_digest: str | None = None
    height: int | None = None
    width: int | None = None
    mode: str | None = None
    format: str | None = None
    error: str | None = None
    error_kind: str | None = None

    @property
    def ok(self):
        """Whether the image passed: within the limit, whole, and decoded."""
        return self.error is None


def image_infos(paths, cache_file=None, *, max_pixels=None, workers=None, progress=False):
    """Read every image once; an :class:`ImageInfo` per path, in the order given.

    Each image has its header checked against the pixel limit, is decoded whole by Pillow
    (which notices a file cut short or corrupt) and then by OpenCV as training decodes it (the
    digest of those pixels), and its bytes are hashed.

    Parameters
    ----------
    paths : iterable of path-like
    cache_file : path-like, optional
        JSON file remembering the images that passed, keyed by path with their file size and
        modification time (in nanoseconds): an unchanged file is not read again. Failed images
        are not remembered (they are read again next time, so a replaced file is seen), and a
        remembered image above a lower limit given later fails without being read. Written
        atomically, at the end and every minute of a long pass; a cache that is missing, not
        JSON, or of another format is started afresh.
    max_pixels : int, optional
        The pixel limit (default ``$VALF_MAX_IMAGE_PIXELS`` or 50 megapixels).
    workers : int, optional
        Threads reading images (default: the machine's cores, at most 8).
    progress : bool
        A progress bar over the images read.

    Returns
    -------
    dict
        ``str(path)`` -> :class:`ImageInfo` (a path given twice appears once).
    """
    limit = max_image_pixels(max_pixels)
    paths = list(dict.fromkeys(os.fspath(p) for p in paths))
    cache = _read_cache(cache_file)
    infos, todo = {}, []
    for path in paths:
        stat = _stat(path)
        remembered = cache.get(path)
        if stat is not None and remembered is not None and _same_file(remembered, stat):
            infos[path] = _remembered(path, remembered, limit)
        else:
            todo.append(path)
    if todo:
        infos.update(_inspect_all(todo, limit, cache_file, workers, progress))
    return {path: infos[path] for path in paths}


def _inspect(path, limit):
    """The :class:`ImageInfo` of one file, read now."""
    stat = _stat(path)
    if stat is None:
        return ImageInfo(path, error="no such file", error_kind="missing")
    known = {"file_size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        with open(path, "rb") as handle:
            known["file_sha256"] = hashlib.file_digest(handle, "sha256").hexdigest()
        header = verify_image(path, max_pixels=limit)
        known.update(mode=header.mode, format=header.format)
        pixels = decode_image(path, max_pixels=limit)
    except FileNotFoundError:
        return ImageInfo(path, **known, error="no such file", error_kind="missing")
    except IsADirectoryError:
        return ImageInfo(path, **known, error="it is a folder, not a file", error_kind="corrupt")
    except OSError as error:  # e.g. no permission to read it
        said = error.strerror or str(error)
        return ImageInfo(path, **known, error=f"it cannot be read ({said})", error_kind="corrupt")
    except ImageFileError as error:
        if error.header is not None:
            known.update(
                height=error.header.height,
                width=error.header.width,
                mode=error.header.mode or known.get("mode"),
                format=error.header.format or known.get("format"),
            )
        return ImageInfo(path, **known, error=error.reason, error_kind=error.kind)
    digest = hashlib.sha1(f"{pixels.shape[0]}x{pixels.shape[1]}:".encode())
    digest.update(np.ascontiguousarray(pixels))
    return ImageInfo(
        path,
        **known,
        pixel_digest=digest.hexdigest(),
        height=int(pixels.shape[0]),
        width=int(pixels.shape[1]),
    )


def _inspect_all(paths, limit, cache_file, workers, progress):
    from tqdm.auto import tqdm

    workers = workers or min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS)
    found, unsaved, saved_at = {}, {}, time.monotonic()
    pool = ThreadPoolExecutor(workers)  # Pillow and OpenCV release the GIL to decode
    try:
        results = pool.map(lambda path: _inspect(path, limit), paths)
        bar = tqdm(results, total=len(paths), desc="check", unit="image", disable=not progress)
        for info in bar:
            found[info.path] = info
            if info.ok:
                unsaved[info.path] = info
            if cache_file is not None and time.monotonic() - saved_at > SAVE_EVERY_S:
                _write_cache(cache_file, unsaved)
                unsaved, saved_at = {}, time.monotonic()
    finally:
        # Interrupted (Ctrl-C): the images not started are dropped, those read are kept.
        pool.shutdown(wait=True, cancel_futures=True)
        if cache_file is not None and unsaved:
            _write_cache(cache_file, unsaved)
    return found


def _stat(path):
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _same_file(entry, stat):
    return entry.get("file_size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns


def _remembered(path, entry, limit):
    info = ImageInfo(path, **{name: entry.get(name) for name in _REMEMBERED})
    try:
        check_pixels(path, info.width or 0, info.height or 0, limit)
    except ImageFileError as error:  # passed under a higher limit than today's
        return replace(info, pixel_digest=None, error=error.reason, error_kind=error.kind)
    return info


_REMEMBERED = [
    name for name in ImageInfo.__dataclass_fields__ if name not in ("path", "error", "error_kind")
]


def _read_cache(cache_file):
    """path -> remembered entry; empty when there is no cache, or one this code did not write."""
    if cache_file is None:
        return {}
    try:
        value = json.loads(Path(cache_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(value, dict) or any(value.get(k) != v for k, v in CACHE_FORMAT.items()):
        return {}  # e.g. the stamps of an earlier version: read the images again
    images = value.get("images")
    return images if isinstance(images, dict) else {}


def _write_cache(cache_file, infos):
    """Add ``infos`` to the cache file, keeping what another process added meanwhile."""
    entries = _read_cache(cache_file)
    for path, info in infos.items():
        entries[path] = {name: getattr(info, name) for name in _REMEMBERED}
    write_atomic(Path(cache_file), json.dumps({**CACHE_FORMAT, "images": entries}))


def image_problems(infos, names=None):
    """The failed images as problems, one per kind, each naming every file and what to do.

    Parameters
    ----------
    infos : iterable of ImageInfo, or a dict of them
    names : dict, optional
        path -> the name to show (e.g. relative to the folder); default the path.

    Returns
    -------
    list of str
        At most two: images above the pixel limit; files that do not decode (cut short,
        corrupt, or gone).
    """
    infos = list(infos.values()) if isinstance(infos, dict) else list(infos)
    names = names or {}
    failed = [info for info in infos if not info.ok]
    large = [info for info in failed if info.error_kind == "too large"]
    broken = [info for info in failed if info.error_kind != "too large"]
    problems = []
    if large:
        most = max((info.height or 0) * (info.width or 0) for info in large)
        shown = [f"{names.get(info.path, info.path)}: {info.error}" for info in large]
        problems.append(
            f"{len(large)} images have more pixels than the limit, so they are not decoded:"
            f"{listing(shown)}\nShrink or remove them; or, given the memory (decoding takes "
            f"about 3 bytes per pixel), set the environment variable {MAX_PIXELS_VARIABLE}="
            f"{most} to allow them."
        )
    if broken:
        shown = [f"{names.get(info.path, info.path)}: {info.error}" for info in broken]
        problems.append(
            f"{len(broken)} files with an image extension do not decode:{listing(shown)}\n"
            "Replace them with complete, readable copies, or remove them."
        )
    return problems


def duplicate_problems(frame, infos):
    """Images that appear more than once (same decoded pixels), judged by where they are.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``path`` (the key into ``infos``), ``class_name`` (or ``label``), and ``split`` and
        ``image_path`` (the name shown) when there are such columns.
    infos : dict
        path -> :class:`ImageInfo` (from :func:`image_infos`); images without a digest (failed,
        or absent from ``infos``) are left out.

    Returns
    -------
    (problems, notes) : (list of str, list of str)
        Problems: a picture in two classes (one picture, two labels), a picture in two splits
        (evaluation sees what training saw), each naming every copy with its class and split.
        Notes: copies within one class and one split, harmless (each copy counts once more).
    """
    shown = frame["image_path"] if "image_path" in frame.columns else frame["path"]
    classes = frame["class_name"] if "class_name" in frame.columns else frame["label"]
    splits = frame["split"] if "split" in frame.columns else pd.Series("", index=frame.index)
    rows = pd.DataFrame(
        {
            "shown": shown.astype(str).to_numpy(),
            "class_name": classes.astype(str).to_numpy(),
            "split": splits.fillna("").astype(str).to_numpy(),
            "digest": [
                getattr(infos.get(os.fspath(p)), "pixel_digest", None) for p in frame["path"]
            ],
        }
    ).dropna(subset=["digest"])
    rows = rows[rows["digest"].duplicated(keep=False)]
    across_classes, across_splits, within = [], [], []
    for _, copies in rows.groupby("digest", sort=False):
        described = ", ".join(
            f"{r.shown} (class {r.class_name}" + (f", split {r.split})" if r.split else ")")
            for r in copies.itertuples()
        )
        if copies["class_name"].nunique() > 1:
            across_classes.append(described)
        elif copies["split"].nunique() > 1:
            across_splits.append(described)
        else:
            within.append(described)
    problems, notes = [], []
    if across_classes:
        problems.append(
            f"{len(across_classes)} images appear in more than one class (same pixels, "
            f"different labels):{listing(across_classes)}\nA picture has one label: keep the "
            "copy in its right class and remove the others."
        )
    if across_splits:
        problems.append(
            f"{len(across_splits)} images appear in more than one split (same pixels), so "
            f"evaluation would see pictures training saw:{listing(across_splits)}\nRemove the "
            "copies, or keep every copy of a picture in one split (in a folder of your own: "
            "give them one group, in the split file or by the group rule)."
        )
    if within:
        notes.append(
            f"{len(within)} images have copies in their own class and split (same pixels); "
            f"harmless, though each copy counts once more:{listing(within)}"
        )
    return problems, notes


def verify_decodable(paths, stamp_file=None, *, workers=None, progress=False, max_pixels=None):
    """Check every image once (:func:`image_infos`); raise one DataError naming every failure.

    What each run on a folder repeats before it trains. Images that passed are remembered in
    ``stamp_file`` (the cache of :func:`image_infos`), so later calls read only new or changed
    files.

    Returns
    -------
    dict
        path -> :class:`ImageInfo`, for :func:`duplicate_problems`.

    Raises
    ------
    DataError
        Images above the pixel limit, cut short, corrupt or gone, every one named.

    Examples
    --------
    >>> import tempfile, os, numpy as np, cv2
    >>> root = tempfile.mkdtemp()
    >>> good, bad = os.path.join(root, "good.png"), os.path.join(root, "bad.png")
    >>> _ = cv2.imwrite(good, np.zeros((4, 4, 3), np.uint8))
    >>> _ = open(bad, "w").write("not a PNG")
    >>> verify_decodable([good, bad])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    valf_study.data.errors.DataError: 1 files with an image extension do not decode:
      .../bad.png: it is not an image file Pillow recognises
    Replace them with complete, readable copies, or remove them.
    (`valf data check DIR` lists every problem of a folder.)
    """
    infos = image_infos(
        paths, stamp_file, max_pixels=max_pixels, workers=workers, progress=progress
    )
    problems = image_problems(infos)
    if problems:
        raise DataError(
            "\n".join(problems) + "\n(`valf data check DIR` lists every problem of a folder.)"
        )
    return infos


@dataclass
class FolderReport:
    """What :func:`check_image_folder` found.

    Attributes
    ----------
    root : pathlib.Path
    class_names : list of str
    counts : pandas.DataFrame
        Images per class (rows) and split (columns, with ``all``).
    split_source : str
        Where the split comes from: the split file, or the stratified split a study would make.
    sizes : pandas.DataFrame
        Images per size (``height``, ``width``, ``images``), most common first.
    modes : pandas.Series
        Images per mode as Pillow names it (``RGB``, ``L``, ``RGBA``, ``P``, ``I;16``, ...).
    skipped : list of str
        Files that are not images by their extension.
    problems : list of str
        Every problem, each naming its files; empty when the folder is ready.
    notes : list of str
        What is worth knowing but harmless (copies of an image within its class and split);
        printed, not counted as problems.
    """

    root: Path
    class_names: list
    counts: pd.DataFrame
    split_source: str
    sizes: pd.DataFrame
    modes: pd.Series
    skipped: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def imbalance_ratio(self):
        """Largest class count over smallest (inf when a class is empty)."""
        totals = self.counts["all"] if len(self.counts) else pd.Series(dtype=float)
        if not len(totals):
            return float("nan")
        return float(totals.max() / totals.min()) if totals.min() > 0 else float("inf")

    def text(self):
        """The report as ``valf data check`` prints it."""
        lines = [
            f"Image folder {self.root}: {len(self.class_names)} classes, "
            f"{int(self.counts['all'].sum()) if len(self.counts) else 0} images "
            f"(split: {self.split_source})",
            "",
        ]
        if len(self.counts):
            lines += [self.counts.to_string(), ""]
        lines.append(f"imbalance ratio (largest / smallest class): {self.imbalance_ratio:.2f}")
        if len(self.sizes):
            shown = ", ".join(
                f"{r.height}x{r.width} ({r.images})" for r in self.sizes.head(5).itertuples()
            )
            more = f" and {len(self.sizes) - 5} more sizes" if len(self.sizes) > 5 else ""
            lines.append(f"image sizes (height x width): {shown}{more}")
        if len(self.modes):
            lines.append("image modes: " + ", ".join(f"{m} ({n})" for m, n in self.modes.items()))
        lines.append(
            f"files skipped (not images by their extension): {len(self.skipped)}"
            + (listing(self.skipped, limit=10) if self.skipped else "")
        )
        lines.append("")
        if self.notes:
            lines.append(f"{len(self.notes)} note(s), not problems:")
            lines += [f"- {note}" for note in self.notes]
            lines.append("")
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"- {problem}" for problem in self.problems]
        else:
            lines.append("No problems found: the folder is ready for a study.")
        return "\n".join(lines)


def check_image_folder(
    root,
    split_csv=None,
    *,
    group_rule=None,
    fractions=(0.7, 0.15, 0.15),
    seed=0,
    workers=None,
    progress=False,
    cache_file=None,
    max_pixels=None,
):
    """Check a class-per-folder image set; return a :class:`FolderReport` with every problem.

    Parameters
    ----------
    root : path
        Folder with one sub-folder per class.
    split_csv : path, optional
        Split file (``path`` and ``split`` and/or ``group``; see :mod:`valf_study.data.folder`).
    group_rule : str, optional
        Regular expression naming each image's group in its relative path.
    fractions, seed
        The stratified split a study makes when the split file gives no split.
    workers : int, optional
        Threads reading images (default: the machine's cores, at most 8).
    progress : bool
        A progress bar over the images.
    cache_file : path, optional
        Where :func:`image_infos` remembers the images that passed (default: nowhere, every
        image is read).
    max_pixels : int, optional
        The pixel limit (default ``$VALF_MAX_IMAGE_PIXELS`` or 50 megapixels).

    Raises
    ------
    DataError
        Only when ``root`` is not a folder, or the pixel limit is not a number; every other
        problem is in the report.
    """
    index = index_image_folder(root)
    problems = []
    if not 2 <= len(index.class_names) <= MAX_CLASSES:
        problems.append(
            f"{index.root} must hold one folder per class, from 2 to {MAX_CLASSES} "
            f"of them; it has {len(index.class_names)}: {index.class_names}."
        )
    if index.empty_classes:
        problems.append(f"class folders without images: {index.empty_classes}.")
    frame = index.images.copy()
    frame["group"], frame["split"] = frame["image_path"], ""
    source = _attach_split(frame, split_csv, group_rule, fractions, seed, problems)
    infos = image_infos(
        frame["path"], cache_file, max_pixels=max_pixels, workers=workers, progress=progress
    )
    problems += image_problems(infos, dict(zip(frame["path"], frame["image_path"])))
    duplicates, notes = duplicate_problems(frame, infos)
    problems += duplicates
    return FolderReport(
        root=index.root,
        class_names=index.class_names,
        counts=_counts(frame, index.class_names),
        split_source=source,
        sizes=_sizes(infos.values()),
        modes=_modes(infos.values()),
        skipped=index.skipped,
        problems=problems,
        notes=notes,
    )


def _attach_split(frame, split_csv, group_rule, fractions, seed, problems):
    """Fill ``group`` and ``split`` in place; name what is wrong in ``problems``."""
    given = pd.DataFrame(index=frame.index)
    if split_csv is not None:
        try:
            given = read_split_file(split_csv, frame["image_path"])
        except DataError as error:
            problems.append(str(error))
    if group_rule is not None:
        if "group" in given.columns:
            problems.append(
                f"groups come from the split file {split_csv} and from the group "
                f"rule {group_rule!r}; give them in one place."
            )
        try:
            given["group"] = groups_by_rule(frame["image_path"], group_rule)
        except DataError as error:
            problems.append(str(error))
    if "group" in given.columns:
        frame["group"] = given["group"].to_numpy()
    if "split" in given.columns:
        frame["split"] = given["split"].to_numpy()
        source = f"split file {split_csv}"
    elif len(frame):
        made = grouped_split(frame, fractions, seed, group="group", label="label")
        frame["split"] = made["split"].to_numpy()
        source = f"stratified by class, {'/'.join(f'{f:g}' for f in fractions)}, seed {seed}" + (
            ", grouped" if "group" in given.columns else ""
        )
    else:
        return "none"
    try:
        check_no_group_leakage(frame, "group")
    except DataError as error:
        problems.append(str(error))
    for split in ("val", "test"):
        present = set(frame.loc[frame["split"] == split, "class_name"])
        absent = sorted(set(frame["class_name"]) - present)
        if absent:
            problems.append(f"classes with no image in the {split} split: {absent}.")
    return source


def _counts(frame, class_names):
    if not len(frame):
        return pd.DataFrame(columns=[*SPLITS, "all"])
    table = pd.crosstab(frame["class_name"], frame["split"]).reindex(
        index=class_names, columns=list(SPLITS), fill_value=0
    )
    table["all"] = table.sum(axis=1)
    return table.rename_axis(index="class", columns=None)


def _sizes(infos):
    sizes = Counter((info.height, info.width) for info in infos if info.ok)
    rows = [(h, w, n) for (h, w), n in sizes.most_common()]
    return pd.DataFrame(rows, columns=["height", "width", "images"])


def _modes(infos):
    return pd.Series(Counter(info.mode or "unknown" for info in infos), dtype=int).sort_values(
        ascending=False
    )
