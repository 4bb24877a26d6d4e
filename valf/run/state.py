"""Training that survives being killed: Keras' BackupAndRestore, carrying what it leaves out.

Keras' :class:`keras.callbacks.BackupAndRestore` saves the model's weights
(with the optimizer's state and learning rate) and the epoch, so a restarted
``fit`` continues where the last one stopped. A run of this study holds more
state than that, and restarting without it would quietly change the run:

- the adaptive losses' class weights (a variable of the loss, not of the model)
  and the reweighting callback's per-epoch record;
- EarlyStopping's and ReduceLROnPlateau's patience counters and best values,
  and the best-weights checkpoint's best value and epoch;
- whether training already finished (a run killed while being evaluated must
  not train on).

:class:`TrainingState` saves all of that beside Keras' metadata, in one JSON file written by
rename, so the file is always complete. Each epoch's backup is a pair: the weights (the model's
and the optimizer's variables, one NumPy archive), then the metadata; the pair before it is
kept. A kill between the two writes, or a damaged file, makes a restart fall back to the
previous pair.

:class:`BestWeightsCheckpoint` is ModelCheckpoint (best val_loss, weights only)
writing through a temporary file, so the best weights on disk are never a
half-written file.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import keras
import numpy as np

from valf._plain import plain
from valf.run.rundir import write_atomic

__all__ = ["BestWeightsCheckpoint", "TrainingState", "read_training_state"]

# Attributes that make up each callback's memory.
_CALLBACK_STATE = {
    keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch", "stopped_epoch"),
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
    keras.callbacks.ModelCheckpoint: ("best", "best_epoch"),
}


def read_training_state(backup_dir):
    """The state the last backup recorded (``epoch``, ``finished``, ...), or None."""
    path = Path(backup_dir) / "training_metadata.json"
    for candidate in (path, Path(f"{path}.bkp")):
        try:
            return json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None


class BestWeightsCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keep the weights of the epoch with the best ``val_loss``, written atomically.

    Records the 0-based epoch of the best weights in :attr:`best_epoch`.
    """

    def __init__(self, filepath, monitor="val_loss"):
        self.final_path = os.fspath(filepath)
        partial = self.final_path[: -len(".weights.h5")] + ".partial.weights.h5"
        super().__init__(partial, monitor=monitor, save_best_only=True, save_weights_only=True)
        self.best_epoch = None

    def _save_model(self, epoch, batch, logs):
        super()._save_model(epoch, batch, logs)
        if os.path.exists(self.filepath):
            os.replace(self.filepath, self.final_path)
            self.best_epoch = int(epoch)


class TrainingState(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that also restores the loss's weights and the callbacks' counters.

    Put it *last* in the callback list: its ``on_train_begin`` must run after
    the other callbacks reset themselves, and its ``on_epoch_end`` after they
    have updated their state for the epoch.

    Parameters
    ----------
    backup_dir : path-like
        Folder of the backup; removed by the caller once the run is complete.
    loss : keras.losses.Loss, optional
        A loss with ``get_class_weights``/``set_class_weights`` (DWFL, VALF).
    callbacks : sequence of keras.callbacks.Callback
        Callbacks whose state to carry: EarlyStopping, ReduceLROnPlateau,
        ModelCheckpoint (and subclasses), and any with a ``history`` list
        (the reweighting callbacks).
    """

    def __init__(self, backup_dir, loss=None, callbacks=()):
        super().__init__(
            os.fspath(backup_dir),
            save_freq="epoch",
            double_checkpoint=True,
            delete_checkpoint=False,
        )
        self.loss = loss if hasattr(loss, "set_class_weights") else None
        self.tracked = list(callbacks)
        self.finished = False
        self.restored_epoch = 0

    # -- what is carried ---------------------------------------------------------------
    def _extra_state(self):
        callbacks = []
        for callback in self.tracked:
            record = {}
            for kind, attributes in _CALLBACK_STATE.items():
                if isinstance(callback, kind):
                    record.update({a: plain(getattr(callback, a, None)) for a in attributes})
            if isinstance(getattr(callback, "history", None), list):
                record["history"] = callback.history
            callbacks.append(record)
        state = {"callbacks": callbacks, "finished": self.finished}
        if self.loss is not None:
            state["class_weights"] = self.loss.get_class_weights().tolist()
        return state

    def _restore_extra_state(self, state):
        for callback, record in zip(self.tracked, state.get("callbacks", [])):
            for name, value in record.items():
                setattr(callback, name, value)
        if self.loss is not None and state.get("class_weights") is not None:
            self.loss.set_class_weights(state["class_weights"])
        self.finished = bool(state.get("finished", False))

    # -- the model's and the optimizer's variables, as one .npz ----------------------------
    # Keras' own weights file walks every layer into HDF5 (70 ms an epoch for the quick
    # study's small CNN); the values of the same variables in a NumPy archive take a few.
    @property
    def _weights_file(self):
        return os.path.join(self.backup_dir, "latest.weights.npz")

    @property
    def _prev_weights_file(self):
        return self._weights_file + ".bkp"

    def _variables(self):
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        return list(self.model.weights) + (list(optimizer.variables) if optimizer else [])

    def _write_weights(self, path):
        buffer = io.BytesIO()
        np.savez(buffer, *[keras.ops.convert_to_numpy(v.value) for v in self._variables()])
        write_atomic(path, buffer.getvalue())

    def _read_weights(self, path):
        variables = self._variables()
        with np.load(path) as archive:
            values = [archive[f"arr_{i}"] for i in range(len(archive.files))]
        if len(values) != len(variables):
            raise ValueError(
                f"{path} holds {len(values)} variables, the model has {len(variables)}."
            )
        for variable, value in zip(variables, values):
            variable.assign(value)

    # -- Keras hooks ---------------------------------------------------------------------
    def _pairs(self):
        """(weights, metadata) of the latest backup, then of the one before."""
        return (
            (self._weights_file, self._training_metadata_path),
            (self._prev_weights_file, self._prev_training_metadata_path),
        )

    def _save_model(self):
        # The latest pair becomes the previous one (by rename: no copy), then the new pair is
        # written, weights first. A kill at any point leaves at least one complete pair.
        os.makedirs(self.backup_dir, exist_ok=True)
        (latest, latest_metadata), (previous, previous_metadata) = self._pairs()
        if os.path.exists(latest) and os.path.exists(latest_metadata):
            os.replace(latest, previous)
            os.replace(latest_metadata, previous_metadata)
        self._write_weights(latest)
        metadata = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            **self._extra_state(),
        }
        write_atomic(latest_metadata, json.dumps(metadata))

    def _load_model(self):
        for weights_path, metadata_path in self._pairs():
            if not (os.path.exists(weights_path) and os.path.exists(metadata_path)):
                continue  # an incomplete pair: a kill between its two writes
            try:
                self._load_pair(weights_path, metadata_path)
                return
            except (OSError, ValueError, KeyError):
                continue  # damaged: fall back to the previous pair

    def _load_pair(self, weights_path, metadata_path):
        self._read_weights(weights_path)
        with open(metadata_path, encoding="utf-8") as handle:
            metadata = json.load(handle)
        self.model._initial_epoch = int(metadata["epoch"])
        self.restored_epoch = self._current_epoch = int(metadata["epoch"])
        self._restore_extra_state(metadata)

    def on_train_end(self, logs=None):
        # Training is over (all epochs, early stop or NaN): say so, so a restart evaluates
        # instead of training on.
        self.finished = True
        self._save_model()
