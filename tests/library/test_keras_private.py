"""The one private name of Keras that valf uses (valf._keras_private): present in the pinned
Keras, and a clear message, not an AttributeError inside a fit, when an upgrade removes it."""

import keras
import pytest

import valf
from valf import _keras_private


def test_the_private_names_valf_uses_are_present_in_this_keras():
    _keras_private.check()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    _keras_private.check(model)  # a built, compiled model: its tracker is locked


def test_tracking_through_it_adds_the_variable_once():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    loss = valf.ValidationAdaptiveFocalLoss(3)
    model.compile(optimizer="adam", loss=loss)
    before = len(model.non_trainable_variables)
    valf.track_class_weights(model, loss)
    valf.track_class_weights(model, loss)
    assert len(model.non_trainable_variables) == before + 1
    assert any(v is loss.class_weights for v in model.non_trainable_variables)


@pytest.mark.parametrize(
    ("remove", "named"),
    [("_track_variable", "keras.Layer._track_variable"), ("_tracker", "keras.Layer._tracker")],
)
def test_a_keras_without_the_private_name_gets_a_clear_message(remove, named):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])

    class Upgraded:  # a model of a Keras that no longer has the name
        def __getattr__(self, name):
            if name == remove:
                raise AttributeError(name)
            return getattr(model, name)

    loss = valf.ValidationAdaptiveFocalLoss(3)
    with pytest.raises(_keras_private.KerasPrivateAPIChanged) as caught:
        _keras_private.track_variable(Upgraded(), loss.class_weights)
    message = str(caught.value)
    assert named in message and keras.__version__ in message and "valf" in message
