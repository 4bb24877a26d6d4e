"""A folder of one's own images, one sub-folder per class (:mod:`valf_study.data.folder`).

Its split comes from a split file (``split_csv``: ``path`` and ``split`` and/or ``group``) or,
without one, is made seeded and stratified by class, grouped when the file or a group rule
(``group_rule``) gives groups. Every image is decoded once before any run trains
(:func:`valf_study.data.check.verify_decodable`), so a broken file stops the study first.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from valf_study.data.dataset import DataSet, ParameterProblem
from valf_study.data.errors import DataError

__all__ = ["DATASET", "ImageFolder"]


class ImageFolder(DataSet):
    """Your own images: 2 to 50 class folders, any size, mode and format."""

    name = "folder"
    title = "a folder of your own images"
    options = ("split_csv", "group_rule")
    splits = ("official", "stratified", "cv", "kfold")

    def normalise(self, params, given):
        if "split" not in given or given["split"] is None:
            # A folder's own split is its split file's; without one, a stratified split is made.
            params["split"] = "official" if params["split_csv"] is not None else "stratified"
        elif params["split"] == "patient":
            raise ParameterProblem(
                "Parameter `split`: 'patient' is LungHist700's; a folder data set is split "
                "by its groups with 'stratified' (or given by its split file, 'official')."
            )
        elif params["split"] == "official" and params["split_csv"] is None:
            raise ParameterProblem(
                "Parameter `split`: 'official' takes the split of a split file, and "
                "`split_csv` is not given; give one, or use 'stratified'."
            )
        super().normalise(params, given)

    def shares_split(self, params):
        # 'cv' folds the training part of the stratified split when there is no split file.
        return super().shares_split(params) or (
            params["split"] == "cv" and params["split_csv"] is None
        )

    def class_names(self, params):
        from valf_study.data.folder import index_image_folder

        return index_image_folder(params["data_root"]).class_names

    def read(self, params):
        from valf_study.data.folder import read_image_folder

        return read_image_folder(
            params["data_root"], params["split_csv"], group_rule=params["group_rule"]
        )

    def prepare(self, params, progress=True):
        from valf_study.data.check import verify_decodable

        frame = self.read(params)
        verify_decodable(frame["path"], _stamp_file(params), progress=progress)
        return self.class_names(params)

    def official_split(self, frame, params):
        if "split" in frame.columns:
            return frame
        if params["split"] == "official" or params["split_csv"] is not None:
            raise DataError(
                f"The split file {params['split_csv']} has no `split` column, so it cannot "
                "give the split; add one (train/val/test), or set `split: stratified` to "
                "make one from its groups."
            )
        # 'cv' without a split file folds the training part of the stratified split.
        from valf_study.data.splits import grouped_split

        return grouped_split(
            frame, params["split_fractions"], params["split_seed"], group="group", label="label"
        )

    def cache_name(self, params):
        return "folder-" + Path(params["data_root"]).expanduser().resolve().name

    def describe(self, params):
        return f"A folder of images of your own, `{params['data_root']}`, one folder per class."


def _stamp_file(params):
    """Where the folder's decode check remembers the files it has seen decode."""
    root = str(Path(params["data_root"]).expanduser().resolve())
    key = hashlib.sha1(root.encode()).hexdigest()[:16]
    return Path(params["cache_dir"]) / "verified" / f"{Path(root).name}-{key}.json"


DATASET = ImageFolder()
