"""Testing a trained run and writing what it found: predictions, metrics, confusion, weights."""

from __future__ import annotations

import numpy as np
import pandas as pd

from valf_study import metrics
from valf_study.files import write_atomic

__all__ = ["evaluate", "group_column", "tidy_history", "write_outputs", "write_split"]

_VALIDATION_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "auc")


def evaluate(model, datasets, frames, class_names, seed):
    """Predict the validation and test splits; return labels, probabilities and the metrics.

    Test metrics carry a seeded bootstrap interval of macro-F1; validation metrics (prefixed
    ``val_``) are the few a selection may use.
    """
    probabilities = {split: model.predict(datasets[split], verbose=0) for split in ("val", "test")}
    labels = {split: frames[split]["label"].to_numpy() for split in ("val", "test")}
    test = metrics.classification_metrics(
        labels["test"], probabilities["test"], class_names, seed=seed
    )
    validation = metrics.classification_metrics(
        labels["val"], probabilities["val"], class_names, bootstrap_resamples=0, seed=seed
    )
    found = {**test, **{f"val_{k}": validation[k] for k in _VALIDATION_METRICS}}
    return labels, probabilities, found


def tidy_history(log_path, path):
    """Write history.csv from CSVLogger's file: epochs from 1, without the rows an interrupted
    epoch may have written twice; return it."""
    if not log_path.is_file():
        return pd.DataFrame({"epoch": [], "loss": [], "val_loss": []})
    history = pd.read_csv(log_path)
    history = history.drop_duplicates("epoch", keep="last").sort_values("epoch")
    history["epoch"] = history["epoch"].astype(int) + 1
    write_atomic(path, history.to_csv(index=False))
    return history.reset_index(drop=True)


def write_outputs(run, frames, labels, probabilities, result, class_names, weights=None):
    """predictions.csv, confusion.csv, class_weights.csv (when given) and, last, metrics.json."""
    rows = [
        _prediction_table(frames[split], split, labels[split], probabilities[split], class_names)
        for split in ("val", "test")
    ]
    run.write_table(run.PREDICTIONS, pd.concat(rows))
    confusion = metrics.confusion_matrix(labels["test"], probabilities["test"])
    confusion = pd.DataFrame(
        confusion, index=pd.Index(class_names, name="true"), columns=class_names
    )
    run.write_table(run.CONFUSION, confusion, index=True)
    if weights is not None:
        run.write_table(run.CLASS_WEIGHTS, weights)
    run.write_json(run.METRICS, result)


def group_column(frame):
    """The column naming what must not be divided between splits: LungHist700's patient, a
    folder data set's group."""
    return "patient_id" if "patient_id" in frame.columns else "group"


def write_split(run, frames):
    """split.csv: every image the run used, once, with its class, group and split (the
    training images after any resampling)."""
    rows = []
    for split, frame in frames.items():
        part = frame.drop_duplicates("image_path")
        rows.append(
            pd.DataFrame(
                {
                    "image_path": part["image_path"],
                    "class_name": part["class_name"],
                    "group": part[group_column(part)],
                    "split": split,
                }
            )
        )
    run.write_table(run.SPLIT, pd.concat(rows))


def _prediction_table(frame, split, labels, probabilities, class_names):
    table = pd.DataFrame(
        {
            "split": split,
            "image_path": frame["image_path"],
            "group": frame[group_column(frame)],
            "label": labels,
            "class_name": [class_names[c] for c in labels],
        }
    )
    for c, name in enumerate(class_names):
        table[f"prob_{name}"] = probabilities[:, c]
    table["predicted"] = np.asarray(probabilities).argmax(1)
    table["predicted_name"] = [class_names[c] for c in table["predicted"]]
    return table
