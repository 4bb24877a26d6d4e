"""A generic image-folder data set, so the study runs on a user's own images.

Layout: ``root/<class name>/<image>`` (files directly inside each class
folder; sub-folders are not searched, so stray exports do not slip in), and
optionally a split CSV with columns ``path`` (relative to root) and ``split``
(train/val/test), plus an optional ``group`` column (a patient, a slide): no
group may sit in two splits.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from valf.data.errors import DataError, file_mismatches
from valf.data.splits import SPLITS, check_no_group_leakage

__all__ = ["IMAGE_EXTENSIONS", "read_image_folder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def read_image_folder(root, split_csv=None, class_names=None, extensions=IMAGE_EXTENSIONS):
    """Read a class-per-folder image set into the study's frame.

    Parameters
    ----------
    root : path
        Folder with one sub-folder per class.
    split_csv : path, optional
        CSV with ``path`` (relative to root), ``split`` and optionally ``group``.
        Every image must be listed and every listed file must exist.
    class_names : sequence of str, optional
        Class folders in label order; default the sorted folder names.
    extensions : tuple of str
        File suffixes counted as images (case-insensitive).

    Returns
    -------
    pandas.DataFrame
        ``path`` (absolute), ``image_path`` (relative), ``label``,
        ``class_name``, and ``split`` / ``group`` when the CSV gives them.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"The image folder {root} does not exist.")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    if class_names is None:
        class_names = folders
    missing = [name for name in class_names if name not in folders]
    if missing or len(class_names) < 2:
        raise DataError(f"{root} must hold one folder per class (at least 2); class folders "
                        f"{missing or list(class_names)} are missing or too few. Found {folders}.")
    rows, empty = [], []
    for label, name in enumerate(class_names):
        files = sorted(p for p in (root / name).iterdir()
                       if p.is_file() and p.suffix.lower() in extensions)
        if not files:
            empty.append(name)
        rows += [{"path": str(p), "image_path": p.relative_to(root).as_posix(),
                  "label": label, "class_name": name} for p in files]
    if empty:
        raise DataError(f"Class folders without images ({', '.join(extensions)}) in {root}: "
                        f"{empty}.")
    frame = pd.DataFrame(rows)
    if split_csv is not None:
        frame = _attach_split(frame, Path(split_csv))
    return frame


def _attach_split(frame, split_csv):
    if not split_csv.is_file():
        raise DataError(f"The split file {split_csv} does not exist.")
    table = pd.read_csv(split_csv, dtype=str, keep_default_na=False)
    if not {"path", "split"} <= set(table.columns):
        raise DataError(f"{split_csv} needs columns 'path' and 'split' (and optionally "
                        f"'group'); it has {list(table.columns)}.")
    bad = table.loc[~table["split"].isin(SPLITS), "split"].unique().tolist()
    if bad:
        raise DataError(f"{split_csv}: unknown split values {bad}; use {list(SPLITS)}.")
    problems = file_mismatches(table["path"], frame["image_path"], "the split file")
    if problems:
        raise DataError(f"{split_csv} does not match the images under the folder. "
                        + " ".join(problems))
    columns = ["path", "split"] + (["group"] if "group" in table.columns else [])
    merged = frame.merge(table[columns].rename(columns={"path": "image_path"}), on="image_path")
    if "group" in merged.columns:
        check_no_group_leakage(merged, "group", source=str(split_csv))
    return merged
