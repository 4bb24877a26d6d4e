"""What one sweep run costs beyond its training, and the wall time of a whole study.

Takes the first run of a study (default: the quick study's CCE / 20x / seed 0) and times, one
at a time on an otherwise idle machine, alternating over ``--repeats`` rounds:

- ``import``: a fresh Python importing what a run imports to train (Keras and its backend,
  albumentations, the run's modules);
- ``direct``: a fresh Python calling :func:`valf_study.run.train.train` for the run (import, data,
  model, fit, evaluation, files);
- ``sweep-fresh`` and ``sweep-forked``: the same run exactly as a sweep's worker executes it,
  one after another in one process (:func:`valf_study.studies.execute.execute_run`: papermill
  and a kernel running ``notebooks/train.ipynb``, plus the figures and the saved notebook),
  started from nothing (``VALF_ZYGOTE=0``: a new Python and a new kernel per run) or forked from
  the worker's warm zygote (:mod:`valf_study.studies.zygote`; its first run, which starts the
  zygote, is reported apart);

each run's ``fit_seconds`` (``model.fit`` alone, the first epoch's compilation included) comes
from its ``metrics.json``. It reports the medians and the figure that matters: the *per-run
overhead*, the seconds of a swept run that are not fitting (start-up, imports, data,
evaluation, files, figures).

``--full`` then runs ``valf sweep`` over the whole study in a fresh folder (data generated
anew, empty decode cache), as ``make study`` would on a fresh clone, and reports its wall time
with the per-run fit and wall times from the run directories.

Usage::

    .venv/bin/python benchmarks/sweep_overhead.py [--study quick] [--repeats 2] [--full]
        [--workers N] [--json benchmarks/results/sweep_overhead-cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from valf_study.run.environment import environment_record
from valf_study.studies.plan import make_plan
from valf_study.studies.spec import find_study_file, load_study

DIRECT = """
import sys, yaml
from valf_study.run.train import train
train(yaml.safe_load(open(sys.argv[1])), progress=False)
"""

# One worker's loop: the same run executed ``repeats`` times in fresh run folders, each timed, as
# a sweep's worker executes its runs one after another (with VALF_ZYGOTE=1 the first run also
# starts the worker's zygote, which the later ones reuse).
SWEPT = """
import json, sys, time, yaml
from valf_study.studies.execute import execute_run
from valf_study.studies import zygote
params = yaml.safe_load(open(sys.argv[1]))
for index in range(int(sys.argv[7])):
    run_dir = sys.argv[2] + f"-{index}/" + sys.argv[8]
    started = time.perf_counter()
    result = execute_run({"params": {**params, "runs_root": sys.argv[2] + f"-{index}"},
                          "run_dir": run_dir, "notebook": sys.argv[3],
                          "kernel": sys.argv[4], "cwd": sys.argv[5], "timeout": None,
                          "threads": int(sys.argv[6])})
    assert result["status"] == "ok", result
    print(json.dumps({"run_dir": run_dir, "wall": time.perf_counter() - started}), flush=True)
zygote.close_all()
"""
IMPORT = (
    "import keras, valf_study.run.train, valf_study.run.inputs, valf_study.data.pipeline, "
    "valf_study.run.figures"
)


# One core's worth of threads per run, as the sweep gives each of two runs on two cores; the
# processes are also pinned to one core, so a measurement does not borrow the idle other one.
ONE_THREAD = {
    **os.environ,
    "VALF_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}


def timed(command, **kwargs):
    if hasattr(os, "sched_setaffinity"):
        kwargs.setdefault("preexec_fn", lambda: os.sched_setaffinity(0, {0}))
    started = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs
    )
    return time.perf_counter() - started


def run_record(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"fit_seconds": metrics["fit_seconds"], "epochs_run": metrics["epochs_run"]}


def one_run(study, scratch, kernel, repeats):
    """Time import, direct train() and the swept run (started from nothing, and forked from a
    warm zygote) for the study's first run."""
    _plan = make_plan(study)
    runs, _ = _plan.runs, _plan.waiting
    base = dict(runs[0].params)
    rows = []
    python = sys.executable
    for round_ in range(repeats):
        rows.append(
            {
                "round": round_,
                "mode": "import",
                "wall_seconds": timed([python, "-c", IMPORT], env=ONE_THREAD),
            }
        )
        runs_root = scratch / f"direct-{round_}"
        params_file = scratch / f"direct-{round_}.yaml"
        params_file.write_text(yaml.safe_dump({**base, "runs_root": str(runs_root)}))
        wall = timed([python, "-c", DIRECT, str(params_file)], cwd=ROOT, env=ONE_THREAD)
        rows.append(
            {
                "round": round_,
                "mode": "direct",
                "wall_seconds": wall,
                **run_record(runs_root / runs[0].run_id),
            }
        )
        print(f"round {round_} direct {wall:6.1f} s (fit {rows[-1]['fit_seconds']} s)", flush=True)
    for mode, switch in (("sweep-fresh", "0"), ("sweep-forked", "1")):
        params_file = scratch / f"{mode}.yaml"
        params_file.write_text(yaml.safe_dump(base))
        command = [
            *(python, "-c", SWEPT, str(params_file), str(scratch / mode)),
            *(str(ROOT / "notebooks" / "train.ipynb"), kernel, str(ROOT), "1"),
            *(str(repeats + 1), runs[0].run_id),
        ]
        kwargs = {"preexec_fn": lambda: os.sched_setaffinity(0, {0})}
        if not hasattr(os, "sched_setaffinity"):
            kwargs = {}
        output = subprocess.run(
            command,
            cwd=ROOT,
            env={**ONE_THREAD, "VALF_ZYGOTE": switch},
            capture_output=True,
            text=True,
            check=True,
            **kwargs,
        ).stdout
        records = [line for line in output.splitlines() if line.startswith("{")]
        for index, line in enumerate(records):
            record = json.loads(line)
            # The first run of a worker pays for starting its zygote once: it is reported, and
            # the per-run figures are the later runs'.
            rows.append(
                {
                    "round": index,
                    "mode": mode if index else f"{mode}-first",
                    "wall_seconds": record["wall"],
                    **run_record(Path(record["run_dir"])),
                }
            )
            print(
                f"{rows[-1]['mode']:18s} {record['wall']:6.1f} s (fit {rows[-1]['fit_seconds']} s)",
                flush=True,
            )

    def median(mode, key="wall_seconds"):
        values = [r[key] for r in rows if r["mode"] == mode]
        return statistics.median(values) if values else float("nan")

    modes = ("import", "direct", "sweep-fresh", "sweep-forked")
    medians = {mode: median(mode) for mode in modes}
    non_fit = {
        mode: statistics.median(
            r["wall_seconds"] - r["fit_seconds"] for r in rows if r["mode"] == mode
        )
        for mode in ("direct", "sweep-fresh", "sweep-forked")
    }
    return {
        "run": runs[0].run_id,
        "rows": rows,
        "median_seconds": {**medians, "fit": median("sweep-forked", "fit_seconds")},
        "non_fit_seconds_per_run": non_fit,
        "forked_over_fresh": medians["sweep-forked"] / medians["sweep-fresh"],
        "first_forked_run_seconds": median("sweep-forked-first"),
    }


def full_study(study_path, scratch, workers, kernel):
    """``valf sweep`` of the whole study from nothing: data generation, empty cache."""
    scratch.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load(Path(study_path).read_text())
    spec["data"]["root"] = str(scratch / "data")
    spec.setdefault("defaults", {})["cache_dir"] = str(scratch / "cache")
    copy = scratch / Path(study_path).name
    copy.write_text(yaml.safe_dump(spec, sort_keys=False))
    command = [
        sys.executable,
        "-m",
        "valf_study.cli",
        "sweep",
        str(copy),
        "--runs-root",
        str(scratch / "runs"),
        "--kernel",
        kernel,
        "--quiet",
    ]
    if workers:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    wall = time.perf_counter() - started
    study = load_study(copy, scratch / "runs")
    _plan = make_plan(study)
    runs, _ = _plan.runs, _plan.waiting
    per_run = []
    for run in runs:
        status = json.loads((run.run_dir / "status.json").read_text())
        per_run.append(
            {
                "run_id": run.run_id,
                "wall_seconds": status.get("wall_seconds"),
                **run_record(run.run_dir),
            }
        )
    return {
        "study": study.name,
        "runs": len(runs),
        "workers": workers or "default",
        "wall_seconds": wall,
        "sum_fit_seconds": sum(r["fit_seconds"] for r in per_run),
        "sum_train_wall_seconds": sum(r["wall_seconds"] or 0 for r in per_run),
        "per_run": per_run,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="quick")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kernel", default="valf")
    parser.add_argument("--full", action="store_true", help="also sweep the whole study")
    parser.add_argument("--workers", type=int, help="workers of the full sweep")
    parser.add_argument("--skip-single", action="store_true", help="only the full sweep")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    study_path = find_study_file(args.study, ROOT / "studies")
    result = {
        "machine": environment_record(),
        "study": str(study_path.relative_to(ROOT)),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with tempfile.TemporaryDirectory(prefix="sweep-overhead-") as scratch:
        scratch = Path(scratch)
        if not args.skip_single:
            study = load_study(study_path, scratch / "runs")
            result["single_run"] = one_run(study, scratch, args.kernel, args.repeats)
            single = result["single_run"]
            m, non_fit = single["median_seconds"], single["non_fit_seconds_per_run"]
            print(
                f"\nmedians: import {m['import']:.1f} s, direct train() {m['direct']:.1f} s, "
                f"swept from nothing {m['sweep-fresh']:.1f} s, forked {m['sweep-forked']:.1f} s, "
                f"fit {m['fit']:.1f} s"
            )
            print(
                "per-run seconds not fitting (start-up, data, evaluation, files): direct "
                f"{non_fit['direct']:.1f}, swept from nothing {non_fit['sweep-fresh']:.1f}, "
                f"forked {non_fit['sweep-forked']:.1f}; forked / from nothing = "
                f"{single['forked_over_fresh']:.2f} (a worker's first forked run "
                f"{single['first_forked_run_seconds']:.1f} s, its zygote starting)"
            )
        if args.full:
            full = full_study(study_path, scratch / "full", args.workers, args.kernel)
            result["full_study"] = full
            print(
                f"\nfull study {full['study']}: {full['runs']} runs in "
                f"{full['wall_seconds'] / 60:.1f} min wall; fitting "
                f"{full['sum_fit_seconds'] / 60:.1f} min and train() "
                f"{full['sum_train_wall_seconds'] / 60:.1f} min summed over runs"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"written {args.json}")


if __name__ == "__main__":
    main()
