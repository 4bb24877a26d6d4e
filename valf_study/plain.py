"""Plain values: what JSON, YAML and Keras configs hold.

One helper for the whole package, so a NumPy scalar, an array, a tuple or a path becomes the
same Python value wherever a record is written (run files, configs, tables, manifests).
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

__all__ = ["plain"]


def plain(value):
    """``value`` with NumPy scalars and arrays, tuples, sets and paths made plain Python.

    Mappings and sequences are converted recursively; anything else is returned unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> plain({"w": np.array([1.0, 2.0]), "n": np.int64(3), "size": (4, 5)})
    {'w': [1.0, 2.0], 'n': 3, 'size': [4, 5]}
    """
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    if isinstance(value, PathLike):
        return str(value)
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return plain(value.tolist())
    return value
