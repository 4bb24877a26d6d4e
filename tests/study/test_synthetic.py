"""The generated LungHist700: released layout, determinism, counts, colour, argument checks."""

import importlib.resources
import json

import cv2
import numpy as np
import pandas as pd
import pytest

from valf_study.data import synthetic

SMALL = (48, 64)


def _packaged():
    resource = importlib.resources.files("valf_study.data").joinpath("resources/data.csv")
    with resource.open("rb") as handle:
        return pd.read_csv(handle)


def _release_path(root, row):
    folder = (
        row.superclass if not isinstance(row.subclass, str) else f"{row.superclass}_{row.subclass}"
    )
    return root / "images" / folder / f"{folder}_{row.resolution}_{row.image_id}.jpg"


@pytest.fixture(scope="module")
def small_release(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return synthetic.make_synthetic_release(
        root, seed=3, scale=0.1, image_size=SMALL, progress=False
    )


def test_layout_matches_the_release(small_release):
    root = small_release
    frame = pd.read_csv(root / "data.csv")
    packaged = _packaged()
    assert list(frame.columns) == list(packaged.columns)
    assert frame.dtypes.to_dict() == packaged.dtypes.to_dict()
    assert set(frame.patient_id) == set(packaged.patient_id)
    assert set(frame.resolution) == {"20x", "40x"}
    # Every (patient, magnification, subclass) group of the release keeps an image.
    keys = ["patient_id", "resolution", "subclass"]
    assert frame.groupby(keys, dropna=False).ngroups == packaged.groupby(keys, dropna=False).ngroups
    # Rows are rows of the release, and each has its file at the released path, and only those.
    merged = frame.merge(packaged, how="left", indicator=True)
    assert (merged["_merge"] == "both").all()
    files = {p.relative_to(root) for p in (root / "images").rglob("*.jpg")}
    assert files == {_release_path(root, row).relative_to(root) for row in frame.itertuples()}
    assert sorted(p.name for p in (root / "images").iterdir()) == [
        "aca_bd",
        "aca_md",
        "aca_pd",
        "nor",
        "scc_bd",
        "scc_md",
        "scc_pd",
    ]
    # Same text format as the packaged file: nor rows have an empty subclass field.
    lines = (root / "data.csv").read_text().splitlines()
    assert lines[0] == "superclass,subclass,resolution,image_id,patient_id"
    assert any(line.startswith("nor,,") for line in lines)


def test_images_have_the_size_and_an_he_colour(small_release):
    frame = pd.read_csv(small_release / "data.csv")
    means = []
    for row in frame.iloc[::7].itertuples():
        bgr = cv2.imread(str(_release_path(small_release, row)), cv2.IMREAD_UNCHANGED)
        assert bgr.shape == (*SMALL, 3)
        means.append(bgr.reshape(-1, 3).mean(axis=0))
    blue, green, red = np.mean(means, axis=0)
    assert red > green + 20 and blue > green + 10  # eosin and hematoxylin both absorb green


def test_synthetic_marker(small_release):
    info = json.loads((small_release / synthetic.SYNTHETIC_INFO_FILE).read_text())
    assert info["generator_version"] == synthetic.GENERATOR_VERSION
    assert (info["seed"], info["scale"], info["image_size"]) == (3, 0.1, list(SMALL))
    assert info["difficulty"] == synthetic.DEFAULTS["difficulty"] == 1.0
    assert synthetic.read_synthetic_info(small_release) == info


def test_full_scale_mirrors_every_row(tmp_path):
    root = synthetic.make_synthetic_release(tmp_path, image_size=(8, 8), progress=False)
    packaged_text = (
        importlib.resources.files("valf_study.data").joinpath("resources/data.csv").read_text()
    )
    assert (root / "data.csv").read_text() == packaged_text
    assert len(list((root / "images").rglob("*.jpg"))) == 691


def test_same_seed_same_bytes_other_seed_other_pixels(tmp_path, small_release):
    # Fewer workers and a different subset (scale) must not change a single byte.
    again = synthetic.make_synthetic_release(
        tmp_path / "again", seed=3, scale=0.05, image_size=SMALL, progress=False, workers=1
    )
    rows = list(pd.read_csv(again / "data.csv").iloc[::5].itertuples())
    shared = [row for row in rows if _release_path(small_release, row).exists()]
    assert len(shared) > 5
    for row in shared:
        assert (
            _release_path(again, row).read_bytes() == _release_path(small_release, row).read_bytes()
        )
    for row in rows[:5]:
        subclass = row.subclass if isinstance(row.subclass, str) else None
        args = (row.superclass, subclass, row.resolution)
        kwargs = {"patient_id": row.patient_id, "image_id": row.image_id, "image_size": SMALL}
        seed3 = synthetic.render_tile(*args, seed=3, **kwargs)
        assert np.array_equal(seed3, synthetic.render_tile(*args, seed=3, **kwargs))
        assert not np.array_equal(seed3, synthetic.render_tile(*args, seed=4, **kwargs))


def test_class_counts_are_honoured(tmp_path):
    counts = {"aca": 5, "nor": 20, "scc": 140}
    root = synthetic.make_synthetic_release(
        tmp_path, image_size=(16, 16), class_counts=counts, progress=False
    )
    frame = pd.read_csv(root / "data.csv")
    sizes = frame.groupby(["superclass", "resolution"]).size()
    for name, count in counts.items():
        assert sizes[name, "20x"] == count and sizes[name, "40x"] == count
    assert not frame.duplicated(["superclass", "subclass", "resolution", "image_id"]).any()
    assert all(_release_path(root, row).is_file() for row in frame.itertuples())
    # New scc rows belong to patients that have scc in the release.
    packaged = _packaged()
    assert set(frame.patient_id[frame.superclass == "scc"]) <= set(
        packaged.patient_id[packaged.superclass == "scc"]
    )


def test_generated_release_replaces_only_its_own(tmp_path):
    root = synthetic.make_synthetic_release(tmp_path, scale=0.05, image_size=(8, 8), progress=False)
    synthetic.make_synthetic_release(root, scale=0.05, seed=1, image_size=(8, 8), progress=False)
    frame = pd.read_csv(root / "data.csv")
    assert len(list((root / "images").rglob("*.jpg"))) == len(frame)
    real = tmp_path / "real"
    real.mkdir()
    (real / "data.csv").write_text("superclass\n")
    with pytest.raises(ValueError, match="dest"):
        synthetic.make_synthetic_release(real, scale=0.05, image_size=(8, 8), progress=False)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"scale": 0}, "scale"),
        ({"scale": 1.5}, "scale"),
        ({"scale": "half"}, "scale"),
        ({"difficulty": -0.1}, "difficulty"),
        ({"difficulty": 2}, "difficulty"),
        ({"image_size": (48,)}, "image_size"),
        ({"image_size": (4, 64)}, "image_size"),
        ({"image_size": (48.0, 64)}, "image_size"),
        ({"seed": -1}, "seed"),
        ({"class_counts": {"lung": 3}}, "class_counts"),
        ({"class_counts": {"aca": 0}}, "class_counts"),
        ({"class_counts": {"aca": 3}, "scale": 0.5}, "scale"),
        ({"workers": 0}, "workers"),
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}"):
        synthetic.make_synthetic_release(tmp_path, progress=False, **kwargs)
    assert not (tmp_path / "data.csv").exists()


def test_tiles_differ_by_class_and_magnification():
    # NOR is mostly air (white); 40x structures are larger, so fewer edges per pixel.
    def tile(superclass, subclass, resolution, image_id):
        return render(superclass, subclass, resolution, image_id).astype(float)

    def render(*args):
        superclass, subclass, resolution, image_id = args
        return synthetic.render_tile(
            superclass,
            subclass,
            resolution,
            patient_id=1,
            image_id=image_id,
            image_size=(120, 160),
            difficulty=0,
        )

    nor = np.mean([tile("nor", None, "20x", i).mean() for i in range(3)])
    aca = np.mean([tile("aca", "md", "20x", i).mean() for i in range(3)])
    scc = np.mean([tile("scc", "md", "20x", i).mean() for i in range(3)])
    assert nor > aca + 20 and nor > scc + 20

    def edges(resolution):
        gray = cv2.cvtColor(render("scc", "md", resolution, 5), cv2.COLOR_RGB2GRAY)
        return np.abs(np.diff(gray.astype(float), axis=1)).mean()

    assert edges("40x") < edges("20x")


def test_plot_sample_tiles(small_release, tmp_path):
    from valf_study.data.figures import plot_sample_tiles
    from valf_study.data.lunghist700 import read_release

    figure = plot_sample_tiles(read_release(small_release), per_class=2)
    assert len(figure.axes) == 12  # 3 classes x 2 magnifications x 2 tiles
    assert [ax.get_ylabel() for ax in figure.axes[::4]] == ["ACA", "NOR", "SCC"]
    assert all(ax.images for ax in figure.axes)  # every panel shows a tile
    figure.savefig(tmp_path / "tiles.png")
    assert (tmp_path / "tiles.png").stat().st_size > 0
