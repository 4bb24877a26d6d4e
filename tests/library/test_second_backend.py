"""The loss and reweighting tests again, on a second Keras backend (PyTorch, CPU).

Keras fixes its backend at import, so the second run is a separate pytest
process with KERAS_BACKEND=torch.
"""

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_losses_and_reweighting_pass_on_torch_backend():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("this test starts the torch run from the default backend")
    pytest.importorskip("torch", reason="the second backend needs torch (the `test` extra)")
    env = dict(os.environ, KERAS_BACKEND="torch")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/library/test_losses.py",
            "tests/library/test_reweighting.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = "\n".join(result.stdout.splitlines()[-40:])
    assert result.returncode == 0, f"torch backend run failed:\n{tail}\n{result.stderr[-2000:]}"
    assert " passed" in tail and "failed" not in tail
