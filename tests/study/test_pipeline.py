"""The input pipeline (valf_study.data.pipeline): decode cache and augmented batches."""

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2
import numpy as np
import pandas as pd
import pytest

from valf_study.data.augment import eval_transform, train_transform
from valf_study.data.decode import DecodedImageCache, decode_image
from valf_study.data.pipeline import FollowEpochs, ImageBatches, sample_seed

SCALE = 0.025  # 1200x1600 * 0.025 = 30x40 outputs
SOURCE_SIZE = (120, 160)


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    """12 small smooth-noise JPEGs with labels 0, 1, 2, 0, 1, 2, ..."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        noise = rng.normal(size=(6, 8, 3)).astype(np.float32)
        smooth = cv2.resize(noise, SOURCE_SIZE[::-1], interpolation=cv2.INTER_CUBIC)
        image = np.clip(128 + 60 * smooth, 0, 255).astype(np.uint8)
        path = folder / f"img_{i:02d}.jpg"
        assert cv2.imwrite(str(path), image)
        rows.append({"path": str(path), "label": i % 3})
    return pd.DataFrame(rows)


def collect(dataset, epoch=None):
    """One epoch of ``dataset`` (its current one, or ``epoch``), concatenated."""
    if epoch is not None:
        dataset.epoch = epoch
    images, labels = zip(*dataset)
    return np.concatenate(images), np.concatenate(labels)


def test_decode_image(frame):
    path = frame.path[0]
    full = decode_image(path)
    assert full.shape == (*SOURCE_SIZE, 3) and full.dtype == np.uint8
    bgr = cv2.imread(path)
    np.testing.assert_array_equal(full, bgr[..., ::-1])
    assert decode_image(path, (30, 40)).shape == (30, 40, 3)
    with pytest.raises(FileNotFoundError):
        decode_image(os.path.join(os.path.dirname(path), "missing.jpg"))


def test_eval_batches_shapes_dtypes_labels(frame):
    dataset = ImageBatches(frame, eval_transform(SCALE), batch_size=5)
    assert len(dataset) == dataset.num_batches == 3
    batches = list(dataset)
    assert [x.shape for x, _ in batches] == [(5, 30, 40, 3), (5, 30, 40, 3), (2, 30, 40, 3)]
    for images, labels in batches:
        assert images.dtype.name == "float32" and labels.dtype.name == "int32"
        assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    with pytest.raises(IndexError):
        dataset[3]
    images, labels = collect(dataset)
    np.testing.assert_array_equal(labels, frame.label.to_numpy())
    # unshuffled eval output is the eval transform of each image, in frame order
    expected = eval_transform(SCALE)(image=decode_image(frame.path[4]))["image"]
    np.testing.assert_allclose(images[4], expected, atol=1e-6)


def test_train_batches_hold_every_image_once(frame):
    for fast in (False, True):
        transform = train_transform(SCALE, fast=fast, input_size=SOURCE_SIZE)
        dataset = ImageBatches(frame, transform, batch_size=4, shuffle=True, seed=1)
        assert [x.shape for x, _ in dataset] == [(4, 30, 40, 3)] * 3
        images, labels = collect(dataset)
        assert images.shape == (12, 30, 40, 3)
        assert sorted(labels.tolist()) == sorted(frame.label.tolist())


def test_label_range_checked(frame):
    with pytest.raises(ValueError, match="labels"):
        ImageBatches(frame, eval_transform(SCALE), num_classes=2)


def test_same_seed_same_batches_new_epoch_new_batches(frame):
    def make(seed):
        transform = train_transform(SCALE, fast=True)
        return ImageBatches(frame, transform, batch_size=4, shuffle=True, seed=seed)

    dataset = make(7)
    epoch0, epoch1 = collect(dataset, 0), collect(dataset, 1)
    again = make(7)
    for a, b in zip((epoch0, epoch1), (collect(again, 0), collect(again, 1))):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(epoch0[0], epoch1[0])
    assert not np.array_equal(epoch0[0], collect(make(8))[0])


@pytest.mark.slow
def test_fit_trains_each_epoch_on_that_epochs_batches_also_when_resumed(frame):
    """Keras calls the dataset's on_epoch_end once more than there are epochs; the epoch comes
    from fit itself, so epoch e (first or resumed) is trained on the batches of epoch e. Keras
    peeks at the first epoch's batches for their shapes; every later batch is fetched once."""
    from collections import Counter

    import keras

    class Recorded(ImageBatches):
        def __getitem__(self, index):
            self.seen.append((self.epoch, index))
            return super().__getitem__(index)

    transform = train_transform(SCALE, fast=True)
    for initial_epoch, workers in ((0, 1), (2, 3)):
        dataset = Recorded(
            frame,
            transform,
            batch_size=4,
            shuffle=True,
            seed=3,
            epoch=initial_epoch,
            workers=workers,
        )
        dataset.seen = []
        model = keras.Sequential(
            [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")]
        )
        model.compile("sgd", "sparse_categorical_crossentropy")
        model.fit(
            dataset,
            epochs=4,
            initial_epoch=initial_epoch,
            verbose=0,
            callbacks=[FollowEpochs(dataset)],
        )
        counts = Counter(dataset.seen)
        assert set(counts) == {(e, i) for e in range(initial_epoch, 4) for i in range(3)}
        assert all(counts[e, i] == 1 for e in range(initial_epoch + 1, 4) for i in range(3))


def test_sample_seed_depends_on_all_three():
    base = sample_seed(0, 0, 0)
    assert base == sample_seed(0, 0, 0)
    assert len({base, sample_seed(1, 0, 0), sample_seed(0, 1, 0), sample_seed(0, 0, 1)}) == 4


def test_cache_decodes_once_and_second_epoch_reads_it(frame, tmp_path):
    cache = DecodedImageCache(tmp_path, "stand-in", "20x", SOURCE_SIZE)
    transform = train_transform(SCALE, input_size=SOURCE_SIZE)
    dataset = ImageBatches(frame, transform, batch_size=4, shuffle=True, cache=cache)
    collect(dataset)
    assert cache.decode_count == len(frame) and cache.hit_count == 0
    entries = sorted((tmp_path / "stand-in-20x-120x160").glob("*.npy"))
    assert len(entries) == len(frame)
    mtimes = {p: p.stat().st_mtime_ns for p in entries}
    collect(dataset)
    assert cache.decode_count == len(frame) and cache.hit_count == len(frame)
    assert {p: p.stat().st_mtime_ns for p in entries} == mtimes
    # a fresh cache object over the same folder decodes nothing either
    reopened = DecodedImageCache(tmp_path, "stand-in", "20x", SOURCE_SIZE)
    collect(ImageBatches(frame, transform, cache=reopened))
    assert reopened.decode_count == 0
    assert not list(tmp_path.rglob("*.tmp"))


def test_cache_entries_hold_the_resized_pixels(frame, tmp_path):
    cache = DecodedImageCache(tmp_path, "stand-in", 40, (30, 40))
    assert cache.directory == tmp_path / "stand-in-40-30x40"
    pixels = cache.get(frame.path[0])
    np.testing.assert_array_equal(pixels, decode_image(frame.path[0], (30, 40)))
    np.testing.assert_array_equal(np.load(cache.entry_path(frame.path[0])), pixels)
    # other keys do not share entries
    other = DecodedImageCache(tmp_path, "stand-in", "20x", (30, 40))
    assert frame.path[0] not in other


def test_cached_and_uncached_give_the_same_batches(frame, tmp_path):
    # with the cache at the source size, augmenting cached pixels is augmenting the file
    transform = train_transform(SCALE, input_size=SOURCE_SIZE)
    cache = DecodedImageCache(tmp_path, "stand-in", "all", SOURCE_SIZE)
    cached = collect(ImageBatches(frame, transform, shuffle=True, seed=5, cache=cache))
    plain = collect(ImageBatches(frame, transform, shuffle=True, seed=5))
    np.testing.assert_array_equal(cached[0], plain[0])


def test_cache_write_is_atomic(frame, tmp_path, monkeypatch):
    cache = DecodedImageCache(tmp_path, "stand-in", "20x", (30, 40))

    def interrupted_save(handle, array):
        handle.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        cache.get(frame.path[0])
    assert not list(tmp_path.rglob("*.npy")) and not list(tmp_path.rglob("*.tmp"))
    monkeypatch.undo()
    assert cache.get(frame.path[0]).shape == (30, 40, 3)
    assert len(list(tmp_path.rglob("*.npy"))) == 1 and not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow
def test_keras_fit_accepts_the_dataset(frame):
    import keras

    dataset = ImageBatches(frame, eval_transform(SCALE), batch_size=4, workers=2)
    model = keras.Sequential(
        [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(
        dataset, epochs=2, shuffle=False, verbose=0, callbacks=[FollowEpochs(dataset)]
    )
    assert len(history.history["loss"]) == 2 and dataset.epoch == 1


def test_images_of_many_sizes_get_the_recipe_relative_to_each(tmp_path):
    """The faithful recipe on images of three sizes, read at their own size from the cache:
    every sample is what train_transform built for its image's size makes of it."""
    from valf_study.data.augment import EachImageSize, seed_transform

    sizes = [(60, 80), (90, 60), (48, 48)]
    rng = np.random.default_rng(1)
    rows = []
    for i in range(6):
        image = rng.integers(0, 256, (*sizes[i % 3], 3), dtype=np.uint8)
        path = tmp_path / f"img{i}.png"
        cv2.imwrite(str(path), image)
        rows.append({"path": str(path), "label": i % 2})
    frame = pd.DataFrame(rows)
    cache = DecodedImageCache(tmp_path / "cache", "mixed", None, None)
    assert cache.key == "mixed-all-native"
    dataset = ImageBatches(
        frame, EachImageSize(size=(24, 32)), batch_size=3, seed=5, cache=cache, workers=2
    )
    images, labels = collect(dataset)
    assert images.shape == (6, 24, 32, 3) and labels.tolist() == [0, 1, 0, 1, 0, 1]
    assert images.min() >= 0 and images.max() <= 1
    for i, path in enumerate(frame["path"]):
        pixels = decode_image(path)
        recipe = train_transform(input_size=pixels.shape[:2], size=(24, 32))
        crop = recipe.transforms[3]
        assert crop.min_max_height == tuple(round(f * pixels.shape[0]) for f in (5 / 6, 1))
        expected = seed_transform(recipe, sample_seed(5, 0, i))(image=pixels)["image"]
        np.testing.assert_array_equal(images[i], expected)


def test_cache_entries_read_from_many_threads_are_what_np_load_reads(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from valf_study.data.decode import _load_entry

    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(0, 255, (7, 5, 3), dtype=np.uint8),
        np.asfortranarray(rng.integers(0, 255, (4, 6, 3), dtype=np.uint8)),
        rng.random((3, 2)),
    ]
    paths = []
    for i, array in enumerate(arrays):
        paths.append(tmp_path / f"{i}.npy")
        np.save(paths[-1], array)
    with ThreadPoolExecutor(16) as pool:
        read = list(pool.map(_load_entry, paths * 200))
    for path, array in zip(paths * 200, read):
        expected = np.load(path)
        assert array.dtype == expected.dtype and np.array_equal(array, expected)
    cut = tmp_path / "cut.npy"
    cut.write_bytes(paths[0].read_bytes()[:-10])
    with pytest.raises(ValueError, match="cut short"):
        _load_entry(cut)
