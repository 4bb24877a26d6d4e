"""The generic image-folder data set."""

import cv2
import numpy as np
import pandas as pd
import pytest

from valf.data.errors import DataError
from valf.data.folder import read_image_folder


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "images"
    for name, count, suffix in (("benign", 3, ".png"), ("malignant", 2, ".jpg")):
        (root / name).mkdir(parents=True)
        for i in range(count):
            cv2.imwrite(str(root / name / f"{name}{i}{suffix}"), np.zeros((8, 8, 3), np.uint8))
    (root / "benign" / "notes.txt").write_text("not an image")
    return root


def split_table(root):
    return pd.DataFrame(
        {
            "path": [
                "benign/benign0.png",
                "benign/benign1.png",
                "benign/benign2.png",
                "malignant/malignant0.jpg",
                "malignant/malignant1.jpg",
            ],
            "split": ["train", "train", "test", "train", "val"],
            "group": ["p1", "p1", "p2", "p3", "p4"],
        }
    )


def test_labels_and_split(folder, tmp_path):
    frame = read_image_folder(folder)
    assert frame.groupby("class_name")["label"].first().to_dict() == {"benign": 0, "malignant": 1}
    assert len(frame) == 5
    split_table(folder).to_csv(tmp_path / "split.csv", index=False)
    frame = read_image_folder(folder, tmp_path / "split.csv", class_names=["malignant", "benign"])
    assert frame.groupby("class_name")["label"].first().to_dict() == {"benign": 1, "malignant": 0}
    assert frame["split"].value_counts().to_dict() == {"train": 3, "test": 1, "val": 1}


def test_split_file_mismatches_are_all_named(folder, tmp_path):
    table = split_table(folder).iloc[2:].copy()
    table.loc[len(table) + 10] = ["benign/ghost.png", "train", "p9"]
    table.to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(DataError) as error:
        read_image_folder(folder, tmp_path / "split.csv")
    message = str(error.value)
    assert "2 images are not in the split file" in message
    assert "benign/benign0.png" in message and "benign/benign1.png" in message
    assert "1 images named in the split file are missing" in message
    assert "benign/ghost.png" in message


def test_group_leakage_and_bad_values(folder, tmp_path):
    table = split_table(folder)
    table.loc[2, "group"] = "p1"
    table.to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(
        DataError, match=r"Groups appear in more than one split \(.*split.csv\):\s+group p1: "
    ):
        read_image_folder(folder, tmp_path / "split.csv")
    table.loc[0, "split"] = "holdout"
    table.to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(DataError, match=r"unknown split values \['holdout'\]"):
        read_image_folder(folder, tmp_path / "split.csv")


def test_folder_errors(folder, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_image_folder(tmp_path / "nowhere")
    (folder / "empty").mkdir()
    with pytest.raises(DataError, match=r"without images.*\['empty'\]"):
        read_image_folder(folder)
    with pytest.raises(DataError, match="one folder per class"):
        read_image_folder(folder, class_names=["benign", "unknown"])
