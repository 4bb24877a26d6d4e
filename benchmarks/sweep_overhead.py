"""What one sweep run costs beyond its training, and the wall time of a whole study.

Takes the first run of a study (default: the quick study's CCE / 20x / seed 0) and times, one
at a time on an otherwise idle machine, alternating over ``--repeats`` rounds:

- ``import``: a fresh Python importing :mod:`valf.run.train` (TensorFlow, Keras, albumentations);
- ``direct``: a fresh Python calling :func:`valf.run.train.train` for the run (import, data, model,
  fit, evaluation, files);
- ``papermill``: the same run as the sweep executes it, ``papermill.execute_notebook`` of
  ``notebooks/train.ipynb`` in a new kernel (plus the figures and the saved notebook);

each run's ``fit_seconds`` (``model.fit`` alone) comes from its ``metrics.json``. It reports the
medians and the ratios that matter: papermill's and the kernel's cost over calling
:func:`train` directly, and the share of a run's wall time spent fitting.

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

from valf.run.environment import environment_record  # noqa: E402
from valf.study.spec import find_study_file, load_study  # noqa: E402

DIRECT = """
import sys, yaml
from valf.run.train import train
train(yaml.safe_load(open(sys.argv[1])), progress=False)
"""

PAPERMILL = """
import sys, yaml, papermill
params = yaml.safe_load(open(sys.argv[1]))
papermill.execute_notebook(sys.argv[2], sys.argv[3], parameters=params, kernel_name=sys.argv[4],
                           cwd=sys.argv[5], progress_bar=False)
"""


def timed(command, **kwargs):
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   **kwargs)
    return time.perf_counter() - started


def run_record(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"fit_seconds": metrics["fit_seconds"], "epochs_run": metrics["epochs_run"]}


def one_run(study, scratch, kernel, repeats):
    """Time import, direct train() and papermill for the study's first run."""
    runs, _ = study.expand()
    base = dict(runs[0].params)
    rows = []
    python = sys.executable
    for round_ in range(repeats):
        rows.append({"round": round_, "mode": "import",
                     "wall_seconds": timed([python, "-c", "import valf.run.train"])})
        for mode in ("direct", "papermill"):
            runs_root = scratch / f"{mode}-{round_}"
            params = {**base, "study": "overhead", "runs_root": str(runs_root)}
            params_file = scratch / f"{mode}-{round_}.yaml"
            params_file.write_text(yaml.safe_dump(params))
            if mode == "direct":
                command = [python, "-c", DIRECT, str(params_file)]
            else:
                output = scratch / f"{mode}-{round_}.ipynb"
                command = [python, "-c", PAPERMILL, str(params_file),
                           str(ROOT / "notebooks" / "train.ipynb"), str(output), kernel,
                           str(ROOT)]
            wall = timed(command, cwd=ROOT)
            (run_dir,) = (runs_root / "overhead").iterdir()
            rows.append({"round": round_, "mode": mode, "wall_seconds": wall,
                         **run_record(run_dir)})
            print(f"round {round_} {mode:9s} {wall:6.1f} s (fit {rows[-1]['fit_seconds']} s)",
                  flush=True)
    median = {mode: statistics.median(r["wall_seconds"] for r in rows if r["mode"] == mode)
              for mode in ("import", "direct", "papermill")}
    fit = statistics.median(r["fit_seconds"] for r in rows if r["mode"] != "import")
    return {
        "run": runs[0].run_id,
        "rows": rows,
        "median_seconds": {**median, "fit": fit},
        "papermill_over_direct": median["papermill"] / median["direct"],
        "fit_share_of_papermill_run": fit / median["papermill"],
        "non_fit_seconds_per_run": median["papermill"] - fit,
    }


def full_study(study_path, scratch, workers, kernel):
    """``valf sweep`` of the whole study from nothing: data generation, empty cache."""
    scratch.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load(Path(study_path).read_text())
    spec["data"]["root"] = str(scratch / "data")
    spec.setdefault("defaults", {})["cache_dir"] = str(scratch / "cache")
    copy = scratch / Path(study_path).name
    copy.write_text(yaml.safe_dump(spec, sort_keys=False))
    command = [sys.executable, "-m", "valf.cli", "sweep", str(copy), "--runs-root",
               str(scratch / "runs"), "--kernel", kernel, "--quiet"]
    if workers:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    wall = time.perf_counter() - started
    study = load_study(copy, scratch / "runs")
    runs, _ = study.expand()
    per_run = []
    for run in runs:
        status = json.loads((run.run_dir / "status.json").read_text())
        per_run.append({"run_id": run.run_id, "wall_seconds": status.get("wall_seconds"),
                        **run_record(run.run_dir)})
    return {
        "study": study.name, "runs": len(runs), "workers": workers, "wall_seconds": wall,
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
    result = {"machine": environment_record(), "study": str(study_path.relative_to(ROOT)),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with tempfile.TemporaryDirectory(prefix="sweep-overhead-") as scratch:
        scratch = Path(scratch)
        if not args.skip_single:
            study = load_study(study_path, scratch / "runs")
            result["single_run"] = one_run(study, scratch, args.kernel, args.repeats)
            single = result["single_run"]
            m = single["median_seconds"]
            print(f"\nmedians: import {m['import']:.1f} s, direct train() {m['direct']:.1f} s, "
                  f"papermill {m['papermill']:.1f} s, fit {m['fit']:.1f} s")
            print(f"papermill / direct = {single['papermill_over_direct']:.2f}; fit is "
                  f"{100 * single['fit_share_of_papermill_run']:.0f} % of a papermill run; "
                  f"{single['non_fit_seconds_per_run']:.1f} s per run is not fitting")
        if args.full:
            full = full_study(study_path, scratch / "full", args.workers, args.kernel)
            result["full_study"] = full
            print(f"\nfull study {full['study']}: {full['runs']} runs in "
                  f"{full['wall_seconds'] / 60:.1f} min wall; fitting {full['sum_fit_seconds'] / 60:.1f} "
                  f"min and train() {full['sum_train_wall_seconds'] / 60:.1f} min summed over runs")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"written {args.json}")


if __name__ == "__main__":
    main()
