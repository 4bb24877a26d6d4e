"""The adaptive losses inside ``Model.fit`` on whatever Keras backend is loaded: a softmax layer
trained with learning rate 0 (its predictions never change), so that the loss Keras reports for
each epoch must be the NumPy loss under the weights in force during that epoch
(tests/library/test_fit.py, tests/study/test_backends.py on every backend):

- VALF with :class:`valf.reweighting.ValidationAdaptiveWeights` (warm-up 1, rate 1: the weights
  move from the first epoch on);
- CDB with :class:`valf.reweighting.ClassDifficultyWeights` (dynamic tau, warm-up 2), on
  validation data whose per-class accuracies are fixed by construction, one of them 1 (a class
  weight of 0 inside the compiled step);
- DRW with :class:`valf.reweighting.DeferredReweighting` (warm-up 2) on imbalanced labels.
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


# -- CDB and DRW --------------------------------------------------------------------------------

#: Per class: how many validation samples the fixed model predicts as each class (rows: true
#: class). Accuracies 1.0, 0.6 and 0.3: CDB gives class 0 the weight 0.
CDB_CONFUSION = np.array([[10, 0, 0], [4, 6, 0], [0, 7, 3]])
WARMUP_EPOCHS = 2
EPOCHS = 4
DRW_COUNTS = (30, 6, 12)
DRW_BETA = 0.9999


def fixed_softmax_model(jit_compile, loss):
    """softmax(3 x): its prediction is the argmax of the input, the same on every backend."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")])
    model.layers[0].set_weights([3.0 * np.eye(3, dtype="float32"), np.zeros(3, "float32")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss, jit_compile=jit_compile)
    return model


def cdb_validation_data():
    """Validation samples that the fixed model classifies as CDB_CONFUSION says."""
    rng = np.random.default_rng(1)
    labels, predicted = [], []
    for true, row in enumerate(CDB_CONFUSION):
        for guess, count in enumerate(row):
            labels += [true] * count
            predicted += [guess] * count
    x = 2.0 * np.eye(3)[predicted] + rng.uniform(-0.1, 0.1, size=(len(labels), 3))
    return x.astype("float32"), np.array(labels)


def _fit_record(model, x, y, callback, jit_compile):
    history = model.fit(
        x, y, batch_size=16, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[callback]
    )
    return {
        "jit_compile": bool(jit_compile),
        "reported_loss": [float(v) for v in history.history["loss"]],
        "weights_after_epoch": [[row[f"weight_{c}"] for c in range(3)] for row in callback.history],
        "updated": [row["updated"] for row in callback.history],
        "logged_weights": [history.history[f"weight_{c}"] for c in range(3)],
        "labels": y.tolist(),
        "predictions": model.predict(x, verbose=0).astype(float).tolist(),
    }


def cdb_epochs(jit_compile):
    import valf
    from valf.reweighting import ClassDifficultyWeights

    rng = np.random.default_rng(2)
    x = rng.normal(size=(48, 3)).astype("float32")
    y = rng.integers(0, 3, 48)
    x_val, y_val = cdb_validation_data()
    loss = valf.ClassDifficultyBalancedLoss(3, gamma=2.0, tau="dynamic")
    model = fixed_softmax_model(jit_compile, loss)
    callback = ClassDifficultyWeights(loss, (x_val, y_val), warmup_epochs=WARMUP_EPOCHS)
    result = _fit_record(model, x, y, callback, jit_compile)
    result["val_labels"] = y_val.tolist()
    result["val_predictions"] = model.predict(x_val, verbose=0).astype(float).tolist()
    return result


def drw_epochs(jit_compile):
    import valf
    from valf.reweighting import DeferredReweighting

    rng = np.random.default_rng(3)
    y = rng.permutation(np.repeat([0, 1, 2], DRW_COUNTS))
    x = rng.normal(size=(len(y), 3)).astype("float32")
    loss = valf.DeferredReweightingLoss(DRW_COUNTS, beta=DRW_BETA, gamma=2.0)
    model = fixed_softmax_model(jit_compile, loss)
    callback = DeferredReweighting(loss, warmup_epochs=WARMUP_EPOCHS)
    return _fit_record(model, x, y, callback, jit_compile)


def cdb_expected(result, gamma=2.0):
    """CDB's weights recomputed with NumPy from the validation predictions (the official
    ImageNet-LT dynamic tau), the weights in force in each epoch (uniform through the warm-up)
    and the NumPy loss of each epoch under them."""
    val_labels = np.asarray(result["val_labels"])
    predicted = np.asarray(result["val_predictions"]).argmax(axis=1)
    accuracy = np.array([np.mean(predicted[val_labels == c] == c) for c in range(3)])
    weights = reference.cdb_weights(accuracy, reference.cdb_tau_imagenet(1 - accuracy))
    in_force = [np.ones(3) if e < WARMUP_EPOCHS else weights for e in range(EPOCHS)]
    return _losses(result, in_force, gamma), in_force, accuracy


def drw_expected(result, gamma=2.0):
    """The weights in force in each epoch (LDAM-DRW's rule) and the NumPy loss under them."""
    in_force = [
        reference.drw_weights(DRW_COUNTS, DRW_BETA, e, WARMUP_EPOCHS) for e in range(EPOCHS)
    ]
    return _losses(result, in_force, gamma), in_force


def _losses(result, in_force, gamma):
    labels = np.asarray(result["labels"])
    predictions = np.asarray(result["predictions"])
    return [reference.focal(labels, predictions, gamma, w).mean() for w in in_force]
