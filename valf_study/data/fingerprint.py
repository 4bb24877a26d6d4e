"""What a run read, as a fingerprint: results tied to their data.

A run's id hashes its parameters, not its images: a folder whose images change under the same
parameters would otherwise be "complete" with numbers about images it no longer holds.
:func:`run_fingerprint` condenses the exact images a run read (each split's paths, file sizes
and content hashes; the training images after any resampling) into one hash per split and one
for the whole, which the run records (``data.json``) and the sweep compares before it reuses a
complete run. The content hashes of a data set's files are computed once and remembered
(:func:`file_hashes`, keyed on path, size and modification time). A generated data set is its
settings: its fingerprint is the generator's settings and the split's membership, no file is
read.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from valf_study.files import write_atomic

__all__ = ["describe_change", "file_hashes", "run_fingerprint"]


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_hashes(paths, cache_file=None, *, workers=None):
    """``{path: [size, sha256 of the file's bytes]}`` for ``paths``; hashes of files whose
    path, size and modification time are unchanged since the last call come from
    ``cache_file`` (JSON), the others are computed (in threads) and remembered."""
    paths = sorted({os.fspath(p) for p in paths})
    cached = {}
    if cache_file is not None and Path(cache_file).is_file():
        try:
            cached = json.loads(Path(cache_file).read_text(encoding="utf-8"))
        except ValueError:
            cached = {}  # a cache cut short is rebuilt
    stats = {path: os.stat(path) for path in paths}
    found, todo = {}, []
    for path in paths:
        stat = stats[path]
        entry = cached.get(path)
        if entry and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
            found[path] = [stat.st_size, entry[2]]
        else:
            todo.append(path)
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        for path, digest in zip(todo, pool.map(_sha256, todo)):
            found[path] = [stats[path].st_size, digest]
            cached[path] = [stats[path].st_size, stats[path].st_mtime_ns, digest]
    if cache_file is not None and todo:
        write_atomic(Path(cache_file), json.dumps(cached))
    return found


def _hash(items):
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()[:16]


def run_fingerprint(frames, settings=None, cache_file=None):
    """The fingerprint of the images a run reads.

    Parameters
    ----------
    frames : dict
        ``{"train": ..., "val": ..., "test": ...}`` frames with ``path`` and ``image_path``
        (:func:`valf_study.data.prepare.split_frames`).
    settings : dict, optional
        A generated data set's settings: then they, and the splits' membership, are the
        fingerprint, and no file is read.
    cache_file : path, optional
        Where :func:`file_hashes` remembers content hashes.

    Returns
    -------
    dict
        ``{"fingerprint": ..., "basis": "files" or "settings", "splits": {split: {"images":
        n, "fingerprint": ...}}}``; a split's training images count repeats (over-sampling).
    """
    hashes = None
    if settings is None:
        paths = [p for frame in frames.values() for p in frame["path"]]
        hashes = file_hashes(paths, cache_file)
    splits = {}
    for split, frame in frames.items():
        if hashes is None:
            items = sorted(frame["image_path"])
        else:
            items = sorted(
                [relative, *hashes[os.fspath(path)]]
                for relative, path in zip(frame["image_path"], frame["path"])
            )
        splits[split] = {"images": len(frame), "fingerprint": _hash(items)}
    whole = {"splits": {s: v["fingerprint"] for s, v in splits.items()}, "settings": settings}
    return {
        "fingerprint": _hash(whole),
        "basis": "settings" if settings is not None else "files",
        "splits": splits,
    }


def describe_change(recorded, current):
    """What differs between two fingerprints, in a few words per split.

    Examples
    --------
    >>> old = {"splits": {"train": {"images": 10, "fingerprint": "a"},
    ...                   "test": {"images": 4, "fingerprint": "b"}}}
    >>> new = {"splits": {"train": {"images": 10, "fingerprint": "a"},
    ...                   "test": {"images": 3, "fingerprint": "c"}}}
    >>> describe_change(old, new)
    'test: 4 images recorded, 3 now'
    """
    parts = []
    for split, now in current["splits"].items():
        before = recorded.get("splits", {}).get(split)
        if before is None:
            parts.append(f"{split}: not recorded")
        elif before["images"] != now["images"]:
            parts.append(f"{split}: {before['images']} images recorded, {now['images']} now")
        elif before["fingerprint"] != now["fingerprint"]:
            parts.append(f"{split}: the same number of images, other files or contents")
    return "; ".join(parts) or "the data set's settings or files"
