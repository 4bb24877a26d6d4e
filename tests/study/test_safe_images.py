"""Reading images safely: a pixel limit from the header, files cut short or corrupt refused by
name, no traceback from image reading, and the verdicts on images that appear twice."""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from tests.study.folder_fixture import make_image_folder, stripes
from valf_study.data import check as check_module
from valf_study.data.check import (
    check_image_folder,
    duplicate_problems,
    image_infos,
    verify_decodable,
)
from valf_study.data.decode import DecodedImageCache, decode_image
from valf_study.data.errors import DataError
from valf_study.data.folder import index_image_folder
from valf_study.data.images import max_image_pixels, read_image_header, verify_image
from valf_study.data.synthetic import make_synthetic_release
from valf_study.data.synthetic.settings import check_image_size

ROOT = Path(__file__).resolve().parents[2]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width, height, pixel_data=b"\0" * 16):
    """A PNG built by hand: its IHDR says ``width`` x ``height`` RGB, its IDAT holds
    ``pixel_data`` compressed (nowhere near enough for such a size)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(pixel_data))
        + png_chunk(b"IEND", b"")
    )


@pytest.fixture
def bad_images(tmp_path):
    """path by name: a 50000x50000 header, a truncated JPEG, a corrupt PNG, a non-image."""
    folder = tmp_path / "bad"
    folder.mkdir()
    paths = {
        "bomb": folder / "bomb.png",
        "truncated": folder / "cut.jpg",
        "corrupt": folder / "corrupt.png",
        "not an image": folder / "text.tif",
    }
    paths["bomb"].write_bytes(png_claiming(50000, 50000))
    noise = np.random.default_rng(0).integers(0, 256, (60, 80, 3), np.uint8)
    cv2.imwrite(str(folder / "whole.jpg"), noise)
    whole = (folder / "whole.jpg").read_bytes()
    paths["truncated"].write_bytes(whole[: len(whole) // 2])
    (folder / "whole.jpg").unlink()
    # A valid 20x20 header and end, and data that is not zlib at all.
    good = png_claiming(20, 20, b"\0" * (20 * 61))
    idat = good.index(b"IDAT")
    length = struct.unpack(">I", good[idat - 4 : idat])[0]
    garbage = bytes(range(256))[:length]
    paths["corrupt"].write_bytes(
        good[: idat + 4] + garbage + struct.pack(">I", zlib.crc32(b"IDAT" + garbage)) + good[-12:]
    )
    paths["not an image"].write_text("notes, not a TIFF")
    return paths


# -- the pixel limit ----------------------------------------------------------------------------


def test_a_header_claiming_50000x50000_is_refused_before_decoding(bad_images):
    bomb = bad_images["bomb"]
    assert bomb.stat().st_size < 100  # the reviewer's file was 74 bytes
    for read in (decode_image, read_image_header, verify_image):
        with pytest.raises(DataError) as error:
            read(bomb)
        message = str(error.value)
        assert str(bomb) in message
        assert "50000x50000 pixels (2,500,000,000)" in message
        assert "limit of 50,000,000 pixels" in message and "VALF_MAX_IMAGE_PIXELS" in message
    with pytest.raises(DataError, match=r"bomb\.png: 50000x50000"):
        DecodedImageCache(bomb.parent / "cache", "demo", None, (8, 8)).get(bomb)


def test_a_small_file_decoding_to_more_than_the_limit_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "plain.png"
    cv2.imwrite(str(path), np.zeros((200, 300, 3), np.uint8))  # 60,000 pixels in a few hundred B
    assert path.stat().st_size < 2000
    assert decode_image(path).shape == (200, 300, 3)
    with pytest.raises(DataError, match=r"plain.png: 300x200 pixels \(60,000\), above the limit"):
        decode_image(path, max_pixels=10_000)
    monkeypatch.setenv("VALF_MAX_IMAGE_PIXELS", "10000")
    assert max_image_pixels() == 10_000
    with pytest.raises(DataError, match="limit of 10,000 pixels"):
        decode_image(path)
    assert decode_image(path, max_pixels=60_000).shape == (200, 300, 3)  # the keyword wins
    monkeypatch.setenv("VALF_MAX_IMAGE_PIXELS", "a lot")
    with pytest.raises(DataError, match="VALF_MAX_IMAGE_PIXELS is 'a lot'; it must be a whole"):
        decode_image(path)


# -- files cut short or corrupt -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("truncated", "the file is cut short"),
        ("corrupt", "OpenCV does not decode it"),
        ("not an image", "not an image file Pillow recognises"),
    ],
)
def test_decode_image_refuses_a_broken_file_by_name(bad_images, name, said):
    with pytest.raises(DataError, match=said) as error:
        decode_image(bad_images[name])
    assert str(bad_images[name]) in str(error.value)


def test_the_full_check_refuses_every_broken_file_by_name(bad_images):
    reasons = {
        "truncated": "the file is cut short (Pillow: OSError: image file is truncated",
        "corrupt": "its pixels do not decode (Pillow:",
        "not an image": "it is not an image file Pillow recognises",
    }
    for name, reason in reasons.items():
        with pytest.raises(DataError, match=reason.replace("(", r"\(")):
            verify_image(bad_images[name])
    with pytest.raises(DataError) as error:
        verify_decodable(bad_images.values(), workers=2)
    message = str(error.value)
    assert "1 images have more pixels than the limit" in message
    assert "3 files with an image extension do not decode" in message
    for path in bad_images.values():
        assert str(path) in message
    for reason in reasons.values():
        assert reason in message


def test_a_jpeg_with_data_after_its_end_marker_is_whole(tmp_path):
    path = tmp_path / "tail.jpg"
    cv2.imwrite(str(path), stripes(0, 2, (40, 48), np.random.default_rng(1)))
    path.write_bytes(path.read_bytes() + b"camera notes after the end marker")
    assert decode_image(path).shape == (40, 48, 3)
    verify_image(path)


def test_valf_data_check_names_every_bad_file_without_a_traceback(tmp_path, bad_images):
    root = make_image_folder(tmp_path / "images", [6, 6], extras=False)
    for name, path in bad_images.items():
        shutil.copy(path, root / ("class_0" if name in ("bomb", "corrupt") else "class_1"))
    big = root / "class_1" / "big.png"
    cv2.imwrite(str(big), np.zeros((100, 100, 3), np.uint8))  # above the limit set below
    result = subprocess.run(
        [sys.executable, "-m", "valf_study.cli", "data", "check", str(root), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "VALF_MAX_IMAGE_PIXELS": "5000"},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "cv2.error" not in result.stderr
    out = result.stdout
    assert "2 images have more pixels than the limit" in out
    assert "class_0/bomb.png: 50000x50000 pixels (2,500,000,000), above the limit of 5,000" in out
    assert "class_1/big.png: 100x100 pixels (10,000)" in out
    assert "VALF_MAX_IMAGE_PIXELS=2500000000" in out
    assert "3 files with an image extension do not decode" in out
    assert "class_1/cut.jpg: the file is cut short" in out
    assert "class_0/corrupt.png: its pixels do not decode" in out
    assert "class_1/text.tif: it is not an image file Pillow recognises" in out


# -- the generator's image size -----------------------------------------------------------------


def test_make_synthetic_refuses_an_image_size_above_the_limit(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"`image_size` 100000x100000 is 10,000,000,000 pixels"):
        check_image_size((100_000, 100_000))
    with pytest.raises(ValueError, match="VALF_MAX_IMAGE_PIXELS"):
        make_synthetic_release(tmp_path / "huge", image_size=(100_000, 100_000), progress=False)
    assert not (tmp_path / "huge").exists()  # refused before anything is written
    monkeypatch.setenv("VALF_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ValueError, match="limit of 1,000 pixels"):
        check_image_size((40, 40))
    monkeypatch.delenv("VALF_MAX_IMAGE_PIXELS")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "valf_study.cli",
            "data",
            "make-synthetic",
            "--dest",
            str(tmp_path / "huge"),
            "--image-size",
            "100000",
            "100000",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=_memory_cap,  # should the refusal go, fail fast instead of eating memory
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    assert "valf: error: `image_size` 100000x100000 is 10,000,000,000 pixels" in result.stderr


def _memory_cap():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (16 * 2**30, 16 * 2**30))


# -- the per-image information and its cache ----------------------------------------------------


def test_image_infos_are_computed_once_and_remembered(tmp_path, monkeypatch):
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        cv2.imwrite(str(path), np.full((10 + i, 12, 3), 40 * i, np.uint8))
    cache = tmp_path / "infos.json"
    infos = image_infos(paths, cache, workers=2)
    first = infos[str(paths[1])]
    assert (first.height, first.width, first.mode, first.format) == (11, 12, "RGB", "PNG")
    assert first.file_size == paths[1].stat().st_size
    assert first.file_sha256 == hashlib.sha256(paths[1].read_bytes()).hexdigest()
    assert first.ok and first.pixel_digest and first.error is None
    assert list(infos) == [str(p) for p in paths]

    read = []
    monkeypatch.setattr(check_module, "_inspect", lambda path, limit: read.append(path))
    assert image_infos(paths, cache) == infos  # every image remembered: none read again
    assert read == []
    monkeypatch.undo()

    # A changed file is read again; a lower limit refuses a remembered image unread.
    cv2.imwrite(str(paths[0]), np.full((30, 12, 3), 7, np.uint8))
    again = image_infos(paths, cache, max_pixels=300)
    assert again[str(paths[0])].height == 30 and again[str(paths[0])].error_kind == "too large"
    assert again[str(paths[1])].ok and again[str(paths[1])] == infos[str(paths[1])]
    assert again[str(paths[2])].ok

    # The stamps of the earlier format, or a cut cache, start afresh.
    cache.write_text(json.dumps({str(paths[0]): [1, 2]}))
    assert image_infos(paths, cache)[str(paths[0])].height == 30
    cache.write_text('{"format": "valf image')
    assert image_infos(paths, cache)[str(paths[2])].ok


def test_a_png_and_a_lossless_copy_in_another_format_have_one_digest(tmp_path):
    rgb = stripes(1, 3, (24, 32), np.random.default_rng(0))
    cv2.imwrite(str(tmp_path / "a.png"), rgb)
    cv2.imwrite(str(tmp_path / "a.bmp"), rgb)
    cv2.imwrite(str(tmp_path / "b.png"), rgb[:, ::-1])
    infos = image_infos([tmp_path / n for n in ("a.png", "a.bmp", "b.png")])
    digests = [info.pixel_digest for info in infos.values()]
    assert digests[0] == digests[1] != digests[2]


# -- images that appear twice -------------------------------------------------------------------


def frame_with(rows):
    """A frame (path, image_path, class_name, split) and infos with chosen digests."""
    frame = pd.DataFrame(rows, columns=["image_path", "class_name", "split", "digest"])
    frame["path"] = "/data/" + frame["image_path"]
    infos = {
        path: check_module.ImageInfo(path, pixel_digest=digest)
        for path, digest in zip(frame["path"], frame["digest"])
    }
    return frame.drop(columns="digest"), infos


def test_the_three_verdicts_on_duplicates():
    frame, infos = frame_with(
        [
            ("a/1.png", "a", "train", "x"),  # x: in two splits, one class
            ("a/2.png", "a", "test", "x"),
            ("a/3.png", "a", "train", "y"),  # y: in two classes
            ("b/4.png", "b", "train", "y"),
            ("a/5.png", "a", "val", "z"),  # z: copies within one class and split
            ("a/6.png", "a", "val", "z"),
            ("b/7.png", "b", "val", "w"),  # w: once
        ]
    )
    problems, notes = duplicate_problems(frame, infos)
    assert len(problems) == 2 and len(notes) == 1
    classes, splits = problems
    assert classes.startswith("1 images appear in more than one class")
    assert "a/3.png (class a, split train), b/4.png (class b, split train)" in classes
    assert splits.startswith("1 images appear in more than one split")
    assert "a/1.png (class a, split train), a/2.png (class a, split test)" in splits
    assert notes[0].startswith("1 images have copies in their own class and split")
    assert "a/5.png (class a, split val), a/6.png (class a, split val)" in notes[0]
    assert "7.png" not in " ".join(problems + notes)


def test_the_folder_check_applies_the_verdicts(tmp_path):
    root = make_image_folder(tmp_path / "images", [8, 8], extras=False)
    frame = index_image_folder(root).images
    per_class = ["train"] * 4 + ["val", "test"] * 2
    split = pd.DataFrame({"path": frame["image_path"], "split": per_class * 2})
    split.to_csv(tmp_path / "split.csv", index=False)

    def add_copy(source, copy, split_name):
        shutil.copy(root / source, root / copy)
        table = pd.read_csv(tmp_path / "split.csv")
        table.loc[len(table)] = [copy, split_name]
        table.to_csv(tmp_path / "split.csv", index=False)

    # A copy within its class and split: a note, not a problem.
    add_copy("class_0/class_0_0000.png", "class_0/copy_same.png", "train")
    report = check_image_folder(root, tmp_path / "split.csv", workers=2)
    assert report.problems == []
    assert len(report.notes) == 1
    assert "class_0/copy_same.png (class class_0, split train)" in report.notes[0]
    assert "1 note(s), not problems" in report.text() and "No problems found" in report.text()
    # A copy in another split: fatal.
    add_copy("class_0/class_0_0003.png", "class_0/copy_test.png", "test")
    report = check_image_folder(root, tmp_path / "split.csv", workers=2)
    assert len(report.problems) == 1 and "more than one split" in report.problems[0]
    assert "class_0/copy_test.png (class class_0, split test)" in report.problems[0]
    assert "class_0/class_0_0003.png (class class_0, split train)" in report.problems[0]
    # A copy in another class: fatal.
    add_copy("class_0/class_0_0000.png", "class_1/copy_other_class.png", "train")
    report = check_image_folder(root, tmp_path / "split.csv", workers=2)
    assert any(
        "more than one class" in p and "class_1/copy_other_class.png (class class_1" in p
        for p in report.problems
    )
