"""Reading image files safely: a pixel limit read from the header, and cut or corrupt files
refused by name.

Every image the study reads goes through here first. :func:`read_image_header` reads a file's
header with Pillow, without decoding its pixels, and refuses an image whose width times height
is above the limit (:func:`max_image_pixels`: about 50 megapixels unless the environment
variable ``VALF_MAX_IMAGE_PIXELS`` or a keyword says otherwise), so a 74-byte PNG whose header
claims 50000x50000 pixels, or a small file that decodes to gigabytes, is named and refused
before any memory is spent on it. :func:`verify_image` also decodes the whole file with Pillow,
which notices a file cut short (OpenCV decodes a cut JPEG with a warning and fills the rest
with grey); that costs a full decode, so it belongs to the pass that checks a data set once
before any run trains (:mod:`valf_study.data.check`), not to the training path
(:func:`valf_study.data.decode.decode_image` applies the header limit only).

Every refusal is an :class:`ImageFileError`, a :class:`~valf_study.data.errors.DataError` that
names the file, what is wrong with it and what to do.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from valf_study.data.errors import DataError

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "MAX_PIXELS_VARIABLE",
    "ImageFileError",
    "ImageHeader",
    "check_pixels",
    "check_whole_jpeg",
    "max_image_pixels",
    "read_image_header",
    "verify_image",
]

#: The most pixels (width x height) an image may have when nothing else is said: 50
#: megapixels, 150 MB as 8-bit RGB (a LungHist700 image has 1.9 megapixels).
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
#: The environment variable that sets the limit (a whole number of pixels, e.g. 100000000).
MAX_PIXELS_VARIABLE = "VALF_MAX_IMAGE_PIXELS"

#: What to do, by the kind of problem (:attr:`ImageFileError.kind`).
ADVICE = {
    "too large": (
        "Shrink the image or remove it; or, given the memory (decoding takes about 3 bytes "
        f"per pixel), raise the limit by setting the environment variable {MAX_PIXELS_VARIABLE} "
        "to at least its number of pixels."
    ),
    "truncated": "Copy or download it again, or remove it.",
    "corrupt": "Replace it with a readable copy, or remove it.",
    "missing": "It has gone since the folder was listed; list the folder again.",
}


def max_image_pixels(limit=None):
    """The pixel limit: ``limit`` when given, else ``$VALF_MAX_IMAGE_PIXELS``, else
    :data:`DEFAULT_MAX_IMAGE_PIXELS`.

    Raises
    ------
    DataError
        The limit (or the environment variable) is not a whole number >= 1.

    Examples
    --------
    >>> max_image_pixels(), max_image_pixels(1000)
    (50000000, 1000)
    """
    if limit is None:
        text = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
        if not text:
            return DEFAULT_MAX_IMAGE_PIXELS
        try:
            limit = int(text)
        except ValueError:
            limit = None
        if limit is None or limit < 1:
            raise DataError(
                f"The environment variable {MAX_PIXELS_VARIABLE} is {text!r}; it must be a "
                f"whole number of pixels >= 1 (e.g. {DEFAULT_MAX_IMAGE_PIXELS}), or unset for "
                "the default."
            )
        return limit
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise DataError(f"max_pixels must be a whole number of pixels >= 1, received {limit!r}.")
    return limit


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says, read without decoding its pixels.

    Attributes
    ----------
    width, height : int
        As stored (before any EXIF rotation).
    mode : str
        Pillow's name for the pixel layout (``RGB``, ``L``, ``RGBA``, ``P``, ``I;16``, ...).
    format : str
        Pillow's name for the file format (``PNG``, ``JPEG``, ``TIFF``, ...).
    """

    width: int
    height: int
    mode: str
    format: str

    @property
    def pixels(self):
        """Width times height."""
        return self.width * self.height


class ImageFileError(DataError):
    """An image file the study refuses to read: too large, truncated, corrupt or gone.

    Attributes
    ----------
    path : str
        The file.
    kind : str
        ``"too large"``, ``"truncated"``, ``"corrupt"`` or ``"missing"``.
    reason : str
        What is wrong, in a few words that do not repeat the path (what a report lists
        beside the file).
    header : ImageHeader or None
        The header, when it could be read.
    """

    def __init__(self, path, kind, reason, header=None):
        self.path, self.kind, self.reason, self.header = os.fspath(path), kind, reason, header
        super().__init__(f"Image {self.path}: {reason}. {ADVICE[kind]}")


def _too_large(path, header, limit):
    return ImageFileError(
        path,
        "too large",
        f"{header.width}x{header.height} pixels ({header.pixels:,}), above the limit of "
        f"{limit:,} pixels, so it is not decoded",
        header,
    )


def check_pixels(path, width, height, max_pixels=None):
    """Raise :class:`ImageFileError` when ``width`` x ``height`` is above the limit."""
    limit = max_image_pixels(max_pixels)
    if width * height > limit:
        raise _too_large(path, ImageHeader(int(width), int(height), "", ""), limit)


def _open_lazily(handle, name):
    """Pillow's image object over an open file, its pixels not read.

    What :func:`PIL.Image.open` does, without Pillow's own decompression-bomb check (a warning
    above 89 megapixels and an error above 179 that name no size): this module applies its own
    limit, naming the file and its size. Returns None when no format recognises the file.
    """
    from PIL import Image

    Image.init()
    prefix = handle.read(16)
    for name_of_format in list(Image.ID):
        factory, accept = Image.OPEN[name_of_format]
        result = not accept or accept(prefix)
        if isinstance(result, str) or not result:
            continue
        handle.seek(0)
        try:
            return factory(handle, name)
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # not this format after all; Image.open tries the next one too
    return None


def _opened(path, handle):
    """The lazily opened image, or an ImageFileError saying why there is none."""
    try:
        image = _open_lazily(handle, os.fspath(path))
    except (OSError, ValueError, EOFError) as error:  # a header cut short or malformed
        said = _said(error)
        if "truncated" in said.lower():
            kind, reason = "truncated", f"the file is cut short (Pillow: {said})"
        else:
            kind, reason = "corrupt", f"its header is unreadable (Pillow: {said})"
        raise ImageFileError(path, kind, reason) from None
    if image is None:
        raise ImageFileError(path, "corrupt", "it is not an image file Pillow recognises")
    return image


def _header(image):
    return ImageHeader(int(image.width), int(image.height), image.mode, image.format or "")


def _said(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _open_file(path):
    try:
        return open(path, "rb")  # closed by the caller's with-block
    except FileNotFoundError:
        raise FileNotFoundError(f"cannot read image {os.fspath(path)!r}: no such file") from None
    except IsADirectoryError:
        raise ImageFileError(path, "corrupt", "it is a folder, not a file") from None


def read_image_header(path, *, max_pixels=None):
    """The :class:`ImageHeader` of ``path``, refused above the pixel limit; no pixel decoded.

    Parameters
    ----------
    path : path-like
    max_pixels : int, optional
        The limit (default :func:`max_image_pixels`: ``$VALF_MAX_IMAGE_PIXELS`` or 50
        megapixels).

    Raises
    ------
    FileNotFoundError
        No such file.
    ImageFileError
        Its header says more pixels than the limit (kind ``"too large"``), or Pillow does not
        recognise the file or cannot read its header (``"corrupt"``).

    Examples
    --------
    >>> import tempfile, os, numpy as np, cv2
    >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> _ = cv2.imwrite(path, np.zeros((300, 400, 3), np.uint8))
    >>> read_image_header(path)
    ImageHeader(width=400, height=300, mode='RGB', format='PNG')
    >>> read_image_header(path, max_pixels=100_000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    valf_study.data.images.ImageFileError: Image .../a.png: 400x300 pixels (120,000), above ...
    """
    limit = max_image_pixels(max_pixels)
    with _open_file(path) as handle:
        image = _opened(path, handle)
        header = _header(image)
        image.close()
    if header.pixels > limit:
        raise _too_large(path, header, limit)
    return header


def verify_image(path, *, max_pixels=None):
    """Read ``path`` whole with Pillow; its :class:`ImageHeader` when nothing is wrong.

    The header is checked against the pixel limit first (:func:`read_image_header`), then
    every pixel is decoded, with Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` as it is (False
    unless some code sets it), so a file cut short or with corrupt data is refused by name.
    A format Pillow recognises but has no decoder for (``decoder ... not available``) is not
    judged here; the OpenCV decode that follows in the check judges it.

    Raises
    ------
    FileNotFoundError, ImageFileError
        As :func:`read_image_header`, and kind ``"truncated"`` or ``"corrupt"`` when the
        pixels do not decode.

    Examples
    --------
    >>> import tempfile, os, numpy as np, cv2
    >>> path = os.path.join(tempfile.mkdtemp(), "a.jpg")
    >>> noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    >>> _ = cv2.imwrite(path, noise)
    >>> verify_image(path).format
    'JPEG'
    >>> data = open(path, "rb").read()
    >>> _ = open(path, "wb").write(data[: len(data) // 2])
    >>> verify_image(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    valf_study.data.images.ImageFileError: Image .../a.jpg: the file is cut short (Pillow: ...
    """
    limit = max_image_pixels(max_pixels)
    with _open_file(path) as handle:
        image = _opened(path, handle)
        try:
            header = _header(image)
            if header.pixels > limit:
                raise _too_large(path, header, limit)
            _load(path, image, header)
        finally:
            image.close()  # the pixels' memory back now, not when the object is collected
    return header


def check_whole_jpeg(path, header, *, max_pixels=None):
    """Refuse a JPEG cut short, cheaply: the training path's truncation check.

    A whole JPEG ends with the end-of-image marker (``FF D9``), perhaps followed by padding;
    reading its last bytes costs nothing beside a decode. When a JPEG does not end so, it is
    read whole by :func:`verify_image`, which refuses it when it is cut short and accepts it
    when its end marker is merely followed by other data (as some cameras write). Other formats
    are left to OpenCV, which refuses a PNG or a TIFF cut short by itself.

    Raises
    ------
    ImageFileError
        Kind ``"truncated"`` (or ``"corrupt"``) naming the file.
    """
    if header.format not in ("JPEG", "MPO"):
        return
    with _open_file(path) as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - 64))
        tail = handle.read().rstrip(b"\0\r\n\t ")
    if not tail.endswith(b"\xff\xd9"):
        verify_image(path, max_pixels=max_pixels)


def _load(path, image, header):
    """Decode every pixel of a lazily opened image; ImageFileError when they do not decode."""
    try:
        image.load()
    except MemoryError:
        raise
    except NotImplementedError:
        return  # Pillow cannot decode this variant; OpenCV's decode judges it
    except Exception as error:  # noqa: BLE001 - every decoder failure is the file's
        said = _said(error)
        if "not available" in said:
            return  # no Pillow decoder for this compression; OpenCV's decode judges it
        if "truncated" in said.lower():
            raise ImageFileError(
                path, "truncated", f"the file is cut short (Pillow: {said})", header
            ) from None
        raise ImageFileError(
            path, "corrupt", f"its pixels do not decode (Pillow: {said})", header
        ) from None
