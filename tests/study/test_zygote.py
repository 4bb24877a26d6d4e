"""Runs started from a warm process (valf_study.studies.zygote): each run still executes in
processes of its own, gives the same results as a run started from nothing, and leaves no
process behind; a kernel whose executor dies goes with it."""

import json
import os
import re
import signal
import time

import psutil
import pytest

from tests.study.test_sweep import KERNEL, NOTEBOOK, write_study
from valf_study.run.rundir import RunDirectory
from valf_study.studies import zygote
from valf_study.studies.sweep import sweep

pytestmark = pytest.mark.slow


def _sweep(folder, data_dir, monkeypatch, enabled):
    monkeypatch.setenv("VALF_ZYGOTE", "1" if enabled else "0")
    folder.mkdir(parents=True)
    study = write_study(
        folder, "forked", {"main": {"grid": {"loss": ["CCE", "VALF"]}}}, data_dir, epochs=2
    )
    summary = sweep(
        study, folder / "runs", workers=2, kernel=KERNEL, notebook=NOTEBOOK, progress=False
    )
    assert summary.exit_code == 0, summary.report()
    return sorted(p for p in (folder / "runs").iterdir() if RunDirectory(p).is_done())


def test_a_forked_run_is_the_run_started_from_nothing(tmp_path, monkeypatch):
    data = tmp_path / "data"
    forked = _sweep(tmp_path / "forked", data, monkeypatch, enabled=True)
    fresh = _sweep(tmp_path / "fresh", data, monkeypatch, enabled=False)
    assert [p.name for p in forked] == [p.name for p in fresh] and len(forked) == 2
    for one, other in zip(forked, fresh):
        first, second = (json.loads((p / "metrics.json").read_text()) for p in (one, other))
        for key in ("f1", "accuracy", "val_loss_best", "epochs_run"):
            assert first[key] == pytest.approx(second[key], abs=1e-6), key
        notebook = (one / "train.ipynb").read_text()
        assert "epoch 2/2" in notebook  # the forked kernel's output, in the executed notebook
        assert f"=== run {one.name} complete" in (one / "run.log").read_text()
    assert (tmp_path / "forked" / "runs" / "_zygote.log").is_file()
    assert not (tmp_path / "fresh" / "runs" / "_zygote.log").exists()
    # The sweep ended its run starters: each zygote it started (its log names them) is gone.
    # (Zygotes of other sweeps on the machine, a `make study` beside the tests, are not ours.)
    log = (tmp_path / "forked" / "runs" / "_zygote.log").read_text()
    started = [int(pid) for pid in re.findall(r"^zygote (\d+): imported", log, re.M)]
    assert started
    alive = [
        pid
        for pid in started
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert not alive


def test_a_kernel_goes_with_its_executor(tmp_path):
    environment = {**os.environ, "KERAS_BACKEND": "tensorflow", "VALF_THREADS": "1"}
    starter = zygote.Zygote(environment, tmp_path / "zygote.log")
    try:
        import subprocess
        import sys

        # A client that asks for a kernel, as an executor does, then dies.
        client = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import json, os, socket, sys, time\n"
                "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
                "s.sendall((json.dumps({'kind': 'kernel', 'connection_file': sys.argv[2],"
                " 'env': dict(os.environ), 'cwd': '.'}) + '\\n').encode())\n"
                "print(json.loads(s.makefile().readline())['pid'], flush=True)\n"
                "time.sleep(60)\n",
                starter.socket_path,
                str(tmp_path / "kernel.json"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        kernel = int(client.stdout.readline())
        assert psutil.pid_exists(kernel)
        client.send_signal(signal.SIGKILL)
        client.wait()
        # The client is not the zygote's child: its kernel lives on until the zygote is gone.
        starter.close()
        deadline = time.monotonic() + 10
        while psutil.pid_exists(kernel) and psutil.Process(kernel).status() != "zombie":
            assert time.monotonic() < deadline, "the kernel outlived its zygote"
            time.sleep(0.2)
    finally:
        starter.close()
