"""One run's notebook executed in this process, under the run's lock: what the process of a
swept run does (:mod:`valf_study.studies.execute` starts it as a new Python, or
:mod:`valf_study.studies.zygote` forks it), and the habits of such a process.

:func:`execute_in_process` runs ``notebooks/train.ipynb`` through papermill with the run's
parameters in a new kernel (forked by the zygote when this process is one of its executors),
and writes ``DONE`` once the executed notebook is saved.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback

from valf_study.files import now
from valf_study.run.rundir import RunDirectory

__all__ = ["execute_in_process", "exit_with_parent", "skip_unused_imports"]

#: The variable naming the socket of the zygote that forks a run's kernel.
SOCKET_VARIABLE = "VALF_ZYGOTE_SOCKET"


def exit_with_parent(interval=0.5):
    """End this process when its parent does (a killed worker must not leave runs behind)."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def execute_in_process(request):
    """Run the notebook for the request, under the run's lock; return the exit status.

    In a process forked by a zygote, the kernel is forked by it too
    (:class:`valf_study.studies.zygote.ZygoteKernelManager`); otherwise jupyter_client starts
    it from the kernel's spec."""
    import papermill

    kernel_manager = {}
    if os.environ.get(SOCKET_VARIABLE):
        kernel_manager["kernel_manager_class"] = "valf_study.studies.zygote.ZygoteKernelManager"

    run = RunDirectory(request["run_dir"])
    with run.lock():  # waits while another process executes this run
        run.hold(study=request.get("study"))
        if run.is_done():
            print(f"{run.name} is complete already; nothing to do.", flush=True)
            return 0
        try:
            papermill.execute_notebook(
                request["notebook"],
                str(run / run.NOTEBOOK),
                parameters=request["params"],
                kernel_name=request["kernel"],
                cwd=request["cwd"],
                execution_timeout=request.get("timeout"),
                progress_bar=False,
                log_output=False,
                request_save_on_cell_execute=True,
                autosave_cell_every=10,
                # Every cell has run and the run's files are written: a graceful shutdown
                # would only poll the kernel for a second more.
                shutdown_kernel="immediate",
                **kernel_manager,
            )
        except Exception as error:  # noqa: BLE001 - any failure of the run is recorded
            if run.status().get("status") != "failed":
                run.write_status("failed", _describe(error))
            print(f"run {run.name} failed: {_describe(error)[-2000:]}", flush=True)
            return 1
        run.mark_done()
        print(f"=== run {run.name} complete {now()}", flush=True)
        return 0


def _describe(error):
    text = str(error).strip()
    if not text:
        text = "".join(traceback.format_exception(error))
    return f"{type(error).__name__}: {text}"


def skip_unused_imports():
    # nbformat validates notebooks with jsonschema, whose format checkers import
    # rfc3987_syntax when it is installed (0.8 s of building a grammar, for "iri" formats no
    # notebook schema uses); jsonschema goes on without them when the import fails.
    sys.modules.setdefault("rfc3987_syntax", None)
