"""One run of a sweep, executed in a process of its own.

:func:`execute_run` is what a Dask task of the sweep does. Where it runs, it decides the run's
CPU threads (this host's cores shared among the runs that this host's workers execute at once)
and its GPU, and starts a child Python process with that environment *given to it* (threads,
visible GPU, backend), its output going to the run's log, ``<run_dir>/run.log``. It never
changes its own environment or file descriptors, so a worker with several threads runs several
runs side by side safely, each with its own log.

The child (``python -m valf_study.studies.execute <request>``) holds the run's lock
(:meth:`valf_study.run.rundir.RunDirectory.lock`), executes ``notebooks/train.ipynb`` through
papermill in a new kernel (which inherits the child's environment and log), and writes ``DONE`` once
the executed notebook is saved. It exits when its parent does, and the kernel when the child does,
so a worker that dies leaves nothing training; the retry waits for the lock and continues from the
last finished epoch, and a complete run is never trained again.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from valf_study.files import now
from valf_study.run.rundir import RunDirectory
from valf_study.studies.notebook_run import (
    execute_in_process,
    exit_with_parent,
    skip_unused_imports,
)

__all__ = ["execute_run", "run_environment", "threads_here"]


def execute_run(request):
    """Execute one run in a child process; return what happened. Never raises.

    ``request`` holds ``params``, ``run_dir``, ``notebook``, ``kernel``, ``timeout``,
    ``cwd``, and optionally ``threads``, ``runs_per_gpu`` and ``backend``.

    Returns a dict: ``run_id``, ``status`` (``ok``/``failed``), ``seconds``, ``error``,
    ``notebook``, ``log``.
    """
    run = RunDirectory(request["run_dir"])
    log_path = run / run.LOG
    result = {"run_id": run.name, "notebook": str(run / run.NOTEBOOK), "log": str(log_path)}
    started = time.perf_counter()
    code, failure = None, None
    try:
        threads = request.get("threads") or threads_here()
        gpu = _gpu_here(request.get("runs_per_gpu"))
        environment = run_environment(run.name, threads, gpu, request.get("backend"))
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_json(run.REQUEST, request)
        with open(log_path, "ab") as log:
            log.write(_header(run.name, threads, gpu).encode())
        code = _start(run, request, environment, log_path)
    except Exception as error:  # noqa: BLE001 - a run that cannot start is recorded, not raised
        failure = f"{type(error).__name__}: {error}"
    if code == 0 and run.is_done():
        result.update(status="ok", error=None)
    else:
        status = _status(run)
        if failure is None and status.get("status") == "failed":
            failure = status.get("error")
        failure = failure or f"the run's process exited with status {code}; see {log_path}"
        if status.get("status") != "failed" or status.get("pid"):  # died before saying why
            _record(run, failure)
        result.update(status="failed", error=failure)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _start(run, request, environment, log_path):
    """Execute the run in processes of its own; return the executor's exit status: forked from
    this worker's zygote (:mod:`valf_study.studies.zygote`), or a new Python."""
    from valf_study.studies import zygote

    if zygote.enabled():
        starter = zygote.zygote_for(environment, run.path.parent / "_zygote.log")
        return starter.execute(request, environment, log_path)
    with open(log_path, "ab") as log:
        return subprocess.run(
            [sys.executable, "-m", "valf_study.studies.execute", str(run / run.REQUEST)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=request["cwd"],
        ).returncode


def _status(run):
    try:
        return run.status()
    except (OSError, ValueError) as error:  # a status file cut short by a full disk
        return {"status": "unknown", "error": f"{type(error).__name__}: {error}"}


def _record(run, failure):
    """Record a failure; a disk too full to take even that leaves the record as it is (a
    reader sees a dead ``running`` run as failed, :meth:`RunDirectory.status`)."""
    try:
        run.write_status("failed", failure)
    except OSError:
        pass


def _header(run_id, threads, gpu):
    where = f"{socket.gethostname()}, pid {os.getpid()}, {threads} thread(s)"
    where += f", GPU {gpu}" if gpu is not None else ""
    return f"=== run {run_id} started {now()} on {where}\n"


def run_environment(run_id, threads, gpu=None, backend=None):
    """The environment of a run's process: this one's, plus what the run is given."""
    environment = {
        **os.environ,
        "VALF_SWEEP_RUN": run_id,
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "PYTHONUNBUFFERED": "1",
        # Several runs may share one GPU: allocate memory as needed, not all at start.
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "VALF_THREADS": str(threads),
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": str(max(1, min(2, threads))),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    if threads == 1:
        # XLA's CPU code (JAX, and TensorFlow with jit_compile) runs on an Eigen thread pool
        # of every core and reads no thread-count variable; one thread is all it can be told.
        flags = os.environ.get("XLA_FLAGS", "")
        environment["XLA_FLAGS"] = " ".join(
            [flags, "--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1"]
        ).strip()
    if backend:
        environment["KERAS_BACKEND"] = backend
    if gpu is not None:
        environment["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return environment


def _this_host_workers():
    """(this worker's index among its host's workers, the runs they execute at once), or
    None outside a Dask worker."""
    try:
        from distributed import get_client, get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    workers = get_client().scheduler_info()["workers"]
    host = workers.get(worker.address, {}).get("host")
    peers = sorted(
        (str(info.get("name")), address)
        for address, info in workers.items()
        if info.get("host") == host
    ) or [(str(worker.name), worker.address)]
    index = (
        [address for _, address in peers].index(worker.address)
        if any(a == worker.address for _, a in peers)
        else 0
    )
    slots = sum(workers[address]["nthreads"] for _, address in peers if address in workers)
    return index, max(1, slots or worker.state.nthreads)


def threads_here():
    """CPU threads for one run: this process's cores divided among the runs this host's Dask
    workers execute at once (all the cores outside a worker)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    placement = _this_host_workers()
    slots = placement[1] if placement else 1
    return max(1, (cores or 1) // slots)


def _gpu_here(runs_per_gpu):
    """The GPU of a run: worker i of this host uses GPU i // runs_per_gpu; None when the
    worker's GPUs are already assigned (CUDA_VISIBLE_DEVICES) or there is no GPU."""
    if not runs_per_gpu or os.environ.get("CUDA_VISIBLE_DEVICES"):
        return None
    from valf_study.run.environment import gpu_names

    gpus = len(gpu_names())
    placement = _this_host_workers()
    if not gpus or placement is None:
        return None
    return (placement[0] // runs_per_gpu) % gpus


# -- the child ----------------------------------------------------------------------------------


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    exit_with_parent()
    skip_unused_imports()
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    return execute_in_process(request)


if __name__ == "__main__":
    sys.exit(main())
