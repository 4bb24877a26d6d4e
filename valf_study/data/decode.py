"""Decoding images once: pixels kept on disk at the size the transforms want.

:func:`decode_image` reads any image OpenCV reads (JPEG, PNG, TIFF, BMP, WebP; greyscale,
RGB, RGBA, palette, CMYK; 8 or 16 bits) as 8-bit RGB. :class:`DecodedImageCache` decodes each
image once, resized to a *working size* or at its own size, and keeps the pixels as one
``.npy`` file per image under ``cache_dir/<data set>-<magnification>-<H>x<W or native>/``.
The working size is the size the transform expects: each image's own size for the faithful
training recipe (1200x1600 on LungHist700), the output size (300x400 at r = 0.25) for the
fast recipe and for validation and test. At 1200x1600 the cache holds 5.8 MB per image
(about 4 GB for LungHist700); at 300x400, 360 kB. Reading an entry costs well under a
millisecond against 20-40 ms for decoding a 1200x1600 JPEG.

Every decode first reads the file's header (:func:`valf_study.data.images.read_image_header`)
and refuses an image above the pixel limit (``VALF_MAX_IMAGE_PIXELS``, about 50 megapixels by
default) with a :class:`~valf_study.data.images.ImageFileError` naming the file; a file OpenCV
does not decode is refused the same way, and so is a JPEG cut short (it does not end with its
end marker; OpenCV would fill the rest with grey). The thorough check, a full decode with
Pillow that also finds corrupt data, costs a second decode, so it is done once before any run
trains (:func:`valf_study.data.check.verify_decodable`, ``valf data check``), not here.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from valf_study.data.images import ImageFileError, check_pixels, check_whole_jpeg, read_image_header

__all__ = ["DecodedImageCache", "decode_image"]


def decode_image(path, size=None, *, max_pixels=None):
    """Read an image file as uint8 RGB (H, W, 3), optionally resized to ``size`` (h, w).

    ``cv2.imread(..., IMREAD_COLOR)`` does the conversion: a greyscale image is repeated over
    the three channels, an alpha channel is dropped (not blended), a palette is looked up,
    CMYK is converted, 16-bit samples keep their high byte (``v >> 8``), and the EXIF
    orientation is applied. Only the first page of a multi-page TIFF is read. Shrinking uses
    ``cv2.INTER_AREA`` (averages, no aliasing), enlarging ``INTER_LINEAR``.

    Parameters
    ----------
    path : path-like
    size : tuple of int, optional
    max_pixels : int, optional
        The most pixels the image may have, checked on its header before decoding (default
        :func:`~valf_study.data.images.max_image_pixels`: ``$VALF_MAX_IMAGE_PIXELS`` or 50
        megapixels).

    Raises
    ------
    FileNotFoundError
        No such file.
    valf_study.data.images.ImageFileError
        (a :class:`~valf_study.data.errors.DataError`) The image is above the pixel limit, is
        not an image Pillow recognises or OpenCV decodes, or is a JPEG cut short; the message
        names the file.

    Examples
    --------
    >>> import tempfile, os, numpy as np, cv2
    >>> path = os.path.join(tempfile.mkdtemp(), "red.png")
    >>> bgr = np.zeros((8, 10, 3), np.uint8); bgr[..., 2] = 255
    >>> _ = cv2.imwrite(path, bgr)
    >>> rgb = decode_image(path, size=(4, 5))
    >>> rgb.shape, rgb[0, 0].tolist()
    ((4, 5, 3), [255, 0, 0])
    >>> decode_image(path, max_pixels=50)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    valf_study.data.images.ImageFileError: Image .../red.png: 10x8 pixels (80), above the limit ...
    """
    header = read_image_header(path, max_pixels=max_pixels)
    check_whole_jpeg(path, header, max_pixels=max_pixels)
    try:
        bgr = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    except cv2.error as error:  # e.g. above OpenCV's own limit, OPENCV_IO_MAX_IMAGE_PIXELS
        lines = [line for line in str(error).splitlines() if line.strip()]
        said = lines[-1].strip() if lines else "cv2.error"
        raise ImageFileError(path, "corrupt", f"OpenCV does not decode it ({said})") from None
    if bgr is None:
        if not os.path.exists(path):
            raise FileNotFoundError(f"cannot read image {os.fspath(path)!r}: no such file")
        raise ImageFileError(path, "corrupt", "OpenCV does not decode it")
    # The header and OpenCV agree on the size; should a decoder ever read more, refuse anyway.
    check_pixels(path, bgr.shape[1], bgr.shape[0], max_pixels)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if size is not None:
        height, width = (int(s) for s in size)
        if rgb.shape[:2] != (height, width):
            shrinking = height * width < rgb.shape[0] * rgb.shape[1]
            interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
            rgb = cv2.resize(rgb, (width, height), interpolation=interpolation)
    return rgb


# CPython before 3.11.8 and 3.12.1 can raise "SystemError: AST constructor recursion depth
# mismatch" when two threads parse at once (python/cpython#106905), and np.load parses each
# file's header with ast.literal_eval: the input pipeline's worker threads read the cache
# concurrently, so the headers are read one at a time, the pixels in parallel.
_HEADER_LOCK = threading.Lock()


def _load_entry(entry):
    """The array of a ``.npy`` cache entry, as ``np.load`` reads it, safe from many threads."""
    with open(entry, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        with _HEADER_LOCK:
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
        count = int(np.prod(shape, dtype=np.int64))
        pixels = np.fromfile(handle, dtype=dtype, count=count)
    if pixels.size != count:
        raise ValueError(f"The cache entry {entry} is cut short; delete it to decode again.")
    return pixels.reshape(shape, order="F" if fortran_order else "C")


def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "_"


class DecodedImageCache:
    """Decoded, resized images on disk, one ``.npy`` per image.

    Parameters
    ----------
    cache_dir : path-like
        Root folder; entries go to ``cache_dir/<key>/`` with ``key`` =
        ``"<dataset_name>-<magnification>-<H>x<W>"``.
    dataset_name : str
        Data set name, e.g. ``"lunghist700"``.
    magnification : str, optional
        e.g. ``"20x"`` or ``"40x"``; None (a data set without magnifications) reads ``all``.
    working_size : tuple of int, optional
        (height, width) every image is resized to when decoded; None keeps each image's own
        size (``native`` in the key).
    max_pixels : int, optional
        The pixel limit of :func:`decode_image` (default ``$VALF_MAX_IMAGE_PIXELS`` or 50
        megapixels); an image above it raises
        :class:`~valf_study.data.images.ImageFileError` instead of being decoded.
    memory_bytes : int
        Pixels kept in this process's memory besides the files, the most recently read first
        out when the budget is spent (default 256 MiB: all of LungHist700 at 300x400, or 44
        images at 1200x1600). 0 keeps none.

    Notes
    -----
    An entry is named after the image's file stem and a hash of its absolute path, size and
    modification time, so a replaced image is decoded again; the name is worked out once per
    image and object (a run does not see an image replaced while it trains). Writes go to a
    temporary name in the same folder and are renamed into place (``os.replace``, atomic on
    POSIX): a run killed mid-write leaves at most a ``*.tmp`` file, never a truncated entry.
    Entries are not fsync'ed, so a power loss may still lose recent ones (they are then
    decoded again). Safe to share between threads and processes.

    Pixels are returned read-only: they may be shared with later reads.

    ``decode_count`` and ``hit_count`` count, for this object, the images decoded and the
    entries read (from memory or disk).

    Examples
    --------
    >>> import tempfile, os, numpy as np, cv2
    >>> root = tempfile.mkdtemp()
    >>> path = os.path.join(root, "a.png")
    >>> _ = cv2.imwrite(path, np.zeros((12, 16, 3), np.uint8))
    >>> cache = DecodedImageCache(root, "demo", "20x", (6, 8))
    >>> cache.key
    'demo-20x-6x8'
    >>> cache.get(path).shape, cache.get(path).shape
    ((6, 8, 3), (6, 8, 3))
    >>> cache.decode_count, cache.hit_count
    (1, 1)
    """

    def __init__(
        self,
        cache_dir,
        dataset_name,
        magnification,
        working_size,
        *,
        memory_bytes=256 * 2**20,
        max_pixels=None,
    ):
        if working_size is None:
            self.working_size, size_key = None, "native"
        else:
            height, width = (int(s) for s in working_size)
            if height < 1 or width < 1:
                raise ValueError(f"working_size must be positive, got {working_size!r}")
            self.working_size, size_key = (height, width), f"{height}x{width}"
        self.dataset_name = str(dataset_name)
        self.magnification = "all" if magnification is None else str(magnification)
        self.key = f"{_slug(dataset_name)}-{_slug(self.magnification)}-{size_key}"
        self.directory = Path(cache_dir) / self.key
        self.decode_count = 0
        self.hit_count = 0
        self.memory_bytes = int(memory_bytes)
        self.max_pixels = max_pixels
        self._entries = {}  # image path -> entry path
        self._held = OrderedDict()  # entry path -> pixels, oldest first
        self._held_bytes = 0
        self._lock = threading.Lock()

    def __repr__(self):
        return f"DecodedImageCache({str(self.directory)!r})"

    def entry_path(self, image_path):
        """Where the decoded pixels of ``image_path`` are (or will be) stored."""
        entry = self._entries.get(image_path)
        if entry is None:
            resolved = Path(image_path).resolve()
            stat = resolved.stat()
            identity = f"{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
            digest = hashlib.sha1(identity).hexdigest()[:16]
            entry = self.directory / f"{_slug(resolved.stem)}-{digest}.npy"
            self._entries[image_path] = entry
        return entry

    def __contains__(self, image_path):
        return self.entry_path(image_path).exists()

    def get(self, image_path):
        """The uint8 RGB pixels of ``image_path`` at the working size, decoding on a miss."""
        entry = self.entry_path(image_path)
        with self._lock:
            pixels = self._held.get(entry)
            if pixels is not None:
                self._held.move_to_end(entry)
                self.hit_count += 1
                return pixels
        try:
            pixels = _load_entry(entry)
            decoded = False
        except FileNotFoundError:
            pixels = decode_image(image_path, self.working_size, max_pixels=self.max_pixels)
            self._write(entry, pixels)
            decoded = True
        pixels.flags.writeable = False
        with self._lock:
            if decoded:
                self.decode_count += 1
            else:
                self.hit_count += 1
            self._hold(entry, pixels)
        return pixels

    def _hold(self, entry, pixels):
        if pixels.nbytes > self.memory_bytes or entry in self._held:
            return
        self._held[entry] = pixels
        self._held_bytes += pixels.nbytes
        while self._held_bytes > self.memory_bytes:
            _, dropped = self._held.popitem(last=False)
            self._held_bytes -= dropped.nbytes

    def _write(self, entry, pixels):
        entry.parent.mkdir(parents=True, exist_ok=True)
        # Unique per process and thread, so concurrent writers of one entry do not collide;
        # the last rename wins and every version is complete.
        temporary = entry.with_name(f".{entry.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(temporary, "wb") as handle:
                np.save(handle, pixels)
            os.replace(temporary, entry)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
