"""A study on a folder of one's own images, from the data check to the book: folders of 2 and
4 classes, images of mixed sizes, modes and formats, through `valf sweep`, `valf results` and
the book built with -W; and each bad input stopped before any run trains, naming its files."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.study.folder_fixture import make_image_folder
from valf_study.data.errors import DataError
from valf_study.studies.results import write_results
from valf_study.studies.sweep import sweep

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "train.ipynb"
KERNEL = "python3"
FOUR = ["Adeno", "Benign tissue", "Squamous", "small-cell"]  # a space and a dash, on purpose


def write_study(folder, name, data, experiments, **defaults):
    spec = {
        "name": name,
        "title": f"Own data, {name}",
        "data": {"dataset": "folder", **data},
        "defaults": {
            "image_size": [16, 20],
            "learning_rate": 1e-3,
            "epochs": 2,
            "warmup_epochs": 1,
            "cache_dir": str(folder / "cache"),
            **defaults,
        },
        "experiments": experiments,
    }
    path = folder / "studies" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def text(page):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


@pytest.fixture(scope="module")
def own_studies(tmp_path_factory):
    """A 4-class study (split made, stratified) and a 2-class one (split file with groups),
    swept, collected, and each built into a book."""
    from valf_study.report.build import build

    folder = tmp_path_factory.mktemp("own")
    four = make_image_folder(folder / "four", [14, 10, 8, 8], class_names=FOUR)
    two = make_image_folder(folder / "two", [16, 8], class_names=["normal", "tumour"], seed=1)
    images = sorted(p.relative_to(two).as_posix() for p in two.rglob("*_00*.*"))
    split = pd.DataFrame({"path": images})
    split["group"] = [f"patient{i // 2}" for i in range(len(split))]  # two images a patient
    split["split"] = [("train", "train", "val", "test")[i // 2 % 4] for i in range(len(split))]
    split.to_csv(folder / "two-split.csv", index=False)
    grid = {"loss": ["CCE", "FL", "VALF"], "rate": [1.0], "seed": [0, 1]}
    studies = {
        "own-four": write_study(folder, "own-four", {"root": str(four)}, {"main": {"grid": grid}}),
        "own-two": write_study(
            folder,
            "own-two",
            {"root": str(two), "split_csv": str(folder / "two-split.csv")},
            {"main": {"grid": {**grid, "seed": [0]}}},
            fast_augmentation=True,
        ),
    }
    built = {}
    for name, path in studies.items():
        summary = sweep(
            path, folder / "runs", workers=2, kernel=KERNEL, notebook=NOTEBOOK, progress=False
        )
        assert not summary.failed, summary.report()
        write_results(path, folder / "runs", folder / "results")
        build(
            study=name,
            ablations="none",
            cv="none",
            output=folder / name,
            results=str(folder / "results"),
            runs_root=str(folder / "runs"),
            studies=str(folder / "studies"),
        )
        html = folder / name / "_build" / "html" / "book"
        built[name] = {
            page: (html / f"{page}.html").read_text()
            for page in ("data", "results", "errors", "weights", "ablations")
        }
    return folder, built


@pytest.mark.slow
def test_the_runs_name_their_classes_and_record_their_split(own_studies):
    folder, _ = own_studies
    runs = pd.read_parquet(folder / "results" / "own-four" / "runs.parquet")
    assert (runs["status"] == "done").all() and len(runs) == 6
    assert json.loads(runs["class_names"].iloc[0]) == FOUR
    assert (runs["magnification"] == "all").all()
    for name in FOUR:
        assert runs[f"recall_{name}"].between(0, 1).all()
        assert (runs[f"n_train_{name}"] > 0).all()
    split = pd.read_csv(Path(runs["run_dir"].iloc[0]) / "split.csv")
    assert split.groupby("class_name")["split"].nunique().eq(3).all()  # every class in each
    assert len(split) == 40  # every image once (the nested ones too)
    two = pd.read_parquet(folder / "results" / "own-two" / "runs.parquet")
    assert json.loads(two["class_names"].iloc[0]) == ["normal", "tumour"]
    assert two["auc"].between(0, 1).all()  # the AUC of the positive class
    used = pd.read_csv(Path(two["run_dir"].iloc[0]) / "split.csv")
    given = pd.read_csv(folder / "two-split.csv").rename(columns={"path": "image_path"})
    merged = used.merge(given, on="image_path", suffixes=("", "_given"))
    assert len(merged) == len(given) and (merged["split"] == merged["split_given"]).all()
    assert (merged["group"] == merged["group_given"]).all()


@pytest.mark.slow
def test_the_books_show_the_folders_classes_and_leave_out_lunghist700(own_studies):
    _, built = own_studies
    for name, classes in (("own-four", FOUR), ("own-two", ["normal", "tumour"])):
        pages = built[name]
        for page in pages.values():
            assert "output traceback" not in page and "Traceback" not in page
        data = text(pages["data"])
        assert "ran on a folder of your own images" in data
        assert all(c in data for c in classes)
        assert len(re.findall(r"<img", pages["data"])) >= 3  # LungHist700's, its counts, tiles
        errors = text(pages["errors"])
        assert "does not apply to it" in errors and "Fig. 4 claims" in errors
        assert all(f">{c}<" in pages["errors"] for c in classes)  # the recall table's columns
        results = text(pages["results"])
        assert re.search(r"setting its numbers beside the paper.s Table 2 does not apply", results)
        assert "The book shows no second protocol" in results
        assert " 20x " not in results  # no magnification where the data set has none
        assert "No ablation study" in text(pages["ablations"])


# -- bad input: stopped before any run trains ---------------------------------------------------


@pytest.fixture
def good(tmp_path):
    root = make_image_folder(tmp_path / "images", [10, 10, 10], extras=False)
    return tmp_path, root


def stopped(tmp_path, match, **data):
    study = write_study(tmp_path, "bad", data, {"main": {"grid": {"loss": ["CCE"]}}})
    with pytest.raises(DataError, match=match) as error:
        sweep(study, tmp_path / "runs", workers=1, kernel=KERNEL, notebook=NOTEBOOK, progress=False)
    runs = [p for p in (tmp_path / "runs").glob("*") if p.name != "_studies"]
    assert runs == []  # no run directory: nothing started
    return str(error.value)


def test_an_empty_class_folder(good):
    tmp_path, root = good
    (root / "class_3").mkdir()
    stopped(tmp_path, r"Class folders without images .*\['class_3'\]", root=str(root))


def test_a_file_that_does_not_decode(good):
    tmp_path, root = good
    (root / "class_1" / "broken.png").write_bytes(b"\x89PNG but no more")
    message = stopped(tmp_path, "1 files with an image extension do not decode", root=str(root))
    assert "class_1/broken.png" in message


def test_a_split_file_that_does_not_match_the_folder(good):
    tmp_path, root = good
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*"))
    table = pd.DataFrame({"path": [*paths[1:], "class_0/ghost.png"], "split": "train"})
    table.to_csv(tmp_path / "split.csv", index=False)
    message = stopped(
        tmp_path, "does not match the images", root=str(root), split_csv=str(tmp_path / "split.csv")
    )
    assert paths[0] in message and "class_0/ghost.png" in message


def test_a_group_in_two_splits(good):
    tmp_path, root = good
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*"))
    splits = ["train", "val", "test"] * 10
    table = pd.DataFrame({"path": paths, "split": splits, "group": ["p1"] + ["p2"] * 29})
    table.to_csv(tmp_path / "split.csv", index=False)
    stopped(
        tmp_path,
        r"(?s)Groups appear in more than one split.*group p2",
        root=str(root),
        split_csv=str(tmp_path / "split.csv"),
    )


def test_a_class_without_images_in_val_or_test(good):
    tmp_path, root = good
    for extra in sorted((root / "class_2").iterdir())[2:]:
        extra.unlink()  # two images: both go to training in a 70/15/15 split
    message = stopped(tmp_path, r"has no images of \['class_2'\]", root=str(root))
    assert "split 'stratified', split_seed 0" in message


def test_fewer_than_two_classes(good):
    tmp_path, root = good
    for name in ("class_1", "class_2"):
        shutil.rmtree(root / name)
    stopped(tmp_path, r"from 2 to 50 of them; it has 1", root=str(root))
