"""What one sweep run costs beyond its training, and the wall time of a whole study.

Takes the first run of a study (default: the quick study's CCE / 20x / seed 0) and times, one
at a time on an otherwise idle machine, alternating over ``--repeats`` rounds:

- ``import``: a fresh Python importing what a run imports to train (Keras and its backend,
  albumentations, the run's modules);
- ``direct``: a fresh Python calling :func:`valf_study.run.train.train` for the run (import, data,
  model,
  fit, evaluation, files);
- ``sweep``: the same run exactly as the sweep executes it,
  :func:`valf_study.studies.execute.execute_run`: a child process with the run's environment,
  papermill, a new kernel running ``notebooks/train.ipynb`` (plus the figures and the saved
  notebook);

each run's ``fit_seconds`` (``model.fit`` alone, the first epoch's compilation included) comes
from its ``metrics.json``. It reports the medians and the ratios that matter: the sweep's cost
over calling :func:`train` directly, and the *per-run overhead*, the share of a swept run's wall
time that is not fitting (start-up, imports, data, evaluation, files, figures).

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

SWEPT = """
import sys, yaml
from valf_study.studies.execute import execute_run
params = yaml.safe_load(open(sys.argv[1]))
result = execute_run({"params": params, "run_dir": sys.argv[2], "notebook": sys.argv[3],
                      "kernel": sys.argv[4], "cwd": sys.argv[5], "timeout": None,
                      "threads": int(sys.argv[6])})
assert result["status"] == "ok", result
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
    """Time import, direct train() and papermill for the study's first run."""
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
        for mode in ("direct", "sweep"):
            runs_root = scratch / f"{mode}-{round_}"
            params = {**base, "runs_root": str(runs_root)}
            params_file = scratch / f"{mode}-{round_}.yaml"
            params_file.write_text(yaml.safe_dump(params))
            run_dir = runs_root / runs[0].run_id
            if mode == "direct":
                command = [python, "-c", DIRECT, str(params_file)]
            else:
                command = [
                    python,
                    "-c",
                    SWEPT,
                    str(params_file),
                    str(run_dir),
                    str(ROOT / "notebooks" / "train.ipynb"),
                    kernel,
                    str(ROOT),
                    "1",
                ]
            wall = timed(command, cwd=ROOT, env=ONE_THREAD)
            rows.append(
                {"round": round_, "mode": mode, "wall_seconds": wall, **run_record(run_dir)}
            )
            print(
                f"round {round_} {mode:6s} {wall:6.1f} s (fit {rows[-1]['fit_seconds']} s)",
                flush=True,
            )
    median = {
        mode: statistics.median(r["wall_seconds"] for r in rows if r["mode"] == mode)
        for mode in ("import", "direct", "sweep")
    }
    fit = statistics.median(r["fit_seconds"] for r in rows if r["mode"] == "sweep")
    return {
        "run": runs[0].run_id,
        "rows": rows,
        "median_seconds": {**median, "fit": fit},
        "sweep_over_direct": median["sweep"] / median["direct"],
        "fit_share_of_swept_run": fit / median["sweep"],
        "overhead_share_of_swept_run": 1 - fit / median["sweep"],
        "non_fit_seconds_per_run": median["sweep"] - fit,
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
            m = single["median_seconds"]
            print(
                f"\nmedians: import {m['import']:.1f} s, direct train() {m['direct']:.1f} s, "
                f"swept {m['sweep']:.1f} s, fit {m['fit']:.1f} s"
            )
            print(
                f"swept / direct = {single['sweep_over_direct']:.2f}; per-run overhead "
                f"{100 * single['overhead_share_of_swept_run']:.0f} % of a swept run "
                f"({single['non_fit_seconds_per_run']:.1f} s is not fitting)"
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
