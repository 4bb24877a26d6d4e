"""A user's own images, one folder per class, as a data set of the study.

Layout: ``root/<class name>/.../<image>``: every image file under a class folder, at any
depth (a class folder may hold one sub-folder per slide or patient). Files are images by their
extension (:data:`IMAGE_EXTENSIONS`); other files, and hidden files and folders, are skipped
and counted. Optionally a *split file*, a CSV with a ``path`` column (relative to the root)
and a ``split`` column (train/val/test), a ``group`` column (a patient, a slide), or both;
or a *group rule*, a regular expression whose first group (or whole match) in an image's
path names its group. No group may sit in two splits.

:func:`index_image_folder` lists what is there without judging it (what ``valf data check``
reports); :func:`read_image_folder` reads it into the study's frame and raises one
:class:`~valf_study.data.errors.DataError` naming every problem.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from valf_study.data.errors import DataError, file_mismatches, listing
from valf_study.data.splits import SPLITS, check_no_group_leakage

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_CLASSES",
    "FolderIndex",
    "check_group_rule",
    "groups_by_rule",
    "index_image_folder",
    "read_image_folder",
    "read_split_file",
]

#: File suffixes read as images (case-insensitive): what OpenCV decodes.
IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
#: The most classes a study handles (tables and figures stay legible up to here).
MAX_CLASSES = 50


@dataclass
class FolderIndex:
    """What a class-per-folder tree holds.

    Attributes
    ----------
    root : pathlib.Path
    class_names : list of str
        The class folders, sorted (the label of a class is its position).
    images : pandas.DataFrame
        ``path`` (absolute), ``image_path`` (relative to root, with ``/``), ``label``,
        ``class_name``.
    skipped : list of str
        Files that are not images by their extension, hidden files, and files directly in
        the root, relative to the root.
    """

    root: Path
    class_names: list
    images: pd.DataFrame
    skipped: list = field(default_factory=list)

    @property
    def empty_classes(self):
        """Class folders that hold no image."""
        present = set(self.images["class_name"])
        return [name for name in self.class_names if name not in present]


def index_image_folder(root, extensions=IMAGE_EXTENSIONS):
    """List the images under ``root`` by class folder; judge nothing.

    Uses :func:`os.scandir` through the tree (a folder of 20,000 images indexes in well under
    a second; ``benchmarks/folder_data.py`` measures it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("cat/a.png", "cat/slide1/b.JPG", "dog/c.tif", "dog/notes.txt"):
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
    ...     _ = (root / name).write_bytes(b"")
    >>> index = index_image_folder(root)
    >>> index.class_names, index.images["image_path"].tolist(), index.skipped
    (['cat', 'dog'], ['cat/a.png', 'cat/slide1/b.JPG', 'dog/c.tif'], ['dog/notes.txt'])
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(
            f"The image folder {root} does not exist (or is not a folder). Point `root` (or "
            "`valf data check DIR`) at a folder with one sub-folder per class."
        )
    suffixes = tuple(s.lower() for s in extensions)
    class_names, rows, skipped = [], [], []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            skipped.append(entry.name)
            continue
        class_names.append(entry.name)
        label = len(class_names) - 1
        for relative in _files_below(entry.path, entry.name):
            if relative.rsplit("/", 1)[-1].startswith(".") or not relative.lower().endswith(
                suffixes
            ):
                skipped.append(relative)
            else:
                rows.append((str(root / relative), relative, label, entry.name))
    images = pd.DataFrame(rows, columns=["path", "image_path", "label", "class_name"])
    return FolderIndex(root, class_names, images, sorted(skipped))


def _files_below(folder, prefix):
    """Relative paths (``prefix/...``) of the files under ``folder``, sorted, hidden folders
    left out."""
    found = []
    for entry in os.scandir(folder):
        relative = f"{prefix}/{entry.name}"
        if entry.is_dir():
            if not entry.name.startswith("."):
                found += _files_below(entry.path, relative)
        else:
            found.append(relative)
    return sorted(found)


def check_group_rule(rule):
    """Compile a group rule (a regular expression with at most one group).

    Examples
    --------
    >>> check_group_rule(r"^[^/]+/(patient\\d+)_").groups
    1
    >>> check_group_rule("(a)(b)")
    Traceback (most recent call last):
    ...
    valf_study.data.errors.DataError: The group rule ... has 2 groups; give at most one: ...
    """
    try:
        pattern = re.compile(rule)
    except (re.error, TypeError) as error:
        raise DataError(f"The group rule {rule!r} is not a regular expression: {error}.") from None
    if pattern.groups > 1:
        raise DataError(
            f"The group rule {rule!r} has {pattern.groups} groups; give at most one: its match "
            "in an image's path (relative to the root) names the image's group."
        )
    return pattern


def groups_by_rule(paths, rule):
    """Each path's group under ``rule`` (:func:`check_group_rule`); DataError naming every path
    it does not match."""
    pattern = check_group_rule(rule)
    groups, unmatched = [], []
    for path in paths:
        match = pattern.search(path)
        if match is None:
            unmatched.append(path)
            groups.append(None)
        else:
            groups.append(match.group(1) if pattern.groups else match.group(0))
    if unmatched:
        raise DataError(
            f"The group rule {rule!r} matches no part of {len(unmatched)} image paths, so they "
            f"have no group:{listing(unmatched)}\nChange the rule so that it finds the group "
            "(a patient, a slide) in every path relative to the root."
        )
    return groups


def read_split_file(split_csv, image_paths):
    """The split file as a frame indexed like ``image_paths``: ``split`` and/or ``group``.

    Raises
    ------
    DataError
        The file is missing or malformed, names unknown split values, or does not list
        exactly the images under the root (naming every file either way).
    """
    split_csv = Path(split_csv).expanduser()
    if not split_csv.is_file():
        raise DataError(f"The split file {split_csv} does not exist.")
    table = pd.read_csv(split_csv, dtype=str, keep_default_na=False)
    columns = [c for c in ("split", "group") if c in table.columns]
    if "path" not in table.columns or not columns:
        raise DataError(
            f"{split_csv} needs a column 'path' (relative to the image folder) and a column "
            f"'split' (train/val/test), 'group', or both; it has {list(table.columns)}."
        )
    table["path"] = table["path"].str.replace("\\", "/", regex=False)
    if "split" in table.columns:
        bad = sorted(set(table["split"]) - set(SPLITS))
        if bad:
            raise DataError(f"{split_csv}: unknown split values {bad}; use {list(SPLITS)}.")
    twice = table.loc[table["path"].duplicated(), "path"].tolist()
    if twice:
        raise DataError(f"{split_csv} lists images more than once:{listing(twice)}")
    problems = file_mismatches(table["path"], image_paths, f"the split file {split_csv}")
    if problems:
        raise DataError(
            f"{split_csv} does not match the images under the folder. "
            + " ".join(problems)
            + "\nList every image once, by its path relative to the folder."
        )
    return table.set_index("path").loc[list(image_paths), columns].reset_index(drop=True)


def read_image_folder(
    root, split_csv=None, class_names=None, *, group_rule=None, extensions=IMAGE_EXTENSIONS
):
    """Read a class-per-folder image set into the study's frame.

    Parameters
    ----------
    root : path
        Folder with one sub-folder per class.
    split_csv : path, optional
        CSV with ``path`` (relative to root) and ``split`` and/or ``group``; every image
        must be listed once and every listed file must exist.
    class_names : sequence of str, optional
        Class folders in label order; default the sorted folder names.
    group_rule : str, optional
        Regular expression naming each image's group from its relative path (not with a
        split file that has a ``group`` column).
    extensions : tuple of str
        File suffixes read as images (case-insensitive).

    Returns
    -------
    pandas.DataFrame
        ``path`` (absolute), ``image_path`` (relative), ``label``, ``class_name``, ``group``
        (the image's own path when nothing groups images), and ``split`` when the split file
        gives one.

    Raises
    ------
    DataError
        Fewer than 2 or more than :data:`MAX_CLASSES` class folders, a class folder without
        images, a malformed split file or group rule, a group in two splits.
    """
    index = index_image_folder(root, extensions)
    root = index.root
    if class_names is None:
        class_names = index.class_names
    missing = [name for name in class_names if name not in index.class_names]
    if missing:
        raise DataError(
            f"Class folders {missing} are missing in {root}; found {index.class_names}."
        )
    if not 2 <= len(class_names) <= MAX_CLASSES:
        raise DataError(
            f"{root} must hold one folder per class, from 2 to {MAX_CLASSES} of them; it has "
            f"{len(class_names)}: {list(class_names)}."
        )
    empty = [name for name in class_names if name in index.empty_classes]
    if empty:
        raise DataError(
            f"Class folders without images ({', '.join(extensions)}) in {root}: {empty}. "
            "Put the images of each class in its folder, or remove the empty folders."
        )
    frame = index.images[index.images["class_name"].isin(class_names)].reset_index(drop=True)
    frame["label"] = frame["class_name"].map({name: i for i, name in enumerate(class_names)})
    given = (
        read_split_file(split_csv, frame["image_path"])
        if split_csv is not None
        else pd.DataFrame(index=frame.index)
    )
    if group_rule is not None:
        if "group" in given.columns:
            raise DataError(
                f"Groups come from the split file {split_csv} and from the group rule "
                f"{group_rule!r}; give them in one place."
            )
        given["group"] = groups_by_rule(frame["image_path"], group_rule)
    frame["group"] = given["group"] if "group" in given.columns else frame["image_path"]
    if "split" in given.columns:
        frame["split"] = given["split"]
        check_no_group_leakage(frame, "group", source=str(split_csv))
    return frame
