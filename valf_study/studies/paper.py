"""The paper's own numbers: its Table 2 and the claims of its Fig. 4, typed from the paper and
quoted, never computed; shipped with the study's package so that the comparisons and the book
read them wherever they run."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from valf_study.run.backbones import PAPER_NAMES

__all__ = [
    "FIG4_CLAIMS",
    "PAPER_CLAIMS",
    "PAPER_TABLE",
    "read_fig4_claims",
    "read_paper_claims",
    "read_paper_table",
]

PAPER_TABLE = resources.files("valf_study.studies") / "resources" / "paper_table2.csv"
FIG4_CLAIMS = resources.files("valf_study.studies") / "resources" / "paper_fig4_claims.csv"
PAPER_CLAIMS = resources.files("valf_study.studies") / "resources" / "paper_claims.csv"


def read_paper_table(path=PAPER_TABLE):
    """The paper's Table 2 (typed from the paper; cited, never computed), its backbones named
    as this study names them (``paper_backbone`` keeps the paper's name).

    Raises
    ------
    ValueError
        A backbone the map :data:`valf_study.run.backbones.PAPER_NAMES` does not know: a row is
        never dropped silently.
    """
    paper = pd.read_csv(path)
    unknown = sorted(set(paper["backbone"]) - set(PAPER_NAMES))
    if unknown:
        raise ValueError(
            f"{path} names backbones {unknown} that valf_study.run.backbones.PAPER_NAMES "
            f"does not map; it knows {sorted(PAPER_NAMES)}."
        )
    paper = paper.rename(columns={"backbone": "paper_backbone"})
    paper.insert(0, "backbone", paper["paper_backbone"].map(PAPER_NAMES))
    return paper


def read_fig4_claims(path=FIG4_CLAIMS):
    """The paper's Fig. 4 claims (typed from the paper, quoted; never computed)."""
    return pd.read_csv(path, comment="#")


def read_paper_claims(path=PAPER_CLAIMS):
    """Every claim of the paper the study tests, one row each (typed from the paper, quoted):
    ``id``, ``claim``, ``where`` (its place in the paper), ``check`` (the measurement of
    :mod:`valf_study.report.summary` that answers it) and ``evidence`` (the book's section)."""
    return pd.read_csv(path, comment="#")
