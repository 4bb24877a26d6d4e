"""One run of the study: resolved parameters in, a complete run directory out.

:func:`train` follows the paper's protocol (``book/method.md``, section "Protocol"): Adam at the
given learning rate, batch size 4, up to 100 epochs, EarlyStopping(val_loss, 25),
ReduceLROnPlateau(val_loss, 10, min_lr 1e-7), the best-val_loss weights restored before testing,
CSVLogger, TerminateOnNaN, and the VALF or DWFL reweighting callback where the loss needs one. A run
killed at any point continues from its last finished epoch when started again
(:mod:`valf_study.run.state`), and a complete run is not trained again.

The files it writes are listed in :mod:`valf_study.run.rundir`.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from valf_study.files import now
from valf_study.run.backend import import_keras
from valf_study.run.parameters import ParameterError, parameter_hash, resolve_parameters, run_id
from valf_study.run.rundir import RunDirectory

__all__ = ["train"]

#: Set by the sweep to the id of the run it executes: the sweep writes DONE itself, after
#: papermill has saved the executed notebook.
SWEEP_RUN_VARIABLE = "VALF_SWEEP_RUN"
#: Set by the sweep: CPU threads the run may use.
THREADS_VARIABLE = "VALF_THREADS"


def train(params=None, run_dir=None, *, progress=None, **overrides):
    """Train and test one run; return its run directory.

    Parameters
    ----------
    params : mapping, optional
        Run parameters (:data:`valf_study.run.parameters.PARAMETERS`); missing ones take their
        defaults.
    run_dir : path-like, optional
        Default ``<runs_root>/<run_id>``.
    progress : bool, optional
        A progress bar over epochs; by default on, except under the sweep, which logs one line
        per epoch instead (the executed notebook keeps them).
    **overrides
        More parameters, taking precedence over ``params``.

    Returns
    -------
    pathlib.Path
        The run directory, complete (``status.json`` says ``ok``).

    Raises
    ------
    valf_study.run.parameters.ParameterError
        Unknown or invalid parameters, before anything is written.
    valf_study.data.errors.DataError
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
    run = RunDirectory(run_dir) if run_dir is not None else RunDirectory.of(params)
    import_keras()
    with run.lock("train"):  # an earlier attempt may still be dying
        if run.is_done():
            print(f"{run.path} is complete already; nothing to do.")
            return run.path
        _claim(run, params)
        run.write_json(run.ENVIRONMENT, _environment())
        run.write_status("running", run_id=run_id(params))
        under_sweep = os.environ.get(SWEEP_RUN_VARIABLE) == run.name
        started = time.perf_counter()
        try:
            summary = _run(params, run, progress=not under_sweep if progress is None else progress)
        except BaseException as error:
            run.write_status("failed", error, run_id=run_id(params))
            raise
        summary["wall_seconds"] = round(time.perf_counter() - started, 2)
        run.write_status("ok", run_id=run_id(params), **summary)
        if not under_sweep:
            run.mark_done()
    return run.path


def _claim(run, params):
    """Create the run directory, or check that the one there belongs to these parameters."""
    record = {**params, "_run_id": run_id(params), "_hash": parameter_hash(params)}
    if (run / run.PARAMS).is_file():
        recorded = run.read_params()
        if recorded.get("_hash") not in (None, record["_hash"]):
            raise ParameterError(
                f"{run.path} holds a run with other parameters ({run / run.PARAMS}); choose "
                "another `run_dir` or delete it."
            )
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_params(record)


def _environment():
    from valf_study.run.environment import environment_record

    return {**environment_record(backend_devices=True), "time": now()}


def _configure_runtime(params):
    import keras

    threads = os.environ.get(THREADS_VARIABLE)
    if threads:
        import cv2

        cv2.setNumThreads(int(threads))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            try:  # several runs may share one GPU (the sweep's runs_per_gpu)
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised: TF_FORCE_GPU_ALLOW_GROWTH decides
                pass
        if params["deterministic"]:
            tf.config.experimental.enable_op_determinism()
    # The layers compute in float16 or bfloat16 under a mixed policy; the softmax head is
    # float32 (valf_study.run.backbones) and the losses cast to float32. Keras' compile wraps the
    # optimizer in a LossScaleOptimizer under mixed_float16.
    keras.config.set_dtype_policy(params["dtype_policy"])
    keras.utils.set_random_seed(params["seed"])


def _run(params, run, progress):
    from valf_study.data.prepare import data_set, prepare_dataset, split_frames
    from valf_study.run.evaluate import evaluate, tidy_history, write_outputs, write_split
    from valf_study.run.inputs import run_datasets
    from valf_study.run.objective import LOSSES, class_weight_table, weight_reach
    from valf_study.run.parameters import check_class_lists
    from valf_study.run.state import BestWeightsCheckpoint, read_training_state

    _configure_runtime(params)
    names = prepare_dataset(params, progress=progress)
    check_class_lists(params, names)
    frames = split_frames(params)
    write_split(run, frames)
    run.write_json(run.DATA, data_set(params).fingerprint(params, frames))
    counts = np.bincount(frames["train"]["label"], minlength=len(names))
    backup_dir = run.backup
    state = read_training_state(backup_dir)
    first_epoch = int(state["epoch"]) if state else 0
    # CSVLogger's own file (epochs from 0, appended across resumptions) lives with the
    # resumable state; history.csv is derived from it.
    history_log = backup_dir / "history_log.csv"
    if state is None:  # a fresh start: no rows of an earlier attempt
        history_log.unlink(missing_ok=True)
        (run / run.HISTORY).unlink(missing_ok=True)
    backup_dir.mkdir(parents=True, exist_ok=True)
    datasets, out_size = run_datasets(params, frames, len(names), first_epoch)
    model, loss = _compiled_model(params, counts, out_size, len(names))
    entry = LOSSES[params["loss"]]
    reweighting = (
        entry.callback(params, loss, datasets["val"], datasets["train_eval"], names)
        if entry.callback is not None
        else None
    )
    checkpoint = BestWeightsCheckpoint(run / run.BEST_WEIGHTS)
    fit_seconds = _fit(
        model,
        datasets,
        params,
        loss,
        reweighting,
        checkpoint,
        backup_dir,
        state,
        first_epoch,
        progress,
    )
    history = tidy_history(history_log, run / run.HISTORY)
    _restore_best(model, run / run.BEST_WEIGHTS)
    labels, probabilities, found = evaluate(model, datasets, frames, names, params["seed"])
    summary = _summary(params, history, checkpoint, first_epoch, fit_seconds)
    weights = class_weight_table(loss, reweighting, names)
    result = {
        **found,
        # How far VALF's or DWFL's weights moved apart: largest / smallest at the end.
        "weight_reach": weight_reach(weights) if reweighting is not None else None,
        "val_loss_best": float(history["val_loss"].min()) if len(history) else None,
        **summary,
        "class_names": list(names),
        **{f"n_train_{c}": int(n) for c, n in zip(names, counts)},
        "n_train": int(counts.sum()),
        "n_val": len(labels["val"]),
        "n_test": len(labels["test"]),
    }
    write_outputs(run, frames, labels, probabilities, result, names, weights)
    if not params["keep_weights"]:
        (run / run.BEST_WEIGHTS).unlink(missing_ok=True)
    return summary


def _compiled_model(params, counts, out_size, num_classes):
    import keras

    from valf_study.run.backbones import build_model
    from valf_study.run.objective import LOSSES

    model = build_model(params["backbone"], num_classes, (*out_size, 3), params["weights"])
    loss = LOSSES[params["loss"]].build(params, np.asarray(counts, dtype=float))
    model.compile(
        optimizer=keras.optimizers.Adam(params["learning_rate"]),
        loss=loss,
        metrics=["accuracy"],
        jit_compile=params["jit_compile"],
    )
    if hasattr(loss, "set_class_weights"):
        from valf.reweighting import track_class_weights

        # Now, not when fit hands the model to the callback: the weights files (backups, the
        # best checkpoint) hold the class weights, and a resumed or evaluate-only run loads them
        # before any fit.
        track_class_weights(model, loss)
    return model, loss


def _fit(
    model, datasets, params, loss, reweighting, checkpoint, backup_dir, state, first_epoch, progress
):
    """Fit with the protocol's callbacks, resuming from ``state``; return the seconds taken."""
    import keras

    from valf_study.data.pipeline import FollowEpochs
    from valf_study.run.progress import EpochLog
    from valf_study.run.state import TrainingState

    early_stopping = keras.callbacks.EarlyStopping(
        "val_loss", patience=params["early_stopping_patience"]
    )
    reduce_lr = keras.callbacks.ReduceLROnPlateau(
        "val_loss",
        factor=params["reduce_lr_factor"],
        patience=params["reduce_lr_patience"],
        min_lr=params["min_lr"],
    )
    stateful = [c for c in (reweighting, checkpoint, early_stopping, reduce_lr) if c is not None]
    backup = TrainingState(backup_dir, loss=loss, callbacks=stateful)
    callbacks = [
        FollowEpochs(datasets["train"]),  # each epoch's order and augmentation seeds
        # The reweighting callback before the loggers: it adds val_acc_<class>/weight_<class>
        # to the logs that the callbacks after it (CSVLogger) see.
        *([reweighting] if reweighting is not None else []),
        keras.callbacks.TerminateOnNaN(),
        checkpoint,
        early_stopping,
        reduce_lr,
        keras.callbacks.CSVLogger(str(backup_dir / "history_log.csv"), append=True),
        EpochLog(params["epochs"], first_epoch, progress),
        backup,  # last: restores after the others reset, saves after they updated
    ]
    started = time.perf_counter()
    if not (state and state.get("finished")):
        model.fit(
            datasets["train"],
            validation_data=datasets["val"],
            initial_epoch=first_epoch,  # a resumed run goes on after its last saved epoch
            epochs=params["epochs"],
            callbacks=callbacks,
            verbose=0,
            shuffle=False,
        )  # the pipeline shuffles
    else:  # killed after training, before the run was complete: evaluate only
        backup.set_model(model)
        backup.on_train_begin()
    return time.perf_counter() - started


def _restore_best(model, best_path):
    if best_path.is_file():
        model.load_weights(best_path)
    else:  # val_loss never finite: nothing better than the last weights
        print(
            "warning: no finite val_loss was recorded; testing the last weights.", file=sys.stderr
        )


def _summary(params, history, checkpoint, first_epoch, fit_seconds):
    epochs_run = len(history)
    nan_stop = bool(epochs_run and not np.isfinite(history["loss"].iloc[-1]))
    best_epoch = checkpoint.best_epoch
    return {
        "epochs_run": epochs_run,
        "best_epoch": None if best_epoch is None else int(best_epoch) + 1,
        "stopped_early": epochs_run < params["epochs"] and not nan_stop,
        "terminated_on_nan": nan_stop,
        "resumed_from_epoch": first_epoch,
        "fit_seconds": round(fit_seconds, 2),
        "final_learning_rate": float(history["learning_rate"].iloc[-1])
        if "learning_rate" in history and epochs_run
        else params["learning_rate"],
    }
