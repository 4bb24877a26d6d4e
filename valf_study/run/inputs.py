"""A run's input pipelines: training (augmented), validation, test, and the training images
without augmentation (what DWFL measures), each reading through the decode cache."""

from __future__ import annotations

import os

__all__ = ["EVAL_BATCH_SIZE", "input_size", "run_datasets"]

#: Batch size of prediction (validation, test, reweighting); it does not change any number.
EVAL_BATCH_SIZE = 64


def input_size(params):
    """The network's input (height, width): ``image_size``, or 1200x1600 scaled by
    ``image_scale``.

    Examples
    --------
    >>> input_size({"image_size": None, "image_scale": 0.25})
    (300, 400)
    >>> input_size({"image_size": [224, 224]})
    (224, 224)
    """
    from valf_study.data.augment import output_size

    if params.get("image_size") is not None:
        return tuple(int(v) for v in params["image_size"])
    return output_size(params["image_scale"])


def run_datasets(params, frames, num_classes, first_epoch=0):
    """The four datasets of a run and the network's input size (height, width).

    ``frames`` are the train/val/test frames of :func:`valf_study.data.prepare.split_frames`;
    ``first_epoch`` is the epoch a resumed run starts from (its order and augmentation seeds).
    The faithful training recipe reads each image at its own size and is applied relative to
    it (:class:`valf_study.data.augment.EachImageSize`); validation, test and the fast recipe read
    images decoded once at the input size.
    """
    from valf_study.data.augment import EachImageSize, eval_transform, train_transform
    from valf_study.data.decode import DecodedImageCache
    from valf_study.data.pipeline import ImageBatches

    out_size = input_size(params)
    cache_dir, magnification = params["cache_dir"], params["magnification"]
    from valf_study.data.prepare import data_set

    name = data_set(params).cache_name(params)
    eval_cache = DecodedImageCache(cache_dir, name, magnification, out_size)
    if not params["augment"]:
        train_tf, train_cache = eval_transform(size=out_size), eval_cache
    elif params["fast_augmentation"]:
        train_tf, train_cache = train_transform(fast=True, size=out_size), eval_cache
    else:
        train_tf = EachImageSize(size=out_size)
        train_cache = DecodedImageCache(cache_dir, name, magnification, None)

    def evaluation(frame):
        return ImageBatches(
            frame,
            eval_transform(size=out_size),
            EVAL_BATCH_SIZE,
            cache=eval_cache,
            num_classes=num_classes,
        )

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
            num_classes=num_classes,
            epoch=first_epoch,
            workers=workers,
        ),
        "val": evaluation(frames["val"]),
        "test": evaluation(frames["test"]),
        "train_eval": evaluation(frames["train"]),
    }
    return datasets, out_size
