"""`download_lunghist700`: an archive served on 127.0.0.1 (with Range support) or given by hand,
nested as a real archive may be, lands with its release root at `--dest`; a damaged, wrong or
generated archive is refused and never reused; a killed extraction never looks complete and is
cleaned up; extraction writes nothing outside `--dest`."""

import http.server
import io
import os
import socket
import tarfile
import threading
import time
import zipfile
from pathlib import Path
from typing import ClassVar

import pytest

from tests.study.release_fixture import write_release, zip_release
from valf_study import cli
from valf_study.data import download
from valf_study.data import lunghist700 as lh
from valf_study.data.sets.lunghist700 import DATASET

ROOT = Path(__file__).resolve().parents[2]


class RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    ranges: ClassVar[list] = []

    def do_GET(self):
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        start = int(header.split("=")[1].split("-")[0]) if header else 0
        body = self.payload[start:]
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def release_zip(tmp_path_factory):
    """The 691 images of the release (16x16), nested two folders deep as an archive may be."""
    folder = tmp_path_factory.mktemp("release")
    root = write_release(folder / "LungHist700" / "LungHist700")
    return zip_release(root, folder / "LungHist700.zip", prefix="LungHist700/LungHist700")


@pytest.fixture
def served(release_zip):
    RangeHandler.payload = release_zip.read_bytes()
    RangeHandler.ranges = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/files/1"
    server.shutdown()


def download_command(dest, archive=None, *more):
    command = ["data", "download", "lunghist700", "--dest", str(dest), "--quiet", *more]
    return cli.main([*command, *(["--archive", str(archive)] if archive else [])])


def assert_the_release_at(dest):
    assert (dest / "data.csv").is_file() and (dest / "images").is_dir()
    assert len(lh.read_release(dest)) == download.EXPECTED_IMAGES
    assert not (dest / download.STAGING).exists() and not (dest / "extracted").exists()


def test_download_extract_and_check(served, tmp_path):
    dest = tmp_path / "dest"
    assert download.download_lunghist700(dest, url=served, progress=False) == dest
    assert_the_release_at(dest)
    assert RangeHandler.ranges == [None]
    assert not list(dest.glob("*.part"))
    # A second call finds the release in place: no request, nothing extracted again.
    mtime = (dest / "data.csv").stat().st_mtime_ns
    assert download.download_lunghist700(dest, url=served, progress=False) == dest
    assert RangeHandler.ranges == [None] and (dest / "data.csv").stat().st_mtime_ns == mtime


def test_download_resumes_a_partial_file(served, tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    half = len(RangeHandler.payload) // 2
    (dest / "LungHist700.zip.part").write_bytes(RangeHandler.payload[:half])
    download.download_lunghist700(dest, url=served, progress=False)
    assert RangeHandler.ranges == [f"bytes={half}-"]
    assert (dest / "LungHist700.zip").read_bytes() == RangeHandler.payload
    assert_the_release_at(dest)


def test_the_release_lands_at_dest_for_the_study_to_read(release_zip, tmp_path, capsys):
    """README's `valf data download lunghist700 --dest data/lunghist700`, then a study whose
    data root is data/lunghist700: the release root is dest itself, however the archive nests
    it."""
    dest = tmp_path / "data" / "lunghist700"
    assert download_command(dest, release_zip) == 0
    assert capsys.readouterr().out.strip() == f"LungHist700 is ready at {dest}"
    assert_the_release_at(dest)
    assert DATASET.prepare({"data_root": str(dest)}, progress=False) == list(lh.CLASS_NAMES)
    assert len(lh.official_split(lh.read_release(dest, "20x"))) > 0
    assert release_zip.is_file()  # an archive given by hand is left where it was


def _damaged(payload, how):
    if how == "truncated":
        return payload[: len(payload) // 2]
    start = payload.index(b"superclass,subclass")  # data.csv, stored: its CRC no longer holds
    return payload[:start] + b"X" + payload[start + 1 :]


@pytest.mark.parametrize("how", ["truncated", "bad-crc"])
def test_a_damaged_downloaded_archive_is_set_aside_and_fetched_again(served, tmp_path, how):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "LungHist700.zip").write_bytes(_damaged(RangeHandler.payload, how))
    with pytest.raises(lh.DataError, match=r"set aside as .*LungHist700\.zip\.corrupt.*afresh"):
        download.download_lunghist700(dest, url=served, progress=False)
    assert RangeHandler.ranges == []  # the complete file was used, not fetched
    assert (dest / "LungHist700.zip.corrupt").is_file() and not (dest / "LungHist700.zip").exists()
    assert not (dest / "data.csv").exists() and not (dest / download.STAGING).exists()
    # the rerun the message asks for downloads afresh and succeeds
    download.download_lunghist700(dest, url=served, progress=False)
    assert RangeHandler.ranges == [None]
    assert_the_release_at(dest)


def test_a_damaged_archive_given_by_hand_is_left_and_named(release_zip, tmp_path, capsys):
    archive = tmp_path / "by-hand.zip"
    archive.write_bytes(_damaged(release_zip.read_bytes(), "bad-crc"))
    assert download_command(tmp_path / "dest", archive) == 2
    error = capsys.readouterr().err
    assert f"{archive} is damaged" in error and "left as it is" in error and "--archive" in error
    assert archive.is_file()


def _wrong_archive(tmp_path, kind):
    archive = tmp_path / f"{kind}.zip"
    if kind == "no-release":
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("Something/README.txt", "not LungHist700")
            bundle.writestr("Something/images/x.jpg", b"")
        return archive
    root = write_release(tmp_path / kind, lh.reference_metadata().head(12))
    return zip_release(root, archive, prefix="LungHist700")


@pytest.mark.parametrize("kind", ["no-release", "part-of-the-release"])
def test_a_wrong_archive_then_the_right_one_into_the_same_dest(release_zip, tmp_path, capsys, kind):
    dest = tmp_path / "data" / "lunghist700"
    wrong = _wrong_archive(tmp_path, kind)
    assert download_command(dest, wrong) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"valf: error: {wrong} ")
    if kind == "no-release":
        assert "holds no folder with data.csv and images/" in error
    else:
        assert "holds 12 images, not the 691 of the release" in error
        assert "679 images of the release are missing" in error
    assert not (dest / "data.csv").exists()
    assert download_command(dest, release_zip) == 0
    assert_the_release_at(dest)


def test_a_generated_archive_is_refused(tmp_path, capsys):
    """A zip of `valf data make-synthetic` (691 images, the release's own data.csv, and
    SYNTHETIC.json) is not LungHist700."""
    from valf_study.data.synthetic import make_synthetic_release

    root = make_synthetic_release(tmp_path / "synthetic", image_size=(16, 16), progress=False)
    archive = zip_release(root, tmp_path / "synthetic.zip", prefix="synthetic")
    dest = tmp_path / "dest"
    assert download_command(dest, archive) == 2
    error = capsys.readouterr().err
    assert f"{archive} holds a generated data set (synthetic/SYNTHETIC.json" in error
    assert "not the LungHist700 release" in error
    assert not (dest / "data.csv").exists()
    # nor is a generated set put at dest by hand
    assert download_command(root) == 2
    assert "holds a generated data set (SYNTHETIC.json)" in capsys.readouterr().err


def test_a_release_other_than_the_real_one_is_named(tmp_path, capsys):
    """691 images, but one of another patient, one the release lacks, one left out."""
    meta = lh.reference_metadata()
    changed = meta.copy()
    changed.loc[5, "patient_id"] = 44 if meta.loc[5, "patient_id"] != 44 else 43
    changed.loc[7, "image_id"] = 99999
    root = write_release(tmp_path / "other", changed)
    archive = zip_release(root, tmp_path / "other.zip")
    assert download_command(tmp_path / "dest", archive) == 2
    error = capsys.readouterr().err
    assert "is not the LungHist700 release" in error
    assert "1 images of the release are missing" in error
    assert "_99999.jpg" in error and "another patient" in error
    assert (
        lh.image_relative_path(*meta.loc[5, ["superclass", "subclass", "resolution", "image_id"]])
        in error
    )


def test_a_killed_extraction_never_looks_complete_and_is_cleaned_up(
    release_zip, tmp_path, monkeypatch
):
    dest = tmp_path / "dest"
    extract = zipfile.ZipFile.extract
    calls = []

    def killed_midway(self, member, path=None, pwd=None):
        calls.append(member)
        if len(calls) > 300:
            raise KeyboardInterrupt
        return extract(self, member, path, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "extract", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        download.download_lunghist700(dest, archive=release_zip, progress=False)
    with pytest.raises(lh.DataError, match=r"holds no data\.csv"):
        lh.read_release(dest)
    monkeypatch.setattr(zipfile.ZipFile, "extract", extract)
    (dest / download.STAGING / "left-over").mkdir(parents=True)  # as a SIGKILL would leave it
    download.download_lunghist700(dest, archive=release_zip, progress=False)
    assert_the_release_at(dest)


def test_a_move_killed_midway_never_looks_complete_and_is_cleaned_up(
    release_zip, tmp_path, monkeypatch
):
    dest = tmp_path / "dest"
    replace = os.replace

    def killed_before_data_csv(source, target):
        if Path(target).name == "data.csv":
            raise KeyboardInterrupt
        return replace(source, target)

    monkeypatch.setattr(download.os, "replace", killed_before_data_csv)
    with pytest.raises(KeyboardInterrupt):
        download.download_lunghist700(dest, archive=release_zip, progress=False)
    assert (dest / "images").is_dir() and not (dest / "data.csv").exists()
    monkeypatch.setattr(download.os, "replace", replace)
    download.download_lunghist700(dest, archive=release_zip, progress=False)
    assert_the_release_at(dest)


def test_a_damaged_tree_is_extracted_again_and_a_foreign_one_left_alone(
    release_zip, tmp_path, capsys
):
    dest = tmp_path / "dest"
    download.download_lunghist700(dest, archive=release_zip, progress=False)
    next((dest / "images").rglob("*.jpg")).unlink()
    with pytest.raises(lh.DataError, match="missing"):
        lh.read_release(dest)
    download.download_lunghist700(dest, archive=release_zip, progress=False)
    assert_the_release_at(dest)
    # a tree this command did not install is never deleted
    foreign = write_release(tmp_path / "foreign", lh.reference_metadata().head(5))
    assert download_command(foreign, release_zip) == 2
    error = capsys.readouterr().err
    assert "did not put it there, so it is left alone" in error and "686 images" in error
    assert len(lh.read_release(foreign)) == 5


def test_an_earlier_versions_extraction_is_replaced(release_zip, tmp_path):
    dest = tmp_path / "dest"
    old = write_release(dest / "extracted" / "LungHist700")
    download.download_lunghist700(dest, archive=release_zip, progress=False)
    assert not old.exists()
    assert_the_release_at(dest)


def test_extraction_writes_nothing_outside_dest(tmp_path, capsys):
    dest = tmp_path / "deep" / "dest"
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../../escaped.txt", "zip")
        bundle.writestr(str(tmp_path / "absolute.txt"), "zip")
    assert download_command(dest, archive) == 2
    assert "holds no folder with data.csv" in capsys.readouterr().err
    tarball = tmp_path / "evil.tar"
    with tarfile.open(tarball, "w") as bundle:
        data = b"tar"
        member = tarfile.TarInfo("../../escaped-tar.txt")
        member.size = len(data)
        bundle.addfile(member, io.BytesIO(data))
    assert download_command(dest, tarball) == 2
    assert f"{tarball} is damaged" in capsys.readouterr().err
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert written <= {"evil.zip", "evil.tar", "deep/dest/.valf-download.lock"}


def test_offline_fails_at_once_with_instructions(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(lh.DataError, match=r"(?s)seems offline.*figshare.*--archive"):
        download.download_lunghist700(tmp_path / "dest", url=f"http://127.0.0.1:{port}/x")
    assert time.monotonic() - start < 5


def test_command_line_errors(tmp_path, capsys):
    assert download_command(tmp_path / "gone", tmp_path / "missing.zip") == 2
    assert "does not exist" in capsys.readouterr().err


def test_command_line_make_synthetic(tmp_path, capsys):
    assert (
        cli.main(
            [
                "data",
                "make-synthetic",
                "--dest",
                str(tmp_path / "synth"),
                "--scale",
                "0.05",
                "--image-size",
                "32",
                "48",
                "--quiet",
            ]
        )
        == 0
    )
    frame = lh.official_split(lh.read_release(tmp_path / "synth"))
    assert set(frame["resolution"]) == {"20x", "40x"} and frame["patient_id"].nunique() == 45
    assert cli.main(["data", "make-synthetic", "--dest", str(tmp_path / "x"), "--scale", "0"]) == 2
    assert "scale" in capsys.readouterr().err


@pytest.mark.slow
def test_from_an_archive_to_a_sweeps_first_run(release_zip, tmp_path):
    """The archive (the release nested in a folder, as published) through the download command
    to the first run of a study on `dataset: lunghist700` whose data root is the command's
    --dest, as studies/paper.yaml reads data/lunghist700."""
    import subprocess
    import sys

    import yaml

    from tests.study.test_sweep import KERNEL, NOTEBOOK
    from valf_study.studies.plan import make_plan
    from valf_study.studies.spec import load_study
    from valf_study.studies.sweep import sweep

    dest = tmp_path / "data" / "lunghist700"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    command = ["data", "download", "lunghist700", "--dest", str(dest), "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "valf_study.cli", *command, "--archive", str(release_zip)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"LungHist700 is ready at {dest}"
    spec = {
        "name": "from-download",
        "data": {"dataset": "lunghist700", "root": str(dest)},
        "defaults": {
            "backbone": "SmallCNN",
            "weights": None,
            "image_size": [16, 16],
            "fast_augmentation": True,
            "learning_rate": 1e-3,
            "epochs": 1,
            "warmup_epochs": 1,
            "deterministic": True,
            "cache_dir": str(tmp_path / "cache"),
        },
        "experiments": {"main": {"grid": {"loss": ["CCE", "VALF"]}}},
    }
    study = tmp_path / "from-download.yaml"
    study.write_text(yaml.safe_dump(spec, sort_keys=False))
    runs_root = tmp_path / "runs"
    first = make_plan(load_study(study, runs_root)).runs[0].run_id
    summary = sweep(
        study,
        runs_root,
        workers=1,
        kernel=KERNEL,
        notebook=NOTEBOOK,
        run_ids=[first],
        progress=False,
    )
    assert summary.exit_code == 0 and len(summary.ok) == 1, summary.report()
    assert (runs_root / first / "DONE").is_file() and (runs_root / first / "metrics.json").is_file()
    assert [p.name for p in runs_root.iterdir() if not p.name.startswith("_")] == [first]
