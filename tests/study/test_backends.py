"""Every Keras backend: the adaptive weights (VALF's, CDB's, DRW's) are state the compiled train
step reads (TensorFlow with and without XLA, JAX jitted, PyTorch), the same seed gives the same
augmented batch, and a run swept on JAX or PyTorch trains without TensorFlow installed.

Keras fixes its backend at import, so each backend runs in a process of its own
(``tests/study/backend_probe.py``, or a sweep's runs); JAX and PyTorch run with TensorFlow's import
blocked (``tests/without_tensorflow``), as on a machine without it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

import valf
from tests import reference
from tests.library.fit_probe import (
    EPOCHS,
    WARMUP_EPOCHS,
    cdb_expected,
    drw_expected,
    expected_losses,
)
from valf.reweighting import ValidationAdaptiveWeights, track_class_weights

ROOT = Path(__file__).resolve().parents[2]
WITHOUT_TENSORFLOW = ROOT / "tests" / "without_tensorflow"
CONFIGURATIONS = {
    "tensorflow": {"KERAS_BACKEND": "tensorflow"},
    "tensorflow-xla": {"KERAS_BACKEND": "tensorflow", "VALF_PROBE_JIT": "1"},
    "jax": {"KERAS_BACKEND": "jax"},
    "torch": {"KERAS_BACKEND": "torch"},
}


def environment(backend_settings):
    env = {**os.environ, **backend_settings, "PYTHONPATH": str(ROOT)}
    if backend_settings["KERAS_BACKEND"] != "tensorflow":
        env["PYTHONPATH"] = os.pathsep.join([str(WITHOUT_TENSORFLOW), str(ROOT)])
    return env


@pytest.fixture(scope="module")
def probes():
    """Each configuration's probe output, started together (each process is small)."""
    for module in ("jax", "torch"):
        pytest.importorskip(module, reason="the backends come with the `jax` and `torch` extras")
    started = {
        name: subprocess.Popen(
            [sys.executable, "-m", "tests.study.backend_probe"],
            cwd=ROOT,
            env=environment(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, settings in CONFIGURATIONS.items()
    }
    results = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, f"{name} probe failed:\n{err[-3000:]}"
        results[name] = json.loads(out.strip().splitlines()[-1])
    return results


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_each_epoch_trains_with_the_weights_set_after_the_one_before(probes, name):
    # Learning rate 0: the predictions never change, so the loss Keras reports for epoch e is
    # the NumPy VALF loss (eq. 6) under the weights in force during epoch e: the prior for the
    # first epoch, then those the callback set after epoch e - 1 (warm-up 1, rate 1).
    probe = probes[name]
    assert probe["backend"] == CONFIGURATIONS[name]["KERAS_BACKEND"]
    assert probe["valf"]["jit_compile"] == (name == "tensorflow-xla")
    expected, in_force = expected_losses(probe["valf"])
    np.testing.assert_allclose(probe["valf"]["reported_loss"], expected, rtol=2e-5)
    # The weights did move, so a frozen first value could not pass.
    assert np.ptp(np.asarray(in_force), axis=0).max() > 0.3
    assert np.ptp(expected) > 0.01


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGURATIONS))
@pytest.mark.parametrize("loss", ["cdb", "drw"])
def test_cdb_and_drw_train_with_the_weights_their_callbacks_set(probes, name, loss):
    # As above, for the prior art: uniform weights for the first WARMUP_EPOCHS epochs, then
    # CDB's weights (from validation accuracies 1.0, 0.6, 0.3: class 0 weighs 0) or DRW's
    # class-balanced ones, each recomputed here with NumPy.
    probe = probes[name][loss]
    assert probe["jit_compile"] == (name == "tensorflow-xla")
    if loss == "cdb":
        expected, in_force, accuracy = cdb_expected(probe)
        np.testing.assert_allclose(accuracy, [1.0, 0.6, 0.3])
        assert in_force[-1][0] == 0
    else:
        expected, in_force = drw_expected(probe)
    np.testing.assert_allclose(probe["reported_loss"], expected, rtol=2e-5)
    np.testing.assert_allclose(
        probe["weights_after_epoch"][:-1], np.asarray(in_force[1:]), rtol=1e-6, atol=1e-7
    )
    assert probe["updated"] == [e + 1 >= WARMUP_EPOCHS for e in range(EPOCHS)]
    assert np.ptp(expected) > 0.01  # the weights did change within the fit


@pytest.mark.slow
def test_the_same_seed_gives_the_same_augmented_batch_on_every_backend(probes):
    batches = {name: probe["batch"] for name, probe in probes.items()}
    assert len({b["sha256"] for b in batches.values()}) == 1, batches
    assert batches["jax"]["shape"] == [4, 24, 32, 3]


@pytest.mark.slow
def test_jax_and_torch_train_without_tensorflow(probes):
    assert not probes["jax"]["tensorflow_imported"]
    assert not probes["torch"]["tensorflow_imported"]


def test_tracking_the_weights_is_idempotent_and_checks_the_loss():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    loss = valf.ValidationAdaptiveFocalLoss(3)
    model.compile(optimizer="adam", loss=loss)
    before = len(model.weights)
    track_class_weights(model, loss)
    track_class_weights(model, loss)
    assert len(model.weights) == before + 1
    assert model.non_trainable_variables[-1] is loss.class_weights
    callback = ValidationAdaptiveWeights(loss, (np.zeros((3, 4)), np.arange(3)))
    callback.set_model(model)
    assert len(model.weights) == before + 1
    with pytest.raises(ValueError, match="class_weights"):
        track_class_weights(model, valf.FocalLoss())


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_run_swept_on_jax_or_torch_without_tensorflow(backend, tmp_path, monkeypatch):
    pytest.importorskip(backend)
    from tests.study.test_sweep import KERNEL, NOTEBOOK, write_study
    from valf_study.studies.results import load_results, write_results
    from valf_study.studies.sweep import sweep

    # The sweep's workers and each run's process inherit this environment.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(WITHOUT_TENSORFLOW), str(ROOT)]))
    study = write_study(
        tmp_path, "one", {"main": {"fixed": {"loss": "VALF", "rate": 1.0}}}, tmp_path / "data"
    )
    summary = sweep(
        study,
        tmp_path / "runs",
        workers=1,
        kernel=KERNEL,
        notebook=NOTEBOOK,
        progress=False,
        backend=backend,
    )
    assert not summary.failed, summary.report()
    (run_dir,) = [path.parent for path in (tmp_path / "runs").glob("*/DONE")]
    recorded = json.loads((run_dir / "environment.json").read_text())
    assert recorded["keras_backend"] == backend
    assert recorded["packages"][{"jax": "jax", "torch": "torch"}[backend]]
    weights = pd.read_csv(run_dir / "class_weights.csv")
    assert weights.filter(like="weight_").std().max() > 0  # the update rule ran
    write_results(study, tmp_path / "runs", tmp_path / "results")
    runs = load_results("one", tmp_path / "results")["runs"]
    assert runs["keras_backend"].tolist() == [backend]


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_the_head_and_the_loss_in_float32(precision):
    from valf_study.run.backbones import build_model
    from valf_study.run.parameters import resolve_parameters

    assert resolve_parameters(dtype_policy=precision)["dtype_policy"] == precision
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(8, 16, 20, 3)).astype("float32")
    y = np.arange(8) % 3
    try:
        keras.config.set_dtype_policy(precision)
        model = build_model("SmallCNN", 3, (16, 20, 3), weights=None)
        loss = valf.ValidationAdaptiveFocalLoss(3, prior=[2.0, 0.5, 0.5])
        model.compile(optimizer=keras.optimizers.Adam(0.0), loss=loss)
        assert model.layers[1].compute_dtype == precision.removeprefix("mixed_")
        assert model.outputs[0].dtype == "float32"
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (
            precision == "mixed_float16"
        )
        reported = model.evaluate(x, y, batch_size=8, verbose=0)
        predictions = model.predict(x, verbose=0)
    finally:
        keras.config.set_dtype_policy("float32")
    assert predictions.dtype == np.float32
    expected = reference.valf(y, predictions.astype(float), [2.0, 0.5, 0.5], 2.0).mean()
    np.testing.assert_allclose(reported, expected, rtol=1e-5)


def test_precision_is_checked():
    from valf_study.run.parameters import ParameterError, resolve_parameters

    with pytest.raises(ParameterError, match="mixed_bfloat16"):
        resolve_parameters(dtype_policy="float16")
