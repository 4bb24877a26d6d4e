"""Write tiny LungHist700-layout releases for tests (random 16x16 JPEGs, fast)."""

from pathlib import Path

import cv2
import numpy as np

from valf_study.data import lunghist700


def write_release(root, frame=None, size=(16, 16), seed=0):
    """Write ``data.csv`` and one small JPEG per row; return the root."""
    root = Path(root)
    frame = lunghist700.reference_metadata() if frame is None else frame
    rng = np.random.default_rng(seed)
    for row in frame.itertuples(index=False):
        path = root / lunghist700.image_relative_path(
            row.superclass, row.subclass, row.resolution, row.image_id
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 256, size=(*size, 3), dtype=np.uint8))
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "data.csv", index=False)
    return root


def zip_release(root, archive, prefix=""):
    """Zip every file under ``root`` into ``archive``, under the folder ``prefix`` (as a
    published archive may nest the release); return the archive."""
    import zipfile

    root, archive = Path(root), Path(archive)
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                name = path.relative_to(root).as_posix()
                bundle.write(path, f"{prefix}/{name}" if prefix else name)
    return archive
