"""What the book's pages read: which studies it shows, and their results tables.

The pages in ``book/`` call :func:`load` and the functions of :mod:`valf_study.report.tables` and
:mod:`valf_study.report.figures`; :mod:`valf_study.report.build` builds the book.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from valf_study import project

ENVIRONMENT = {
    "study": "VALF_BOOK_STUDY",
    "ablations": "VALF_BOOK_ABLATIONS",
    "cv": "VALF_BOOK_CV",
    "results": "VALF_BOOK_RESULTS",
    "runs_root": "VALF_BOOK_RUNS",
    "studies": "VALF_BOOK_STUDIES",
    "real": "VALF_BOOK_REAL",
}

__all__ = [
    "BookStudy",
    "load",
    "load_if_complete",
    "load_named",
    "load_real",
    "settings",
    "settings_file",
]


def settings_file():
    """The project's ``book/study.yml``."""
    return project.root() / "book" / "study.yml"


def settings(**overrides):
    """The book's settings: ``book/study.yml``, then ``VALF_BOOK_*`` variables, then overrides.
    ``ablations`` and ``cv`` may be ``none`` (None): the book then shows no such study."""
    path = settings_file()
    values = yaml.safe_load(path.read_text()) if path.is_file() else {}
    values = {
        "study": "quick",
        "ablations": "quick-ablations",
        "cv": "quick-cv",
        "results": "results",
        "runs_root": "runs",
        "studies": "studies",
        "real": ["br35h", "mnist-lt"],
        **(values or {}),
    }
    for key, variable in ENVIRONMENT.items():
        if os.environ.get(variable):
            values[key] = os.environ[variable]
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("ablations", "cv"):  # a book may show no ablations or second protocol
        if str(values.get(key)).lower() in ("", "none", "null"):
            values[key] = None
    values["real"] = _names(values.get("real"))
    return values


def _names(value):
    """A list of study names from a list, or from a string of names separated by spaces or
    commas (``none`` or empty: no study)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [str(name) for name in value if str(name).lower() not in ("none", "null")]


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
    primary: object  # the pooled primary tests and the headline's (primary.csv)
    controls: object  # the positive controls (controls.csv)
    selections: dict
    data_set: object  # valf_study.data.dataset.DataSet
    data_params: dict  # the study's data block as resolved run parameters
    data_root: str

    @property
    def data_path(self):
        """The data root as a path (pages execute in book/; relative roots are the project's)."""
        return project.root() / self.data_root

    @property
    def synthetic(self):
        """Not LungHist700 itself, so not to be set beside the paper's numbers."""
        return not self.data_set.paper

    @property
    def folder(self):
        """Not in LungHist700's layout (no magnifications, no official split, no Fig. 4)."""
        return not self.data_set.layout_of_lunghist700

    @property
    def class_names(self):
        """The classes, in label order, as the runs recorded them."""
        from valf_study.report.tables import class_names

        return class_names(self.runs)

    def images(self):
        """Every image of the study's data set with its class, split and path: LungHist700's
        official split, or the split a complete run of a folder study recorded."""
        import pandas as pd

        if not self.folder:
            params = {**self.data_params, "data_root": str(self.data_path), "magnification": None}
            return self.data_set.official_split(self.data_set.read(params), params)
        run_dir = Path(self.done.sort_values("run_id")["run_dir"].iloc[0])
        frame = pd.read_csv(run_dir / "split.csv").drop_duplicates("image_path")
        frame["label"] = frame["class_name"].map({c: i for i, c in enumerate(self.class_names)})
        frame["path"] = [str(self.data_path / p) for p in frame["image_path"]]
        return frame

    def not_lunghist700(self, what):
        """One line saying why a section about LungHist700 (``what``) is left out."""
        from IPython.display import Markdown

        return Markdown(
            f"*The study shown, **{self.name}**, ran on {self.data_set.title} "
            f"(`{self.data_root}`), not on LungHist700, so {what} does not apply to it.*"
        )

    @property
    def setting_columns(self):
        """What makes a setting of this study, besides the method: backbone and magnification,
        and the imbalance ratio where the main grid varies it (long-tailed MNIST)."""
        columns = [c for c in ("backbone", "magnification") if c in self.runs]
        if "imbalance_ratio" in self.runs and self.done["imbalance_ratio"].nunique() > 1:
            columns.append("imbalance_ratio")
        return columns

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
                f":::{{note}}\nThis page shows the study **{self.name}** ({self.title}) on "
                f"{self.data_set.title} (`{self.data_root}`: {len(self.class_names)} "
                f"classes, {names}). Sections about LungHist700 and the paper's numbers say "
                f"so and are left out.{incomplete}\n:::"
            )
        if self.data_set.generated:
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
    config = settings(**overrides)
    name = config[which]
    if name is None:
        raise FileNotFoundError(f"The book shows no {which} study (book/study.yml).")
    return load_named(name, **overrides)


def load_real(**overrides):
    """The studies on real images the book shows (``real`` in book/study.yml) that have a
    complete run, in the order listed."""
    found = []
    for name in settings(**overrides)["real"]:
        try:
            loaded = load_named(name, **overrides)
        except (FileNotFoundError, ValueError):
            continue
        if len(loaded.done):
            found.append(loaded)
    return found


def load_named(name, **overrides):
    """The tables of the study ``name``, read where the book's settings say."""
    from valf_study.data.dataset import get
    from valf_study.studies.results import load_results
    from valf_study.studies.spec import find_study_file, load_study

    config = settings(**overrides)
    root = project.root()
    tables = load_results(name, out=root / config["results"])
    study = load_study(find_study_file(name, root / config["studies"]), root / config["runs_root"])
    return BookStudy(
        name=name,
        title=study.title,
        runs=tables["runs"],
        history=tables["history"],
        class_weights=tables["class_weights"],
        comparisons=tables["comparisons"],
        primary=tables["primary"],
        controls=tables["controls"],
        predictions=tables["predictions"],
        selections=tables["selections"],
        data_set=get(study.data["dataset"]),
        data_params=study.data_parameters(),
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
