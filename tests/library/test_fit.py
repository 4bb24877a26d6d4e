"""The adaptive losses' weights are state the compiled train step reads, on the backend this
process runs (``KERAS_BACKEND``): on JAX a jitted fit, on TensorFlow a tf.function, on PyTorch
eager. The study's tests run the same checks on every backend (tests/study/test_backends.py)."""

import keras
import numpy as np
import pytest

from tests.library.fit_probe import (
    EPOCHS,
    WARMUP_EPOCHS,
    cdb_epochs,
    cdb_expected,
    drw_epochs,
    drw_expected,
    expected_losses,
    valf_epochs,
)


@pytest.mark.slow
def test_each_epoch_of_a_compiled_fit_trains_with_the_weights_set_after_the_one_before():
    result = valf_epochs(jit_compile="auto")
    expected, in_force = expected_losses(result)
    np.testing.assert_allclose(result["reported_loss"], expected, rtol=2e-5)
    # The weights did move, so a value frozen at the first trace could not pass.
    assert np.ptp(np.asarray(in_force), axis=0).max() > 0.3
    assert np.ptp(expected) > 0.01
    assert keras.backend.backend() in ("tensorflow", "jax", "torch")


def check_in_force(result, in_force):
    """The callback recorded, after each epoch, the weights the next epoch trains with."""
    recorded = np.asarray(result["weights_after_epoch"])
    np.testing.assert_allclose(recorded[:-1], np.asarray(in_force[1:]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(result["logged_weights"]).T, recorded, rtol=1e-7)
    assert result["updated"] == [e + 1 >= WARMUP_EPOCHS for e in range(EPOCHS)]


@pytest.mark.slow
def test_cdb_trains_with_the_weights_its_rule_set_after_the_epoch_before():
    result = cdb_epochs(jit_compile="auto")
    expected, in_force, accuracy = cdb_expected(result)
    np.testing.assert_allclose(accuracy, [1.0, 0.6, 0.3])
    assert in_force[-1][0] == 0  # the class at accuracy 1, inside the compiled step
    np.testing.assert_allclose(result["reported_loss"], expected, rtol=2e-5)
    check_in_force(result, in_force)
    np.testing.assert_allclose(result["weights_after_epoch"][-1], in_force[-1], rtol=1e-6)
    assert np.ptp(expected) > 0.01  # uniform during the warm-up, then CDB's


@pytest.mark.slow
def test_drw_switches_to_class_balanced_weights_after_the_warmup():
    result = drw_epochs(jit_compile="auto")
    expected, in_force = drw_expected(result)
    np.testing.assert_allclose(result["reported_loss"], expected, rtol=2e-5)
    check_in_force(result, in_force)
    assert np.ptp(np.asarray(in_force[-1])) > 1.0 and np.ptp(expected) > 0.01
