"""Starting runs fast: one warm process forks each run's processes.

A swept run executes in processes of its own: an executor (papermill) and the Jupyter kernel
that runs ``notebooks/train.ipynb``. Started from nothing, the kernel spends seconds importing
Keras, its backend and the study before the first epoch: more than a small run trains. A
*zygote* is one process per Dask worker (and backend, and thread count) that imports all of that
once and then, for each run, forks the executor, and for each executor the kernel: every run
still has processes of its own (a run that crashes takes only them down, and its memory goes
back when they end), started in a fraction of a second. ``benchmarks/sweep_overhead.py``
measures what this saves.

Only what is safe to fork is done before forking: modules are imported, nothing is computed
(no backend device is touched, no ZeroMQ context or thread is created), so each child starts
its backend, threads and GPU from its own environment, set before its first operation.

Protocol: the zygote listens on a Unix socket for one JSON line per connection:

- ``{"kind": "execute", "request": ..., "env": ..., "log": path}`` forks an executor that runs
  :func:`valf_study.studies.notebook_run.execute_in_process` with the run's environment, its output
  appended to the run's log; the zygote answers ``{"pid": p}`` at once and ``{"exit": code}``
  when the executor ends;
- ``{"kind": "kernel", "connection_file": ..., "env": ..., "cwd": ..., "log": path}`` forks an
  IPython kernel for an executor (:class:`ZygoteKernelManager` asks for it); the answer is
  ``{"pid": p}``. A kernel ends when its executor does (the zygote kills it) or when the zygote
  does (the kernel's parent poller).

The zygote ends when the process that started it does. Set ``VALF_ZYGOTE=0`` to start every run
from nothing instead.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from valf_study.studies.notebook_run import (
    SOCKET_VARIABLE,
    execute_in_process,
    exit_with_parent,
    skip_unused_imports,
)

__all__ = ["Zygote", "close_all", "enabled", "zygote_for"]

#: Where an executor's output goes; its kernel's output goes there too.
LOG_VARIABLE = "VALF_RUN_LOG"
#: What a zygote imports before it forks anything (what a run imports to train).
WARM_MODULES = (
    "keras",
    "ipykernel.kernelapp",
    "papermill",
    "matplotlib.pyplot",
    "matplotlib_inline.backend_inline",
    "valf",
    "valf.losses",
    "valf.reweighting",
    "valf_study.run.train",
    "valf_study.run.inputs",
    "valf_study.run.evaluate",
    "valf_study.run.figures",
    "valf_study.run.state",
    "valf_study.data.pipeline",
    "valf_study.data.augment",
    "valf_study.studies.notebook_run",
)


def enabled():
    """Whether runs start from a zygote (not on systems without ``fork``; ``VALF_ZYGOTE=0``
    turns it off)."""
    return hasattr(os, "fork") and os.environ.get("VALF_ZYGOTE", "1") != "0"


# -- the client side: the sweep's worker ---------------------------------------------------------


class Zygote:
    """A zygote process, started with ``environment``, and the requests sent to it."""

    def __init__(self, environment, log_path, timeout=300):
        self.folder = Path(tempfile.mkdtemp(prefix="valf-zygote-"))
        self.socket_path = str(self.folder / "socket")
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log_path, "ab")  # open as long as the zygote lives
        self.process = subprocess.Popen(
            [sys.executable, "-m", "valf_study.studies.zygote", self.socket_path],
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.socket_path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"the run starter (zygote) did not start; see {log_path}")
            time.sleep(0.05)

    def alive(self):
        return self.process.poll() is None

    def execute(self, request, environment, log_path):
        """Fork an executor for ``request`` and wait for it; return its exit status."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(self.socket_path)
            message = {"kind": "execute", "request": request, "env": environment}
            connection.sendall((json.dumps({**message, "log": str(log_path)}) + "\n").encode())
            answers = connection.makefile("r", encoding="utf-8")
            json.loads(answers.readline())  # {"pid": ...}
            line = answers.readline()
        if not line:
            raise RuntimeError("the run starter (zygote) ended while the run executed")
        return int(json.loads(line)["exit"])

    def close(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        for path in (self.socket_path,):
            Path(path).unlink(missing_ok=True)
        self.folder.rmdir() if self.folder.exists() and not any(self.folder.iterdir()) else None


_ZYGOTES = {}
_ZYGOTES_LOCK = threading.Lock()


def zygote_for(environment, log_path):
    """The zygote of this process for ``environment``'s backend and threads, started on first
    use (one per worker process; the runs of a worker share it)."""
    key = (environment.get("KERAS_BACKEND", "tensorflow"), environment.get("VALF_THREADS"))
    with _ZYGOTES_LOCK:
        zygote = _ZYGOTES.get(key)
        if zygote is None or not zygote.alive():
            base = {k: v for k, v in environment.items() if k not in ("VALF_SWEEP_RUN",)}
            base.pop("CUDA_VISIBLE_DEVICES", None)  # each run gets its GPU when forked
            zygote = _ZYGOTES[key] = Zygote(base, log_path)
    return zygote


def close_all():
    """End this process's zygotes (the sweep does when it is done)."""
    with _ZYGOTES_LOCK:
        for zygote in _ZYGOTES.values():
            zygote.close()
        _ZYGOTES.clear()


# -- the kernel manager an executor uses ------------------------------------------------------


def _kernel_classes():
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner

    class ForkedKernel:
        """The forked kernel, as much of a ``Popen`` as jupyter_client uses."""

        stdin = stdout = stderr = None

        def __init__(self, pid):
            self.pid, self.returncode = pid, None

        def poll(self):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = 0
                return 0
            return None

        def wait(self, timeout=None):
            deadline = None if timeout is None else time.monotonic() + timeout
            while self.poll() is None:
                if deadline is not None and time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired("kernel", timeout)
                time.sleep(0.05)
            return 0

        def send_signal(self, signum):
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

        def kill(self):
            self.send_signal(signal.SIGKILL)

        def terminate(self):
            self.send_signal(signal.SIGTERM)

    class ZygoteProvisioner(LocalProvisioner):
        """Launches the kernel by asking the zygote to fork one."""

        async def launch_kernel(self, cmd, **kwargs):
            environment = dict(kwargs.get("env") or os.environ)
            request = {
                "kind": "kernel",
                "connection_file": self.parent.connection_file,
                "env": environment,
                "cwd": str(kwargs.get("cwd") or os.getcwd()),
                "log": os.environ.get(LOG_VARIABLE),
            }
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.connect(os.environ[SOCKET_VARIABLE])
                connection.sendall((json.dumps(request) + "\n").encode())
                pid = json.loads(connection.makefile("r").readline())["pid"]
            self.process = ForkedKernel(pid)
            self.pid, self.pgid = pid, None
            self.cwd = request["cwd"]
            return self.connection_info

    class Manager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kwargs):
            command, kwargs = await super()._async_pre_start_kernel(**kwargs)
            self.provisioner.__class__ = ZygoteProvisioner  # the same state, another launch
            return command, kwargs

    return Manager


def __getattr__(name):
    # ZygoteKernelManager is built on first use: importing this module loads no jupyter_client.
    if name == "ZygoteKernelManager":
        manager = _kernel_classes()
        manager.__name__ = manager.__qualname__ = "ZygoteKernelManager"
        manager.__module__ = __name__
        globals()[name] = manager
        return manager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- the zygote itself --------------------------------------------------------------------------


def _warm():
    import importlib

    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    skip_unused_imports()
    for name in WARM_MODULES:
        importlib.import_module(name)


def _redirect(log):
    if not log:
        return
    handle = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(handle, 1)
    os.dup2(handle, 2)
    os.close(handle)


def _become(environment, cwd, log):
    """In a forked child: this run's environment, folder and log."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(cwd)
    _redirect(log)


def _executor(message, zygote_socket):
    request = message["request"]
    environment = {**message["env"], SOCKET_VARIABLE: zygote_socket, LOG_VARIABLE: message["log"]}
    _become(environment, request["cwd"], message["log"])
    exit_with_parent()
    code = 1
    try:
        code = execute_in_process(request)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _kernel(message, zygote_pid):
    _become(message["env"], message["cwd"], message.get("log"))
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    # parent_handle: the kernel ends when the zygote does (ipykernel's parent poller).
    app.initialize(["-f", message["connection_file"], f"--IPKernelApp.parent_handle={zygote_pid}"])
    app.start()
    os._exit(0)


class _Server:
    def __init__(self, socket_path):
        self.socket_path = socket_path
        self.parent = os.getppid()
        self.executors = {}  # pid -> connection waiting for its exit status
        self.kernels = {}  # executor pid -> kernel pids
        self.selector = selectors.DefaultSelector()
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through the pipe
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        temporary = f"{socket_path}.tmp"
        self.listener.bind(temporary)
        self.listener.listen(64)
        os.rename(temporary, socket_path)  # the socket appears only once it listens
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_read, selectors.EVENT_READ, "wake")

    def stop(self):
        for pids in self.kernels.values():
            for pid in pids:
                _kill(pid)
        for pid in self.executors:
            _kill(pid, signal.SIGTERM)
        Path(self.socket_path).unlink(missing_ok=True)
        os._exit(0)

    def serve(self):
        while True:
            for key, _ in self.selector.select(timeout=0.5):
                if key.data == "accept":
                    self.accept()
                elif key.data == "wake":
                    os.read(self.wake_read, 4096)
            self.reap()
            if os.getppid() != self.parent:  # the worker that started the zygote is gone
                self.stop()

    def accept(self):
        connection, _ = self.listener.accept()
        connection.settimeout(30)
        message = json.loads(connection.makefile("r", encoding="utf-8").readline())
        if message["kind"] == "kernel":
            requester = _peer_pid(connection)
            pid = self.fork(lambda: _kernel(message, os.getppid()))
            self.kernels.setdefault(requester, []).append(pid)
            connection.sendall((json.dumps({"pid": pid}) + "\n").encode())
            connection.close()
        else:
            pid = self.fork(lambda: _executor(message, self.socket_path))
            connection.sendall((json.dumps({"pid": pid}) + "\n").encode())
            self.executors[pid] = connection

    def fork(self, child):
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            self.selector.close()
            self.listener.close()
            for connection in self.executors.values():
                connection.close()
            os.close(self.wake_read)
            os.close(self.wake_write)
            try:
                child()
            finally:
                os._exit(1)
        return pid

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.executors.pop(pid, None)
            if connection is not None:
                for kernel in self.kernels.pop(pid, []):  # its kernel goes with it
                    _kill(kernel)
                try:
                    code = os.waitstatus_to_exitcode(status)
                    connection.sendall((json.dumps({"exit": code}) + "\n").encode())
                except OSError:
                    pass
                connection.close()


def _kill(pid, signum=signal.SIGKILL):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _peer_pid(connection):
    import struct

    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return struct.unpack("3i", credentials)[0]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    started = time.perf_counter()
    _warm()
    print(
        f"zygote {os.getpid()}: imported in {time.perf_counter() - started:.1f} s, "
        f"backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}",
        flush=True,
    )
    _Server(argv[0]).serve()


if __name__ == "__main__":
    main()
