"""What a training run tells its reader while it trains: a bar, or one line per epoch."""

from __future__ import annotations

import time

import keras

__all__ = ["EpochLog"]


class EpochLog(keras.callbacks.Callback):
    """One line per epoch (sweep runs, kept in the executed notebook) or a tqdm bar.

    Parameters
    ----------
    epochs : int
        The most epochs the run may train.
    first_epoch : int
        Epochs already trained (a resumed run).
    progress : bool
        A tqdm bar instead of lines.
    """

    def __init__(self, epochs, first_epoch=0, progress=True):
        super().__init__()
        self.epochs, self.first_epoch, self.progress = epochs, first_epoch, progress
        self.bar = None

    def on_train_begin(self, logs=None):
        if self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.epochs, initial=self.first_epoch, unit="epoch", desc="training"
            )
        elif self.first_epoch:
            print(f"resuming after epoch {self.first_epoch}", flush=True)
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        shown = {k: logs[k] for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs}
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()}, refresh=False)
            self.bar.update(1)
        else:
            text = " ".join(f"{k} {v:.4f}" for k, v in shown.items())
            print(
                f"epoch {epoch + 1}/{self.epochs} {text} "
                f"({time.perf_counter() - self.started:.0f} s)",
                flush=True,
            )

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
