"""VALF inside ``Model.fit`` on whatever Keras backend is loaded: a softmax layer trained with
learning rate 0 (its predictions never change) with
:class:`valf.reweighting.ValidationAdaptiveWeights` (warm-up 1, rate 1: the weights move from
the first epoch on). The loss Keras reports for each epoch must then be the NumPy VALF loss
under the weights in force during that epoch (tests/library/test_fit.py,
tests/study/test_backends.py on every backend).
"""

from __future__ import annotations

import numpy as np

from tests import reference


def valf_epochs(jit_compile):
    import keras

    import valf
    from valf.reweighting import ValidationAdaptiveWeights

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 6)).astype("float32")
    y = rng.integers(0, 3, 48)
    x_val = rng.normal(size=(30, 6)).astype("float32")
    y_val = np.repeat([0, 1, 2], 10)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="softmax")])
    # The same confident, uneven predictions on every backend (initialisers differ by backend).
    model.layers[0].set_weights([rng.normal(size=(6, 3)).astype("float32"), np.zeros(3, "float32")])
    loss = valf.ValidationAdaptiveFocalLoss(3, gamma=2.0)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss, jit_compile=jit_compile)
    callback = ValidationAdaptiveWeights(loss, (x_val, y_val), warmup_epochs=1, rate=1.0)
    history = model.fit(
        x, y, batch_size=16, epochs=4, shuffle=False, verbose=0, callbacks=[callback]
    )
    weights = [[row[f"weight_{c}"] for c in range(3)] for row in callback.history]
    return {
        "jit_compile": bool(jit_compile),
        "reported_loss": [float(v) for v in history.history["loss"]],
        "weights_after_epoch": weights,
        "labels": y.tolist(),
        "predictions": model.predict(x, verbose=0).astype(float).tolist(),
    }


def expected_losses(result, gamma=2.0):
    """The NumPy VALF loss of each epoch under the weights in force then: the prior for the
    first epoch, then those the callback set after the epoch before."""
    labels = np.asarray(result["labels"])
    predictions = np.asarray(result["predictions"])
    in_force = [[1.0, 1.0, 1.0], *result["weights_after_epoch"][:-1]]
    return [reference.valf(labels, predictions, w, gamma).mean() for w in in_force], in_force
