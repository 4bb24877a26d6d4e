"""A run's input pipelines: training (augmented), validation, test, and the training images
without augmentation (what DWFL measures), each reading through the decode cache."""

from __future__ import annotations

import os

__all__ = ["EVAL_BATCH_SIZE", "run_datasets"]

#: Batch size of prediction (validation, test, reweighting); it does not change any number.
EVAL_BATCH_SIZE = 16


def run_datasets(params, frames, first_epoch=0):
    """The four datasets of a run and the network's input size (height, width).

    ``frames`` are the train/val/test frames of :func:`valf.data.prepare.split_frames`;
    ``first_epoch`` is the epoch a resumed run starts from (its order and augmentation seeds).
    """
    from valf.data.augment import REFERENCE_SIZE, eval_transform, output_size, train_transform
    from valf.data.decode import DecodedImageCache
    from valf.data.pipeline import ImageBatches

    scale = params["image_scale"]
    out_size = output_size(scale)
    if params["dataset"] == "synthetic":
        source_size = tuple(params["synthetic"]["image_size"])
        name = "synthetic-" + "-".join(
            str(v) for v in params["synthetic"].values() if not isinstance(v, list)
        )
    else:
        source_size, name = REFERENCE_SIZE, "lunghist700"
    cache_dir, magnification = params["cache_dir"], params["magnification"]
    eval_cache = DecodedImageCache(cache_dir, name, magnification, out_size)
    if not params["augment"]:
        train_tf, train_cache = eval_transform(scale), eval_cache
    elif params["fast_augmentation"]:
        train_tf, train_cache = train_transform(scale, fast=True), eval_cache
    else:
        train_tf = train_transform(scale, input_size=source_size)
        train_cache = DecodedImageCache(cache_dir, name, magnification, source_size)

    def evaluation(frame):
        return ImageBatches(frame, eval_transform(scale), EVAL_BATCH_SIZE, cache=eval_cache)

    # Threads that augment ahead of the model; two overlap the model's work even on one core.
    workers = max(2, int(os.environ.get("VALF_THREADS") or os.cpu_count() or 1))
    datasets = {
        "train": ImageBatches(
            frames["train"],
            train_tf,
            params["batch_size"],
            shuffle=True,
            seed=params["seed"],
            cache=train_cache,
            epoch=first_epoch,
            workers=workers,
        ),
        "val": evaluation(frames["val"]),
        "test": evaluation(frames["test"]),
        "train_eval": evaluation(frames["train"]),
    }
    return datasets, out_size
