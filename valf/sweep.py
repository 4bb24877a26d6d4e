"""Run a whole study: every run through papermill, on a Dask cluster, resumable.

:func:`sweep` expands a study file (:mod:`valf.study`), skips the runs that are
complete (``DONE``), and executes the others, each as one papermill execution
of ``notebooks/train.ipynb`` in its own kernel process. The executions are
Dask tasks: on a :class:`~dask.distributed.LocalCluster` by default (one
worker per GPU, times ``runs_per_gpu``; on a CPU one per core), or on an
existing scheduler given by address, so one command scales from a laptop to a
cluster whose workers share the file system.

What a careful user can rely on:

- A run that raises is recorded as failed (``status.json`` with the
  traceback; the executed notebook shows where) and the sweep goes on; the
  exit status is 1 if any run failed.
- A killed sweep loses nothing: complete runs are skipped when it is started
  again, and a run killed midway continues from its last finished epoch.
  ``DONE`` is written only after papermill has saved the executed notebook.
- A lock (``<runs_root>/<study>/.sweep.lock``) stops a second sweep of the same
  study; the operating system releases it when the holder dies.
- Experiments that select a parameter from other runs wait until those runs
  are complete; the sweep runs them in stages.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from valf import rundir
from valf.study import StudyError, find_study_file, load_study

__all__ = ["SweepSummary", "default_workers", "execute_run", "sweep"]

DEFAULT_NOTEBOOK = Path("notebooks") / "train.ipynb"
DEFAULT_KERNEL = "valf"


@dataclass
class SweepSummary:
    study: str
    planned: int = 0
    skipped: int = 0
    ok: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    waiting: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self):
        return 1 if self.failed or self.waiting else 0

    def report(self):
        lines = [f"study {self.study}: {self.planned} runs planned, {self.skipped} complete "
                 f"before this sweep, {len(self.ok)} ran now, {len(self.failed)} failed "
                 f"({self.seconds:.0f} s)."]
        for failure in self.failed:
            lines.append(f"  FAILED {failure['run_id']}: {failure['error']}")
            lines.append(f"         see {failure['notebook']}")
        for waiting in self.waiting:
            lines.append(f"  WAITING experiment {waiting.experiment}: {waiting.reason}")
        return "\n".join(lines)


def gpu_count():
    from valf.environment import gpu_names

    return len(gpu_names())


def default_workers(runs_per_gpu=1):
    """One worker per GPU times ``runs_per_gpu``; on a CPU, one single-threaded worker per core.

    Small runs use a core better one per core than several threads on one run: start-up,
    evaluation and the Python of each step are serial (benchmarks/sweep_overhead.py measures
    both on the quick study).
    """
    gpus = gpu_count()
    if gpus:
        return gpus * runs_per_gpu
    return max(1, os.cpu_count() or 1)


def _worker_environment(run_id, threads, gpu):
    env = {
        "VALF_SWEEP_RUN": run_id,
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        # Several runs may share one GPU: allocate memory as needed, not all at start.
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
    }
    if threads:
        env.update({"VALF_THREADS": str(threads), "TF_NUM_INTRAOP_THREADS": str(threads),
                    "TF_NUM_INTEROP_THREADS": str(max(1, min(2, threads))),
                    "OMP_NUM_THREADS": str(threads)})
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return env


def execute_run(params, run_dir, notebook, kernel, timeout, cwd, threads=None,
                runs_per_gpu=None):
    """Execute one run through papermill (in the calling process's worker); never raises.

    Returns a dict: ``run_id``, ``status`` (``ok``/``failed``), ``seconds``,
    ``error`` and ``notebook``.
    """
    import papermill

    run_dir = Path(run_dir)
    gpu = None
    if runs_per_gpu:
        # A LocalCluster names its workers 0..n-1: worker i uses GPU i // runs_per_gpu.
        try:
            from distributed import get_worker

            gpu = int(get_worker().name) // runs_per_gpu
        except (ValueError, TypeError):
            gpu = None
    os.environ.update(_worker_environment(run_dir.name, threads, gpu))
    output = run_dir / "train.ipynb"
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = {"run_id": run_dir.name, "notebook": str(output)}
    try:
        # The kernel inherits this process's stdout/stderr: TensorFlow's start-up lines, which
        # no setting silences, go to the run's log instead of the sweep's terminal. What the
        # run itself prints is in the executed notebook.
        with _output_to(run_dir.parent / "logs" / f"{run_dir.name}.log"):
            papermill.execute_notebook(
                str(notebook), str(output), parameters=params, kernel_name=kernel,
                cwd=str(cwd), execution_timeout=timeout, progress_bar=False, log_output=False,
                request_save_on_cell_execute=True, autosave_cell_every=10)
    except Exception as error:  # noqa: BLE001 - any failure of the run is recorded, not raised
        status = rundir.read_status(run_dir)
        if status.get("status") != "failed":  # the kernel died, timed out or never started
            rundir.write_status(run_dir, "failed", _describe(error))
        status = rundir.read_status(run_dir)
        result.update(status="failed", error=status.get("error") or _describe(error)[-300:])
    else:
        rundir.mark_done(run_dir)
        result.update(status="ok", error=None)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


@contextlib.contextmanager
def _output_to(path):
    """Point file descriptors 1 and 2 at ``path`` (appending) for the duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _describe(error):
    text = str(error).strip()
    if not text:
        text = "".join(traceback.format_exception(error))
    return f"{type(error).__name__}: {text}"


def _check_kernel(kernel):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        raise StudyError(
            f"No Jupyter kernel named {kernel!r}. Register it with `valf install-kernel` (or "
            "`make env`), or pass --kernel python3.") from None


def _lock(study):
    from filelock import FileLock, Timeout

    directory = study.directory
    directory.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(directory / ".sweep.lock"))
    info_path = directory / ".sweep.json"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = info_path.read_text() if info_path.is_file() else "unknown"
        raise StudyError(f"Another sweep of study {study.name!r} is running ({holder.strip()}); "
                         f"wait for it, or stop it. Lock: {directory / '.sweep.lock'}") from None
    rundir.write_json(info_path, {"pid": os.getpid(), "host": os.uname().nodename,
                                  "started": rundir.now()})
    return lock


def _client(workers, scheduler):
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           memory_limit=0, dashboard_address=None)
    return Client(cluster), cluster


def _status_table(runs):
    import pandas as pd

    return pd.DataFrame([{"run_id": r.run_id, "experiments": ",".join(r.experiments),
                          "status": r.status} for r in runs])


def _write_manifest(study, runs, waiting):
    record = {
        "study": study.name, "study_file": str(study.path), "written": rundir.now(),
        "runs": [{"run_id": r.run_id, "experiments": r.experiments, "params": r.params}
                 for r in runs],
        "waiting": [w.__dict__ for w in waiting],
        "selections": study.selection_tables(),
    }
    rundir.write_json(study.directory / "manifest.json", record)


def sweep(study_file, runs_root="runs", *, workers=None, scheduler=None, runs_per_gpu=1,
          threads=None, timeout=None, dry_run=False, kernel=DEFAULT_KERNEL,
          notebook=DEFAULT_NOTEBOOK, experiments=None, run_ids=None, force=False,
          progress=True, out=None):
    """Run every incomplete run of a study; return a :class:`SweepSummary`.

    Parameters
    ----------
    study_file : path-like or str
        A study file, or a study name (``studies/<name>.yaml``).
    runs_root : path-like
        Folder of the run directories (``<runs_root>/<study>/<run_id>``).
    workers : int, optional
        Workers of the LocalCluster; default :func:`default_workers`.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) to use instead.
    runs_per_gpu : int
        Runs sharing one GPU at a time (GPU machines).
    threads : int, optional
        CPU threads per run; default the cores divided among the workers (CPU only).
    timeout : float, optional
        Seconds one notebook cell (the training) may take; default none.
    dry_run : bool
        List the runs and their status; run nothing.
    kernel : str
        Jupyter kernel of the executions.
    notebook : path-like
        The parameterised training notebook.
    experiments, run_ids : sequence of str, optional
        Only these experiments / runs.
    force : bool
        Redo the selected runs even if complete (with ``run_ids`` or ``experiments``).
    progress : bool
        Progress bar.
    out : file, optional
        Where to print (default stdout).
    """
    out = out or sys.stdout
    started = time.perf_counter()
    study = load_study(find_study_file(study_file), runs_root)
    if experiments:
        unknown = sorted(set(experiments) - set(study.experiments))
        if unknown:
            raise StudyError(f"No experiment(s) {unknown} in {study.path}; experiments: "
                             f"{sorted(study.experiments)}.")
    if force and not (experiments or run_ids):
        raise StudyError("--force redoes complete runs, so it needs --experiment or --run to "
                         "say which.")
    summary = SweepSummary(study.name)

    def select(runs):
        chosen = [r for r in runs if (not experiments or set(r.experiments) & set(experiments))
                  and (not run_ids or r.run_id in run_ids)]
        if run_ids:
            missing = sorted(set(run_ids) - {r.run_id for r in runs})
            if missing:
                raise StudyError(f"No run(s) {missing} in study {study.name}.")
        return chosen

    runs, waiting = study.expand()
    if dry_run:
        table = _status_table(select(runs))
        print(f"study {study.name} ({study.path}): {len(table)} runs", file=out)
        if len(table):
            print(table.to_string(index=False), file=out)
            print(table["status"].value_counts().to_string(), file=out)
        for w in waiting:
            print(f"waiting: experiment {w.experiment} {w.reason}", file=out)
        summary.planned, summary.waiting = len(table), waiting
        return summary

    _check_kernel(kernel)
    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        raise StudyError(f"No training notebook at {notebook}; run from the project root or "
                         "pass --notebook.")
    lock = _lock(study)
    client = cluster = None
    try:
        from valf.data.prepare import prepare_dataset

        # Once, before any run: generate the embedded set or check the real release, so a
        # missing data set stops the sweep here and parallel runs never race to generate it.
        prepare_dataset(study.data["dataset"], study.data["root"], study.data["synthetic"],
                        progress=progress)
        if force:
            for run in select(runs):
                shutil.rmtree(run.run_dir, ignore_errors=True)
        attempted = set()
        while True:
            runs, waiting = study.expand()
            _write_manifest(study, runs, waiting)
            chosen = select(runs)
            summary.planned = max(summary.planned, len(chosen))
            pending = [r for r in chosen if not rundir.is_done(r.run_dir)
                       and r.run_id not in attempted]
            if not attempted:
                summary.skipped = sum(rundir.is_done(r.run_dir) for r in chosen)
            if not pending:
                break
            if client is None:
                workers = workers or default_workers(runs_per_gpu)
                client, cluster = _client(workers, scheduler)
                if threads is None and not gpu_count():
                    threads = max(1, (os.cpu_count() or 1) // workers)
            _run_stage(client, study, pending, summary, notebook, kernel, timeout, threads,
                       runs_per_gpu if gpu_count() and not scheduler else None, progress, out)
            attempted.update(r.run_id for r in pending)
        summary.waiting = [w for w in waiting if not experiments or w.experiment in experiments]
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        lock.release()
    summary.seconds = time.perf_counter() - started
    print(summary.report(), file=out)
    return summary


def _run_stage(client, study, pending, summary, notebook, kernel, timeout, threads,
               runs_per_gpu, progress, out):
    from distributed import as_completed
    from tqdm.auto import tqdm

    cwd = Path.cwd()
    futures = [
        client.submit(execute_run, {k: _absolute(k, v, cwd) for k, v in run.params.items()},
                      str(run.run_dir.resolve()), str(notebook), kernel, timeout, str(cwd),
                      threads, runs_per_gpu, key=f"run-{run.run_id}", pure=False)
        for run in pending
    ]
    bar = tqdm(total=len(futures), unit="run", desc=f"sweep {study.name}", disable=not progress,
               file=out)
    for future in as_completed(futures):
        try:
            result = future.result()
        except Exception as error:  # noqa: BLE001 - a worker lost, for instance
            result = {"run_id": future.key.removeprefix("run-"), "status": "failed",
                      "error": _describe(error), "notebook": "(the worker was lost)"}
        if result["status"] == "ok":
            summary.ok.append(result)
        else:
            summary.failed.append(result)
            bar.write(f"failed: {result['run_id']}: {result['error']}")
        bar.set_postfix(ok=len(summary.ok), failed=len(summary.failed), refresh=False)
        bar.update(1)
    bar.close()


def _absolute(name, value, cwd):
    # Workers may start elsewhere: give them absolute paths (the run id does not use these).
    if name in ("runs_root", "cache_dir") and isinstance(value, str):
        return str((cwd / value).resolve())
    return value
