"""Writing a generated release to disk, in exactly LungHist700's layout, and recognising one."""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from valf_study.data.synthetic.drawing import render_tile
from valf_study.data.synthetic.metadata import image_dir, synthetic_metadata
from valf_study.data.synthetic.settings import (
    DEFAULTS,
    GENERATOR_VERSION,
    JPEG_QUALITY,
    SYNTHETIC_INFO_FILE,
    check_class_counts,
    check_settings,
)

__all__ = ["make_synthetic_release", "read_synthetic_info"]


def read_synthetic_info(root):
    """The generator's record of a generated release, or None for anything else.

    Examples
    --------
    >>> import tempfile
    >>> read_synthetic_info(tempfile.mkdtemp()) is None
    True
    """
    path = Path(root) / SYNTHETIC_INFO_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def make_synthetic_release(
    dest,
    seed=DEFAULTS["seed"],
    scale=DEFAULTS["scale"],
    image_size=tuple(DEFAULTS["image_size"]),
    difficulty=DEFAULTS["difficulty"],
    class_counts=None,
    progress=True,
    *,
    workers=None,
):
    """Write a generated LungHist700 in the released layout and return its root.

    Writes ``dest/SYNTHETIC.json`` (the generator version and the arguments), then
    ``dest/images/<dir>/<dir>_<res>_<id>.jpg`` (JPEG quality 90), then ``dest/data.csv``
    (columns ``superclass,subclass,resolution,image_id,patient_id``, rows formatted as in the
    release, subclass empty for ``nor``), last, so that an interrupted run never looks complete.

    Parameters
    ----------
    dest : str or path-like
        Root of the release. Created if missing. A directory that holds a ``data.csv`` or an
        ``images`` folder but no ``SYNTHETIC.json`` is refused (it may be the real release);
        a previous generated release there is replaced.
    seed : int
        Seed of everything: the row subset, every pixel. The same seed gives byte-identical
        files.
    scale : float
        In (0, 1]: share of each (patient, magnification, subclass) group kept, at least one
        image each, so every patient stays. 1 mirrors all 691 rows.
    image_size : tuple of int
        (height, width) of the tiles; the release's are 1200x1600, the default 240x320 keeps
        its aspect.
    difficulty : float
        In [0, 1]: 0 makes the classes clearly distinct, higher values make ACA and SCC
        overlap (see the module docstring).
    class_counts : dict, optional
        ``{"aca": n, "nor": n, "scc": n}``, images per class at each magnification, for a
        different imbalance; see :func:`synthetic_metadata`. Needs ``scale=1``.
    progress : bool
        Show a tqdm progress bar.
    workers : int, optional
        Drawing threads; default ``min(4, os.cpu_count())``. The files do not depend on it.

    Returns
    -------
    pathlib.Path
        ``dest``, ready for any reader of the real release.

    Examples
    --------
    >>> import tempfile
    >>> root = make_synthetic_release(tempfile.mkdtemp(), scale=0.05, image_size=(24, 32),
    ...                               progress=False)
    >>> sorted(p.name for p in (root / "images").iterdir())
    ['aca_bd', 'aca_md', 'aca_pd', 'nor', 'scc_bd', 'scc_md', 'scc_pd']
    >>> print((root / "data.csv").read_text().splitlines()[0])
    superclass,subclass,resolution,image_id,patient_id
    >>> read_synthetic_info(root)["seed"]
    0
    """
    settings = check_settings(seed, scale, image_size, difficulty)
    counts = check_class_counts(class_counts)
    workers = _check_workers(workers)
    frame = synthetic_metadata(seed=settings["seed"], scale=settings["scale"], class_counts=counts)
    root = _prepare_destination(Path(dest))
    info = {
        "generator": "valf_study.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "note": "Generated tiles, NOT the LungHist700 release; same layout and metadata format.",
        **settings,
        "class_counts": counts,
        "jpeg_quality": JPEG_QUALITY,
        "n_images": len(frame),
    }
    # The marker first and data.csv last: an interrupted run never looks like a release.
    (root / SYNTHETIC_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (root / "data.csv").unlink(missing_ok=True)
    _draw_images(frame, root / "images", settings, workers, progress)
    frame.to_csv(root / "data.csv", index=False, lineterminator="\n")
    return root


def _check_workers(workers):
    if workers is None:
        return min(4, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"`workers` must be an integer >= 1, received {workers!r}.")
    return int(workers)


def _prepare_destination(root):
    """The release root, emptied of an earlier generated release; never a real one."""
    if root.exists() and not root.is_dir():
        raise ValueError(f"`dest` must be a directory, received the file {str(root)!r}.")
    images = root / "images"
    if read_synthetic_info(root) is None:
        if (root / "data.csv").exists() or images.exists():
            raise ValueError(
                f"`dest` {str(root)!r} holds a data.csv or an images folder without "
                f"{SYNTHETIC_INFO_FILE}; it may be the real release, so it is left alone."
            )
    elif images.exists():
        shutil.rmtree(images)  # a previous generated release: stale files must not linger
    root.mkdir(parents=True, exist_ok=True)
    return root


def _draw_images(frame, images, settings, workers, progress):
    """Draw and write every row's tile as ``images/<dir>/<dir>_<res>_<id>.jpg``."""
    for folder in {image_dir(c, sc) for c, sc in zip(frame.superclass, frame.subclass)}:
        (images / folder).mkdir(parents=True, exist_ok=True)

    def write(row):
        subclass = row.subclass if isinstance(row.subclass, str) else None
        folder = image_dir(row.superclass, subclass)
        tile = render_tile(
            row.superclass,
            subclass,
            row.resolution,
            patient_id=row.patient_id,
            image_id=row.image_id,
            seed=settings["seed"],
            image_size=tuple(settings["image_size"]),
            difficulty=settings["difficulty"],
        )
        ok, encoded = cv2.imencode(
            ".jpg", cv2.cvtColor(tile, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        if not ok:  # pragma: no cover - OpenCV without a JPEG codec
            raise RuntimeError("OpenCV could not encode a JPEG image.")
        (images / folder / f"{folder}_{row.resolution}_{row.image_id}.jpg").write_bytes(
            encoded.tobytes()
        )

    # Threads, not processes: OpenCV and the large NumPy operations release the GIL, and no
    # worker has to import the package again. Every image has its own generator, so the files
    # do not depend on the number of workers or on the order in which they finish.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = pool.map(write, frame.itertuples(index=False))
        if progress:
            from tqdm.auto import tqdm

            done = tqdm(done, total=len(frame), desc="synthetic LungHist700", unit="image")
        for _ in done:
            pass
