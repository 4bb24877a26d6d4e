"""What the book's pages read: which studies it shows, and their results tables.

The pages in ``book/`` call :func:`load` and the functions of :mod:`valf.report.tables` and
:mod:`valf.report.figures`; :mod:`valf.report.build` builds the book.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = ROOT / "book" / "study.yml"
ENVIRONMENT = {
    "study": "VALF_BOOK_STUDY",
    "ablations": "VALF_BOOK_ABLATIONS",
    "cv": "VALF_BOOK_CV",
    "results": "VALF_BOOK_RESULTS",
    "runs_root": "VALF_BOOK_RUNS",
    "studies": "VALF_BOOK_STUDIES",
}

__all__ = ["BookStudy", "load", "load_if_complete", "settings"]


def settings(**overrides):
    """The book's settings: ``book/study.yml``, then ``VALF_BOOK_*`` variables, then overrides.
    ``ablations`` and ``cv`` may be ``none`` (None): the book then shows no such study."""
    values = yaml.safe_load(SETTINGS_FILE.read_text()) if SETTINGS_FILE.is_file() else {}
    values = {
        "study": "quick",
        "ablations": "quick-ablations",
        "cv": "quick-cv",
        "results": "results",
        "runs_root": "runs",
        "studies": "studies",
        **(values or {}),
    }
    for key, variable in ENVIRONMENT.items():
        if os.environ.get(variable):
            values[key] = os.environ[variable]
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("ablations", "cv"):  # a book may show no ablations or second protocol
        if str(values.get(key)).lower() in ("", "none", "null"):
            values[key] = None
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
    comparisons: object
    selections: dict
    dataset: str
    data_root: str

    @property
    def data_path(self):
        """The data root as a path (pages execute in book/; relative roots are the project's)."""
        return ROOT / self.data_root

    @property
    def synthetic(self):
        """Not LungHist700: the generated stand-in or a folder of one's own images."""
        return self.dataset != "lunghist700"

    @property
    def folder(self):
        """A folder of one's own images (no magnifications, no paper to compare with)."""
        return self.dataset == "folder"

    @property
    def class_names(self):
        """The classes, in label order, as the runs recorded them."""
        from valf.report.tables import class_names

        return class_names(self.runs)

    def images(self):
        """Every image of the study's data set with its class, split and path: LungHist700's
        official split, or the split a complete run of a folder study recorded."""
        import pandas as pd

        if not self.folder:
            from valf.data import lunghist700

            return lunghist700.official_split(lunghist700.read_release(self.data_path))
        run_dir = Path(self.done.sort_values("run_id")["run_dir"].iloc[0])
        frame = pd.read_csv(run_dir / "split.csv").drop_duplicates("image_path")
        frame["label"] = frame["class_name"].map({c: i for i, c in enumerate(self.class_names)})
        frame["path"] = [str(self.data_path / p) for p in frame["image_path"]]
        return frame

    def not_lunghist700(self, what):
        """One line saying why a section about LungHist700 (``what``) is left out."""
        from IPython.display import Markdown

        return Markdown(
            f"*The study shown, **{self.name}**, ran on a folder of its own images "
            f"(`{self.data_root}`), not on LungHist700, so {what} does not apply to it.*"
        )

    @property
    def done(self):
        return self.runs[self.runs["status"] == "done"]

    def banner(self):
        """A Markdown admonition saying plainly where the numbers come from."""
        from IPython.display import Markdown

        total, done = len(self.runs), len(self.done)
        incomplete = (
            f" Only {done} of its {total} runs are complete; the tables below show those."
            if done < total
            else ""
        )
        if self.folder:
            names = ", ".join(self.class_names)
            return Markdown(
                f":::{{note}}\nThis page shows the study **{self.name}** ({self.title}) on a "
                f"folder of its own images (`{self.data_root}`: {len(self.class_names)} "
                f"classes, {names}). Sections about LungHist700 and the paper's numbers say "
                f"so and are left out.{incomplete}\n:::"
            )
        if self.synthetic:
            return Markdown(
                f":::{{warning}}\nThis page shows the study **{self.name}** ({self.title}), which "
                "ran on the **generated stand-in data set**, not on LungHist700. Its numbers "
                "describe generated tiles; they test the code end to end and are **not** a "
                f"reproduction of the paper's results.{incomplete}\n:::"
            )
        return Markdown(
            f":::{{note}}\nThis page shows the study **{self.name}** "
            f"({self.title}) on LungHist700.{incomplete}\n:::"
        )


def load(which="study", **overrides):
    """The tables of the book's main study (``which="study"``), its ablations
    (``"ablations"``) or its cross-validated protocol (``"cv"``)."""
    from valf.study.results import load_results
    from valf.study.spec import find_study_file, load_study

    config = settings(**overrides)
    name = config[which]
    if name is None:
        raise FileNotFoundError(f"The book shows no {which} study (book/study.yml).")
    tables = load_results(name, out=ROOT / config["results"])
    study = load_study(find_study_file(name, ROOT / config["studies"]), ROOT / config["runs_root"])
    return BookStudy(
        name=name,
        title=study.title,
        runs=tables["runs"],
        history=tables["history"],
        class_weights=tables["class_weights"],
        comparisons=tables["comparisons"],
        predictions=tables["predictions"],
        selections=tables["selections"],
        dataset=study.data["dataset"],
        data_root=study.data["root"],
    )


def load_if_complete(which, **overrides):
    """:func:`load`, or None when the study has no results or no complete run yet (a larger
    protocol the book shows once it has been run)."""
    try:
        loaded = load(which, **overrides)
    except (FileNotFoundError, ValueError):
        return None
    return loaded if len(loaded.done) else None
