"""One training run (valf_study.run.train): the files it writes agree with an independent
computation from its own predictions, a killed run resumes to exactly the result of an uninterrupted
one, a complete run is never trained again, and bad input fails before anything is written."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics as skm

from valf import losses
from valf_study.data.errors import DataError
from valf_study.data.lunghist700 import CLASS_NAMES
from valf_study.run.objective import LOSSES
from valf_study.run.parameters import ParameterError, parameter_hash, resolve_parameters, run_id
from valf_study.run.rundir import RunDirectory
from valf_study.run.train import train

ROOT = Path(__file__).resolve().parents[2]

# About 100 generated 48x64 images per magnification, 3 epochs: ~10 s of training on 2 cores.
TINY = {
    "loss": "VALF",
    "epochs": 3,
    "warmup_epochs": 2,
    "image_scale": 0.04,
    "fast_augmentation": True,
    "learning_rate": 1e-3,
    "deterministic": True,
    "early_stopping_patience": 10,
    "synthetic": {"scale": 0.3, "image_size": [48, 64], "difficulty": 1.0},
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def tiny(data_dir, runs_root, **overrides):
    return {
        **TINY,
        "runs_root": str(runs_root),
        "data_root": str(data_dir / "synthetic"),
        "cache_dir": str(data_dir / "cache"),
        **overrides,
    }


@pytest.fixture(scope="module")
def complete_run(data_dir, tmp_path_factory):
    runs_root = tmp_path_factory.mktemp("runs")
    return train(tiny(data_dir, runs_root), progress=False)


@pytest.mark.slow
def test_a_complete_run_directory(complete_run):
    names = {p.name for p in complete_run.iterdir()}
    assert {
        "DONE",
        "params.yaml",
        "environment.json",
        "status.json",
        "history.csv",
        "class_weights.csv",
        "metrics.json",
        "predictions.csv",
        "confusion.csv",
        "best.weights.h5",
    } <= names
    assert "backup" not in names  # the resumable state goes once the run is complete
    status = json.loads((complete_run / "status.json").read_text())
    assert status["status"] == "ok" and status["run_id"] == complete_run.name
    recorded = yaml.safe_load((complete_run / "params.yaml").read_text())
    params = resolve_parameters({k: v for k, v in recorded.items() if not k.startswith("_")})
    assert recorded["_hash"] == parameter_hash(params) and recorded["_run_id"] == run_id(params)
    assert complete_run.name == run_id(params)
    environment = json.loads((complete_run / "environment.json").read_text())
    assert environment["packages"]["keras"] and environment["cpu"]


@pytest.mark.slow
def test_metrics_agree_with_scikit_learn_on_the_saved_predictions(complete_run):
    predictions = pd.read_csv(complete_run / "predictions.csv")
    result = json.loads((complete_run / "metrics.json").read_text())
    probabilities = [f"prob_{c}" for c in CLASS_NAMES]
    for split, prefix in (("test", ""), ("val", "val_")):
        part = predictions[predictions["split"] == split]
        y, p = part["label"].to_numpy(), part[probabilities].to_numpy()
        np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
        assert (part["predicted"] == p.argmax(1)).all()
        assert result[f"{prefix}accuracy"] == pytest.approx(skm.accuracy_score(y, p.argmax(1)))
        assert result[f"{prefix}f1"] == pytest.approx(
            skm.f1_score(y, p.argmax(1), average="macro", zero_division=0)
        )
        assert result[f"{prefix}balanced_accuracy"] == pytest.approx(
            skm.balanced_accuracy_score(y, p.argmax(1))
        )
    assert result["n_test"] == (predictions["split"] == "test").sum()
    test = predictions[predictions["split"] == "test"]
    confusion = pd.read_csv(complete_run / "confusion.csv", index_col=0)
    expected = skm.confusion_matrix(
        test["label"], test["predicted"], labels=[0, 1, 2], normalize="true"
    )
    np.testing.assert_allclose(confusion.to_numpy(), expected, atol=1e-12)
    assert result["f1_ci_low"] <= result["f1"] <= result["f1_ci_high"]


@pytest.mark.slow
def test_history_and_class_weights(complete_run):
    history = pd.read_csv(complete_run / "history.csv")
    result = json.loads((complete_run / "metrics.json").read_text())
    assert history["epoch"].tolist() == list(range(1, result["epochs_run"] + 1))
    assert result["best_epoch"] == int(history["val_loss"].idxmin()) + 1
    assert result["val_loss_best"] == pytest.approx(history["val_loss"].min())
    weights = pd.read_csv(complete_run / "class_weights.csv")
    columns = [f"weight_{c}" for c in CLASS_NAMES]
    assert weights["epoch"].tolist() == list(range(0, result["epochs_run"] + 1))
    np.testing.assert_allclose(weights.loc[0, columns], 1.0)  # uniform start
    np.testing.assert_allclose(weights[columns].mean(axis=1), 1.0, rtol=1e-6)  # mean 1 always
    # A warm-up of two epochs: fixed through epoch 1, first updated after epoch 2 by eq. 7-8
    # from the validation accuracies recorded beside them.
    np.testing.assert_allclose(weights.loc[1, columns], 1.0)
    assert weights["updated"].tolist() == [False, False] + [True] * (len(weights) - 2)
    for epoch in range(2, len(weights)):
        accuracy = weights.loc[epoch, [f"val_acc_{c}" for c in CLASS_NAMES]].to_numpy(float)
        previous = weights.loc[epoch - 1, columns].to_numpy(float)
        expected = previous * (1 + (accuracy.mean() - accuracy) * 0.01)
        np.testing.assert_allclose(
            weights.loc[epoch, columns].to_numpy(float), expected / expected.mean(), rtol=1e-6
        )


@pytest.mark.slow
def test_a_complete_run_is_not_trained_again(complete_run, data_dir):
    before = {p.name: p.stat().st_mtime_ns for p in complete_run.iterdir()}
    params = yaml.safe_load((complete_run / "params.yaml").read_text())
    again = train({k: v for k, v in params.items() if not k.startswith("_")}, progress=False)
    assert again == complete_run
    assert {p.name: p.stat().st_mtime_ns for p in complete_run.iterdir()} == before


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys, yaml
    import valf_study.run.progress
    import valf_study.run.train

    class KillAtEpoch(valf_study.run.progress.EpochLog):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind

    valf_study.run.progress.EpochLog = KillAtEpoch
    valf_study.run.train.train(yaml.safe_load(open(sys.argv[1])), progress=False)
""")


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(
    complete_run, data_dir, tmp_path, monkeypatch
):
    params = tiny(data_dir, tmp_path / "runs")
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(params_file), "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_dir = tmp_path / "runs" / complete_run.name
    # Killed, it could not say so: a reader sees the dead process and reports it failed.
    status = RunDirectory(run_dir).status()
    assert status["status"] == "failed" and "ended without recording why" in status["error"]
    assert not (run_dir / "DONE").exists() and not (run_dir / "metrics.json").exists()
    assert pd.read_csv(run_dir / "backup" / "history_log.csv")["epoch"].tolist() == [0, 1]

    # Under the sweep the run stops short of DONE, with its finished state kept ...
    monkeypatch.setenv("VALF_SWEEP_RUN", run_dir.name)
    train(params, progress=False)
    assert not (run_dir / "DONE").exists() and (run_dir / "backup").is_dir()
    result = json.loads((run_dir / "metrics.json").read_text())
    assert result["resumed_from_epoch"] == 2
    for name in ("history.csv", "class_weights.csv", "predictions.csv", "confusion.csv"):
        resumed, uninterrupted = pd.read_csv(run_dir / name), pd.read_csv(complete_run / name)
        pd.testing.assert_frame_equal(resumed, uninterrupted, check_exact=True, obj=name)

    # ... so that a kill before DONE costs an evaluation, not a training.
    history_before = (run_dir / "history.csv").read_text()
    train(params, progress=False)
    again = json.loads((run_dir / "metrics.json").read_text())
    assert again["resumed_from_epoch"] == again["epochs_run"] == result["epochs_run"]
    assert again["accuracy"] == result["accuracy"]
    assert (run_dir / "history.csv").read_text() == history_before


def test_parameters_are_checked_before_anything_is_written(tmp_path):
    with pytest.raises(ParameterError, match="loss"):
        train(loss="Focal", runs_root=str(tmp_path / "runs"))
    with pytest.raises(ParameterError, match="learning_rate"):
        train(learning_rate=-1, runs_root=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_run_directory_of_other_parameters_is_refused(complete_run, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "params.yaml").write_text((complete_run / "params.yaml").read_text())
    with pytest.raises(ParameterError, match="holds a run with other parameters"):
        train(loss="CCE", run_dir=other, runs_root=str(tmp_path))


def test_data_errors_say_what_to_do(data_dir, tmp_path):
    with pytest.raises(DataError, match="LungHist700"):
        train(
            dataset="lunghist700",
            data_root=str(tmp_path / "nowhere"),
            runs_root=str(tmp_path / "runs"),
            progress=False,
        )
    # a generated set is never taken for the real release, nor made with other settings
    from valf_study.data.prepare import prepare_dataset

    prepare_dataset(resolve_parameters(tiny(data_dir, tmp_path / "runs")), progress=False)
    with pytest.raises(DataError, match="holds a generated data set"):
        train(
            dataset="lunghist700",
            data_root=str(data_dir / "synthetic"),
            runs_root=str(tmp_path / "runs"),
            progress=False,
        )
    with pytest.raises(DataError, match=r"other settings \(seed: has 0, asked 1\)"):
        train(
            tiny(data_dir, tmp_path / "runs", synthetic={**TINY["synthetic"], "seed": 1}),
            progress=False,
        )
    assert RunDirectory(next((tmp_path / "runs").iterdir())).status()["status"] == "failed"


COUNTS = [60, 30, 10]


def build_loss(params, counts):
    return LOSSES[params["loss"]].build(params, np.asarray(counts, dtype=float))


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("WCCE", losses.WeightedCategoricalCrossentropy),
        ("FL", losses.FocalLoss),
        ("CB", losses.ClassBalancedLoss),
        ("CEFL", losses.CEFL),
        ("CEFL2", losses.CEFL2),
        ("DWFL", losses.DynamicWeightedFocalLoss),
        ("VALF", losses.ValidationAdaptiveFocalLoss),
    ],
)
def test_build_loss_makes_the_named_loss(name, cls):
    loss = build_loss(resolve_parameters(loss=name, gamma=1.5), COUNTS)
    assert type(loss) is cls
    if name != "WCCE":
        assert loss.get_config()["gamma"] == 1.5


def test_build_loss_weights_come_from_the_training_counts():
    import keras

    assert isinstance(
        build_loss(resolve_parameters(loss="CCE"), COUNTS),
        keras.losses.SparseCategoricalCrossentropy,
    )
    balanced = 100 / (3 * np.array(COUNTS))  # n / (K n_c), scikit-learn's "balanced"
    wcce = build_loss(resolve_parameters(loss="WCCE"), COUNTS)
    np.testing.assert_allclose(wcce.class_weights, balanced)
    valf = build_loss(resolve_parameters(loss="VALF", prior="inverse_frequency"), COUNTS)
    np.testing.assert_allclose(valf.prior, balanced / balanced.mean())
    assert np.allclose(build_loss(resolve_parameters(loss="VALF"), COUNTS).prior, 1.0)
    beta = 0.99
    effective = (1 - beta) / (1 - beta ** np.array(COUNTS))
    cb = build_loss(resolve_parameters(loss="CB", cb_beta=beta), COUNTS)
    np.testing.assert_allclose(cb.class_weights, effective / effective.sum() * 3, rtol=1e-6)
