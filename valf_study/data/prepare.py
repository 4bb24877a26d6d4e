"""From a run's parameters to its data: the data set on disk, its classes, the split, the
training set.

:func:`prepare_dataset` makes sure the data a run names is there and is what the run says it
is (each data set knows how: :mod:`valf_study.data.sets`); :func:`split_frames` then reads it,
attaches the split and applies the training-set samplers; :func:`check_splits` makes the split
of every planned run once, before any trains.
"""

from __future__ import annotations

from valf_study.data import dataset, sampling
from valf_study.data.errors import DataError, listing
from valf_study.data.splits import SPLITS

__all__ = [
    "check_images",
    "check_splits",
    "class_names",
    "data_set",
    "planned_splits",
    "prepare_dataset",
    "split_frames",
    "split_key",
]


def data_set(params):
    """The :class:`~valf_study.data.dataset.DataSet` a run's parameters name."""
    return dataset.get(params["dataset"])


def prepare_dataset(params, progress=True):
    """Check the data set a run names (generate or fetch what the data set makes itself);
    return its class names, in label order.

    Parameters
    ----------
    params : mapping
        Resolved run parameters (:func:`valf_study.run.parameters.resolve_parameters`).
    progress : bool
        Progress bar while generating or decoding.

    Raises
    ------
    DataError
        The data missing (with how to get it) or not what the parameters say.
    """
    return data_set(params).prepare(params, progress=progress)


def class_names(params):
    """The class names of a run's data set, in label order."""
    return data_set(params).class_names(params)


def split_frames(params):
    """The train, val and test frames of a run (``path``, ``image_path``, ``label``,
    ``class_name``, a group column, ``split``, and the reader's own columns), after the
    split, the long-tailed subsampling and the sampler.

    Returns
    -------
    dict
        ``{"train": ..., "val": ..., "test": ...}``; ``"train"`` may repeat rows
        (over-sampling).

    Raises
    ------
    DataError
        A split without an image of some class (naming the classes), or a split file that
        gives no split where ``split`` is 'official'.
    """
    frame = data_set(params).split(params)
    frames = {name: frame[frame["split"] == name].reset_index(drop=True) for name in SPLITS}
    names = class_names(params)
    for name, part in frames.items():
        missing = sorted(set(range(len(names))) - set(part["label"]))
        if missing:
            where = f" at {params['magnification']}" if params.get("magnification") else ""
            how = f"split {params['split']!r}"
            if params.get("split_seed") is not None:
                how += f", split_seed {params['split_seed']}"
            raise DataError(
                f"The {name} split of {params['data_root']}{where} ({how}) has no images of "
                f"{[names[c] for c in missing]}. Every class needs images in train, val and "
                "test: add images of these classes, change `split_fractions`, or give a "
                "split file."
            )
    frames["train"] = sampling.resample(
        frames["train"], params["sampler"], seed=params["seed"], rho=params["imbalance_ratio"]
    )
    return frames


#: What a run's split depends on (the sampler's seed only where a sampler or the long-tailed
#: subsampling runs).
_SPLIT_KEYS = (
    "dataset",
    "data_root",
    "split",
    "split_seed",
    "fold",
    "n_folds",
    "split_fractions",
    "magnification",
    "split_csv",
    "group_rule",
    "imbalance_ratio",
    "sampler",
)


def split_key(params):
    """The parameters a run's frames depend on, as a hashable key: runs with one key read the
    same images in the same splits."""
    key = tuple(str(params[k]) for k in _SPLIT_KEYS)
    if params["sampler"] != "none" or params["imbalance_ratio"] is not None:
        key += (str(params["seed"]),)
    return key


def planned_splits(runs_params, progress=False):
    """Make the split of every planned run once (runs sharing a split share the work); return
    ``{split_key(params): frames}``, or raise one DataError naming every split that cannot be
    used (a class left out, a long-tailed ratio not reached), before any run trains.

    ``runs_params`` are resolved parameters of runs on one data set.
    """
    from tqdm.auto import tqdm

    distinct = {}
    for params in runs_params:
        distinct.setdefault(split_key(params), params)
    found, problems = {}, []
    for key, params in tqdm(distinct.items(), desc="splits", disable=not progress):
        try:
            found[key] = split_frames(params)
        except (DataError, ValueError) as error:  # ValueError: a long-tailed ratio not reached
            problems.append(str(error))
    if problems:
        unique = list(dict.fromkeys(problems))
        raise DataError(f"{len(unique)} planned splits cannot be used:{listing(unique)}")
    return found


def check_images(runs_params, frames, progress=False):
    """The checks of ``valf data check``, on the images every planned run reads: each decodes
    within the pixel limit, and no picture sits in two classes or in two splits of one run
    (:func:`valf_study.data.check.duplicate_problems`). Raise one DataError naming every
    problem; return the notes (copies within one class and split: reported, harmless).

    ``frames`` is :func:`planned_splits`'s result. A generated data set, drawn by this project,
    is not decoded again. What each image is found to be is remembered under the runs' cache
    folder, so a second sweep reads only new or changed files.
    """
    import hashlib
    from pathlib import Path

    import pandas as pd

    from valf_study.data.check import duplicate_problems, image_infos, image_problems

    if not runs_params or data_set(runs_params[0]).generated:
        return []
    params = runs_params[0]
    wholes = [
        pd.concat([part.assign(split=name) for name, part in split.items()]).drop_duplicates(
            ["path", "split"]
        )
        for split in frames.values()
    ]
    paths = sorted({path for whole in wholes for path in whole["path"]})
    root = str(Path(params["data_root"]).expanduser().resolve())
    key = hashlib.sha1(root.encode()).hexdigest()[:16]
    cache = Path(params["cache_dir"]) / "images" / f"{params['dataset']}-{key}.json"
    infos = image_infos(paths, cache, progress=progress)
    problems, notes = list(image_problems(infos)), []
    for whole in wholes:
        found, remarks = duplicate_problems(whole, infos)
        problems += found
        notes += remarks
    problems, notes = list(dict.fromkeys(problems)), list(dict.fromkeys(notes))
    if problems:
        raise DataError(
            f"The images of {params['data_root']} cannot be used as the planned runs would "
            f"use them:{listing(problems)}\n(`valf data check DIR` shows a folder's problems "
            "and notes.)"
        )
    return notes


def check_splits(runs_params, progress=False):
    """:func:`planned_splits`, for its checks only."""
    planned_splits(runs_params, progress)
