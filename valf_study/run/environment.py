"""What a number was computed with: package versions, git commit, hardware.

:func:`environment_record` is written to every run directory
(``environment.json``), to benchmark outputs and to the book's status page.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["PACKAGES", "environment_record", "git_commit", "gpu_names"]

#: Packages whose versions decide the numbers (and the book's look).
PACKAGES = (
    "valf",
    "keras",
    "tensorflow",
    "jax",
    "jaxlib",
    "torch",
    "numpy",
    "scikit-learn",
    "albumentations",
    "opencv-python-headless",
    "pandas",
    "papermill",
    "dask",
    "distributed",
    "jupyter-book",
    "matplotlib",
    "seaborn",
)


def git_commit(path=None):
    """``<sha>`` of the checkout holding ``path`` (default: this package), ``+dirty`` if
    it has uncommitted changes; None outside a git checkout."""
    where = Path(path or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def gpu_names():
    """Names of the NVIDIA GPUs ``nvidia-smi`` lists (empty without one)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib():
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def environment_record(backend_devices=False):
    """Versions, commit and hardware as a dict of plain values.

    ``backend_devices=True`` also names the Keras backend in use and lists the devices it sees
    (imports Keras and the backend).
    """
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    record = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "git_commit": git_commit(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_gib(),
        "gpus": gpu_names(),
        "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "threads": os.environ.get("VALF_THREADS"),
    }
    if backend_devices:
        record.update(_backend_devices())
    return record


def _backend_devices():
    """The backend Keras runs on and the devices it sees, e.g. ``["cpu:0"]``."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        devices = [
            d.device_type.lower() + ":" + d.name.split(":")[-1]
            for d in tf.config.list_physical_devices()
        ]
    elif backend == "jax":
        import jax

        devices = [f"{d.platform}:{d.id}" for d in jax.devices()]
    elif backend == "torch":
        import torch

        devices = ["cpu:0"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    else:
        devices = []
    return {"keras_backend": backend, "backend_devices": devices}
