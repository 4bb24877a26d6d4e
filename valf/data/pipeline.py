"""The input pipeline: decode once, augment in parallel, batch for Keras.

Pixels come from a :class:`~valf.data.decode.DecodedImageCache`. :func:`make_dataset` turns a
frame (``path``, ``label``; see :mod:`valf.data`) into a ``tf.data.Dataset`` of ``(images,
labels)`` batches: images float32 (B, H, W, 3) in [0, 1], labels **int32 class indices** (B,).
Integer labels are what ``keras.losses.SparseCategoricalCrossentropy`` and every loss of
:mod:`valf.losses` accept, and they keep the pipeline independent of the number of classes;
one-hot them in the model or with ``keras.ops.one_hot`` where a loss needs it.

Reproducibility. Sample i of epoch e is augmented from the seed
``SeedSequence([seed, e, i])`` and, with ``shuffle=True``, epoch e's order is a permutation drawn
from ``(seed, e)``. The epoch counts the dataset's iterations (``repeat=False``, the way
``Model.fit`` iterates a finite dataset once per epoch) or its passes (``repeat=True``). Results
do not depend on the number of parallel calls or on which thread ran which sample.
"""

from __future__ import annotations

import copy
import os
import queue
import threading

import numpy as np
import tensorflow as tf

import albumentations as A

from valf.data.augment import seed_transform
from valf.data.decode import decode_image

__all__ = ["make_dataset", "sample_seed"]


def sample_seed(seed, epoch, index):
    """The augmentation seed of sample ``index`` in ``epoch`` of a run seeded ``seed``.

    Examples
    --------
    >>> sample_seed(0, 0, 0) == sample_seed(0, 0, 0) != sample_seed(0, 1, 0)
    True
    """
    sequence = np.random.SeedSequence([int(seed), int(epoch), int(index)])
    return int(sequence.generate_state(1, np.uint32)[0])


def _epoch_order(num_samples, shuffle, seed, epoch):
    if not shuffle:
        return np.arange(num_samples)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(num_samples)


class _IndexStream:
    """Yields ``(index, sample seed)`` pairs; called anew by tf.data for every iteration."""

    def __init__(self, num_samples, shuffle, seed, repeat, first_epoch=0):
        self.num_samples = num_samples
        self.shuffle = shuffle
        self.seed = seed
        self.repeat = repeat
        self.next_epoch = first_epoch
        self._lock = threading.Lock()

    def _take_epoch(self):
        with self._lock:
            epoch = self.next_epoch
            self.next_epoch += 1
        return epoch

    def __call__(self):
        while True:
            epoch = self._take_epoch()
            for index in _epoch_order(self.num_samples, self.shuffle, self.seed, epoch):
                yield int(index), sample_seed(self.seed, epoch, index)
            if not self.repeat:
                return


class _SampleLoader:
    """Reads (through the cache) and augments one sample, with a pool of transform copies."""

    def __init__(self, paths, transform, cache):
        self.paths = paths
        self.transform = transform
        self.cache = cache
        # albumentations transforms keep their random state on the object, so concurrent
        # samples need their own copies. A pool and not threading.local: tf.data calls
        # numpy_function from C++ threads whose Python thread state (and with it any
        # threading.local) is created afresh on every call, which made each sample pay
        # for a deep copy (5x slower).
        self._idle = queue.SimpleQueue()

    def __call__(self, index, seed):
        path = self.paths[int(index)]
        pixels = self.cache.get(path) if self.cache is not None else decode_image(path)
        try:
            transform = self._idle.get_nowait()
        except queue.Empty:
            transform = copy.deepcopy(self.transform)
        try:
            image = seed_transform(transform, int(seed))(image=pixels)["image"]
        finally:
            self._idle.put(transform)
        return np.ascontiguousarray(image, dtype=np.float32)


def _output_size(transform):
    """The (height, width) the last resizing step of ``transform`` produces, if any."""
    for step in reversed(getattr(transform, "transforms", [])):
        if isinstance(step, A.Resize):
            return (int(step.height), int(step.width))
        size = getattr(step, "size", None)
        if isinstance(step, A.DualTransform) and size is not None and len(size) == 2:
            return (int(size[0]), int(size[1]))
    return None


def make_dataset(
    frame,
    transform,
    batch_size=4,
    shuffle=False,
    seed=0,
    cache=None,
    num_classes=3,
    repeat=False,
    *,
    drop_remainder=False,
    output_size=None,
    first_epoch=0,
):
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches for ``Model.fit``.

    Parameters
    ----------
    frame : pandas.DataFrame
        With columns ``path`` (image file) and ``label`` (int class index).
    transform : albumentations.Compose
        Applied to each uint8 RGB image; must return float32 (H, W, 3), e.g.
        :func:`valf.data.augment.train_transform` or :func:`valf.data.augment.eval_transform`.
    batch_size : int
    shuffle : bool
        Draw a fresh order every epoch, from ``(seed, epoch)``.
    seed : int
        Seeds the order and every sample's augmentation (see the module's docstring).
    cache : DecodedImageCache, optional
        Source of decoded pixels; its working size is the size ``transform`` receives.
        Without one, every image is decoded at its stored size on every visit.
    num_classes : int
        Labels are checked to lie in ``[0, num_classes)``.
    repeat : bool
        Loop over epochs without end (then pass ``steps_per_epoch`` to ``fit``).
    drop_remainder : bool
        Drop a last, smaller batch.
    output_size : tuple of int, optional
        (height, width) of the transform's output; read from its last Resize or crop
        step when not given.
    first_epoch : int
        Number of the first epoch (its order and augmentation seeds). A training run resumed
        after epoch k passes k, so it sees what an uninterrupted run would have seen.

    Returns
    -------
    tf.data.Dataset
        Elements ``(float32 (B, H, W, 3) in [0, 1], int32 (B,))`` with static H, W.
        Without ``repeat`` its cardinality is the number of batches.

    Notes
    -----
    Loading and augmentation run in ``tf.numpy_function`` inside ``Dataset.map`` with
    ``num_parallel_calls=AUTOTUNE``; OpenCV, which does the pixel work, releases the GIL,
    and ``deterministic=True`` keeps batches in order. tf.data was chosen over
    ``keras.utils.PyDataset`` because the result prefetches while the model trains and
    carries static shapes, not because it measured faster: ``benchmarks/input_pipeline.py``
    times both, next to a backbone's training throughput, in one run.

    Examples
    --------
    >>> import tempfile, os, numpy as np, pandas as pd, cv2
    >>> from valf.data.augment import eval_transform
    >>> root = tempfile.mkdtemp()
    >>> paths = [os.path.join(root, f"{i}.png") for i in range(3)]
    >>> for p in paths: _ = cv2.imwrite(p, np.zeros((120, 160, 3), np.uint8))
    >>> frame = pd.DataFrame({"path": paths, "label": [0, 2, 1]})
    >>> ds = make_dataset(frame, eval_transform(scale=0.025), batch_size=2)
    >>> [(tuple(x.shape), y.numpy().tolist()) for x, y in ds]
    [((2, 30, 40, 3), [0, 2]), ((1, 30, 40, 3), [1])]
    """
    paths = [os.fspath(p) for p in frame["path"]]
    labels = np.asarray(frame["label"], dtype=np.int64)
    if len(paths) == 0:
        raise ValueError("frame has no rows")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
    height, width = output_size or _output_size(transform) or (None, None)
    if height is None:
        raise ValueError("cannot tell the transform's output size; pass output_size=(h, w)")

    stream = _IndexStream(len(paths), shuffle, seed, repeat, int(first_epoch))
    loader = _SampleLoader(paths, transform, cache)
    label_table = tf.constant(labels.astype(np.int32))

    def load(index, augmentation_seed):
        image = tf.numpy_function(loader, [index, augmentation_seed], tf.float32)
        # numpy_function loses the shape; Keras needs it static to build the model.
        image.set_shape((height, width, 3))
        return image, tf.gather(label_table, index)

    dataset = tf.data.Dataset.from_generator(
        stream,
        output_signature=(
            tf.TensorSpec((), tf.int64),
            tf.TensorSpec((), tf.int64),
        ),
    )
    if not repeat:
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(paths)))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
