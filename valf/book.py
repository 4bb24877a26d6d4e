"""Building the book: which studies it shows, their tables for the pages, and the build itself.

The pages in ``book/`` call :func:`load` and the functions of :mod:`valf.report`; ``valf book``
(:func:`build`) collects the results tables, renders the executed training notebooks to HTML,
and runs ``jupyter-book build . -W --keep-going``. Analysis pages are executed through
Jupyter Book's cache, which keys on a page's code only, so :func:`build` clears the cache when
the studies shown, their results or the drawing code (:mod:`valf.report`) change, and never
otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_FILE = ROOT / "book" / "study.yml"
ENVIRONMENT = {"study": "VALF_BOOK_STUDY", "ablations": "VALF_BOOK_ABLATIONS",
               "results": "VALF_BOOK_RESULTS", "runs_root": "VALF_BOOK_RUNS",
               "studies": "VALF_BOOK_STUDIES"}

__all__ = ["BookStudy", "build", "load", "settings"]


def settings(**overrides):
    """The book's settings: ``book/study.yml``, then ``VALF_BOOK_*`` variables, then overrides."""
    values = yaml.safe_load(SETTINGS_FILE.read_text()) if SETTINGS_FILE.is_file() else {}
    values = {"study": "quick", "ablations": "quick-ablations", "results": "results",
              "runs_root": "runs", "studies": "studies", **(values or {})}
    for key, variable in ENVIRONMENT.items():
        if os.environ.get(variable):
            values[key] = os.environ[variable]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return values


@dataclass
class BookStudy:
    """A study's results tables and what the pages need to know about it."""

    name: str
    title: str
    runs: object
    history: object
    class_weights: object
    predictions: object
    selections: dict
    dataset: str
    data_root: str

    @property
    def data_path(self):
        """The data root as a path (pages execute in book/; relative roots are the project's)."""
        return ROOT / self.data_root

    @property
    def synthetic(self):
        return self.dataset != "lunghist700"

    @property
    def done(self):
        return self.runs[self.runs["status"] == "done"]

    def banner(self):
        """A Markdown admonition saying plainly where the numbers come from."""
        from IPython.display import Markdown

        total, done = len(self.runs), len(self.done)
        incomplete = (f" Only {done} of its {total} runs are complete; the tables below show "
                      "those." if done < total else "")
        if self.synthetic:
            return Markdown(
                f":::{{warning}}\nThis page shows the study **{self.name}** ({self.title}), which "
                "ran on the **generated stand-in data set**, not on LungHist700. Its numbers "
                "describe generated tiles; they test the code end to end and are **not** a "
                f"reproduction of the paper's results.{incomplete}\n:::")
        return Markdown(f":::{{note}}\nThis page shows the study **{self.name}** "
                        f"({self.title}) on LungHist700.{incomplete}\n:::")


def load(which="study", **overrides):
    """The tables of the book's main study (``which="study"``) or of its ablations."""
    from valf.results import load_results
    from valf.study import find_study_file, load_study

    config = settings(**overrides)
    name = config[which]
    tables = load_results(name, out=ROOT / config["results"])
    study = load_study(find_study_file(name, ROOT / config["studies"]),
                       ROOT / config["runs_root"])
    return BookStudy(name=name, title=study.title, runs=tables["runs"],
                     history=tables["history"], class_weights=tables["class_weights"],
                     predictions=tables["predictions"], selections=tables["selections"],
                     dataset=study.data["dataset"], data_root=study.data["root"])


def _fingerprint(config):
    # What the pages read besides their own code: the results, and the code that draws them.
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for module in ("report.py", "book.py", "plots.py"):
        digest.update((Path(__file__).parent / module).read_bytes())
    for key in ("study", "ablations"):
        folder = ROOT / config["results"] / config[key]
        for path in sorted(folder.glob("*")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def render_run_notebooks(runs, out):
    """The executed notebook of every complete run as HTML under ``out`` (for the runs table)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="classic")
    written = 0
    for run_dir in runs["run_dir"]:
        source = Path(run_dir) / "train.ipynb"
        target = Path(out) / f"{Path(run_dir).name}.html"
        if not source.is_file() or (target.is_file()
                                    and target.stat().st_mtime >= source.stat().st_mtime):
            continue
        body, _ = exporter.from_notebook_node(nbformat.read(source, as_version=4))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
        written += 1
    return written


def build(study=None, ablations=None, output=None, out=sys.stdout, **overrides):
    """Collect the results of the studies shown and build the book; return the index path.

    ``output`` is the folder that receives ``_build`` (default: the project root);
    ``overrides`` are other settings (``results``, ``runs_root``, ``studies``).
    """
    from valf.results import write_results
    from valf.study import find_study_file

    config = settings(study=study, ablations=ablations, **overrides)
    for key in ("study", "ablations"):
        write_results(find_study_file(config[key], ROOT / config["studies"]),
                      ROOT / config["runs_root"], ROOT / config["results"])
    import pandas as pd

    main_runs = pd.read_parquet(ROOT / config["results"] / config["study"] / "runs.parquet")
    if not (main_runs["status"] == "done").any():
        raise ValueError(
            f"The study {config['study']!r} has no complete run yet, so the book has nothing to "
            f"show. Run `valf sweep {config['study']}` first (or `make study`).")
    output = Path(output) if output is not None else ROOT
    build_dir = output / "_build"
    stamp = build_dir / ".valf-book-inputs"
    fingerprint = _fingerprint(config)
    if not stamp.is_file() or stamp.read_text() != fingerprint:
        # New results: the cached analysis pages are stale (the cache keys on code only), and
        # Sphinx would not even re-read a page whose source is unchanged (its doctrees).
        for stale in (".jupyter_cache", ".doctrees", "jupyter_execute"):
            shutil.rmtree(build_dir / stale, ignore_errors=True)
    environment = {**os.environ, **{variable: str(config[key])
                                    for key, variable in ENVIRONMENT.items()}}
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "-W",
               "--keep-going", "--path-output", str(output)]
    print(" ".join(command), file=out, flush=True)
    subprocess.run(command, check=True, env=environment, cwd=ROOT)
    for key in ("study", "ablations"):  # after the build: Sphinx owns _build/html
        runs = pd.read_parquet(ROOT / config["results"] / config[key] / "runs.parquet")
        render_run_notebooks(runs, build_dir / "html" / "runs" / config[key])
    stamp.write_text(fingerprint)
    index = build_dir / "html" / "index.html"
    print(f"The book: {index}", file=out)
    return index
