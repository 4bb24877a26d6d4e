"""The sweep: every run of a study through papermill on a local Dask cluster; a failing run is
recorded and the others complete; a killed sweep loses nothing and redoes nothing; a second
sweep of the same study is refused; the results tables hold what the runs wrote."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import psutil
import pytest
import yaml

from valf_study.run.rundir import RunDirectory
from valf_study.studies.results import load_results, write_results
from valf_study.studies.spec import StudyError
from valf_study.studies.sweep import sweep

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "train.ipynb"
# The kernel of the Python running the tests: no kernel registration needed.
KERNEL = "python3"

pytestmark = pytest.mark.slow


def write_study(folder, name, experiments, data_dir, **defaults):
    spec = {
        "name": name,
        "data": {
            "dataset": "synthetic",
            "root": str(data_dir / "synthetic"),
            "synthetic": {"scale": 0.3, "image_size": [48, 64], "difficulty": 1.0},
        },
        "defaults": {
            "image_scale": 0.04,
            "fast_augmentation": True,
            "learning_rate": 1e-3,
            "epochs": 2,
            "warmup_epochs": 1,
            "deterministic": True,
            "cache_dir": str(data_dir / "cache"),
            **defaults,
        },
        "experiments": experiments,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
    """A study of two good runs and one that fails (its image cache folder is a file)."""
    folder = tmp_path_factory.mktemp("sweep")
    blocker = folder / "not-a-folder"
    blocker.write_text("")
    study = write_study(
        folder,
        "tiny",
        {
            "main": {"grid": {"loss": ["CCE", "VALF"]}},
            "broken": {"fixed": {"loss": "FL", "cache_dir": str(blocker)}},
        },
        data_dir,
    )
    summary = sweep(
        study, folder / "runs", workers=2, kernel=KERNEL, notebook=NOTEBOOK, progress=False
    )
    return study, folder / "runs", summary, blocker


def test_dry_run_lists_the_runs_and_runs_nothing(data_dir, tmp_path, capsys):
    study = write_study(
        tmp_path,
        "plan",
        {"main": {"grid": {"loss": ["CCE", "FL", "VALF"], "seed": [0, 1]}}},
        data_dir,
    )
    summary = sweep(study, tmp_path / "runs", dry_run=True, kernel=KERNEL)
    printed = capsys.readouterr().out
    assert summary.planned == 6 and printed.count("pending") == 7  # six rows and the count
    assert not (tmp_path / "runs").exists()


def test_a_failing_run_is_recorded_and_the_others_complete(finished):
    _, runs_root, summary, blocker = finished
    assert summary.exit_code == 1
    assert len(summary.ok) == 2 and len(summary.failed) == 1
    runs = sorted(runs_root.glob("*-seed0-*"))
    assert len(runs) == 3
    good = [r for r in runs if (r / "DONE").exists()]
    assert {r.name.split("-")[0] for r in good} == {"CCE", "VALF"}
    for run in good:
        executed = nbformat.read(run / "train.ipynb", as_version=4)
        injected = [
            c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])
        ]
        assert len(injected) == 1 and f'loss = "{run.name.split("-")[0]}"' in injected[0].source
        assert not any(
            o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", [])
        )
        assert any(
            "image/png" in o.get("data", {}) for c in executed.cells for o in c.get("outputs", [])
        )  # the figures are in the notebook
    (broken,) = [r for r in runs if not (r / "DONE").exists()]
    status = RunDirectory(broken).status()
    assert status["status"] == "failed"
    assert str(blocker) in status["error"] and "Traceback" in status["traceback"]
    assert summary.failed[0]["run_id"].startswith("FL-") and summary.failed[0]["notebook"].endswith(
        "train.ipynb"
    )
    log = (broken / "run.log").read_text()
    assert log.startswith(f"=== run {broken.name} started") and "failed" in log
    manifest = json.loads((runs_root / "_studies" / "tiny" / "manifest.json").read_text())
    assert len(manifest["runs"]) == 3


@pytest.mark.slow
def test_a_second_sweep_redoes_nothing_complete(finished):
    study, runs_root, _, _ = finished
    done = {p: p.read_text() for p in runs_root.glob("*/DONE")}
    mtimes = {p: p.stat().st_mtime_ns for p in runs_root.glob("*/metrics.json")}
    summary = sweep(
        study,
        runs_root,
        workers=1,
        kernel=KERNEL,
        notebook=NOTEBOOK,
        experiments=["main"],
        progress=False,
    )
    assert summary.exit_code == 0 and summary.skipped == 2 and not summary.ok
    assert {p: p.read_text() for p in done} == done
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_results_tables(finished, tmp_path):
    study, runs_root, _, blocker = finished
    write_results(study, runs_root, out=tmp_path)
    tables = load_results("tiny", out=tmp_path)
    runs = tables["runs"].set_index("run_id")
    assert len(runs) == 3 and sorted(runs["status"]) == ["done", "done", "failed"]
    for run_id, row in runs[runs["status"] == "done"].iterrows():
        metrics = json.loads((runs_root / run_id / "metrics.json").read_text())
        assert row["f1"] == metrics["f1"] and row["epochs_run"] == metrics["epochs_run"]
        assert row["keras_version"]
    failed = runs[runs["status"] == "failed"].iloc[0]
    assert str(blocker) in failed["error"] and pd.isna(failed["f1"])
    history = tables["history"]
    assert set(history["run_id"]) == set(runs.index[runs["status"] == "done"])
    weights = tables["class_weights"]
    assert set(weights["run_id"]) == {r for r in runs.index if r.startswith("VALF")}
    predictions = tables["predictions"]
    assert (
        predictions.groupby("run_id").size()
        == runs["n_val"].dropna().astype(int) + runs["n_test"].dropna().astype(int)
    ).all()


def _kernels_of(run_ids):
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.environ().get("VALF_SWEEP_RUN") in run_ids:
                found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_losing_or_redoing_runs(data_dir, tmp_path):
    study = write_study(
        tmp_path,
        "killed",
        {"main": {"grid": {"loss": ["CCE", "VALF"]}}},
        data_dir,
        epochs=8,
        early_stopping_patience=20,
    )
    runs_root = tmp_path / "runs"
    command = [
        sys.executable,
        "-m",
        "valf_study.cli",
        "sweep",
        str(study),
        "--runs-root",
        str(runs_root),
        "--workers",
        "1",
        "--kernel",
        KERNEL,
        "--notebook",
        str(NOTEBOOK),
    ]
    log = open(tmp_path / "sweep.log", "wb")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path
    )
    study_dir = runs_root
    first_done = second_started = None
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and process.poll() is None:
        done = list(study_dir.glob("*/DONE"))
        if done and first_done is None:
            first_done = done[0].parent
        if first_done is not None:
            others = [h for h in study_dir.glob("*/history.csv") if h.parent != first_done]
            if others and len(pd.read_csv(others[0])) >= 2:
                second_started = others[0].parent
                break
        time.sleep(0.5)
    assert second_started is not None, (tmp_path / "sweep.log").read_text()[-3000:]

    # While it runs, a second sweep of the same study is refused.
    with pytest.raises(StudyError, match="Another sweep of study 'killed' is running"):
        sweep(study, runs_root, workers=1, kernel=KERNEL, notebook=NOTEBOOK, progress=False)

    os.killpg(process.pid, signal.SIGKILL)  # the sweep, its cluster, and nothing else
    process.wait()
    # The kernel was started in a session of its own; it notices its parent is gone and exits.
    deadline = time.monotonic() + 30
    while _kernels_of({second_started.name}) and time.monotonic() < deadline:
        time.sleep(1)
    assert not _kernels_of({second_started.name}), "a kernel outlived its sweep"
    first_record = (first_done / "DONE").read_text(), (first_done / "metrics.json").read_text()
    assert not (second_started / "DONE").exists()

    summary = sweep(study, runs_root, workers=1, kernel=KERNEL, notebook=NOTEBOOK, progress=False)
    assert summary.exit_code == 0 and summary.skipped == 1 and len(summary.ok) == 1
    assert (
        (first_done / "DONE").read_text(),
        (first_done / "metrics.json").read_text(),
    ) == first_record
    resumed = json.loads((second_started / "metrics.json").read_text())
    assert resumed["resumed_from_epoch"] >= 2
    history = pd.read_csv(second_started / "history.csv")
    assert history["epoch"].tolist() == list(range(1, resumed["epochs_run"] + 1))


def _start(command, log, **kwargs):
    return subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
    )


@pytest.mark.slow
def test_runs_on_an_existing_cluster_survive_a_killed_worker_with_their_own_logs(
    data_dir, tmp_path
):
    """Two multi-threaded workers run six runs side by side; one worker is killed midway.
    Every run completes exactly once, none complete is redone, and each run's log holds its
    own output only (each run executes in a process of its own, given its environment)."""
    dask = str(Path(sys.executable).parent / "dask")
    scheduler_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "wb")
    processes = [
        _start(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            log,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        workers = [
            _start(
                [
                    dask,
                    "worker",
                    address,
                    "--nthreads",
                    "2",
                    "--no-nanny",
                    "--name",
                    name,
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                ],
                log,
            )
            for name in ("w0", "w1")
        ]
        processes += workers
        study = write_study(
            tmp_path,
            "cluster",
            {"main": {"grid": {"loss": ["CCE", "FL", "VALF"], "seed": [0, 1]}}},
            data_dir,
            epochs=6,
            early_stopping_patience=20,
        )
        runs_root = tmp_path / "runs"
        summary = {}

        def run_sweep():
            summary["result"] = sweep(
                study,
                runs_root,
                scheduler=address,
                kernel=KERNEL,
                notebook=NOTEBOOK,
                progress=False,
            )

        import threading

        sweeper = threading.Thread(target=run_sweep)
        sweeper.start()
        # Kill worker w1 once it is training (a run of it has written an epoch), so at least
        # one run is interrupted midway.
        killed = None
        deadline = time.monotonic() + 400
        while killed is None and time.monotonic() < deadline and sweeper.is_alive():
            for history in runs_root.glob("*/backup/history_log.csv"):
                run_dir = history.parents[1]
                log_text = (
                    (run_dir / "run.log").read_text() if (run_dir / "run.log").exists() else ""
                )
                epochs = history.read_text().count("\n") - 1  # rows after the header
                if (
                    epochs >= 2
                    and not (run_dir / "DONE").exists()
                    and f"pid {workers[1].pid}," in log_text
                ):
                    os.kill(workers[1].pid, signal.SIGKILL)
                    killed = run_dir
                    break
            time.sleep(0.3)
        assert killed is not None, (tmp_path / "cluster.log").read_text()[-3000:]
        sweeper.join(timeout=600)
        assert not sweeper.is_alive()
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    result = summary["result"]
    assert result.exit_code == 0 and len(result.ok) == 6 and not result.failed, result.report()
    run_dirs = sorted(p for p in runs_root.iterdir() if not p.name.startswith("_"))
    assert len(run_dirs) == 6 and all((r / "DONE").is_file() for r in run_dirs)
    ids = {r.name for r in run_dirs}
    for run_dir in run_dirs:
        text = (run_dir / "run.log").read_text()
        assert text.startswith(f"=== run {run_dir.name} started")
        assert text.count(f"=== run {run_dir.name} complete") == 1  # trained once
        assert not any(other in text for other in ids - {run_dir.name})
        assert "epoch 1/6" not in text  # cell output goes to the notebook, not the log
    resumed = json.loads((killed / "metrics.json").read_text())
    assert resumed["resumed_from_epoch"] >= 1 and resumed["epochs_run"] == 6
    history = pd.read_csv(killed / "history.csv")
    assert history["epoch"].tolist() == list(range(1, 7))
