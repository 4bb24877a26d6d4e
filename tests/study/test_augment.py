"""The augmentation recipe of book/method.md, section "Augmentation" (valf_study.data.augment)."""

import os
import warnings

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import numpy as np
import pytest

from valf_study.data.augment import (
    compare_fast_to_faithful,
    eval_transform,
    output_size,
    seed_transform,
    train_transform,
)

RECIPE_STEPS = [
    (A.HorizontalFlip, 0.5),
    (A.VerticalFlip, 0.5),
    (A.GridDistortion, 0.2),
    (A.RandomSizedCrop, 0.4),
    (A.RandomGamma, 0.5),
    (A.RandomBrightnessContrast, 0.2),
    (A.HueSaturationValue, 0.2),
]


@pytest.fixture(scope="module")
def full_size_image():
    """A smooth random 1200x1600 RGB image, like a blurred tissue patch."""
    import cv2

    noise = np.random.default_rng(0).normal(size=(30, 40, 3)).astype(np.float32)
    smooth = cv2.resize(noise, (1600, 1200), interpolation=cv2.INTER_CUBIC)
    return np.clip(128 + 50 * smooth, 0, 255).astype(np.uint8)


def test_output_size():
    assert output_size(0.25) == (300, 400)
    assert output_size(0.5) == (600, 800)
    with pytest.raises(ValueError, match="scale must be positive"):
        output_size(0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: train_transform(0.25, seed=0),
        lambda: train_transform(0.25, seed=0, fast=True),
        lambda: eval_transform(0.25),
    ],
    ids=["train-faithful", "train-fast", "eval"],
)
def test_output_shape_dtype_and_range(make, full_size_image):
    transform = make()
    for _ in range(3):
        out = transform(image=full_size_image)["image"]
        assert out.shape == (300, 400, 3)
        assert out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0


def _check_recipe(steps, working_size):
    assert [type(t) for t in steps] == [cls for cls, _ in RECIPE_STEPS]
    assert [t.p for t in steps] == [p for _, p in RECIPE_STEPS]
    grid, crop, gamma, brightness, hsv = steps[2:]
    defaults = A.GridDistortion()
    assert (grid.num_steps, grid.distort_limit) == (defaults.num_steps, defaults.distort_limit)
    assert (grid.border_mode, grid.normalized) == (defaults.border_mode, defaults.normalized)
    height = working_size[0]
    assert tuple(crop.min_max_height) == (round(height * 1000 / 1200), height)
    assert tuple(crop.size) == tuple(working_size)
    assert crop.w2h_ratio == 1.0
    assert tuple(gamma.gamma_limit) == (80, 120)
    assert tuple(brightness.brightness_limit) == pytest.approx((-0.2, 0.2))
    assert tuple(brightness.contrast_limit) == pytest.approx((-0.2, 0.2))
    assert tuple(hsv.hue_shift_limit) == (-5, 5)
    assert tuple(hsv.sat_shift_limit) == (-20, 20)
    assert tuple(hsv.val_shift_limit) == (-10, 10)


def test_faithful_recipe_parameters():
    steps = train_transform(0.25).transforms
    _check_recipe(steps[:7], (1200, 1600))
    # the recipe's constants exactly, not merely proportional ones
    assert tuple(steps[3].min_max_height) == (1000, 1200)
    resize, to_float = steps[7:]
    assert isinstance(resize, A.Resize) and (resize.height, resize.width) == (300, 400)
    assert resize.p == 1
    assert isinstance(to_float, A.ToFloat) and to_float.max_value == 255
    assert len(steps) == 9


def test_fast_recipe_resizes_first_and_scales_the_crop():
    steps = train_transform(0.25, fast=True).transforms
    resize = steps[0]
    assert isinstance(resize, A.Resize) and (resize.height, resize.width) == (300, 400)
    _check_recipe(steps[1:8], (300, 400))
    assert tuple(steps[4].min_max_height) == (250, 300)
    assert isinstance(steps[8], A.ToFloat) and steps[8].max_value == 255
    assert len(steps) == 9


def test_faithful_recipe_follows_the_input_size():
    steps = train_transform(0.025, input_size=(120, 160)).transforms
    _check_recipe(steps[:7], (120, 160))


def test_eval_transform_is_resize_and_to_float():
    steps = eval_transform(0.25).transforms
    assert [type(t) for t in steps] == [A.Resize, A.ToFloat]
    assert (steps[0].height, steps[0].width) == (300, 400)
    assert steps[1].max_value == 255


def test_no_albumentations_warnings(full_size_image):
    small = full_size_image[::10, ::10]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fast in (False, True):
            transform = train_transform(0.05, seed=1, fast=fast, input_size=small.shape[:2])
            for seed in range(5):
                seed_transform(transform, seed)(image=small)
        eval_transform(0.05)(image=small)


@pytest.mark.parametrize("fast", [False, True], ids=["faithful", "fast"])
def test_same_seed_same_images_other_seed_other_images(fast, full_size_image):
    def run(seed):
        transform = train_transform(0.25, seed=seed, fast=fast)
        return [transform(image=full_size_image)["image"] for _ in range(4)]

    first, again, other = run(3), run(3), run(4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    # successive calls of one pipeline draw fresh augmentations
    assert any(not np.array_equal(first[0], later) for later in first[1:])


def test_steps_draw_independently():
    # Compose(seed=s) gives every step the same stream (the flips then always coincide);
    # seed_transform must not.
    transform = train_transform(0.05, fast=True)
    transform.save_applied_params = True
    image = np.zeros((60, 80, 3), np.uint8)
    counts = {}
    for seed in range(400):
        applied = seed_transform(transform, seed)(image=image)["applied_transforms"]
        names = {name for name, _ in applied}
        key = ("HorizontalFlip" in names, "VerticalFlip" in names)
        counts[key] = counts.get(key, 0) + 1
    assert set(counts) == {(False, False), (False, True), (True, False), (True, True)}
    for count in counts.values():
        assert 60 <= count <= 140  # 100 expected, binomial sd 8.7


def test_each_step_draws_every_random_method_from_its_reseeded_stream():
    # seed_transform hands each step a random.Random fed by the step's NumPy generator; every
    # method albumentations may call must be reseeded with it and have the right distribution.
    from scipy import stats

    transform = train_transform(0.05, fast=True)
    flip = transform.transforms[0]

    def draws():
        r = flip.py_random
        return [r.random(), r.uniform(2, 3), r.randint(0, 9), r.choice("abc"), r.getrandbits(5)]

    first = draws() if seed_transform(transform, 3) else None
    again = draws() if seed_transform(transform, 3) else None
    other = draws() if seed_transform(transform, 4) else None
    assert first == again and first != other
    seed_transform(transform, 5)
    counts = np.bincount([flip.py_random.randrange(6) for _ in range(6000)], minlength=6)
    assert stats.chisquare(counts).pvalue > 1e-4
    bits = [flip.py_random.getrandbits(3) for _ in range(4000)]
    assert min(bits) == 0 and max(bits) == 7
    assert stats.chisquare(np.bincount(bits, minlength=8)).pvalue > 1e-4
    assert stats.kstest([flip.py_random.random() for _ in range(4000)], "uniform").pvalue > 1e-4
    with pytest.raises(ValueError, match="seed"):
        seed_transform(transform, -1)


def test_compare_fast_to_faithful(full_size_image):
    result = compare_fast_to_faithful(full_size_image[::4, ::4], n=6, seed=0, scale=0.1)
    for key in (
        "mean_abs_diff_paired",
        "mean_abs_diff_unpaired",
        "channel_mean_diff",
        "channel_std_diff",
        "channel_mean_shift",
        "channel_std_shift",
        "faithful_ms",
        "fast_ms",
        "speedup",
    ):
        assert np.isfinite(result[key])
    # the same seed takes the same decisions: far closer than two independent samples
    assert result["mean_abs_diff_paired"] < 0.5 * result["mean_abs_diff_unpaired"]
    assert result["channel_mean_shift"] < 0.02
    with pytest.raises(ValueError, match=r"image must be uint8 \(H, W, 3\)"):
        compare_fast_to_faithful(full_size_image.astype(np.float32))
