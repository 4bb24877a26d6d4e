"""One run of the study: resolved parameters in, a complete run directory out.

:func:`train` follows the protocol of METHOD.md section 6: Adam at the given
learning rate, batch size 4, up to 100 epochs, EarlyStopping(val_loss, 25),
ReduceLROnPlateau(val_loss, 10, min_lr 1e-7), the best-val_loss weights
restored before testing, CSVLogger, TerminateOnNaN, and the VALF or DWFL
reweighting callback where the loss needs one. A run killed at any point
continues from its last finished epoch when started again
(:mod:`valf.checkpointing`), and a complete run is not trained again.

The files it writes are listed in :mod:`valf.rundir`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from valf import rundir
from valf.data.lunghist700 import CLASS_NAMES
from valf.parameters import ParameterError, resolve_parameters, run_id

__all__ = ["CLASS_NAMES", "build_loss", "train"]

_EVAL_BATCH_SIZE = 16


def build_loss(params, class_counts):
    """The Keras loss a run trains with, from its parameters and its training counts.

    CCE is Keras' own ``SparseCategoricalCrossentropy`` (the pipeline yields integer
    labels); the others are :mod:`valf.losses`. WCCE takes ``balanced`` weights from
    the training counts, CB the effective-number weights; a DWFL/VALF prior
    ``"inverse_frequency"`` starts from the balanced weights scaled to mean 1.
    """
    from valf import losses

    name, gamma = params["loss"], params["gamma"]
    counts = np.asarray(class_counts, dtype=float)
    num_classes = len(counts)
    if name == "CCE":
        return keras.losses.SparseCategoricalCrossentropy(name="categorical_crossentropy")
    if name == "WCCE":
        return losses.WeightedCategoricalCrossentropy(
            losses.balanced_class_weights(counts, is_counts=True))
    if name == "FL":
        return losses.FocalLoss(gamma=gamma, alpha=params["alpha"])
    if name == "CB":
        return losses.ClassBalancedLoss(counts, beta=params["cb_beta"], gamma=gamma)
    if name == "CEFL":
        return losses.CEFL(gamma=gamma)
    if name == "CEFL2":
        return losses.CEFL2(gamma=gamma)
    prior = params["prior"]
    if prior == "uniform":
        prior = None
    elif prior == "inverse_frequency":
        balanced = losses.balanced_class_weights(counts, is_counts=True)
        prior = (balanced / balanced.mean()).tolist()
    if name == "DWFL":
        return losses.DynamicWeightedFocalLoss(num_classes, gamma=gamma, prior=prior)
    if name == "VALF":
        return losses.ValidationAdaptiveFocalLoss(num_classes, gamma=gamma, prior=prior)
    raise ParameterError(f"Unknown loss {name!r}.")  # resolve_parameters rules this out


def _static_class_weights(loss):
    """The fixed per-class weights of WCCE, CB and FL with a per-class alpha, else None."""
    for attribute in ("class_weights", "alpha"):  # WCCE and CB; FL
        value = getattr(loss, attribute, None)
        if isinstance(value, (list, tuple, np.ndarray)):
            return np.asarray(value, dtype=float)
    return None


def _under_sweep(run_dir):
    # The sweep writes DONE itself, after papermill has saved the executed notebook.
    return os.environ.get("VALF_SWEEP_RUN") == Path(run_dir).name


def train(params=None, run_dir=None, *, progress=None, **overrides):
    """Train and test one run; return its run directory.

    Parameters
    ----------
    params : mapping, optional
        Run parameters (:data:`valf.parameters.PARAMETERS`); missing ones take
        their defaults.
    run_dir : path-like, optional
        Default ``<runs_root>/<study>/<run_id>``.
    progress : bool, optional
        A progress bar over epochs; by default on, except under the sweep, which
        logs one line per epoch instead (the executed notebook keeps them).
    **overrides
        More parameters, taking precedence over ``params``.

    Returns
    -------
    pathlib.Path
        The run directory, complete (``status.json`` says ``ok``).

    Raises
    ------
    valf.parameters.ParameterError
        Unknown or invalid parameters, before anything is written.
    valf.data.errors.DataError
        The data set is missing or not what the parameters say.

    Examples
    --------
    A two-epoch run on a tiny generated set (about 30 s on 2 CPU cores):

    >>> import tempfile
    >>> tmp = tempfile.mkdtemp()
    >>> run = train(epochs=2, warmup_epochs=1, image_scale=0.04, runs_root=tmp,
    ...             data_root=tmp + "/data", cache_dir=tmp + "/cache",
    ...             synthetic={"scale": 0.3, "image_size": [48, 64]})  # doctest: +SKIP
    >>> sorted(p.name for p in run.iterdir())  # doctest: +SKIP
    ['DONE', 'best.weights.h5', 'class_weights.csv', 'confusion.csv', ...]
    """
    params = resolve_parameters(params, **overrides)
    run_dir = Path(run_dir) if run_dir is not None else rundir.run_directory(params)
    if rundir.is_done(run_dir):
        print(f"{run_dir} is complete already; nothing to do.")
        return run_dir
    _claim(run_dir, params)
    rundir.write_json(run_dir / "environment.json", _environment())
    rundir.write_status(run_dir, "running", run_id=run_id(params))
    if progress is None:
        progress = not _under_sweep(run_dir)
    started = time.perf_counter()
    try:
        summary = _run(params, run_dir, progress)
    except BaseException as error:
        rundir.write_status(run_dir, "failed", error, run_id=run_id(params))
        raise
    summary["wall_seconds"] = round(time.perf_counter() - started, 2)
    rundir.write_status(run_dir, "ok", run_id=run_id(params), **summary)
    if not _under_sweep(run_dir):
        rundir.mark_done(run_dir)
    return run_dir


def _claim(run_dir, params):
    """Create the run directory, or check that the one there belongs to these parameters."""
    existing = run_dir / "params.yaml"
    if existing.is_file():
        recorded = rundir.read_yaml(existing)
        if recorded.get("_hash") not in (None, _params_record(params)["_hash"]):
            raise ParameterError(
                f"{run_dir} holds a run with other parameters ({existing}); choose another "
                "`run_dir` or delete it.")
    run_dir.mkdir(parents=True, exist_ok=True)
    rundir.write_yaml(existing, _params_record(params))


def _params_record(params):
    from valf.parameters import parameter_hash

    return {**params, "_run_id": run_id(params), "_hash": parameter_hash(params)}


def _environment():
    from valf.environment import environment_record

    return {**environment_record(tensorflow_devices=True), "time": rundir.now()}


def _configure_runtime(params):
    import tensorflow as tf

    threads = os.environ.get("VALF_THREADS")
    if threads:
        import cv2

        cv2.setNumThreads(int(threads))
    for gpu in tf.config.list_physical_devices("GPU"):
        try:  # several runs may share one GPU (the sweep's runs_per_gpu)
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: TF_FORCE_GPU_ALLOW_GROWTH decides
            pass
    keras.utils.set_random_seed(params["seed"])
    if params["deterministic"]:
        tf.config.experimental.enable_op_determinism()


def _datasets(params, frames, first_epoch):
    from valf.augment import REFERENCE_SIZE, eval_transform, output_size, train_transform
    from valf.data.pipeline import DecodedImageCache, make_dataset

    scale = params["image_scale"]
    out_size = output_size(scale)
    if params["dataset"] == "synthetic":
        source_size = tuple(params["synthetic"]["image_size"])
        name = "synthetic-" + "-".join(str(v) for v in params["synthetic"].values()
                                       if not isinstance(v, list))
    else:
        source_size, name = REFERENCE_SIZE, "lunghist700"
    cache_dir, magnification = params["cache_dir"], params["magnification"]
    eval_cache = DecodedImageCache(cache_dir, name, magnification, out_size)
    if not params["augment"]:
        train_tf, train_cache = eval_transform(scale), eval_cache
    elif params["fast_augmentation"]:
        train_tf, train_cache = train_transform(scale, fast=True), eval_cache
    else:
        train_tf = train_transform(scale, input_size=source_size)
        train_cache = DecodedImageCache(cache_dir, name, magnification, source_size)
    seed, batch = params["seed"], params["batch_size"]
    return {
        "train": make_dataset(frames["train"], train_tf, batch, shuffle=True, seed=seed,
                              cache=train_cache, first_epoch=first_epoch),
        "val": make_dataset(frames["val"], eval_transform(scale), _EVAL_BATCH_SIZE,
                            cache=eval_cache),
        "test": make_dataset(frames["test"], eval_transform(scale), _EVAL_BATCH_SIZE,
                             cache=eval_cache),
        # DWFL measures accuracy on the training images as trained on, without augmentation.
        "train_eval": make_dataset(frames["train"], eval_transform(scale), _EVAL_BATCH_SIZE,
                                   cache=eval_cache),
    }, out_size


class EpochLog(keras.callbacks.Callback):
    """One line per epoch (sweep runs, kept in the executed notebook) or a tqdm bar."""

    def __init__(self, epochs, first_epoch=0, progress=True):
        super().__init__()
        self.epochs, self.first_epoch, self.progress = epochs, first_epoch, progress
        self.bar = None

    def on_train_begin(self, logs=None):
        if self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.epochs, initial=self.first_epoch, unit="epoch",
                            desc="training")
        elif self.first_epoch:
            print(f"resuming after epoch {self.first_epoch}", flush=True)
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        shown = {k: logs[k] for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                 if k in logs}
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()}, refresh=False)
            self.bar.update(1)
        else:
            text = " ".join(f"{k} {v:.4f}" for k, v in shown.items())
            print(f"epoch {epoch + 1}/{self.epochs} {text} "
                  f"({time.perf_counter() - self.started:.0f} s)", flush=True)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


def _run(params, run_dir, progress):
    from valf import metrics as study_metrics
    from valf.checkpointing import BestWeightsCheckpoint, TrainingState, read_training_state
    from valf.data.prepare import prepare_dataset, split_frames
    from valf.models import build_model
    from valf.reweighting import DynamicWeights, ValidationAdaptiveWeights

    _configure_runtime(params)
    prepare_dataset(params["dataset"], params["data_root"], params["synthetic"],
                    progress=progress)
    frames = split_frames(params)
    counts = np.bincount(frames["train"]["label"], minlength=len(CLASS_NAMES))

    backup_dir = run_dir / "backup"
    state = read_training_state(backup_dir)
    first_epoch = int(state["epoch"]) if state else 0
    # CSVLogger's own file (epochs from 0, appended across resumptions) lives with the
    # resumable state; history.csv is derived from it.
    history_log = backup_dir / "history_log.csv"
    history_path = run_dir / "history.csv"
    if state is None:  # a fresh start: no rows of an earlier attempt
        history_log.unlink(missing_ok=True)
        history_path.unlink(missing_ok=True)
    backup_dir.mkdir(parents=True, exist_ok=True)
    data, out_size = _datasets(params, frames, first_epoch)

    model = build_model(params["backbone"], len(CLASS_NAMES), (*out_size, 3), params["weights"])
    loss = build_loss(params, counts)
    model.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]), loss=loss,
                  metrics=["accuracy"], jit_compile=params["jit_compile"])

    reweighting = None
    if params["loss"] == "VALF":
        reweighting = ValidationAdaptiveWeights(
            loss, data["val"], warmup_epochs=params["warmup_epochs"], rate=params["rate"],
            class_names=CLASS_NAMES)
    elif params["loss"] == "DWFL":
        reweighting = DynamicWeights(loss, data["train_eval"],
                                     smoothing=params["dwfl_smoothing"], class_names=CLASS_NAMES)
    best_path = run_dir / "best.weights.h5"
    checkpoint = BestWeightsCheckpoint(best_path)
    early_stopping = keras.callbacks.EarlyStopping("val_loss",
                                                   patience=params["early_stopping_patience"])
    reduce_lr = keras.callbacks.ReduceLROnPlateau(
        "val_loss", factor=params["reduce_lr_factor"], patience=params["reduce_lr_patience"],
        min_lr=params["min_lr"])
    stateful = [c for c in (reweighting, checkpoint, early_stopping, reduce_lr) if c is not None]
    backup = TrainingState(backup_dir, loss=loss, callbacks=stateful)
    callbacks = [
        # The reweighting callback first: it adds val_acc_<class>/weight_<class> to the logs
        # that the callbacks after it (CSVLogger) see.
        *([reweighting] if reweighting is not None else []),
        keras.callbacks.TerminateOnNaN(),
        checkpoint, early_stopping, reduce_lr,
        keras.callbacks.CSVLogger(str(history_log), append=True),
        EpochLog(params["epochs"], first_epoch, progress),
        backup,  # last: restores after the others reset, saves after they updated
    ]

    fit_started = time.perf_counter()
    if not (state and state.get("finished")):
        model.fit(data["train"], validation_data=data["val"], epochs=params["epochs"],
                  callbacks=callbacks, verbose=0, shuffle=False)  # the pipeline shuffles
    else:  # killed after training, before the run was complete: evaluate only
        backup.set_model(model)
        backup.on_train_begin()
    fit_seconds = time.perf_counter() - fit_started

    history = _tidy_history(history_log, history_path)
    epochs_run = len(history)
    nan_stop = bool(len(history) and not np.isfinite(history["loss"].iloc[-1]))
    if best_path.is_file():
        model.load_weights(best_path)
    else:  # val_loss never finite: nothing better than the last weights
        print("warning: no finite val_loss was recorded; testing the last weights.",
              file=sys.stderr)

    probabilities = {split: model.predict(data[split], verbose=0) for split in ("val", "test")}
    labels = {split: frames[split]["label"].to_numpy() for split in ("val", "test")}
    test_metrics = study_metrics.classification_metrics(
        labels["test"], probabilities["test"], CLASS_NAMES, seed=params["seed"])
    val_metrics = study_metrics.classification_metrics(
        labels["val"], probabilities["val"], CLASS_NAMES, bootstrap_resamples=0,
        seed=params["seed"])

    best_epoch = checkpoint.best_epoch
    summary = {
        "epochs_run": epochs_run,
        "best_epoch": None if best_epoch is None else int(best_epoch) + 1,
        "stopped_early": epochs_run < params["epochs"] and not nan_stop,
        "terminated_on_nan": nan_stop,
        "resumed_from_epoch": first_epoch,
        "fit_seconds": round(fit_seconds, 2),
        "final_learning_rate": float(history["learning_rate"].iloc[-1])
        if "learning_rate" in history and len(history) else params["learning_rate"],
    }
    result = {
        **test_metrics,
        **{f"val_{k}": v for k, v in val_metrics.items()
           if k in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "auc")},
        "val_loss_best": float(history["val_loss"].min()) if len(history) else None,
        **summary,
        **{f"n_train_{c}": int(n) for c, n in zip(CLASS_NAMES, counts)},
        "n_train": int(counts.sum()), "n_val": int(len(labels["val"])),
        "n_test": int(len(labels["test"])),
    }
    _write_outputs(run_dir, frames, labels, probabilities, result, history, loss, reweighting)
    if not params["keep_weights"]:
        best_path.unlink(missing_ok=True)
    return summary


def _tidy_history(log_path, path):
    """Write history.csv from CSVLogger's file: epochs from 1, without the rows an
    interrupted epoch may have written twice."""
    if not log_path.is_file():
        return pd.DataFrame({"epoch": [], "loss": [], "val_loss": []})
    history = pd.read_csv(log_path)
    history = history.drop_duplicates("epoch", keep="last").sort_values("epoch")
    history["epoch"] = history["epoch"].astype(int) + 1
    rundir.write_atomic(path, history.to_csv(index=False))
    return history.reset_index(drop=True)


def _write_outputs(run_dir, frames, labels, probabilities, result, history, loss, reweighting):
    from valf import metrics as study_metrics

    rows = []
    for split in ("val", "test"):
        part = frames[split]
        table = pd.DataFrame({
            "split": split,
            "image_path": part["image_path"],
            "patient_id": part["patient_id"],
            "label": labels[split],
            "class_name": [CLASS_NAMES[c] for c in labels[split]],
        })
        for c, name in enumerate(CLASS_NAMES):
            table[f"prob_{name}"] = probabilities[split][:, c]
        table["predicted"] = probabilities[split].argmax(1)
        table["predicted_name"] = [CLASS_NAMES[c] for c in table["predicted"]]
        rows.append(table)
    rundir.write_atomic(run_dir / "predictions.csv", pd.concat(rows).to_csv(index=False))

    confusion = study_metrics.confusion_matrix(labels["test"], probabilities["test"])
    confusion = pd.DataFrame(confusion, index=pd.Index(CLASS_NAMES, name="true"),
                             columns=CLASS_NAMES)
    rundir.write_atomic(run_dir / "confusion.csv", confusion.to_csv())

    weights = _class_weight_table(loss, reweighting)
    if weights is not None:
        rundir.write_atomic(run_dir / "class_weights.csv", weights.to_csv(index=False))
    rundir.write_json(run_dir / "metrics.json", result)


def _class_weight_table(loss, reweighting):
    """Weights per epoch for DWFL/VALF (epoch 0: before training), one row for fixed weights."""
    if reweighting is not None:
        initial = {"epoch": 0, "updated": False,
                   **{f"weight_{c}": float(w) for c, w in zip(CLASS_NAMES, loss.prior)}}
        rows = [initial] + [{**record, "epoch": int(record["epoch"]) + 1}
                            for record in reweighting.history]
        return pd.DataFrame(rows)
    static = _static_class_weights(loss)
    if static is None:
        return None
    return pd.DataFrame([{"epoch": 0, "updated": False,
                          **{f"weight_{c}": float(w) for c, w in zip(CLASS_NAMES, static)}}])
