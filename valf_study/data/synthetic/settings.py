"""The generator's settings: defaults, checks and the marker of a generated release.

:data:`DEFAULTS` is the one place that says what ``valf data make-synthetic``, the run
parameter ``synthetic`` and :func:`~valf_study.data.synthetic.make_synthetic_release` generate when
not told otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from valf_study.data.images import MAX_PIXELS_VARIABLE, max_image_pixels
from valf_study.data.lunghist700 import MAGNIFICATIONS, RELEASE_COLUMNS, SUBCLASSES

__all__ = ["DEFAULTS", "GENERATOR_VERSION", "SYNTHETIC_INFO_FILE", "check_settings"]

#: Bumped whenever a change to the drawing changes the pixels for a given seed.
GENERATOR_VERSION = "1.0"
#: Name of the marker file written beside ``data.csv`` in a generated release.
SYNTHETIC_INFO_FILE = "SYNTHETIC.json"
#: What is generated when not told otherwise: every row of the release, at 240x320 (the
#: release's aspect), at the hardest setting, where ACA and SCC overlap most.
DEFAULTS = {"seed": 0, "scale": 1.0, "image_size": [240, 320], "difficulty": 1.0}

SUPERCLASSES = tuple(SUBCLASSES)
GRADES = SUBCLASSES["aca"]  # bd, md, pd: well, moderately, poorly differentiated
RESOLUTIONS = MAGNIFICATIONS
COLUMNS = list(RELEASE_COLUMNS)
JPEG_QUALITY = 90


def check_settings(
    seed=DEFAULTS["seed"],
    scale=DEFAULTS["scale"],
    image_size=DEFAULTS["image_size"],
    difficulty=DEFAULTS["difficulty"],
):
    """The four settings checked and normalised, as a dict in :data:`DEFAULTS` order.

    Examples
    --------
    >>> check_settings(scale=0.5, image_size=(24, 32))
    {'seed': 0, 'scale': 0.5, 'image_size': [24, 32], 'difficulty': 1.0}
    """
    return {
        "seed": check_seed(seed),
        "scale": check_unit_interval(scale, "scale", open_low=True),
        "image_size": list(check_image_size(image_size)),
        "difficulty": check_unit_interval(difficulty, "difficulty", open_low=False),
    }


def check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be an integer >= 0, received {seed!r}.")
    return int(seed)


def check_unit_interval(value, name, *, open_low):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    low_ok = number > 0 if open_low else number >= 0
    if isinstance(value, bool) or not (low_ok and number <= 1):
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise ValueError(f"`{name}` must be a number in {interval}, received {value!r}.")
    return number


def check_image_size(image_size):
    """``image_size`` as (height, width): two integers >= 8, at most the pixel limit together.

    The limit is the one every image the study reads is held to
    (:func:`valf_study.data.images.max_image_pixels`: ``$VALF_MAX_IMAGE_PIXELS`` or 50
    megapixels), so a generated release is always one the study can read.

    Examples
    --------
    >>> check_image_size([240, 320])
    (240, 320)
    >>> check_image_size((100_000, 100_000))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `image_size` 100000x100000 is 10,000,000,000 pixels per image, above the limit ...
    """
    try:
        height, width = image_size
        ok = all(
            not isinstance(v, bool) and isinstance(v, (int, np.integer)) and v >= 8
            for v in (height, width)
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            "`image_size` must be a pair of integers (height, width), each >= 8; "
            f"received {image_size!r}."
        )
    height, width = int(height), int(width)
    limit = max_image_pixels()
    if height * width > limit:
        raise ValueError(
            f"`image_size` {height}x{width} is {height * width:,} pixels per image, above the "
            f"limit of {limit:,} pixels that every image the study reads is held to. Choose a "
            f"smaller size (the default is {DEFAULTS['image_size'][0]} "
            f"{DEFAULTS['image_size'][1]}); or, given the memory (drawing takes well over 3 "
            f"bytes per pixel), raise the limit with the environment variable "
            f"{MAX_PIXELS_VARIABLE}."
        )
    return height, width


def check_class_counts(class_counts):
    if class_counts is None:
        return None
    if not isinstance(class_counts, Mapping):
        raise ValueError(
            "`class_counts` must be a dict such as {'aca': 100, 'nor': 20, 'scc': 100}, "
            f"received {class_counts!r}."
        )
    counts = {}
    for name, count in class_counts.items():
        if name not in SUPERCLASSES:
            raise ValueError(
                f"`class_counts` keys must be among {list(SUPERCLASSES)}, received key {name!r}."
            )
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(
                f"`class_counts[{name!r}]` must be an integer >= 1 (images per magnification), "
                f"received {count!r}."
            )
        counts[name] = int(count)
    return counts
