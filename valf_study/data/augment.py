"""The study's image augmentation (the book's Method chapter, ``book/method.md``, section
"Augmentation"), in albumentations 2.x.

Training images go through, in this order:

=====  ==========================  =====  ==============================================
step   transform                   p      parameters (faithful recipe, 1200x1600 input)
=====  ==========================  =====  ==============================================
1      HorizontalFlip              0.5
2      VerticalFlip                0.5
3      GridDistortion              0.2    library defaults (num_steps=5,
                                          distort_limit=(-0.3, 0.3), see note 2)
4      RandomSizedCrop             0.4    min_max_height=(1000, 1200), size=(1200, 1600),
                                          w2h_ratio=1 (a square crop, stretched back)
5      RandomGamma                 0.5    gamma_limit=(80, 120)
6      RandomBrightnessContrast    0.2    brightness_limit=0.2, contrast_limit=0.2
7      HueSaturationValue          0.2    hue 5, saturation 20, value 10
8      Resize                      1      (1200 r, 1600 r), r = ``scale`` = 0.25 -> 300x400
9      ToFloat                     1      max_value=255 -> float32 in [0, 1]
=====  ==========================  =====  ==============================================

Validation and test images get steps 8 and 9 only (:func:`eval_transform`).

Sizes. The recipe's 1200x1600 is LungHist700's image size. The crop heights are kept as
fractions of the input height (1000/1200 and 1200/1200) and the crop's output size is the
input size, so :func:`train_transform` takes an ``input_size`` (default 1200x1600, which gives
the constants above exactly) and works on images of any size; :class:`EachImageSize` builds
one such pipeline per size met, so a data set whose images differ in size is augmented
relative to each image. The output size is ``(round(1200 r), round(1600 r))`` whatever the
input size, as the recipe writes it, or any ``size`` (height, width) given instead.

The fast variant (``fast=True``) resizes to the output size *first* and runs steps 1-7 there,
with the crop heights scaled by the same factor (250-300 rows at r = 0.25). Every step of the
recipe draws its parameters independently of the image size (flip and apply decisions, the
normalised grid steps, the crop's relative position, the colour shifts), so the distribution of
augmentations is the recipe's; what changes is only the order of resampling (warp then shrink
versus shrink then warp), measured by :func:`compare_fast_to_faithful`. At full size GridDistortion
and HueSaturationValue dominate the cost (``benchmarks/input_pipeline.py`` measures both variants).

Notes
-----
1. Seeding. ``albumentations.Compose(seed=s)`` (2.0.8) seeds *every* child transform with the
   same ``s``; each child then draws its apply decision from an identical stream, so the two
   flips (both p=0.5) are always applied together and GridDistortion, RandomBrightnessContrast
   and HueSaturationValue (all p=0.2) too. That is not the recipe's distribution. Here
   :func:`seed_transform` gives each child its own stream, derived from the seed and the
   child's class name, so draws are independent, and the fast and faithful pipelines seeded
   alike take the same decisions.
2. GridDistortion's defaults changed between albumentations 1.x and 2.x: 1.x filled the border
   by reflection (``border_mode=cv2.BORDER_REFLECT_101``) and did not normalise the grid; 2.x
   fills with black (``border_mode=cv2.BORDER_CONSTANT``) and normalises (``normalized=True``).
   The recipe says "library defaults", so this module uses 2.x's; a black rim appears where
   the warp pulls the image in.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time

import numpy as np


def _import_albumentations():
    """albumentations, without its PyTorch helpers.

    It imports them, and with them torch (about 1 s), whenever torch is installed, and drops
    them quietly when they fail to import; this study never uses them. Marking them absent while
    albumentations loads spares every run that second; they import as usual afterwards.
    """
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import
    if "albumentations" in sys.modules or "torch" in sys.modules:
        import albumentations

        return albumentations
    sys.modules["albumentations.pytorch"] = None
    try:
        import albumentations
    finally:
        del sys.modules["albumentations.pytorch"]
    return albumentations


A = _import_albumentations()

__all__ = [
    "REFERENCE_SIZE",
    "EachImageSize",
    "compare_fast_to_faithful",
    "eval_transform",
    "output_size",
    "seed_transform",
    "train_transform",
]

#: LungHist700's image size (height, width), the size the recipe's constants refer to.
REFERENCE_SIZE = (1200, 1600)

# The recipe's crop heights, as fractions of the image height.
_CROP_HEIGHT_FRACTIONS = (1000 / 1200, 1200 / 1200)


def output_size(scale=0.25):
    """Network input size ``(round(1200 * scale), round(1600 * scale))``.

    Examples
    --------
    >>> output_size(0.25)
    (300, 400)
    >>> output_size(0.125)
    (150, 200)
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    height, width = REFERENCE_SIZE
    return (round(height * scale), round(width * scale))


def _recipe_steps(working_size):
    """Steps 1-7 of the recipe for images of ``working_size`` (height, width)."""
    height, _ = working_size
    low, high = (round(f * height) for f in _CROP_HEIGHT_FRACTIONS)
    return [
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        A.GridDistortion(p=0.2),
        A.RandomSizedCrop(
            min_max_height=(low, high), size=tuple(working_size), w2h_ratio=1.0, p=0.4
        ),
        A.RandomGamma(gamma_limit=(80, 120), p=0.5),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.2),
        A.HueSaturationValue(hue_shift_limit=5, sat_shift_limit=20, val_shift_limit=10, p=0.2),
    ]


def train_transform(scale=0.25, seed=None, fast=False, *, input_size=REFERENCE_SIZE, size=None):
    """The training augmentation of the study (see the module's table).

    Parameters
    ----------
    scale : float
        Output size factor r: images come out ``round(1200 r) x round(1600 r)``.
    seed : int, optional
        Seed of the pipeline's random streams (see :func:`seed_transform`). None draws
        fresh entropy.
    fast : bool
        Resize to the output size first and augment there (about 10x cheaper at r = 0.25),
        instead of augmenting at the input size and resizing last.
    input_size : tuple of int
        (height, width) of the images the faithful pipeline receives; sets the crop heights
        (5/6 to 1 of the height) and the crop's output size. Ignored when ``fast`` is set,
        since the fast pipeline works at the output size whatever comes in.
    size : tuple of int, optional
        Output (height, width), instead of the one ``scale`` gives.

    Returns
    -------
    albumentations.Compose
        Called as ``transform(image=uint8_rgb)["image"]``, gives float32 (H, W, 3) in [0, 1].

    References
    ----------
    - Buslaev, A. et al. (2020). Albumentations: fast and flexible image augmentations.
      Information 11(2), 125. https://doi.org/10.3390/info11020125

    Examples
    --------
    >>> import numpy as np
    >>> image = np.full((1200, 1600, 3), 128, np.uint8)
    >>> out = train_transform(scale=0.25, seed=0, fast=True)(image=image)["image"]
    >>> out.shape, out.dtype
    ((300, 400, 3), dtype('float32'))
    >>> [type(t).__name__ for t in train_transform(fast=True).transforms][:2]
    ['Resize', 'HorizontalFlip']
    """
    out_height, out_width = size if size is not None else output_size(scale)
    if fast:
        steps = [A.Resize(out_height, out_width), *_recipe_steps((out_height, out_width))]
    else:
        steps = [*_recipe_steps(tuple(input_size)), A.Resize(out_height, out_width)]
    steps.append(A.ToFloat(max_value=255))
    transform = A.Compose(steps)
    if seed is not None:
        seed_transform(transform, seed)
    return transform


def eval_transform(scale=0.25, *, size=None):
    """Validation and test preprocessing: Resize to the output size (``size``, or the one
    ``scale`` gives), then ToFloat.

    Examples
    --------
    >>> import numpy as np
    >>> out = eval_transform(0.25)(image=np.zeros((1200, 1600, 3), np.uint8))["image"]
    >>> out.shape, out.dtype, float(out.max())
    ((300, 400, 3), dtype('float32'), 0.0)
    """
    out_height, out_width = size if size is not None else output_size(scale)
    return A.Compose([A.Resize(out_height, out_width), A.ToFloat(max_value=255)])


class EachImageSize:
    """The faithful training recipe relative to each image's own size.

    ``for_size((h, w))`` is :func:`train_transform` with ``input_size=(h, w)`` (crop heights
    5/6 to 1 of *that* image's height), built once per size met; the input pipeline
    (:class:`valf_study.data.pipeline.ImageBatches`) picks the one that fits each image. On a data
    set of one size (LungHist700) it is exactly ``train_transform(scale, input_size=...)``.

    Examples
    --------
    >>> import numpy as np
    >>> recipe = EachImageSize(size=(32, 32))
    >>> [recipe.for_size(s).transforms[3].min_max_height for s in [(120, 90), (60, 80)]]
    [(100, 120), (50, 60)]
    >>> recipe.for_size((60, 80))(image=np.zeros((60, 80, 3), np.uint8))["image"].shape
    (32, 32, 3)
    """

    def __init__(self, scale=0.25, *, size=None):
        self.scale, self.size = scale, size
        self._built = {}

    def for_size(self, input_size):
        """The recipe for images of ``input_size`` (height, width)."""
        input_size = tuple(int(v) for v in input_size)
        if input_size not in self._built:
            self._built[input_size] = train_transform(
                self.scale, input_size=input_size, size=self.size
            )
        return self._built[input_size]


def seed_transform(transform, seed):
    """Reseed an albumentations pipeline in place, one independent stream per step.

    Each step gets generators seeded from a BLAKE2b hash of the seed and the step's path in
    the tree (its class name and occurrence, and its parents'): the
    streams are independent of one another (unlike ``Compose(seed=...)``, see the module's
    note 1) and do not depend on where the step sits, so a fast and a faithful pipeline
    reseeded with the same value flip, warp, crop and shift colours alike.

    Parameters
    ----------
    transform : albumentations.BaseCompose or BasicTransform
    seed : int
        Integer in [0, 2**128).

    Returns
    -------
    The same ``transform``, for chaining.

    References
    ----------
    - Buslaev, A. et al. (2020). Albumentations: fast and flexible image augmentations.
      Information 11(2), 125. https://doi.org/10.3390/info11020125

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    >>> t = train_transform(scale=0.05, fast=True)
    >>> a = seed_transform(t, 7)(image=image)["image"]
    >>> b = seed_transform(t, 7)(image=image)["image"]
    >>> bool(np.array_equal(a, b))
    True
    """
    seed = int(seed)
    if not 0 <= seed < 2**128:
        raise ValueError(f"seed must be in [0, 2**128), got {seed}")
    _seed_recursively(transform, seed)
    return transform


def _seed_recursively(transform, seed):
    for node, key in _seeded_nodes(transform):
        digest = hashlib.blake2b(key, digest_size=32, key=seed.to_bytes(16, "little")).digest()
        state, increment = (int.from_bytes(digest[i : i + 16], "little") for i in (0, 16))
        node.seed = seed
        # Reseed the node's generators in place, and let its Python Random draw from the same
        # stream: building new ones (default_rng, random.Random and a SeedSequence per node)
        # cost about 25 us a node, more than the small-image augmentation itself.
        if not isinstance(getattr(node, "py_random", None), _GeneratorRandom):
            node.random_generator = np.random.default_rng()
            node.py_random = _GeneratorRandom(node.random_generator)
        node.random_generator.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": state, "inc": increment | 1},
            "has_uint32": 0,
            "uinteger": 0,
        }


class _GeneratorRandom(random.Random):
    """A :class:`random.Random` whose draws come from a NumPy generator.

    Reseeding the generator reseeds this too, at no cost (seeding a Mersenne Twister takes
    about 5 us). ``random`` and ``getrandbits`` are the two primitives every other method of
    :class:`random.Random` (uniform, randint, choice, shuffle, gauss, ...) is built on.
    """

    def __init__(self, generator):
        self._generator = generator
        super().__init__(0)

    def random(self):
        return float(self._generator.random())

    def getrandbits(self, k):
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        value = int.from_bytes(self._generator.bytes((k + 7) // 8), "little")
        return value >> (-k % 8)


def _seeded_nodes(transform):
    """Every node of ``transform`` with its key: the path of (class name, occurrence) pairs.

    Cached on the transform, whose tree does not change once built.
    """
    cached = getattr(transform, "_valf_seeded_nodes", None)
    if cached is not None:
        return cached
    nodes = []

    def visit(node, path):
        nodes.append((node, "/".join(path).encode()))
        seen = {}
        for child in getattr(node, "transforms", ()):
            name = type(child).__name__
            occurrence = seen.get(name, 0)
            seen[name] = occurrence + 1
            visit(child, (*path, f"{name}#{occurrence}"))

    visit(transform, ("root",))
    transform._valf_seeded_nodes = nodes
    return nodes


def compare_fast_to_faithful(image, n=16, seed=0, scale=0.25):
    """Measure how far the fast pipeline's outputs are from the faithful one's.

    Both pipelines are reseeded with the same per-sample seed, so sample i of each had the
    same flips, warp, crop position and colour shifts (the crop height is drawn on a different
    integer range, so it matches only roughly). The paired difference therefore measures the
    cost of resampling order; the unpaired one (faithful sample i against faithful sample
    i + n) is the scale of an augmentation's own effect, for reference.

    Parameters
    ----------
    image : ndarray
        uint8 RGB image (H, W, 3); its size is the faithful pipeline's input size.
    n : int
        Number of samples.
    seed : int
        Base seed; sample i uses ``seed + i``.
    scale : float
        Output size factor, as in :func:`train_transform`.

    Returns
    -------
    dict
        ``mean_abs_diff_paired``: mean ``|fast - faithful|`` over pixels and samples, in [0, 1]
        units; ``mean_abs_diff_unpaired``: the same between two independent faithful
        samples; ``channel_mean_diff`` / ``channel_std_diff``: largest over channels of
        the absolute difference, averaged over samples, of the per-image channel mean / std
        (paired); ``channel_mean_shift`` / ``channel_std_shift``: largest over channels of
        the difference of the per-channel means / stds averaged over all samples, i.e. of
        the two output distributions; ``faithful_ms`` / ``fast_ms``: milliseconds per image;
        ``speedup``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    >>> r = compare_fast_to_faithful(image, n=4, scale=0.1)
    >>> 0 <= r["mean_abs_diff_paired"] < 1
    True
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n!r}")
    faithful = train_transform(scale, input_size=image.shape[:2])
    fast = train_transform(scale, fast=True)

    def run(transform, seeds):
        outputs = []
        start = time.perf_counter()
        for s in seeds:
            outputs.append(seed_transform(transform, s)(image=image)["image"])
        milliseconds = 1000 * (time.perf_counter() - start) / len(seeds)
        return np.stack(outputs), milliseconds

    seeds = [seed + i for i in range(n)]
    faithful_out, faithful_ms = run(faithful, seeds)
    fast_out, fast_ms = run(fast, seeds)
    other_out, _ = run(faithful, [seed + n + i for i in range(n)])

    def channel_stats(batch):
        flat = batch.reshape(batch.shape[0], -1, 3).astype(np.float64)
        return flat.mean(axis=1), flat.std(axis=1)  # (n, 3) each

    faithful_mean, faithful_std = channel_stats(faithful_out)
    fast_mean, fast_std = channel_stats(fast_out)
    return {
        "n": int(n),
        "mean_abs_diff_paired": float(np.abs(fast_out - faithful_out).mean()),
        "mean_abs_diff_unpaired": float(np.abs(other_out - faithful_out).mean()),
        "channel_mean_diff": float(np.abs(fast_mean - faithful_mean).mean(axis=0).max()),
        "channel_std_diff": float(np.abs(fast_std - faithful_std).mean(axis=0).max()),
        "channel_mean_shift": float(
            np.abs(fast_mean.mean(axis=0) - faithful_mean.mean(axis=0)).max()
        ),
        "channel_std_shift": float(np.abs(fast_std.mean(axis=0) - faithful_std.mean(axis=0)).max()),
        "faithful_ms": float(faithful_ms),
        "fast_ms": float(fast_ms),
        "speedup": float(faithful_ms / fast_ms) if fast_ms > 0 else float("inf"),
    }
