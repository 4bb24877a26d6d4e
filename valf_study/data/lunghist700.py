"""LungHist700 as released: reading, checking and splitting (:mod:`valf_study.data.download` fetches
it).

The release (figshare article 25459174, CC BY 4.0) is a folder with ``data.csv``
(``superclass,subclass,resolution,image_id,patient_id``; subclass empty for
normal tissue) and ``images/<dir>/<dir>_<res>_<id>.jpg``, ``<dir>`` one of
:data:`SUBCLASS_DIRS`. The seven subclasses map to three classes, ACA = 0,
NOR = 1, SCC = 2.

Every check names all offending files or patients, never only the first, and
every split is checked for patient leakage when it is built.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pandas as pd

from valf_study.data.errors import DataError, file_mismatches
from valf_study.data.errors import listing as _listing
from valf_study.data.splits import check_no_group_leakage, grouped_split

__all__ = [
    "CLASS_NAMES",
    "MAGNIFICATIONS",
    "SUBCLASS_DIRS",
    "check_no_patient_leakage",
    "image_relative_path",
    "official_split",
    "patient_split",
    "read_release",
    "reference_metadata",
    "release_differences",
    "with_classes",
]

CLASS_NAMES = ("ACA", "NOR", "SCC")
SUPERCLASS_TO_LABEL = {"aca": 0, "nor": 1, "scc": 2}
SUBCLASSES = {"aca": ("bd", "md", "pd"), "nor": ("",), "scc": ("bd", "md", "pd")}
SUBCLASS_DIRS = ("aca_bd", "aca_md", "aca_pd", "nor", "scc_bd", "scc_md", "scc_pd")
MAGNIFICATIONS = ("20x", "40x")
RELEASE_COLUMNS = ("superclass", "subclass", "resolution", "image_id", "patient_id")
FIGSHARE_ARTICLE = 25459174
FIGSHARE_FILE = 45206104
DOWNLOAD_URL = f"https://ndownloader.figshare.com/files/{FIGSHARE_FILE}"

HOW_TO_GET = (
    "Get LungHist700 with `valf data download lunghist700 --dest DIR`, or by hand from "
    f"https://figshare.com/articles/dataset/{FIGSHARE_ARTICLE} (file {FIGSHARE_FILE}, "
    f"{DOWNLOAD_URL}); then run `valf data download lunghist700 --dest DIR --archive FILE` "
    "to extract and check it. DIR then holds data.csv and images/: it is the data root a "
    "study names (studies/paper.yaml: data/lunghist700)."
)


def reference_metadata():
    """The release's ``data.csv`` as packaged with valf (691 rows).

    Examples
    --------
    >>> meta = reference_metadata()
    >>> len(meta), meta.patient_id.nunique()
    (691, 45)
    """
    with resources.files("valf_study.data").joinpath("resources/data.csv").open() as handle:
        return pd.read_csv(handle, dtype={"subclass": str}, keep_default_na=False)


def release_differences(frame, reference=None):
    """Messages naming every image in which ``frame`` differs from the release's metadata.

    ``frame`` is release metadata (as :func:`read_release` returns it); ``reference`` the
    release's (default :func:`reference_metadata`). Names the images the release has and
    ``frame`` lacks, those ``frame`` has and the release does not, and those given to another
    patient; an empty list when they agree.

    Examples
    --------
    >>> meta = reference_metadata()
    >>> release_differences(meta)
    []
    >>> changed = meta.drop(index=0).assign(patient_id=meta.patient_id.where(meta.index != 1, 99))
    >>> print("\\n".join(release_differences(changed)))  # doctest: +NORMALIZE_WHITESPACE
    1 images of the release are missing: images/aca_bd/aca_bd_40x_901.jpg
    1 images belong to another patient than in the release:
      images/aca_bd/aca_bd_40x_902.jpg: patient 99, the release says 1
    """
    reference = reference_metadata() if reference is None else reference

    def patients(table):
        keys = table[["superclass", "subclass", "resolution", "image_id"]].itertuples(index=False)
        return {
            image_relative_path(*key): int(patient)
            for key, patient in zip(keys, table["patient_id"])
        }

    found, expected = patients(frame), patients(reference)
    messages = []
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    moved = sorted(
        f"{path}: patient {found[path]}, the release says {expected[path]}"
        for path in set(found) & set(expected)
        if found[path] != expected[path]
    )
    if missing:
        messages.append(f"{len(missing)} images of the release are missing:{_listing(missing)}")
    if extra:
        messages.append(f"{len(extra)} images are not in the release:{_listing(extra)}")
    if moved:
        messages.append(
            f"{len(moved)} images belong to another patient than in the release:{_listing(moved)}"
        )
    return messages


def with_classes(frame):
    """``frame`` (release metadata) with ``label`` (ACA 0, NOR 1, SCC 2) and ``class_name``.

    Examples
    --------
    >>> frame = with_classes(reference_metadata())
    >>> sorted(set(zip(frame["label"], frame["class_name"])))
    [(0, 'ACA'), (1, 'NOR'), (2, 'SCC')]
    """
    frame = frame.copy()
    frame["label"] = frame["superclass"].map(SUPERCLASS_TO_LABEL).astype(int)
    frame["class_name"] = [CLASS_NAMES[label] for label in frame["label"]]
    return frame


def image_relative_path(superclass, subclass, resolution, image_id):
    """Path of one image inside the release, as the release names it.

    Examples
    --------
    >>> image_relative_path("aca", "bd", "40x", 901)
    'images/aca_bd/aca_bd_40x_901.jpg'
    >>> image_relative_path("nor", "", "20x", 5)
    'images/nor/nor_20x_5.jpg'
    """
    folder = superclass if not subclass else f"{superclass}_{subclass}"
    return f"images/{folder}/{folder}_{resolution}_{int(image_id)}.jpg"


def _validate_metadata(frame, csv_path):
    columns = list(frame.columns)
    if sorted(columns) != sorted(RELEASE_COLUMNS):
        missing = [c for c in RELEASE_COLUMNS if c not in columns]
        extra = [c for c in columns if c not in RELEASE_COLUMNS]
        raise DataError(
            f"{csv_path} has the wrong columns: missing {missing}, unexpected {extra}; "
            f"expected {list(RELEASE_COLUMNS)}."
        )
    problems = []
    for index, row in frame.iterrows():
        superclass, subclass = row["superclass"], row["subclass"]
        if superclass not in SUBCLASSES:
            problems.append(f"row {index + 2}: unknown superclass {superclass!r}")
        elif subclass not in SUBCLASSES[superclass]:
            problems.append(f"row {index + 2}: unknown subclass {subclass!r} for {superclass}")
        if row["resolution"] not in MAGNIFICATIONS:
            problems.append(f"row {index + 2}: unknown resolution {row['resolution']!r}")
        for column in ("image_id", "patient_id"):
            if not str(row[column]).isdigit():
                problems.append(f"row {index + 2}: {column} {row[column]!r} is not an integer")
    if problems:
        raise DataError(
            f"{csv_path} has values outside the release's vocabulary (superclass "
            f"{sorted(SUBCLASSES)}, subclass bd/md/pd or empty for nor, resolution "
            f"{list(MAGNIFICATIONS)}):{_listing(problems)}"
        )
    duplicated = frame[frame.duplicated(["superclass", "subclass", "resolution", "image_id"])]
    if len(duplicated):
        raise DataError(f"{csv_path} lists images twice:{_listing(duplicated.index + 2)}")


def _check_magnification(magnification):
    if magnification is not None and magnification not in MAGNIFICATIONS:
        raise ValueError(
            f"`magnification` must be one of {list(MAGNIFICATIONS)} or None, "
            f"received {magnification!r}."
        )


def read_release(root, magnification=None, verify_images=False):
    """Read and check a LungHist700 release folder.

    Parameters
    ----------
    root : path
        Release root: the folder holding ``data.csv`` and ``images/``.
    magnification : {"20x", "40x"}, optional
        Keep one magnification; None keeps both.
    verify_images : bool
        Also decode every image, reporting all unreadable or truncated files.

    Returns
    -------
    pandas.DataFrame
        One row per image: the release columns, ``label`` (ACA 0, NOR 1,
        SCC 2), ``class_name``, ``image_path`` (relative) and ``path``
        (absolute).

    Raises
    ------
    DataError
        Missing root or ``data.csv``, wrong columns or values, images missing
        from the tree or present but not in the CSV, unreadable images.

    References
    ----------
    - LungHist700, figshare article 25459174 (CC BY 4.0).
      https://doi.org/10.6084/m9.figshare.25459174
    """
    _check_magnification(magnification)
    root = Path(root).expanduser()
    csv_path = root / "data.csv"
    if not root.is_dir():
        raise DataError(f"The LungHist700 root {root} does not exist. {HOW_TO_GET}")
    if not csv_path.is_file():
        raise DataError(
            f"{root} holds no data.csv, so it is not a LungHist700 release. {HOW_TO_GET}"
        )
    try:
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{csv_path} is not a readable CSV: {error}") from None
    _validate_metadata(frame, csv_path)
    frame["image_id"] = frame["image_id"].astype(int)
    frame["patient_id"] = frame["patient_id"].astype(int)
    frame["image_path"] = [
        image_relative_path(*values)
        for values in frame[["superclass", "subclass", "resolution", "image_id"]].itertuples(
            index=False
        )
    ]
    _check_image_tree(root, frame)
    frame = with_classes(frame)
    frame["path"] = [str(root / relative) for relative in frame["image_path"]]
    if magnification is not None:
        frame = frame[frame["resolution"] == magnification].reset_index(drop=True)
    if verify_images:
        verify_image_files(frame["path"])
    return frame


def _image_files(root):
    """Every JPEG under ``root/images``, relative to ``root`` (``os.walk``: ten times faster
    than ``Path.rglob`` on the release, which every run reads)."""
    found = set()
    for folder, _, files in os.walk(root / "images"):
        prefix = Path(folder).relative_to(root).as_posix()
        found.update(
            f"{prefix}/{name}" for name in files if name.lower().endswith((".jpg", ".jpeg"))
        )
    return found


def _check_image_tree(root, frame):
    named = set(frame["image_path"])
    on_disk = _image_files(root)
    messages = file_mismatches(named, on_disk, "data.csv")
    if messages:
        raise DataError(
            f"The image tree under {root} does not match its data.csv. "
            + " ".join(messages)
            + "\nRe-extract the archive (or download it again) so that the tree holds exactly "
            "the images the CSV names: `valf data download lunghist700 --dest DIR`."
        )


def verify_image_files(paths):
    """Decode every image fully; raise one DataError naming all that fail."""
    from PIL import Image

    failures = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
        except Exception as error:  # noqa: BLE001 - any decoder failure is a broken file
            failures.append(f"{path}: {error}")
    if failures:
        raise DataError(
            f"{len(failures)} images cannot be decoded (truncated or corrupt):"
            f"{_listing(failures)}\nDownload or extract them again."
        )


def _split_patients():
    with (
        resources.files("valf_study.data")
        .joinpath("resources/official_split_patients.csv")
        .open() as handle
    ):
        return pd.read_csv(handle)


def official_split(frame):
    """Attach the official patient-level split (the dataset paper's ``reproducible=True``).

    Returns a copy of ``frame`` with a ``split`` column; every image's
    (magnification, patient) must be in the official list.

    References
    ----------
    - LungHist700, figshare article 25459174 (CC BY 4.0).
      https://doi.org/10.6084/m9.figshare.25459174
    """
    table = _split_patients()
    merged = frame.drop(columns=["split"], errors="ignore").merge(
        table,
        how="left",
        left_on=["resolution", "patient_id"],
        right_on=["resolution", "patient_id"],
    )
    unknown = merged[merged["split"].isna()]
    if len(unknown):
        pairs = sorted(set(zip(unknown["resolution"], unknown["patient_id"])))
        raise DataError(
            "These (magnification, patient) pairs are not in the official split, so this is "
            f"not the LungHist700 release or its metadata was changed:{_listing(pairs)}"
        )
    check_no_patient_leakage(merged)
    return merged


def patient_split(frame, seed, fractions=(0.7, 0.15, 0.15)):
    """A seeded random split grouped by patient, one per magnification.

    Patients are shuffled and then assigned greedily, in that order, to the
    split whose share of images is furthest below its target fraction. Each
    magnification is split separately, as the official split is, so a patient
    may sit in different splits at 20x and 40x but never in two at one.

    Examples
    --------
    >>> meta = reference_metadata()
    >>> split = patient_split(meta, seed=1)
    >>> sorted(split["split"].unique())
    ['test', 'train', 'val']
    """
    return grouped_split(frame, fractions, seed, group="patient_id", within=("resolution",))


def check_no_patient_leakage(frame):
    """Raise DataError naming every patient found in two splits at one magnification."""
    check_no_group_leakage(
        frame, "patient_id", within=("resolution",), what="patients", label="patient"
    )
