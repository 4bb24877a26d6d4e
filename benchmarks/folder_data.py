"""A folder of one's own images at scale: indexing 20,000 of them, and what the decode cache
saves from the first epoch to the second.

Writes ``--images`` small JPEGs (``--size``, default 96x128) into ``--classes`` class folders
(one nested sub-folder each, and a notes file per class, as real folders have), then measures:

- indexing: :func:`valf_study.data.folder.read_image_folder` (the listing, classes, groups), and the
  stratified split a run makes (:func:`valf_study.data.splits.grouped_split`); goal: at most 10 s
  together for 20,000 images;
- ``valf data check`` (:func:`valf_study.data.check.check_image_folder`: every image decoded once,
  sizes, modes, duplicates by content), for scale;
- one epoch of the input pipeline at the network's input (64x64, the fast recipe, batch 32,
  2 worker threads) through a fresh :class:`~valf_study.data.decode.DecodedImageCache`: the first
  epoch decodes and writes every entry, the second reads them from memory; and a second
  epoch in a new cache object (a resumed run: entries read from disk). Goal: the second epoch
  at least 3x faster than the first.

Usage::

    NO_ALBUMENTATIONS_UPDATE=1 .venv/bin/python benchmarks/folder_data.py \\
        [--images 20000] [--json benchmarks/results/folder_data-cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from valf_study.data.augment import train_transform
from valf_study.data.check import check_image_folder
from valf_study.data.decode import DecodedImageCache
from valf_study.data.folder import read_image_folder
from valf_study.data.pipeline import ImageBatches
from valf_study.data.splits import grouped_split
from valf_study.run.environment import environment_record


def write_folder(root, images, classes, size, seed=0):
    """``images`` smooth-noise JPEGs spread evenly over ``classes`` class folders."""
    rng = np.random.default_rng(seed)
    height, width = size
    for k in range(classes):
        folder = root / f"class_{k:02d}"
        (folder / "slide_1").mkdir(parents=True)
        (folder / "notes.txt").write_text("not an image\n")
    base = cv2.resize(rng.normal(size=(6, 8, 3)).astype(np.float32), (width, height))
    for i in range(images):
        k = i % classes
        pixels = np.clip(128 + 40 * np.roll(base, i, axis=1) + 10 * k, 0, 255).astype(np.uint8)
        pixels[:8, :8] = (i * 2654435761) % 251  # a corner of its own: no two images alike
        nested = "slide_1/" if i % 10 == 0 else ""
        cv2.imwrite(str(root / f"class_{k:02d}" / f"{nested}image_{i:05d}.jpg"), pixels)


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def epoch(dataset):
    for _ in dataset:
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--size", type=int, nargs=2, default=(96, 128))
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="valf-folder-"))
    try:
        root = work / "images"
        _, written = timed(lambda: write_folder(root, args.images, args.classes, args.size))
        print(f"wrote {args.images} images in {written:.1f} s")
        frame, index_s = timed(lambda: read_image_folder(root))
        split, split_s = timed(
            lambda: grouped_split(frame, (0.7, 0.15, 0.15), 0, group="group", label="label")
        )
        print(f"index {index_s:.2f} s, stratified split {split_s:.2f} s")
        report, check_s = timed(lambda: check_image_folder(root, workers=os.cpu_count()))
        print(f"valf data check {check_s:.1f} s ({len(report.problems)} problems)")

        recipe = train_transform(fast=True, size=(64, 64))
        cache = DecodedImageCache(work / "cache", "bench", None, (64, 64))
        dataset = ImageBatches(split, recipe, 32, shuffle=True, cache=cache, workers=2)
        _, first_s = timed(lambda: epoch(dataset))
        dataset.epoch = 1
        _, second_s = timed(lambda: epoch(dataset))
        reopened = DecodedImageCache(work / "cache", "bench", None, (64, 64))
        resumed = ImageBatches(split, recipe, 32, shuffle=True, cache=reopened, workers=2)
        resumed.epoch = 1
        _, resumed_s = timed(lambda: epoch(resumed))
        result = {
            "machine": environment_record(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "images": args.images,
            "classes": args.classes,
            "image_size": list(args.size),
            "index_seconds": round(index_s, 3),
            "split_seconds": round(split_s, 3),
            "index_and_split_seconds": round(index_s + split_s, 3),
            "index_goal_seconds": 10,
            "check_seconds": round(check_s, 1),
            "epoch_input_size": [64, 64],
            "epoch_recipe": "fast (resize first), batch 32, 2 worker threads",
            "epoch1_seconds": round(first_s, 2),
            "epoch2_seconds": round(second_s, 2),
            "epoch2_new_cache_object_seconds": round(resumed_s, 2),
            "epoch_speedup": round(first_s / second_s, 2),
            "epoch_speedup_from_disk": round(first_s / resumed_s, 2),
            "epoch_speedup_goal": 3,
            "decoded": cache.decode_count,
        }
        print(json.dumps(result, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
