"""Training that survives being killed: the state a run carries from one epoch to the next.

A restarted ``fit`` that continues where the last one stopped needs more than the model's
weights, and restarting without any of it would quietly change the run:

- the model's and the optimizer's variables (the optimizer's moments, its step count and the
  learning rate that ReduceLROnPlateau may have lowered), and the epochs done;
- the adaptive losses' class weights (tracked by the model, so among its weights) and the
  reweighting callback's per-epoch record;
- EarlyStopping's and ReduceLROnPlateau's patience counters and best values, and the
  best-weights checkpoint's best value and epoch;
- whether training already finished (a run killed while being evaluated must not train on).

:class:`TrainingState` saves all of that after every epoch, as a pair: the variables (one NumPy
archive), then the metadata (one JSON file), each written by rename; the pair before it is
kept, so a kill between the two writes, or a damaged file, makes a restart fall back to the
previous pair. A restarted run reads the epoch from :func:`read_training_state` and passes it to
``fit`` as ``initial_epoch``; the callback restores the rest when training begins.

:class:`BestWeightsCheckpoint` keeps the weights of the epoch with the best ``val_loss``,
written through a temporary file, so the best weights on disk are never a half-written file.

Only Keras' public API is used here (callbacks, ``Model.save_weights``, ``Variable.assign``,
``Optimizer.build``).
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import keras
import numpy as np

from valf_study.files import write_atomic
from valf_study.plain import plain

__all__ = ["BestWeightsCheckpoint", "TrainingState", "read_training_state"]

METADATA = "training_metadata.json"
WEIGHTS = "latest.weights.npz"
PREVIOUS = ".bkp"

# Attributes that make up each callback's memory.
_CALLBACK_STATE = {
    keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch", "stopped_epoch"),
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
}


def _pairs(backup_dir):
    """(variables, metadata) of the latest backup, then of the one before."""
    backup_dir = Path(backup_dir)
    latest = (backup_dir / WEIGHTS, backup_dir / METADATA)
    return latest, tuple(path.with_name(path.name + PREVIOUS) for path in latest)


def read_training_state(backup_dir):
    """The state the last complete backup recorded (``epoch``, ``finished``, ...), or None."""
    for weights, metadata in _pairs(backup_dir):
        if not weights.is_file():
            continue
        try:
            return json.loads(metadata.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None


class BestWeightsCheckpoint(keras.callbacks.Callback):
    """Keep the weights of the epoch with the lowest ``monitor`` (``val_loss``), atomically.

    Records the best value in :attr:`best` and its 0-based epoch in :attr:`best_epoch`; an
    epoch whose value is missing or not finite is never the best.
    """

    def __init__(self, filepath, monitor="val_loss"):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.partial = self.filepath[: -len(".weights.h5")] + ".partial.weights.h5"
        self.monitor = monitor
        self.best = math.inf
        self.best_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)) or not float(value) < self.best:
            return
        self.model.save_weights(self.partial, overwrite=True)
        os.replace(self.partial, self.filepath)
        self.best, self.best_epoch = float(value), int(epoch)


class TrainingState(keras.callbacks.Callback):
    """Save, after every epoch, what a restarted ``fit`` needs; restore it when training begins.

    Put it *last* in the callback list: its ``on_train_begin`` must run after the other
    callbacks reset themselves, and its ``on_epoch_end`` after they have updated their state
    for the epoch. Start the restarted ``fit`` at ``initial_epoch=read_training_state(...)
    ["epoch"]``.

    Parameters
    ----------
    backup_dir : path-like
        Folder of the backup; removed by the caller once the run is complete.
    loss : keras.losses.Loss, optional
        A loss with ``get_class_weights``/``set_class_weights`` (the adaptive losses).
    callbacks : sequence of keras.callbacks.Callback
        Callbacks whose state to carry: EarlyStopping, ReduceLROnPlateau,
        :class:`BestWeightsCheckpoint`, and any with a ``history`` list (the reweighting
        callbacks).
    """

    def __init__(self, backup_dir, loss=None, callbacks=()):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.loss = loss if hasattr(loss, "set_class_weights") else None
        self.tracked = list(callbacks)
        self.finished = False
        self.epochs_done = 0

    # -- what is carried ---------------------------------------------------------------
    def _extra_state(self):
        callbacks = []
        for callback in self.tracked:
            record = {}
            for kind, attributes in _CALLBACK_STATE.items():
                if isinstance(callback, kind):
                    record.update({a: plain(getattr(callback, a, None)) for a in attributes})
            if isinstance(callback, BestWeightsCheckpoint):
                record.update(best=callback.best, best_epoch=callback.best_epoch)
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
    def _variables(self):
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        return list(self.model.weights) + (list(optimizer.variables) if optimizer else [])

    def _write_variables(self, path):
        buffer = io.BytesIO()
        np.savez(buffer, *[keras.ops.convert_to_numpy(v.value) for v in self._variables()])
        write_atomic(path, buffer.getvalue())

    def _read_variables(self, path):
        variables = self._variables()
        with np.load(path) as archive:
            values = [archive[f"arr_{i}"] for i in range(len(archive.files))]
        if len(values) != len(variables):
            raise ValueError(
                f"{path} holds {len(values)} variables, the model has {len(variables)}."
            )
        for variable, value in zip(variables, values):
            variable.assign(value)

    def save(self):
        """Write a new pair (the latest becomes the previous one, by rename)."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        (latest, latest_metadata), (previous, previous_metadata) = _pairs(self.backup_dir)
        if latest.exists() and latest_metadata.exists():
            os.replace(latest, previous)
            os.replace(latest_metadata, previous_metadata)
        self._write_variables(latest)
        metadata = {"epoch": self.epochs_done, **self._extra_state()}
        write_atomic(latest_metadata, json.dumps(metadata))

    def restore(self):
        """Load the latest complete pair (or the previous one); return whether one loaded."""
        for weights, metadata in _pairs(self.backup_dir):
            if not (weights.exists() and metadata.exists()):
                continue  # an incomplete pair: a kill between its two writes
            try:
                self._read_variables(weights)
                state = json.loads(metadata.read_text(encoding="utf-8"))
                self.epochs_done = int(state["epoch"])
                self._restore_extra_state(state)
                return True
            except (OSError, ValueError, KeyError):
                continue  # damaged: fall back to the previous pair
        return False

    # -- Keras hooks ---------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self.restore()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = int(epoch) + 1
        self.save()

    def on_train_end(self, logs=None):
        # Training is over (all epochs, early stop or NaN): say so, so a restart evaluates
        # instead of training on.
        self.finished = True
        self.save()
