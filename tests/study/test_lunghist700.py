"""LungHist700 release reading, the official and random patient splits, and bad input."""

import shutil

import pandas as pd
import pytest

from tests.study.release_fixture import write_release
from valf_study.data import lunghist700 as lh
from valf_study.data.download import EXPECTED_IMAGES
from valf_study.data.synthetic import make_synthetic_release

# The official split (its patient lists ship with valf_study.data): (train, val, test) x
# (ACA, NOR, SCC) per magnification.
OFFICIAL_COUNTS = {
    ("20x", "train"): (109, 52, 102),
    ("20x", "val"): (19, 14, 15),
    ("20x", "test"): (18, 19, 11),
    ("40x", "train"): (101, 39, 96),
    ("40x", "val"): (16, 14, 16),
    ("40x", "test"): (17, 13, 20),
}


@pytest.fixture(scope="module")
def generated_release(tmp_path_factory):
    return make_synthetic_release(
        tmp_path_factory.mktemp("generated"), seed=3, image_size=(48, 64), progress=False
    )


@pytest.fixture
def tiny_release(tmp_path):
    meta = lh.reference_metadata()
    subset = meta.groupby(["resolution", "patient_id"]).head(1).reset_index(drop=True)
    return write_release(tmp_path / "release", subset), subset


def test_generated_release_gives_the_official_counts(generated_release):
    frame = lh.official_split(lh.read_release(generated_release, verify_images=True))
    assert len(frame) == EXPECTED_IMAGES
    counts = frame.groupby(["resolution", "split", "label"]).size()
    for (magnification, split), expected in OFFICIAL_COUNTS.items():
        got = tuple(int(counts[(magnification, split, label)]) for label in range(3))
        assert got == expected, (magnification, split)
    one = lh.read_release(generated_release, magnification="40x")
    assert set(one["resolution"]) == {"40x"} and len(one) == 332


def test_reader_maps_classes_and_paths(tiny_release):
    root, subset = tiny_release
    frame = lh.read_release(root)
    assert len(frame) == len(subset)
    assert set(zip(frame.superclass, frame.label)) == {("aca", 0), ("nor", 1), ("scc", 2)}
    assert set(frame.class_name) <= set(lh.CLASS_NAMES)
    for row in frame.itertuples():
        assert row.path == str(root / row.image_path)
        assert row.image_path.endswith(f"_{row.resolution}_{row.image_id}.jpg")


def test_official_split_matches_the_packaged_per_image_labels():
    meta = lh.reference_metadata()
    split = lh.official_split(meta)
    with open(lh.resources.files("valf_study.data").joinpath("resources/official_split.csv")) as f:
        reference = pd.read_csv(f, dtype={"subclass": str}, keep_default_na=False)
    merged = split.merge(reference, on=list(lh.RELEASE_COLUMNS))
    assert len(merged) == len(meta)
    assert (merged["split_x"] == merged["split_y"]).all()


def test_leakage_check_fires_on_a_crafted_leak():
    split = lh.official_split(lh.reference_metadata())
    leaked = split.copy()
    first = leaked.index[(leaked.patient_id == 2) & (leaked.resolution == "20x")][0]
    leaked.loc[first, "split"] = "test"
    with pytest.raises(lh.DataError, match=r"patient 2 at 20x: test, train"):
        lh.check_no_patient_leakage(leaked)


def test_patient_split_is_seeded_grouped_and_complete():
    meta = lh.reference_metadata()
    first, again, other = (lh.patient_split(meta, seed=s) for s in (1, 1, 2))
    assert first["split"].tolist() == again["split"].tolist()
    assert first["split"].tolist() != other["split"].tolist()
    for frame in (first, other):
        lh.check_no_patient_leakage(frame)
        for _, part in frame.groupby("resolution"):
            shares = part["split"].value_counts(normalize=True)
            assert set(shares.index) == {"train", "val", "test"}
            assert 0.55 < shares["train"] < 0.85
    with pytest.raises(ValueError, match="`fractions`"):
        lh.patient_split(meta, seed=0, fractions=(0.5, 0.5))


def test_missing_root_and_csv(tmp_path):
    with pytest.raises(lh.DataError, match=r"does not exist.*valf data download lunghist700"):
        lh.read_release(tmp_path / "nowhere")
    with pytest.raises(lh.DataError, match=r"holds no data\.csv.*figshare"):
        lh.read_release(tmp_path)


def test_wrong_columns_and_unknown_classes(tiny_release):
    root, subset = tiny_release
    subset.rename(columns={"patient_id": "patient"}).to_csv(root / "data.csv", index=False)
    with pytest.raises(lh.DataError, match=r"missing \['patient_id'\], unexpected \['patient'\]"):
        lh.read_release(root)
    bad = subset.copy()
    bad.loc[0, "superclass"] = "lcc"
    bad.loc[3, "resolution"] = "10x"
    bad.to_csv(root / "data.csv", index=False)
    with pytest.raises(
        lh.DataError,
        match=r"(?s)row 2: unknown superclass 'lcc'.*row 5: unknown "
        r"resolution '10x'",
    ):
        lh.read_release(root)


def test_missing_and_extra_images_are_all_named(tiny_release):
    root, _ = tiny_release
    frame = lh.read_release(root)
    gone = frame.image_path[:3].tolist()
    for relative in gone:
        (root / relative).unlink()
    stray = root / "images" / "nor" / "nor_20x_99999.jpg"
    shutil.copy(root / frame.image_path[5], stray)
    with pytest.raises(lh.DataError) as error:
        lh.read_release(root)
    message = str(error.value)
    assert "3 images named in data.csv are missing" in message
    assert all(relative in message for relative in gone)
    assert "1 images are not in data.csv" in message and "nor_20x_99999.jpg" in message


def test_truncated_images_are_all_named(tiny_release):
    root, _ = tiny_release
    frame = lh.read_release(root)
    broken = frame.path[:2].tolist()
    for path in broken:
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(lh.DataError, match="2 images cannot be decoded") as error:
        lh.read_release(root, verify_images=True)
    assert all(path in str(error.value) for path in broken)


def test_bad_magnification(tiny_release):
    root, _ = tiny_release
    with pytest.raises(ValueError, match=r"one of \['20x', '40x'\]"):
        lh.read_release(root, magnification="10x")


def test_unknown_patient_in_official_split():
    meta = lh.reference_metadata()
    meta.loc[0, "patient_id"] = 99
    with pytest.raises(lh.DataError, match=r"\('40x', 99\)"):
        lh.official_split(meta)
