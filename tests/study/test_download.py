"""`download_lunghist700` against a small archive served on 127.0.0.1 (with Range support)."""

import http.server
import socket
import threading
import time
import zipfile
from typing import ClassVar

import pytest

from tests.study.release_fixture import write_release
from valf_study import cli
from valf_study.data import download
from valf_study.data import lunghist700 as lh


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


@pytest.fixture
def served_archive(tmp_path):
    meta = lh.reference_metadata().head(12)
    root = write_release(tmp_path / "source" / "LungHist700", meta)
    archive = tmp_path / "LungHist700.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(root.rglob("*")):
            bundle.write(path, path.relative_to(root.parent))
    RangeHandler.payload = archive.read_bytes()
    RangeHandler.ranges = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/files/1", len(meta)
    server.shutdown()


def test_download_extract_and_check(served_archive, tmp_path):
    url, count = served_archive
    root = download.download_lunghist700(
        tmp_path / "dest", url=url, progress=False, expected_images=count
    )
    assert (root / "data.csv").is_file() and len(lh.read_release(root)) == count
    assert RangeHandler.ranges == [None]
    assert not list((tmp_path / "dest").glob("*.part"))
    # A second call reuses the archive and the extraction: no request.
    assert download.download_lunghist700(tmp_path / "dest", url=url, expected_images=count) == root
    assert RangeHandler.ranges == [None]


def test_download_resumes_a_partial_file(served_archive, tmp_path):
    url, count = served_archive
    dest = tmp_path / "dest"
    dest.mkdir()
    half = len(RangeHandler.payload) // 2
    (dest / "LungHist700.zip.part").write_bytes(RangeHandler.payload[:half])
    root = download.download_lunghist700(dest, url=url, progress=False, expected_images=count)
    assert RangeHandler.ranges == [f"bytes={half}-"]
    assert (dest / "LungHist700.zip").read_bytes() == RangeHandler.payload
    assert len(lh.read_release(root)) == count


def test_wrong_image_count_is_reported(served_archive, tmp_path):
    url, count = served_archive
    with pytest.raises(lh.DataError, match=f"holds {count} images, not the 691"):
        download.download_lunghist700(tmp_path / "dest", url=url, progress=False)


def test_offline_fails_at_once_with_instructions(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(lh.DataError, match=r"(?s)seems offline.*figshare.*--archive"):
        download.download_lunghist700(tmp_path / "dest", url=f"http://127.0.0.1:{port}/x")
    assert time.monotonic() - start < 5


def test_command_line_download_and_error(served_archive, tmp_path, capsys):
    archive = tmp_path / "LungHist700.zip"
    assert (
        cli.main(
            [
                "data",
                "download",
                "lunghist700",
                "--dest",
                str(tmp_path / "by-hand"),
                "--archive",
                str(archive),
                "--quiet",
            ]
        )
        == 2
    )  # 12 images, not 691
    assert "not the 691" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "data",
                "download",
                "lunghist700",
                "--dest",
                str(tmp_path / "gone"),
                "--archive",
                str(tmp_path / "missing.zip"),
                "--quiet",
            ]
        )
        == 2
    )
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
