"""What one Keras backend does with VALF and the input pipeline, printed as JSON.

Keras fixes its backend at import, so :mod:`tests.test_backends` runs this module once per
backend, in a process of its own (``KERAS_BACKEND=jax python -m tests.backend_probe``):

- a softmax layer trained with learning rate 0 (its predictions never change) on VALF, with
  :class:`valf.reweighting.ValidationAdaptiveWeights` (warm-up 1, rate 1: the weights move from
  the first epoch on); ``VALF_PROBE_JIT=1`` compiles the train step with ``jit_compile=True``.
  Printed: the loss Keras reports for each epoch, the weights the callback set after each
  epoch, the labels and the predictions, for the test to recompute with NumPy;
- the same for CDB (:class:`valf.reweighting.ClassDifficultyWeights`, dynamic tau, warm-up 2,
  one class at validation accuracy 1, so weight 0) and DRW
  (:class:`valf.reweighting.DeferredReweighting`, warm-up 2), from
  :mod:`tests.library.fit_probe`;
- the first augmented batch of :class:`valf_study.data.pipeline.ImageBatches` over a few generated
  images, seed 3, as a SHA-256 of its pixels and labels;
- whether TensorFlow was imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from tests.library.fit_probe import cdb_epochs, drw_epochs, valf_epochs


def first_augmented_batch():
    import cv2

    from valf_study.data.augment import train_transform
    from valf_study.data.pipeline import ImageBatches

    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as folder:
        rows = []
        for i in range(6):
            path = Path(folder) / f"image_{i}.png"
            cv2.imwrite(str(path), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
            rows.append({"path": str(path), "label": i % 3})
        import pandas as pd

        batches = ImageBatches(
            pd.DataFrame(rows), train_transform(fast=True, size=(24, 32)), 4, shuffle=True, seed=3
        )
        images, labels = batches[0]
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    digest.update(np.ascontiguousarray(labels).tobytes())
    return {"shape": list(images.shape), "sha256": digest.hexdigest()}


def main():
    import keras

    jit_compile = os.environ.get("VALF_PROBE_JIT") == "1"
    result = {
        "backend": keras.backend.backend(),
        "valf": valf_epochs(jit_compile),
        "cdb": cdb_epochs(jit_compile),
        "drw": drw_epochs(jit_compile),
        "batch": first_augmented_batch(),
    }
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(result))


if __name__ == "__main__":
    main()
