"""The Keras backend a run trains on: TensorFlow, JAX or PyTorch, chosen before Keras loads.

Keras reads ``KERAS_BACKEND`` once, when it is first imported; the sweep gives each run's process
its backend that way (:func:`valf_study.studies.execute.run_environment`). A run imports Keras
through :func:`import_keras`, which also keeps Keras from loading what the run does not use.
"""

from __future__ import annotations

import os
import sys

__all__ = ["BACKENDS", "import_keras", "requested_backend"]

#: The Keras backends a run can train on.
BACKENDS = ("tensorflow", "jax", "torch")


def requested_backend():
    """The backend ``KERAS_BACKEND`` asks for (Keras' default, TensorFlow, when unset)."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKENDS:
        raise ValueError(f"KERAS_BACKEND is {backend!r}; choose one of {list(BACKENDS)}.")
    return backend


def import_keras():
    """Keras, on the requested backend.

    On TensorFlow, JAX is kept out: TensorFlow's TFLite helpers import it whenever it is
    installed (0.4 s of every run's start), and go on without it when the import fails.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    kept_out = []
    if requested_backend() == "tensorflow" and "jax" not in sys.modules:
        sys.modules["jax"] = None
        kept_out.append("jax")
    try:
        import keras
    finally:
        for name in kept_out:
            del sys.modules[name]
    return keras
