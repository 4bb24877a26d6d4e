"""Checking a folder of one's own images before a study runs on it (``valf data check``).

:func:`check_image_folder` looks at everything at once and collects every problem instead of
stopping at the first: the classes and their counts in each split, the imbalance ratio, the
images' sizes and modes, files that do not decode, the same image twice (by its decoded
pixels, so a PNG and a JPEG copy of one picture count too) within or across splits, groups in
two splits, a class missing from validation or test, and files skipped as not images.
:func:`verify_decodable` is the part every run repeats before it trains: it decodes each image
once and remembers, per file size and modification time, which ones it has seen decode, so the
check costs one pass over the data the first time and a listing afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from valf_study.data.errors import DataError, listing
from valf_study.data.folder import MAX_CLASSES, groups_by_rule, index_image_folder, read_split_file
from valf_study.data.splits import SPLITS, check_no_group_leakage, grouped_split
from valf_study.files import write_atomic

__all__ = ["FolderReport", "check_image_folder", "verify_decodable"]


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
    """

    root: Path
    class_names: list
    counts: pd.DataFrame
    split_source: str
    sizes: pd.DataFrame
    modes: pd.Series
    skipped: list = field(default_factory=list)
    problems: list = field(default_factory=list)

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
        Threads decoding images (default: the machine's cores).
    progress : bool
        A progress bar over the images.

    Raises
    ------
    DataError
        Only when ``root`` is not a folder; every other problem is in the report.
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
    decoded = _decode_all(frame["path"], workers, progress)
    problems += _content_problems(frame, decoded)
    return FolderReport(
        root=index.root,
        class_names=index.class_names,
        counts=_counts(frame, index.class_names),
        split_source=source,
        sizes=_sizes(decoded),
        modes=_modes(decoded),
        skipped=index.skipped,
        problems=problems,
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


def _decode_one(path):
    """(path, sha1 of the decoded pixels or None, (height, width), mode, error)."""
    from PIL import Image

    mode = None
    try:
        with Image.open(path) as image:
            mode = image.mode
    except Exception:  # noqa: BLE001 - Pillow may not know a format OpenCV reads
        pass
    pixels = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if pixels is None:
        return path, None, None, mode, "OpenCV does not decode it"
    digest = hashlib.sha1(np.ascontiguousarray(pixels).view(np.uint8)).hexdigest()
    return path, digest, pixels.shape[:2], mode, None


def _decode_all(paths, workers, progress):
    from tqdm.auto import tqdm

    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:  # OpenCV releases the GIL while decoding
        results = pool.map(_decode_one, list(paths))
        return list(
            tqdm(results, total=len(paths), desc="decode", unit="image", disable=not progress)
        )


def _content_problems(frame, decoded):
    problems = []
    unreadable = [
        f"{rel}: {error}" for rel, (_, _, _, _, error) in zip(frame["image_path"], decoded) if error
    ]
    if unreadable:
        problems.append(
            f"{len(unreadable)} files with an image extension do not decode:{listing(unreadable)}"
        )
    digests = pd.Series([d for _, d, _, _, _ in decoded], index=frame.index)
    twins = frame.assign(digest=digests).dropna(subset=["digest"])
    twins = twins[twins["digest"].duplicated(keep=False)]
    if len(twins):
        copies = [
            ", ".join(f"{r.image_path} ({r.split})" for r in part.itertuples())
            for _, part in twins.groupby("digest", sort=False)
        ]
        problems.append(
            f"{len(copies)} images appear more than once (same pixels), within or "
            f"across splits:{listing(copies)}"
        )
    return problems


def _counts(frame, class_names):
    if not len(frame):
        return pd.DataFrame(columns=[*SPLITS, "all"])
    table = pd.crosstab(frame["class_name"], frame["split"]).reindex(
        index=class_names, columns=list(SPLITS), fill_value=0
    )
    table["all"] = table.sum(axis=1)
    return table.rename_axis(index="class", columns=None)


def _sizes(decoded):
    sizes = Counter(shape for _, _, shape, _, _ in decoded if shape is not None)
    rows = [(h, w, n) for (h, w), n in sizes.most_common()]
    return pd.DataFrame(rows, columns=["height", "width", "images"])


def _modes(decoded):
    return pd.Series(
        Counter(mode or "unknown" for _, _, _, mode, _ in decoded), dtype=int
    ).sort_values(ascending=False)


def verify_decodable(paths, stamp_file=None, *, workers=None, progress=False):
    """Decode every image once; raise one DataError naming every file that does not decode.

    Files seen to decode are remembered in ``stamp_file`` (JSON: path -> size and modification
    time), so later calls decode only new or changed files.

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
      .../bad.png
    Replace or remove them...
    """
    paths = [os.fspath(p) for p in paths]
    seen = {}
    if stamp_file is not None and Path(stamp_file).is_file():
        seen = json.loads(Path(stamp_file).read_text())
    stamps = {path: _stamp(path) for path in paths}
    todo = [path for path in paths if seen.get(path) != stamps[path]]
    failed = [path for path, digest, *_ in _decode_all(todo, workers, progress) if digest is None]
    if stamp_file is not None and todo:
        bad = set(failed)
        seen.update({path: stamps[path] for path in todo if path not in bad})
        write_atomic(Path(stamp_file), json.dumps(seen))
    if failed:
        raise DataError(
            f"{len(failed)} files with an image extension do not decode:"
            f"{listing(failed)}\nReplace or remove them (`valf data check DIR` "
            "lists every problem of a folder)."
        )


def _stamp(path):
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return [stat.st_size, stat.st_mtime_ns]
