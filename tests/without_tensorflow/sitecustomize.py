"""Make this Python behave as if TensorFlow were not installed (put this folder first on
PYTHONPATH), as on a GPU machine with only JAX or PyTorch: no import finder finds
``tensorflow``, so ``import tensorflow`` raises ModuleNotFoundError and
``importlib.util.find_spec("tensorflow")`` is None (what Keras and PyTorch check)."""

import sys


def _hidden(name):
    return name == "tensorflow" or name.startswith("tensorflow.")


class _WithoutTensorFlow:
    """One of Python's import finders, blind to TensorFlow."""

    def __init__(self, finder):
        self._finder = finder

    def find_spec(self, name, path=None, target=None):
        if _hidden(name):
            return None
        find_spec = getattr(self._finder, "find_spec", None)
        return find_spec(name, path, target) if find_spec else None

    def __getattr__(self, attribute):
        return getattr(self._finder, attribute)


sys.meta_path[:] = [_WithoutTensorFlow(finder) for finder in sys.meta_path]
