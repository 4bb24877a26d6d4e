"""Class-per-folder image sets for the tests and benchmarks, in every size, mode and format a
user's folder may hold.

Class k of K draws stripes at angle 180 k / K degrees (visible in colour and in grey, so a
small network can tell the classes apart), over noise; image i gets its size, mode and format
from the lists, cycling, so every class holds every kind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: (height, width) of the images, cycled.
SIZES = ((48, 64), (64, 64), (40, 72), (56, 48))
#: Pillow modes, cycled: RGB, greyscale, RGB with alpha, palette, 16-bit greyscale.
MODES = ("RGB", "L", "RGBA", "P", "I;16")
#: File formats, cycled (a 16-bit image is written as PNG or TIFF, which keep 16 bits).
FORMATS = (".png", ".jpg", ".tif")


def stripes(label, num_classes, size, rng):
    """uint8 RGB stripes at the class's angle, with noise and a random phase and tint."""
    height, width = size
    angle = np.pi * label / num_classes
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    wave = 0.5 + 0.5 * np.sin((x * np.cos(angle) + y * np.sin(angle)) * 0.6 + phase)
    tint = rng.uniform(0.6, 1.0, 3)
    image = wave[..., None] * tint * 200 + rng.normal(0, 12, (height, width, 3)) + 25
    return np.clip(image, 0, 255).astype(np.uint8)


def write_image(path, rgb, mode):
    """Write ``rgb`` (uint8) to ``path`` in Pillow ``mode``; return the path actually written
    (a 16-bit JPEG does not exist, so that one becomes a PNG)."""
    path = Path(path)
    if mode == "I;16":
        grey = np.asarray(Image.fromarray(rgb).convert("L"), np.uint16) * 257
        if path.suffix == ".jpg":
            path = path.with_suffix(".png")
        Image.fromarray(grey).save(path)  # uint16 -> Pillow's I;16
        return path
    image = Image.fromarray(rgb).convert(mode)
    if path.suffix == ".jpg" and mode in ("RGBA", "P"):
        image = image.convert("RGB")  # JPEG keeps neither alpha nor a palette
    image.save(path)
    return path


def make_image_folder(
    root,
    counts,
    *,
    class_names=None,
    sizes=SIZES,
    modes=MODES,
    formats=FORMATS,
    seed=0,
    extras=True,
):
    """Write a class-per-folder image set; return its root.

    Parameters
    ----------
    root : path
    counts : sequence of int
        Images per class (class k gets ``counts[k]``).
    class_names : sequence of str, optional
        Folder names; default ``class_0``, ``class_1``, ...
    sizes, modes, formats : sequences
        Cycled over the images of each class.
    seed : int
    extras : bool
        Also write what a real folder holds besides images: a notes file, a hidden file, and
        a nested sub-folder of images (one per class folder).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    names = list(class_names or [f"class_{k}" for k in range(len(counts))])
    for label, (name, count) in enumerate(zip(names, counts)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            size = sizes[i % len(sizes)]
            nested = extras and i == count - 1 and count > 2
            target = folder / "slide_b" if nested else folder
            target.mkdir(exist_ok=True)
            path = target / f"{name}_{i:04d}{formats[i % len(formats)]}"
            write_image(path, stripes(label, len(names), size, rng), modes[i % len(modes)])
        if extras:
            (folder / "README.txt").write_text("notes that are not an image\n")
            (folder / ".DS_Store").write_bytes(b"\0")
    return root
