"""LungHist700 as released (figshare article 25459174, CC BY 4.0): the data set of the paper.

The release is read and checked by :mod:`valf_study.data.lunghist700`, fetched by
``valf data download lunghist700``; a folder that holds a generated stand-in
(:mod:`valf_study.data.sets.synthetic`) is refused, so a result on generated data can never be
reported as LungHist700.
"""

from __future__ import annotations

from pathlib import Path

from valf_study.data import lunghist700
from valf_study.data.dataset import DataSet
from valf_study.data.errors import DataError

__all__ = ["DATASET", "LungHist700"]


class LungHist700(DataSet):
    """The real release: 691 H&E images of 45 patients, ACA/NOR/SCC at 20x and 40x."""

    name = "lunghist700"
    title = "LungHist700"
    magnifications = lunghist700.MAGNIFICATIONS
    splits = ("official", "patient", "stratified", "cv", "kfold")
    group = "patient_id"
    within = ("resolution",)
    layout_of_lunghist700 = True
    paper = True

    def known_class_names(self, params):
        return list(lunghist700.CLASS_NAMES)

    def class_names(self, params):
        return list(lunghist700.CLASS_NAMES)

    def prepare(self, params, progress=True):
        from valf_study.data.synthetic import SYNTHETIC_INFO_FILE, read_synthetic_info

        root = Path(params["data_root"])
        if read_synthetic_info(root) is not None:
            raise DataError(
                f"{root} holds a generated data set ({SYNTHETIC_INFO_FILE}), not the "
                "LungHist700 release; point `data_root` at the real release or set "
                "`dataset: synthetic`."
            )
        frame = lunghist700.read_release(root)  # names what is missing and how to get it
        differences = lunghist700.release_differences(frame)
        if differences:
            raise DataError(
                f"{root} is not the LungHist700 release as published: "
                + " ".join(differences)
                + "\nDownload or extract it again. "
                + lunghist700.HOW_TO_GET
            )
        return self.class_names(params)

    def read(self, params):
        return lunghist700.read_release(params["data_root"], params["magnification"])

    def official_split(self, frame, params):
        return lunghist700.official_split(frame)

    def describe(self, params):
        return (
            "LungHist700 (figshare article 25459174, CC BY 4.0): 691 H&E images of lung tissue "
            "from 45 patients at 20x and 40x, 1200x1600 pixels, in three classes (ACA, NOR, "
            "SCC); the official split is by patient at each magnification."
        )


DATASET = LungHist700()
