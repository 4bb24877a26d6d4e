"""Input pipeline throughput against a backbone's training throughput, on this machine.

Writes ~40 smooth-noise JPEGs of 1200x1600 to a temporary folder, then measures, in images
per second over one epoch each:

- the training pipeline (:class:`valf_study.data.pipeline.ImageBatches` with the faithful and the
  fast recipe of :mod:`valf_study.data.augment`), without a decode cache and with one (first epoch:
  decode and write; second epoch: read back), with ``--workers`` threads fetching batches as
  Keras' enqueuer does;
- MobileNetV3Small (weights=None, include_preprocessing=False) training at 300x400, batch 4;

and prints the ratio pipeline / model (goal: >= 2, so the model never waits for data). Both
were measured standalone; in training they share the CPU, so the ratio is an upper bound.

Usage::

    NO_ALBUMENTATIONS_UPDATE=1 .venv/bin/python benchmarks/input_pipeline.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from valf_study.data.augment import eval_transform, output_size, train_transform
from valf_study.data.decode import DecodedImageCache
from valf_study.data.pipeline import ImageBatches

FULL_SIZE = (1200, 1600)


def write_images(folder, count, seed=0):
    """``count`` smooth-noise 1200x1600 JPEGs (quality 90), labels cycling over 3 classes."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        noise = rng.normal(size=(24, 32, 3)).astype(np.float32)
        smooth = cv2.resize(noise, FULL_SIZE[::-1], interpolation=cv2.INTER_CUBIC)
        grain = rng.normal(scale=8, size=(*FULL_SIZE, 3)).astype(np.float32)
        image = np.clip(150 + 50 * smooth + grain, 0, 255).astype(np.uint8)
        path = folder / f"synthetic_{i:03d}.jpg"
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        rows.append({"path": str(path), "label": i % 3})
    return pd.DataFrame(rows)


def epoch_rate(batches, workers):
    """Images per second of one epoch of ``batches``, fetched by ``workers`` threads in order
    (what Keras' enqueuer does while the model trains)."""
    from concurrent.futures import ThreadPoolExecutor

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        count = sum(len(labels) for _, labels in pool.map(batches.__getitem__, range(len(batches))))
    return count / (time.perf_counter() - start)


def pipeline_rates(frame, transform, cache, batch_size, workers):
    """(first epoch, second epoch) images/s of one pipeline."""
    batches = ImageBatches(frame, transform, batch_size, shuffle=True, seed=0, cache=cache)
    first = epoch_rate(batches, workers)
    batches.epoch += 1
    return first, epoch_rate(batches, workers)


def model_rate(size, batch_size, steps):
    """Training images/s of MobileNetV3Small at ``size``, after one warm-up step."""
    import keras

    model = keras.applications.MobileNetV3Small(
        input_shape=(*size, 3), weights=None, include_preprocessing=False, classes=3
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.random((batch_size, *size, 3), dtype=np.float32)
    labels = rng.integers(0, 3, batch_size)
    model.train_on_batch(images, labels)  # builds and traces the train step
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return steps * batch_size / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=40, help="synthetic images (40)")
    parser.add_argument("--scale", type=float, default=0.25, help="output size factor (0.25)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--model-steps", type=int, default=10, help="timed train steps (10)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count(),
        help="threads preparing batches (default: the CPU cores)",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)

    size = output_size(args.scale)
    work = Path(tempfile.mkdtemp(prefix="valf-pipeline-bench-"))
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "images": args.images,
        "image_size": list(FULL_SIZE),
        "output_size": list(size),
        "batch_size": args.batch_size,
        "workers": args.workers,
    }
    try:
        start = time.perf_counter()
        (work / "images").mkdir()
        frame = write_images(work / "images", args.images)
        print(f"wrote {args.images} JPEGs of 1200x1600 in {time.perf_counter() - start:.1f} s")

        faithful = train_transform(args.scale)
        fast = train_transform(args.scale, fast=True)
        full_cache = DecodedImageCache(work / "cache", "synthetic", "all", FULL_SIZE)
        small_cache = DecodedImageCache(work / "cache", "synthetic", "all", size)
        runs = {
            "faithful_nocache": (faithful, None),
            "faithful_cache_full": (faithful, full_cache),
            "fast_nocache": (fast, None),
            "fast_cache_small": (fast, small_cache),
            "eval_cache_small": (eval_transform(args.scale), small_cache),
        }
        rates = {}
        for name, (transform, cache) in runs.items():
            first, second = pipeline_rates(frame, transform, cache, args.batch_size, args.workers)
            rates[name] = {"epoch1": first, "epoch2": second}
            print(f"pipeline {name:22s} epoch 1 {first:7.1f} img/s   epoch 2 {second:7.1f} img/s")
        figures["pipeline_images_per_s"] = rates

        model = model_rate(size, args.batch_size, args.model_steps)
        figures["model"] = "MobileNetV3Small(weights=None, include_preprocessing=False)"
        figures["model_train_images_per_s"] = model
        print(
            f"model MobileNetV3Small {size[0]}x{size[1]} batch {args.batch_size}: "
            f"{model:.1f} img/s (train)"
        )
        ratios = {
            name: rate.get("epoch2", rate.get("epoch1")) / model for name, rate in rates.items()
        }
        figures["ratio_pipeline_over_model_epoch2"] = ratios
        for name, ratio in ratios.items():
            verdict = "ok" if ratio >= 2 else "below 2x"
            print(f"ratio {name:32s} {ratio:6.1f}x  ({verdict})")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {args.json}")
    return figures


if __name__ == "__main__":
    main()
