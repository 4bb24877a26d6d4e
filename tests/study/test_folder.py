"""A folder of one's own images: reading, splitting, decoding and checking it."""

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.study.folder_fixture import make_image_folder, stripes, write_image
from valf_study.data.check import check_image_folder, verify_decodable
from valf_study.data.decode import decode_image
from valf_study.data.errors import DataError
from valf_study.data.folder import index_image_folder, read_image_folder
from valf_study.data.splits import grouped_split

NAMES = ["alpha", "beta", "gamma", "delta"]


@pytest.fixture
def folder(tmp_path):
    """Four classes, 12/8/6/6 images of mixed sizes, modes and formats, with non-images."""
    return make_image_folder(tmp_path / "images", [12, 8, 6, 6], class_names=NAMES)


def split_table(frame, seed=0):
    split = grouped_split(frame, seed=seed, group="image_path", label="label")
    return pd.DataFrame({"path": split["image_path"], "split": split["split"]})


# -- reading ------------------------------------------------------------------------------------


def test_classes_are_the_sorted_folders_and_every_image_below_them_counts(folder):
    frame = read_image_folder(folder)
    assert frame.groupby("class_name")["label"].first().to_dict() == {
        "alpha": 0,
        "beta": 1,
        "delta": 2,
        "gamma": 3,
    }
    assert frame["class_name"].value_counts().to_dict() == dict(zip(NAMES, [12, 8, 6, 6]))
    assert any("/slide_b/" in p for p in frame["image_path"])  # nested folders count
    assert (frame["group"] == frame["image_path"]).all()  # no groups given: each image alone
    index = index_image_folder(folder)
    assert sorted(index.skipped) == sorted(
        f"{name}/{file}" for name in NAMES for file in ("README.txt", ".DS_Store")
    )
    chosen = read_image_folder(folder, class_names=["gamma", "alpha"])
    assert chosen.groupby("class_name")["label"].first().to_dict() == {"gamma": 0, "alpha": 1}


def test_a_split_file_gives_the_split_and_its_groups(folder, tmp_path):
    frame = read_image_folder(folder)
    table = split_table(frame)
    table["group"] = [f"slide{i % 5}" for i in range(len(table))]
    # A group in two splits is refused, naming it; one group per split is accepted.
    table.to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(DataError, match=r"Groups appear in more than one split \(.*split.csv\)"):
        read_image_folder(folder, tmp_path / "split.csv")
    table["group"] = table["split"] + "-slide"
    table.to_csv(tmp_path / "split.csv", index=False)
    read = read_image_folder(folder, tmp_path / "split.csv")
    assert (read.set_index("image_path")["split"] == table.set_index("path")["split"]).all()
    assert set(read["group"]) == {"train-slide", "val-slide", "test-slide"}


def test_split_file_mismatches_are_all_named(folder, tmp_path):
    table = split_table(read_image_folder(folder)).iloc[2:].copy()
    first_two = split_table(read_image_folder(folder))["path"].iloc[:2].tolist()
    table.loc[len(table) + 10] = ["alpha/ghost.png", "train"]
    table.to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(DataError) as error:
        read_image_folder(folder, tmp_path / "split.csv")
    message = str(error.value)
    assert "2 images are not in the split file" in message
    assert all(path in message for path in first_two)
    assert "1 images named in the split file" in message and "alpha/ghost.png" in message
    table = split_table(read_image_folder(folder))
    table.loc[0, "split"] = "holdout"
    table.to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(DataError, match=r"unknown split values \['holdout'\]"):
        read_image_folder(folder, tmp_path / "split.csv")
    table[["split"]].to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(DataError, match="needs a column 'path'"):
        read_image_folder(folder, tmp_path / "split.csv")


def test_a_group_rule_names_groups_and_every_path_it_misses(folder):
    frame = read_image_folder(folder, group_rule=r"_(\d)\d*\.")  # first digit of the number
    assert frame.loc[frame["image_path"] == "alpha/alpha_0003.png", "group"].item() == "0"
    with pytest.raises(DataError, match=r"matches no part of 32 image paths") as error:
        read_image_folder(folder, group_rule=r"patient(\d+)")
    assert "delta/delta_0000.png" in str(error.value)
    with pytest.raises(DataError, match="has 2 groups"):
        read_image_folder(folder, group_rule=r"(a)(b)")


def test_bad_folders_are_refused_naming_what_is_wrong(folder, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_image_folder(tmp_path / "nowhere")
    (folder / "empty").mkdir()
    with pytest.raises(DataError, match=r"without images.*\['empty'\]"):
        read_image_folder(folder)
    with pytest.raises(DataError, match=r"Class folders \['unknown'\] are missing"):
        read_image_folder(folder, class_names=["alpha", "unknown"])
    one = make_image_folder(tmp_path / "one", [3], class_names=["only"])
    with pytest.raises(DataError, match="from 2 to 50 of them; it has 1"):
        read_image_folder(one)


# -- decoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "suffix"),
    [
        ("RGB", ".png"),
        ("L", ".png"),
        ("RGBA", ".png"),
        ("P", ".png"),
        ("I;16", ".png"),
        ("I;16", ".tif"),
        ("RGB", ".tif"),
        ("L", ".jpg"),
        ("CMYK", ".jpg"),
    ],
)
def test_every_mode_and_format_reaches_the_network_as_rgb(tmp_path, mode, suffix):
    rgb = stripes(1, 3, (20, 30), np.random.default_rng(0))
    path = write_image(tmp_path / f"image{suffix}", rgb, mode)
    decoded = decode_image(path)
    assert decoded.dtype == np.uint8 and decoded.shape == (20, 30, 3)
    with Image.open(path) as image:
        if mode == "I;16":  # Pillow clips 16 bits to 8; the study keeps the high byte
            expected = np.repeat((np.asarray(image, np.uint16) >> 8)[..., None], 3, -1)
        else:
            expected = np.asarray(image.convert("RGB"))
    tolerance = 2 if suffix == ".jpg" else 0  # two JPEG decoders may round differently
    assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= tolerance


def test_a_broken_image_is_named_and_checked_files_are_remembered(folder, tmp_path, monkeypatch):
    frame = read_image_folder(folder)
    stamp = tmp_path / "verified.json"
    verify_decodable(frame["path"], stamp)
    decoded = []
    monkeypatch.setattr(cv2, "imread", lambda *a: decoded.append(a) or None)
    verify_decodable(frame["path"], stamp)  # every file remembered: nothing decoded again
    assert decoded == []
    monkeypatch.undo()
    broken = folder / "beta" / "beta_0001.jpg"
    broken.write_bytes(b"\xff\xd8 not really a JPEG")
    with pytest.raises(DataError, match=r"1 files with an image extension do not decode") as error:
        verify_decodable(frame["path"], stamp)
    assert str(broken) in str(error.value)


# -- the stratified split -----------------------------------------------------------------------


def test_the_stratified_split_keeps_each_class_s_shares_and_its_groups_whole():
    rng = np.random.default_rng(0)
    counts = [300, 120, 45, 20]
    frame = pd.DataFrame({"label": np.repeat(range(4), counts)})
    frame["image"] = range(len(frame))
    for seed in range(5):
        split = grouped_split(frame, (0.7, 0.15, 0.15), seed, group="image", label="label")
        table = pd.crosstab(split["label"], split["split"])[["train", "val", "test"]]
        expected = np.outer(counts, [0.7, 0.15, 0.15])
        assert np.abs(table.to_numpy() - expected).max() <= 1  # each class in its shares
    again = grouped_split(frame, (0.7, 0.15, 0.15), 3, group="image", label="label")
    assert again["split"].equals(
        grouped_split(frame, (0.7, 0.15, 0.15), 3, group="image", label="label")["split"]
    )
    # Groups of unequal size: none divided, each class still near its shares.
    frame["patient"] = [f"{label}-{rng.integers(0, counts[label] // 5)}" for label in frame.label]
    split = grouped_split(frame, (0.7, 0.15, 0.15), 0, group="patient", label="label")
    assert split.groupby("patient")["split"].nunique().max() == 1
    shares = pd.crosstab(split["label"], split["split"], normalize="index")
    assert shares.loc[0, "train"] == pytest.approx(0.7, abs=0.05)


# -- valf data check ----------------------------------------------------------------------------


def test_the_check_reports_a_good_folder(folder):
    report = check_image_folder(folder, workers=2)
    assert report.problems == []
    assert report.class_names == ["alpha", "beta", "delta", "gamma"]
    assert report.counts["all"].to_dict() == {"alpha": 12, "beta": 8, "delta": 6, "gamma": 6}
    assert report.counts[["train", "val", "test"]].sum(axis=1).equals(report.counts["all"])
    assert report.imbalance_ratio == 2.0
    assert set(report.modes.index) == {"RGB", "L", "RGBA", "P", "I;16"}
    assert report.sizes["images"].sum() == 32 and len(report.sizes) == 4
    assert len(report.skipped) == 8
    assert "No problems found" in report.text()


def test_the_check_names_every_problem_at_once(folder, tmp_path):
    # The same picture in two classes (as a PNG and a copy), a broken file, a leaked group.
    shutil.copy(folder / "alpha" / "alpha_0000.png", folder / "beta" / "copy_of_alpha.png")
    (folder / "gamma" / "gamma_0001.jpg").write_bytes(b"broken")
    frame = index_image_folder(folder).images
    table = split_table(frame.assign(label=frame["label"]))
    table["group"] = "shared"  # one group everywhere: in all three splits
    table.to_csv(tmp_path / "split.csv", index=False)
    report = check_image_folder(folder, tmp_path / "split.csv", workers=2)
    text = "\n".join(report.problems)
    assert "1 files with an image extension do not decode" in text
    assert "gamma/gamma_0001.jpg" in text
    assert "appear in more than one class" in text  # one picture, two labels: fatal
    assert "beta/copy_of_alpha.png (class beta" in text
    assert "alpha/alpha_0000.png (class alpha" in text
    assert "Groups appear in more than one split" in text and "group shared" in text
    # A class with no image in validation or test.
    table = split_table(frame)
    table.loc[table["path"].str.startswith("delta/"), "split"] = "train"
    table.to_csv(tmp_path / "split.csv", index=False)
    report = check_image_folder(folder, tmp_path / "split.csv", workers=2)
    assert "classes with no image in the val split: ['delta']." in report.problems
    assert "classes with no image in the test split: ['delta']." in report.problems


def test_valf_data_check_prints_the_table_and_exits_2_on_problems(folder):
    def check(*args):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "valf_study.cli",
                "data",
                "check",
                str(folder),
                "--quiet",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    good = check()
    assert good.returncode == 0, good.stderr
    assert "train  val  test  all" in good.stdout and "imbalance ratio" in good.stdout
    (folder / "beta" / "beta_0002.tif").write_bytes(b"not a TIFF")
    bad = check()
    assert bad.returncode == 2 and "beta/beta_0002.tif" in bad.stdout
    missing = check("--split-csv", str(Path(folder) / "no-such.csv"))
    assert missing.returncode == 2 and "does not exist" in missing.stdout
