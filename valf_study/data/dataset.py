"""The interface every data set of the study implements, and the registry that finds them.

A *data set* is one kind of data a study can run on: LungHist700 as released, its generated
stand-in, a folder of one's own images, or a public set fetched from the package registry. Each
is a :class:`DataSet` in a module of its own under :mod:`valf_study.data.sets`, which holds
everything particular to it (how it is read, its classes, magnifications or none, its splits,
its preparation, what the book says about it); the rest of the study asks the data set, never
its name. Adding a data set is one module there (with ``DATASET = YourDataSet()``) plus its
tests: :func:`registry` finds every module of the package.

The frames a data set reads have one row per image and at least the columns ``path`` (the
absolute path of the image file), ``image_path`` (relative to the data root), ``label`` (int
class index), ``class_name`` and its group column (:attr:`DataSet.group`: what must never be
divided between splits); :meth:`DataSet.split` adds ``split`` (``"train"``, ``"val"``,
``"test"``).
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from functools import cache
from pathlib import Path

from valf_study.data.errors import DataError
from valf_study.data.splits import group_kfold_split, grouped_split, training_folds_split

__all__ = ["DataSet", "ParameterProblem", "get", "registry"]


class ParameterProblem(ValueError):
    """Run parameters that do not fit the data set they name (the parameters module turns it
    into its ParameterError)."""


class DataSet:
    """One kind of data a study can run on; subclass it in a module of
    :mod:`valf_study.data.sets` and set ``DATASET`` there.

    Class attributes
    ----------------
    name : str
        The run parameter ``dataset`` (and the study file's ``data: dataset``).
    title : str
        How the book names it.
    magnifications : tuple of str or None
        The data set's magnifications (separate worlds, each its own run), or None.
    options : tuple of str
        Run parameters only this data set takes (the generator settings, a split file, ...);
        other data sets record them as None.
    splits : tuple of str
        The values of the run parameter ``split`` it supports.
    group : str
        The column of what must never be divided between splits (a patient, a slide).
    within : tuple of str
        Columns that make separate worlds, split separately (LungHist700's magnification).
    layout_of_lunghist700 : bool
        Its images are in LungHist700's released layout (the release and its stand-in): the
        book's sections about that layout (the official split, its counts) apply.
    paper : bool
        The paper's numbers were measured on it, so the book sets ours beside them.
    generated : bool
        Its images are drawn by this project, not real.
    """

    name = ""
    title = ""
    magnifications = None
    options = ()
    splits = ("official", "stratified", "cv", "kfold")
    group = "group"
    within = ()
    layout_of_lunghist700 = False
    paper = False
    generated = False

    # -- parameters ------------------------------------------------------------------------
    def normalise(self, params, given):
        """Check and complete the run parameters that concern the data set, in place.

        ``params`` are the checked values (defaults filled), ``given`` what was asked. The
        default: the split must be one this data set supports.
        """
        if params["split"] not in self.splits:
            raise ParameterProblem(
                f"Parameter `split` must be one of {list(self.splits)} for dataset "
                f"{self.name!r}, received {params['split']!r}."
            )

    def shares_split(self, params):
        """Whether the run's split is cut in the shares ``split_fractions``."""
        return params["split"] in ("patient", "stratified")

    def known_class_names(self, params):
        """The class names when they are known without reading the data (None otherwise)."""
        return None

    # -- the data ----------------------------------------------------------------------------
    def prepare(self, params, progress=True):
        """Make sure the data the run names is there and is what it says; return the class
        names. Raise :class:`~valf_study.data.errors.DataError` saying what to do."""
        raise NotImplementedError

    def class_names(self, params):
        """The class names, in label order."""
        raise NotImplementedError

    def read(self, params):
        """The data set's frame (see the module's docstring), at the run's magnification."""
        raise NotImplementedError

    def official_split(self, frame, params):
        """``frame`` with the data set's own split (``split: official``, and the base of
        ``split: cv``)."""
        raise DataError(f"The data set {self.name!r} has no split of its own.")

    def split(self, params):
        """The data set's frame with its ``split`` column, as ``params`` ask."""
        frame = self.read(params)
        kind, seed, fractions = params["split"], params["split_seed"], params["split_fractions"]
        columns = {"group": self.group, "label": "label", "within": self.within}
        if kind in ("official", "cv"):
            frame = self.official_split(frame, params)
        elif kind == "patient":
            frame = grouped_split(frame, fractions, seed, group=self.group, within=self.within)
        elif kind == "stratified":
            frame = grouped_split(frame, fractions, seed, **columns)
        if kind == "kfold":
            frame = group_kfold_split(frame, params["n_folds"], params["fold"], seed, **columns)
        elif kind == "cv":
            frame = training_folds_split(frame, params["n_folds"], params["fold"], seed, **columns)
        return frame

    def fingerprint(self, params, frames):
        """What the run read, condensed (:func:`valf_study.data.fingerprint.run_fingerprint`):
        the content of every image of its splits, hashed once and remembered under the run's
        cache folder."""
        from valf_study.data.fingerprint import run_fingerprint

        root = str(Path(params["data_root"]).expanduser().resolve())
        key = hashlib.sha1(root.encode()).hexdigest()[:16]
        cache_file = Path(params["cache_dir"]) / "hashes" / f"{self.name}-{key}.json"
        return run_fingerprint(frames, cache_file=cache_file)

    def cache_name(self, params):
        """The decode cache's name for the run's images (entries are also keyed on each file's
        path, size and modification time, so two data sets never share pixels by mistake)."""
        return self.name

    # -- the book ----------------------------------------------------------------------------
    def describe(self, params):
        """A paragraph of Markdown for the book: what the data set is, where it comes from,
        under which licence."""
        return self.title

    def __repr__(self):
        return f"<data set {self.name!r}>"


@cache
def registry():
    """Every data set, by name: the ``DATASET`` of each module of :mod:`valf_study.data.sets`."""
    import valf_study.data.sets as package

    found = {}
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("_"):
            continue
        dataset = importlib.import_module(f"{package.__name__}.{module.name}").DATASET
        found[dataset.name] = dataset
    return found


def get(name):
    """The data set called ``name``; a ValueError names the known ones."""
    datasets = registry()
    if name not in datasets:
        raise ValueError(f"Unknown data set {name!r}; choose one of {sorted(datasets)}.")
    return datasets[name]
