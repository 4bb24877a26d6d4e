"""Every use of Keras' private API in valf, in one place, each checked before it is used.

Keras has no public call that makes a model track a variable created outside it; VALF's class
weights need exactly that (:func:`valf.reweighting.track_class_weights`). This module is the only
one in valf (and in the study built on it) that touches a name starting with an underscore of a
Keras object. Each use is written down in :data:`USES`; :func:`check` looks for every one of them
on a real model and raises :class:`KerasPrivateAPIChanged`, naming the missing name and the Keras
version, instead of an ``AttributeError`` deep inside a fit. The tests run :func:`check` on the
pinned Keras, so an upgrade that removes a name fails there first, with the same message.
"""

from __future__ import annotations

__all__ = ["USES", "KerasPrivateAPIChanged", "check", "track_variable"]

#: (object, private name, what valf uses it for).
USES = (
    ("Layer", "_tracker", "the tracker that lists a layer's variables, locked once built"),
    ("Layer", "_track_variable", "how Layer.add_weight registers a variable it made"),
    ("Tracker", "locked / lock() / unlock()", "a built model's tracker refuses new variables"),
)


class KerasPrivateAPIChanged(RuntimeError):
    """A private name of Keras that valf relies on is gone or changed (a Keras upgrade)."""


def _missing(model):
    tracker = getattr(model, "_tracker", None)
    if tracker is None:
        return "keras.Layer._tracker"
    if not callable(getattr(model, "_track_variable", None)):
        return "keras.Layer._track_variable"
    for name in ("locked", "lock", "unlock"):
        if not hasattr(tracker, name):
            return f"keras Tracker.{name}"
    return None


def check(model=None):
    """Raise :class:`KerasPrivateAPIChanged` when a private name of :data:`USES` is missing.

    Parameters
    ----------
    model : keras.Model, optional
        The model to look at; by default a one-layer model built here.
    """
    import keras

    if model is None:
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    missing = _missing(model)
    if missing is not None:
        raise KerasPrivateAPIChanged(
            f"valf needs {missing}, which Keras {keras.__version__} does not have: the adaptive "
            "losses (VALF, DWFL, CDB, DRW) make the model track their class weights through "
            "it (valf._keras_private). Install the Keras version valf pins (see its "
            "pyproject.toml) or a valf release that supports this Keras."
        )


def track_variable(model, variable):
    """Make ``model`` track ``variable`` as one of its own (non-trainable if the variable is).

    A built model's tracker is locked; it is unlocked for the call and locked again.
    """
    check(model)
    tracker = model._tracker
    locked = tracker.locked
    if locked:
        tracker.unlock()
    try:
        model._track_variable(variable)
    finally:
        if locked:
            tracker.lock()
    return model
