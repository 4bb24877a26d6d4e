"""Run a whole study: every run through papermill, as Dask tasks, resumable.

:func:`sweep` expands a study file (:mod:`valf_study.studies.plan`), skips the runs that are
complete (``DONE``), and executes the others, each as one papermill execution of
``notebooks/train.ipynb`` in a process of its own (:mod:`valf_study.studies.execute`). The
executions are Dask tasks: on a
:class:`~dask.distributed.LocalCluster` in this process by default (as many runs at once as GPUs
times ``runs_per_gpu``, or as CPU cores), or on an existing scheduler given by address, so one
command scales from a laptop to a cluster whose workers share the file system. This process and the
workers import no deep-learning backend; only each run's own process does.

What a careful user can rely on:

- A run that raises is recorded as failed (``status.json`` with the traceback; the executed
  notebook shows where, ``run.log`` what the process printed) and the sweep goes on; the exit
  status is 1 if any run failed.
- A killed sweep loses nothing: complete runs are skipped when it is started again, and a run
  killed midway continues from its last finished epoch. ``DONE`` is written only after
  papermill has saved the executed notebook.
- A lock (``<runs_root>/_studies/<study>/.sweep.lock``) stops a second sweep of the same study;
  the operating system releases it when the holder dies. Runs shared with another study take
  turns through their own locks.
- Experiments that select a parameter from other runs wait until those runs are complete; the
  sweep runs them in stages.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from valf_study.data.errors import listing
from valf_study.data.fingerprint import describe_change
from valf_study.files import now, write_json
from valf_study.studies.plan import make_plan
from valf_study.studies.spec import StudyError, find_study_file, load_study

__all__ = ["SweepSummary", "default_workers", "sweep"]

DEFAULT_KERNEL = "valf"


@dataclass
class SweepSummary:
    """What a sweep planned, skipped, ran and could not run yet."""

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
        lines = [
            f"study {self.study}: {self.planned} runs planned, {self.skipped} complete "
            f"before this sweep, {len(self.ok)} ran now, {len(self.failed)} failed "
            f"({self.seconds:.0f} s)."
        ]
        full = [f for f in self.failed if _disk_full(f.get("error"))]
        if full:
            lines.append(
                f"  {len(full)} run(s) failed because the disk is full ({full[0]['error']}). "
                "Free some space and run the sweep again: complete runs are kept and the "
                "others resume from their last finished epoch."
            )
        for failure in self.failed:
            if failure in full:
                continue
            lines.append(f"  FAILED {failure['run_id']}: {failure['error']}")
            lines.append(f"         see {failure['notebook']} and {failure.get('log')}")
        for waiting in self.waiting:
            lines.append(f"  WAITING experiment {waiting.experiment}: {waiting.reason}")
        return "\n".join(lines)


def _disk_full(error):
    return bool(error) and ("No space left on device" in error or "Errno 28" in error)


def gpu_count():
    from valf_study.run.environment import gpu_names

    return len(gpu_names())


def default_workers(runs_per_gpu=1):
    """Runs at once: one per GPU times ``runs_per_gpu``; on a CPU, one single-threaded run per
    core.

    Small runs use a core better one per core than several threads on one run: start-up,
    evaluation and the Python of each step are serial (benchmarks/sweep_overhead.py measures
    both on the quick study).
    """
    gpus = gpu_count()
    if gpus:
        return gpus * runs_per_gpu
    return max(
        1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


def sweep(
    study_file,
    runs_root="runs",
    *,
    workers=None,
    scheduler=None,
    runs_per_gpu=1,
    threads=None,
    timeout=None,
    dry_run=False,
    kernel=DEFAULT_KERNEL,
    notebook=None,
    experiments=None,
    run_ids=None,
    force=False,
    progress=True,
    backend=None,
    out=None,
    data_changed="stop",
):
    """Run every incomplete run of a study; return a :class:`SweepSummary`.

    Parameters
    ----------
    study_file : path-like or str
        A study file, or a study name (``studies/<name>.yaml``).
    runs_root : path-like
        Folder of the run directories (``<runs_root>/<run_id>``).
    workers : int, optional
        Runs at once on the local cluster; default :func:`default_workers`.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) to use instead.
    runs_per_gpu : int
        Runs sharing one GPU at a time (GPU machines).
    threads : int, optional
        CPU threads per run; default decided where each run executes
        (:func:`valf_study.studies.execute.threads_here`).
    timeout : float, optional
        Seconds one notebook cell (the training) may take; default none.
    dry_run : bool
        List the runs and their status; run nothing.
    kernel : str
        Jupyter kernel of the executions.
    notebook : path-like, optional
        The parameterised training notebook; default the project's ``notebooks/train.ipynb``
        (the project that holds the study file, or the working directory's).
    experiments, run_ids : sequence of str, optional
        Only these experiments / runs.
    force : bool
        Redo the selected runs even if complete (with ``run_ids`` or ``experiments``).
    progress : bool
        Progress bar.
    backend : str, optional
        Keras backend of the runs (``KERAS_BACKEND`` of each run's process); default the
        environment's.
    out : file, optional
        Where to print (default stdout).
    data_changed : {"stop", "rerun", "keep"}
        What to do with complete runs whose data changed since they ran (their recorded
        fingerprint differs from the data's now): stop and say which (the default), train them
        again, or keep them as they are.
    """
    out = out or sys.stdout
    started = time.perf_counter()
    study = load_study(find_study_file(study_file), runs_root)
    _check_request(study, experiments, force, run_ids)
    summary = SweepSummary(study.name)

    def chosen(runs):
        return _chosen(study, runs, experiments, run_ids)

    plan = make_plan(study)
    if dry_run:
        return _dry_run(plan, chosen, summary, out)
    _check_kernel(kernel)
    notebook = _notebook(study, notebook)
    request = {
        "notebook": str(notebook),
        "kernel": kernel,
        "timeout": timeout,
        "cwd": str(Path.cwd()),
        "threads": threads,
        "backend": backend,
        "runs_per_gpu": runs_per_gpu if gpu_count() and not scheduler else None,
        "study": study.name,
    }
    lock = _lock(study)
    try:
        _prepare_data(study, chosen(plan.runs), progress, data_changed, out)
        if force:
            _remove_for_force(chosen(plan.runs))
        _run_stages(plan, chosen, summary, request, workers, scheduler, runs_per_gpu, progress, out)
        summary.waiting = [
            w for w in summary.waiting if not experiments or w.experiment in experiments
        ]
    finally:
        lock.release()
    summary.seconds = time.perf_counter() - started
    print(summary.report(), file=out)
    return summary


def _notebook(study, notebook):
    """The training notebook: as given, or the project's (found from the study file first)."""
    from valf_study import project

    if notebook is None:
        try:
            notebook = project.notebook(study.path.parent)
        except project.ProjectNotFound:
            try:
                notebook = project.notebook()
            except project.ProjectNotFound as error:
                raise StudyError(f"{error} Or pass --notebook.") from None
    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        raise StudyError(f"No training notebook at {notebook}; pass --notebook.")
    return notebook


def _prepare_data(study, runs, progress, data_changed="stop", out=sys.stdout):
    """Once, before any run: generate the embedded set, check the real release, or index and
    decode a folder; then make every planned run's split, and compare the data each complete
    run read with the data as it is now. A missing or broken data set, a split that leaves a
    class out, or data that changed under complete runs stops the sweep here (unless
    ``data_changed`` says to rerun or keep those runs), and parallel runs never race to
    generate the set."""
    from valf_study.data.prepare import (
        check_images,
        data_set,
        planned_splits,
        prepare_dataset,
        split_key,
    )

    planned = [run.params for run in runs]
    prepare_dataset(planned[0] if planned else study.data_parameters(), progress=progress)
    frames = planned_splits(planned)
    for note in check_images(planned, frames, progress=progress):
        print(f"note: {note}", file=out)
    changed = []
    for run in runs:
        recorded = run.run_dir.read_data() if run.run_dir.is_done() else None
        if recorded is None:
            continue  # not complete, or recorded before runs kept their data's fingerprint
        params = run.params
        current = data_set(params).fingerprint(params, frames[split_key(params)])
        if current["fingerprint"] != recorded["fingerprint"]:
            changed.append((run, describe_change(recorded, current)))
    if not changed or data_changed == "keep":
        return
    if data_changed == "rerun":
        _remove_for_force([run for run, _ in changed])
        return
    details = [f"{run.run_id}: {what}" for run, what in changed]
    raise StudyError(
        f"The data of {len(changed)} complete run(s) of study {study.name!r} changed since they "
        f"ran:{listing(details)}\nTheir numbers describe the data as it was. Run the sweep "
        "again with --rerun-changed to train them on the data as it is now, or with "
        "--keep-changed to keep them as they are (or restore the data)."
    )


def _remove_for_force(runs):
    """Delete the run folders ``--force`` redoes, each while holding its locks, and never one
    that another live process holds (another sweep executing it): that is refused, naming the
    holder, before anything is deleted."""
    from filelock import Timeout

    held, locks = [], []
    try:
        for run in runs:
            if not run.run_dir.path.exists():
                continue
            for purpose in ("run", "train"):
                lock = run.run_dir.lock(purpose)
                try:
                    lock.acquire(timeout=0)
                    locks.append(lock)
                except Timeout:
                    held.append(f"{run.run_id} ({run.run_dir.holder() or 'another process'})")
                    break
        if held:
            raise StudyError(
                f"--force would delete {len(held)} run(s) that another process is running now: "
                f"{'; '.join(held)}. Wait for it to finish (or stop it), then run again."
            )
        for run in runs:
            shutil.rmtree(run.run_dir, ignore_errors=True)
    finally:
        for lock in locks:
            lock.release()


def _check_request(study, experiments, force, run_ids):
    if experiments:
        unknown = sorted(set(experiments) - set(study.experiments))
        if unknown:
            raise StudyError(
                f"No experiment(s) {unknown} in {study.path}; experiments: "
                f"{sorted(study.experiments)}."
            )
    if force and not (experiments or run_ids):
        raise StudyError(
            "--force redoes complete runs, so it needs --experiment or --run to say which."
        )


def _chosen(study, runs, experiments, run_ids):
    if run_ids:
        missing = sorted(set(run_ids) - {r.run_id for r in runs})
        if missing:
            raise StudyError(f"No run(s) {missing} in study {study.name}.")
    return [
        r
        for r in runs
        if (not experiments or set(r.experiments) & set(experiments))
        and (not run_ids or r.run_id in run_ids)
    ]


def _dry_run(plan, chosen, summary, out):
    import pandas as pd

    study, runs, waiting = plan.study, plan.runs, plan.waiting
    table = pd.DataFrame(
        [
            {"run_id": r.run_id, "experiments": ",".join(r.experiments), "status": r.status}
            for r in chosen(runs)
        ]
    )
    print(f"study {study.name} ({study.path}): {len(table)} runs", file=out)
    if len(table):
        print(table.to_string(index=False), file=out)
        print(table["status"].value_counts().to_string(), file=out)
    for w in waiting:
        print(f"waiting: experiment {w.experiment} {w.reason}", file=out)
    summary.planned, summary.waiting = len(table), waiting
    return summary


def _run_stages(plan, chosen, summary, request, workers, scheduler, runs_per_gpu, progress, out):
    """Run what can run, then what the finished runs let be planned, until nothing is left.

    The plan is made once per stage: the first is the sweep's own, each later one is made
    after a stage's runs have finished (selections waiting for them can be made then)."""
    study = plan.study
    client = cluster = None
    attempted = set()
    try:
        while True:
            if attempted:
                plan = make_plan(study)
            summary.waiting = plan.waiting
            _write_manifest(plan)
            selected = chosen(plan.runs)
            summary.planned = max(summary.planned, len(selected))
            if not attempted:
                summary.skipped = sum(r.run_dir.is_done() for r in selected)
            pending = [r for r in selected if not r.run_dir.is_done() and r.run_id not in attempted]
            if not pending:
                return
            if client is None:
                client, cluster = _client(workers or default_workers(runs_per_gpu), scheduler)
            _run_stage(client, study, pending, summary, request, progress, out)
            attempted.update(r.run_id for r in pending)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        from valf_study.studies import zygote

        zygote.close_all()  # the run starters of this process's workers


def _check_kernel(kernel):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        raise StudyError(
            f"No Jupyter kernel named {kernel!r}. Register it with `valf install-kernel` (or "
            "`make env`), or pass --kernel python3."
        ) from None


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
        raise StudyError(
            f"Another sweep of study {study.name!r} is running ({holder.strip()}); "
            f"wait for it, or stop it. Lock: {directory / '.sweep.lock'}"
        ) from None
    write_json(info_path, {"pid": os.getpid(), "host": os.uname().nodename, "started": now()})
    return lock


def _client(workers, scheduler):
    """A Dask client: of ``scheduler``, or of a cluster in this process running ``workers``
    tasks at once (each task only waits for its run's process, so threads suffice)."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(
        n_workers=1, threads_per_worker=workers, processes=False, dashboard_address=None
    )
    return Client(cluster), cluster


def _write_manifest(plan):
    study = plan.study
    record = {
        "study": study.name,
        "study_file": str(study.path),
        "written": now(),
        "runs": [
            {"run_id": r.run_id, "experiments": r.experiments, "params": r.params}
            for r in plan.runs
        ],
        "waiting": [w.__dict__ for w in plan.waiting],
        "selections": plan.selection_tables(),
    }
    write_json(study.directory / "manifest.json", record)


def _run_stage(client, study, pending, summary, request, progress, out):
    from distributed import as_completed
    from tqdm.auto import tqdm

    from valf_study.studies.execute import execute_run

    cwd = Path(request["cwd"])
    futures = [
        client.submit(
            execute_run,
            {
                **request,
                "run_dir": str(run.run_dir.path.resolve()),
                "params": _absolute_paths(run.params, cwd),
            },
            key=f"run-{run.run_id}",
            pure=False,
        )
        for run in pending
    ]
    bar = tqdm(
        total=len(futures), unit="run", desc=f"sweep {study.name}", disable=not progress, file=out
    )
    for future in as_completed(futures):
        try:
            result = future.result()
        except Exception as error:  # noqa: BLE001 - a worker lost too often, for instance
            result = {
                "run_id": future.key.removeprefix("run-"),
                "status": "failed",
                "error": f"{type(error).__name__}: {error}",
                "notebook": "(the worker was lost)",
            }
        (summary.ok if result["status"] == "ok" else summary.failed).append(result)
        if result["status"] != "ok":
            bar.write(f"failed: {result['run_id']}: {result['error']}")
        bar.set_postfix(ok=len(summary.ok), failed=len(summary.failed), refresh=False)
        bar.update(1)
    bar.close()


def _absolute_paths(params, cwd):
    # Workers may start elsewhere: give them absolute paths (the run id does not use these).
    return {
        name: str((cwd / value).resolve())
        if name in ("runs_root", "cache_dir") and isinstance(value, str)
        else value
        for name, value in params.items()
    }
