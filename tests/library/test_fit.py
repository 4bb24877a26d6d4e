"""VALF's weights are state the compiled train step reads, on the backend this process runs
(``KERAS_BACKEND``): on JAX a jitted fit, on TensorFlow a tf.function, on PyTorch eager. The
study's tests run the same check on every backend (tests/study/test_backends.py)."""

import keras
import numpy as np
import pytest

from tests.library.fit_probe import expected_losses, valf_epochs


@pytest.mark.slow
def test_each_epoch_of_a_compiled_fit_trains_with_the_weights_set_after_the_one_before():
    result = valf_epochs(jit_compile="auto")
    expected, in_force = expected_losses(result)
    np.testing.assert_allclose(result["reported_loss"], expected, rtol=2e-5)
    # The weights did move, so a value frozen at the first trace could not pass.
    assert np.ptp(np.asarray(in_force), axis=0).max() > 0.3
    assert np.ptp(expected) > 0.01
    assert keras.backend.backend() in ("tensorflow", "jax", "torch")
