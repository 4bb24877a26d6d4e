"""Fixtures shared by test modules: a tiny finished study and the book built from it."""

import pytest
import yaml

from valf_study.studies.plan import make_plan
from valf_study.studies.spec import load_study

CHAPTERS = (
    "intro",
    "summary",
    "method",
    "data",
    "results",
    "real",
    "errors",
    "weights",
    "ablations",
    "reproducibility",
    "api",
    "bibliography",
)


def write_studies(folder, data_dir):
    folder.mkdir(parents=True, exist_ok=True)
    main = {
        "name": "tiny-main",
        "title": "Tiny study",
        "data": {
            "dataset": "synthetic",
            "root": str(data_dir / "synthetic"),
            "synthetic": {"scale": 0.3, "image_size": [48, 64], "difficulty": 1.0},
        },
        "defaults": {
            "image_scale": 0.04,
            "fast_augmentation": True,
            "learning_rate": 1e-3,
            "epochs": 3,
            "warmup_epochs": 1,
            "cache_dir": str(data_dir / "cache"),
        },
        "experiments": {
            "main": {
                "grid": {
                    "loss": ["CCE", "FL", "DWFL", "VALF"],
                    "rate": [0.01, 1.0],
                    "magnification": ["20x"],
                    "seed": [0, 1],
                }
            }
        },
    }
    ablations = {
        "name": "tiny-ablations",
        "title": "Tiny ablations",
        "extends": "tiny-main",
        "experiments": {
            "warmup": {"fixed": {"loss": "VALF", "seed": 0}, "grid": {"warmup_epochs": [0, 2]}},
            "alpha-cv": {
                "fixed": {"loss": "FL", "split": "cv", "n_folds": 2, "seed": 0},
                "grid": {"alpha": [0.25, 1.0], "fold": [0, 1]},
            },
            "alpha": {
                "fixed": {"loss": "FL", "seed": 0},
                "select": {
                    "alpha": {"experiment": "alpha-cv", "metric": "val_f1", "by": ["magnification"]}
                },
            },
            "baselines": {"grid": {"loss": ["CB"], "seed": [0]}},
        },
    }
    for spec in (main, ablations):
        (folder / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def run_study(path, runs_root):
    """Every run of a study, in stages (selections wait for their sources), in this process."""
    from valf_study.run.train import train

    study = load_study(path, runs_root)
    while True:
        _plan = make_plan(study)
        runs, waiting = _plan.runs, _plan.waiting
        pending = [r for r in runs if not r.run_dir.is_done()]
        if not pending:
            assert not waiting
            return
        for run in pending:
            train(run.params, run.run_dir, progress=False)


@pytest.fixture(scope="session")
def book_html(tmp_path_factory):
    """The book built (-W) from a tiny main study and a tiny ablation study, trained here."""
    from valf_study.report.build import build

    folder = tmp_path_factory.mktemp("book")
    write_studies(folder / "studies", folder / "data")
    for name in ("tiny-main", "tiny-ablations"):
        run_study(folder / "studies" / f"{name}.yaml", folder / "runs")
    build(
        study="tiny-main",
        ablations="tiny-ablations",
        output=folder / "out",
        results=str(folder / "results"),
        runs_root=str(folder / "runs"),
        studies=str(folder / "studies"),
    )
    html = folder / "out" / "_build" / "html"
    return html, {name: (html / "book" / f"{name}.html").read_text() for name in CHAPTERS}
