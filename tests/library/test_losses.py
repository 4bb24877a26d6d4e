"""The losses against their equations (NumPy), Keras' own losses, and bad input.

Backend-neutral: this module also runs under KERAS_BACKEND=torch
(see test_second_backend.py).
"""

import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

import valf
from tests import reference as ref

C = 3
GAMMAS = [0.0, 0.5, 1.0, 2.0, 5.0]
WEIGHTS = [0.5, 1.0, 2.5]
COUNTS = [109, 52, 102]
# CDB's weights for these validation accuracies: class 0 is classified perfectly, weight 0.
CDB_ACCURACY, CDB_TAU = [1.0, 0.5, 0.2], 1.5
CDB_WEIGHTS = ref.cdb_weights(CDB_ACCURACY, CDB_TAU)
DRW_BETA = 0.99


def batch(seed, n=64, scale=2.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=scale, size=(n, C)).astype("float32")
    labels = rng.integers(0, C, size=n)
    return labels, logits, ref.softmax(logits.astype(np.float64)).astype("float32")


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def cdb_loss(gamma, **options):
    """CDB with the weights its rule gives for CDB_ACCURACY (one of them 0)."""
    loss = valf.ClassDifficultyBalancedLoss(C, gamma=gamma, tau=CDB_TAU, **options)
    loss.set_class_weights(CDB_WEIGHTS)
    return loss


def drw_loss(gamma, **options):
    """DRW after the warm-up: the class-balanced weights."""
    loss = valf.DeferredReweightingLoss(COUNTS, beta=DRW_BETA, gamma=gamma, **options)
    loss.use_balanced_weights(True)
    return loss


# (name, valf loss instance for gamma, NumPy reference for gamma)
CASES = {
    "WCCE": (
        lambda g, **kw: valf.WeightedCategoricalCrossentropy(WEIGHTS, **kw),
        lambda y, p, g: ref.wcce(y, p, WEIGHTS),
    ),
    "FL": (lambda g, **kw: valf.FocalLoss(gamma=g, **kw), lambda y, p, g: ref.focal(y, p, g)),
    "FL-alpha": (
        lambda g, **kw: valf.FocalLoss(gamma=g, alpha=WEIGHTS, **kw),
        lambda y, p, g: ref.focal(y, p, g, WEIGHTS),
    ),
    "FL-scalar-alpha": (
        lambda g, **kw: valf.FocalLoss(gamma=g, alpha=0.25, **kw),
        lambda y, p, g: ref.focal(y, p, g, 0.25),
    ),
    "CB": (
        lambda g, **kw: valf.ClassBalancedLoss(COUNTS, beta=0.99, gamma=g, **kw),
        lambda y, p, g: ref.focal(y, p, g, ref.class_balanced_weights(COUNTS, 0.99)),
    ),
    "CEFL": (lambda g, **kw: valf.CEFL(gamma=g, **kw), ref.cefl),
    "CEFL2": (lambda g, **kw: valf.CEFL2(gamma=g, **kw), ref.cefl2),
    "DWFL": (
        lambda g, **kw: valf.DynamicWeightedFocalLoss(C, gamma=g, prior=WEIGHTS, **kw),
        lambda y, p, g: ref.valf(y, p, WEIGHTS, g),
    ),
    "VALF": (
        lambda g, **kw: valf.ValidationAdaptiveFocalLoss(C, gamma=g, prior=WEIGHTS, **kw),
        lambda y, p, g: ref.valf(y, p, WEIGHTS, g),
    ),
    "CDB": (cdb_loss, lambda y, p, g: ref.focal(y, p, g, CDB_WEIGHTS)),
    "DRW": (
        drw_loss,
        lambda y, p, g: ref.focal(y, p, g, ref.class_balanced_weights(COUNTS, DRW_BETA)),
    ),
}


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_matches_numpy_equation(name, gamma):
    make, reference = CASES[name]
    loss = make(gamma, reduction="none")
    for seed in range(3):
        labels, _, probs = batch(seed)
        expected = reference(labels, probs, gamma)
        np.testing.assert_allclose(numpy(loss(labels, probs)), expected, rtol=1e-6, atol=1e-6)


PER_SAMPLE_FUNCTIONS = {
    "WCCE": (lambda y, p, g: valf.weighted_categorical_crossentropy(y, p, WEIGHTS), "WCCE"),
    "FL": (lambda y, p, g: valf.focal_loss(y, p, gamma=g, alpha=WEIGHTS), "FL-alpha"),
    "CB": (lambda y, p, g: valf.class_balanced_loss(y, p, COUNTS, beta=0.99, gamma=g), "CB"),
    "CEFL": (lambda y, p, g: valf.cefl(y, p, gamma=g), "CEFL"),
    "CEFL2": (lambda y, p, g: valf.cefl2(y, p, gamma=g), "CEFL2"),
    "VALF": (lambda y, p, g: valf.validation_adaptive_focal_loss(y, p, WEIGHTS, gamma=g), "VALF"),
    "CDB": (lambda y, p, g: valf.class_difficulty_balanced_loss(y, p, CDB_WEIGHTS, gamma=g), "CDB"),
}


@pytest.mark.parametrize("name", sorted(PER_SAMPLE_FUNCTIONS))
def test_per_sample_functions_match_numpy(name):
    function, case = PER_SAMPLE_FUNCTIONS[name]
    labels, _, probs = batch(7)
    for gamma in (0.0, 2.0):
        expected = CASES[case][1](labels, probs, gamma)
        np.testing.assert_allclose(
            numpy(function(labels, probs, gamma)), expected, rtol=1e-6, atol=1e-6
        )


@pytest.mark.parametrize("name", sorted(CASES))
def test_label_forms_and_logits_agree(name):
    make, _ = CASES[name]
    labels, logits, probs = batch(11)
    one_hot = np.eye(C, dtype="float32")[labels]
    loss = make(2.0, reduction="none")
    from_probs = numpy(loss(one_hot, probs))
    np.testing.assert_allclose(numpy(loss(labels, probs)), from_probs, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        numpy(loss(labels[:, None], probs)), from_probs, rtol=1e-6, atol=1e-7
    )
    from_logits = numpy(make(2.0, reduction="none", from_logits=True)(labels, logits))
    np.testing.assert_allclose(from_logits, from_probs, rtol=1e-6, atol=1e-6)


def test_reductions_to_keras_categorical_crossentropy():
    labels, logits, probs = batch(3)
    one_hot = np.eye(C, dtype="float32")[labels]
    keras_cce = numpy(keras.losses.CategoricalCrossentropy(reduction="none")(one_hot, probs))
    keras_cce_logits = numpy(
        keras.losses.CategoricalCrossentropy(reduction="none", from_logits=True)(one_hot, logits)
    )
    unit = [1.0] * C
    for loss in [
        valf.FocalLoss(gamma=0.0),
        valf.WeightedCategoricalCrossentropy(unit),
        valf.CEFL(gamma=0.0),
        valf.CEFL2(gamma=0.0),
        valf.ValidationAdaptiveFocalLoss(C, gamma=0.0),
        valf.DynamicWeightedFocalLoss(C, gamma=0.0),
        valf.ClassBalancedLoss(COUNTS, beta=0.0),
        valf.ClassDifficultyBalancedLoss(C, gamma=0.0),  # uniform before the first update
        valf.DeferredReweightingLoss(COUNTS, gamma=0.0),  # uniform during the warm-up
    ]:
        loss.reduction = "none"
        np.testing.assert_allclose(
            numpy(loss(one_hot, probs)), keras_cce, rtol=1e-6, atol=1e-7, err_msg=loss.name
        )
        loss.from_logits = True
        np.testing.assert_allclose(
            numpy(loss(one_hot, logits)), keras_cce_logits, rtol=1e-6, atol=1e-6, err_msg=loss.name
        )


def test_valf_with_weights_and_gamma_zero_is_wcce():
    labels, _, probs = batch(5)
    valf_loss = valf.ValidationAdaptiveFocalLoss(C, gamma=0.0, prior=WEIGHTS, reduction="none")
    wcce = valf.WeightedCategoricalCrossentropy(WEIGHTS, reduction="none")
    np.testing.assert_allclose(
        numpy(valf_loss(labels, probs)), numpy(wcce(labels, probs)), rtol=1e-7
    )


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 5.0])
def test_focal_with_alpha_list_equals_keras_categorical_focal(gamma):
    labels, logits, probs = batch(9)
    one_hot = np.eye(C, dtype="float32")[labels]
    for from_logits, y_pred in ((False, probs), (True, logits)):
        ours = valf.FocalLoss(gamma=gamma, alpha=WEIGHTS, from_logits=from_logits)
        theirs = keras.losses.CategoricalFocalCrossentropy(
            alpha=WEIGHTS, gamma=gamma, from_logits=from_logits
        )
        assert math.isclose(
            float(numpy(ours(one_hot, y_pred))), float(numpy(theirs(one_hot, y_pred))), rel_tol=1e-6
        )


def test_balanced_class_weights_equal_scikit_learn():
    compute_class_weight = pytest.importorskip("sklearn.utils.class_weight").compute_class_weight

    labels = np.repeat([0, 1, 2], COUNTS)
    expected = compute_class_weight("balanced", classes=np.arange(C), y=labels)
    np.testing.assert_allclose(valf.balanced_class_weights(labels), expected, rtol=1e-12)
    np.testing.assert_allclose(valf.balanced_class_weights(np.eye(C)[labels]), expected, rtol=1e-12)
    np.testing.assert_allclose(
        valf.balanced_class_weights(COUNTS, is_counts=True), expected, rtol=1e-12
    )
    with pytest.raises(ValueError, match=r"Classes \[3\] have no training samples"):
        valf.balanced_class_weights(labels, num_classes=4)


def test_class_balanced_weights_follow_cui_et_al():
    np.testing.assert_allclose(
        valf.class_balanced_weights(COUNTS, 0.999),
        ref.class_balanced_weights(COUNTS, 0.999),
        rtol=1e-12,
    )
    assert math.isclose(valf.class_balanced_weights(COUNTS, 0.9999).sum(), C)
    np.testing.assert_allclose(valf.class_balanced_weights(COUNTS, 0.0), np.ones(C))


@pytest.mark.parametrize(
    "reduction", ["sum", "sum_over_batch_size", "mean", "mean_with_sample_weight", "none"]
)
def test_sample_weight_and_reductions(reduction):
    labels, _, probs = batch(13, n=8)
    sample_weight = np.linspace(0.0, 2.0, 8).astype("float32")
    per_sample = ref.valf(labels, probs, WEIGHTS, 2.0) * sample_weight
    expected = {
        "sum": per_sample.sum(),
        "sum_over_batch_size": per_sample.sum() / 8,
        "mean": per_sample.sum() / 8,
        "mean_with_sample_weight": per_sample.sum() / sample_weight.sum(),
        "none": per_sample,
    }[reduction]
    loss = valf.ValidationAdaptiveFocalLoss(C, prior=WEIGHTS, reduction=reduction)
    np.testing.assert_allclose(
        numpy(loss(labels, probs, sample_weight=sample_weight)), expected, rtol=1e-6
    )


def gradient(function, x):
    """Value and gradient of sum(function(x)) with the active backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.Variable(x)
        with tf.GradientTape() as tape:
            value = function(x)
            total = tf.reduce_sum(value)
        return numpy(value), numpy(tape.gradient(total, x))
    if backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        value = function(x)
        value.sum().backward()
        return numpy(value.detach()), numpy(x.grad)
    if backend == "jax":
        import jax

        value = function(x)
        return numpy(value), numpy(jax.grad(lambda v: function(v).sum())(x))
    pytest.skip(f"no gradient helper for backend {backend}")


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_and_gradient_finite_at_certain_predictions(name, gamma):
    make, _ = CASES[name]
    labels = np.array([0, 1, 2, 0])
    # p_t = 1, p_t = 0, p_t = 1 with zeros elsewhere, and a near-uniform row.
    probs = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1], [0.34, 0.33, 0.33]], dtype="float32")
    logits = np.array([[60, -60, 0], [60, -60, 0], [-200, -200, 200], [0.1, 0, 0]], dtype="float32")
    for from_logits, y_pred in ((False, probs), (True, logits)):
        loss = make(gamma, reduction="none", from_logits=from_logits)
        value, grad = gradient(lambda x, loss=loss: loss(labels, x), y_pred)
        assert np.all(np.isfinite(value)), (from_logits, value)
        assert np.all(np.isfinite(grad)), (from_logits, grad)
        assert value[0] < 1e-5 and value[1] > 3, (from_logits, value)  # no loss vs -log(eps)


def test_half_precision_predictions_are_computed_in_float32():
    labels, _, probs = batch(17)
    half = probs.astype("float16")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        loss = valf.ValidationAdaptiveFocalLoss(C, prior=WEIGHTS, reduction="none")
        assert loss.dtype == "float32"
        result = loss(labels, ops.convert_to_tensor(half))
        assert keras.backend.standardize_dtype(result.dtype) == "float32"
        per_sample = valf.focal_loss(labels, ops.convert_to_tensor(half), gamma=2.0)
        assert keras.backend.standardize_dtype(per_sample.dtype) == "float32"
    finally:
        keras.config.set_dtype_policy(previous)
    expected = ref.valf(labels, half.astype(np.float64), WEIGHTS, 2.0)
    np.testing.assert_allclose(numpy(result), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_is_plain_and_round_trips(name):
    make, _ = CASES[name]
    loss = make(1.5, from_logits=True, reduction="sum")
    config = loss.get_config()
    assert json.loads(json.dumps(config)) == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == config
    labels, logits, _ = batch(19)
    np.testing.assert_allclose(
        numpy(restored(labels, logits)), numpy(loss(labels, logits)), rtol=1e-7
    )


def test_adaptive_config_carries_current_weights():
    loss = valf.ValidationAdaptiveFocalLoss(C, prior={1: 2.0})
    loss.set_class_weights([0.8, 1.5, 0.7])
    restored = valf.ValidationAdaptiveFocalLoss.from_config(loss.get_config())
    np.testing.assert_allclose(restored.prior, [1.0, 2.0, 1.0])
    np.testing.assert_allclose(restored.get_class_weights(), [0.8, 1.5, 0.7], rtol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_model_saves_and_loads_without_custom_objects(name, tmp_path):
    make, _ = CASES[name]
    loss = make(2.0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(C, activation="softmax")(inputs))
    model.compile(optimizer="adam", loss=loss)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)).astype("float32"), rng.integers(0, C, size=8)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.loss) is type(loss)
    assert loaded.loss.get_config() == loss.get_config()
    assert math.isclose(
        loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rel_tol=1e-6
    )


def test_prior_forms():
    assert np.array_equal(valf.ValidationAdaptiveFocalLoss(4).get_class_weights(), np.ones(4))
    from_dict = valf.ValidationAdaptiveFocalLoss(4, prior={0: 0.5, 3: 2.0})
    np.testing.assert_allclose(from_dict.get_class_weights(), [0.5, 1.0, 1.0, 2.0])
    from_list = valf.ValidationAdaptiveFocalLoss(3, prior=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(from_list.get_class_weights(), [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: valf.FocalLoss(gamma=-1.0), "`gamma` must be a finite number >= 0"),
        (lambda: valf.FocalLoss(gamma=float("nan")), "`gamma`"),
        (lambda: valf.CEFL(gamma="two"), "`gamma`"),
        (lambda: valf.CEFL2(gamma=-0.5), "`gamma`"),
        (lambda: valf.ClassBalancedLoss(COUNTS, beta=1.0), r"`beta` must be a number in \[0, 1\)"),
        (lambda: valf.ClassBalancedLoss(COUNTS, beta=-0.1), "`beta`"),
        (lambda: valf.ClassBalancedLoss([10, 0, 5]), "`samples_per_class`"),
        (lambda: valf.ClassBalancedLoss([10.5, 3, 5]), "whole numbers"),
        (
            lambda: valf.ValidationAdaptiveFocalLoss(3, prior=[1.0, 2.0]),
            r"`prior` must have one value per class \(3\)",
        ),
        (
            lambda: valf.ValidationAdaptiveFocalLoss(3, prior=[1.0, 0.0, 2.0]),
            r"`prior` must be finite and > 0.*classes \[1\]",
        ),
        (lambda: valf.ValidationAdaptiveFocalLoss(3, prior=[1.0, float("inf"), 2.0]), "`prior`"),
        (
            lambda: valf.ValidationAdaptiveFocalLoss(3, prior={5: 2.0}),
            r"keys must be class indices",
        ),
        (lambda: valf.ValidationAdaptiveFocalLoss(3, prior={1: -2.0}), "`prior`"),
        (lambda: valf.ValidationAdaptiveFocalLoss(1), "`num_classes` must be an integer >= 2"),
        (lambda: valf.DynamicWeightedFocalLoss(3, gamma=-2), "`gamma`"),
        (lambda: valf.FocalLoss(alpha=[1.0, -1.0, 1.0]), "`alpha`"),
        (lambda: valf.FocalLoss(alpha=0.0), "`alpha` must be a finite number > 0"),
        (lambda: valf.WeightedCategoricalCrossentropy([1.0, float("nan")]), "`class_weights`"),
        (
            lambda: valf.WeightedCategoricalCrossentropy("balanced"),
            "`class_weights` must be a list",
        ),
        (lambda: valf.ValidationAdaptiveFocalLoss(3).set_class_weights([1, 1]), "`weights`"),
        (
            lambda: valf.ValidationAdaptiveFocalLoss(3).set_class_weights([0.0, 1.0, 2.0]),
            r"`weights` must be finite and > 0",
        ),
        (
            lambda: valf.ClassDifficultyBalancedLoss(3, tau=0.0),
            r'`tau` must be a finite number > 0 or the string "dynamic"',
        ),
        (lambda: valf.ClassDifficultyBalancedLoss(3, tau=-1.5), "`tau`"),
        (lambda: valf.ClassDifficultyBalancedLoss(3, tau="Dynamic"), "`tau`"),
        (lambda: valf.ClassDifficultyBalancedLoss(3, tau=float("inf")), "`tau`"),
        (lambda: valf.ClassDifficultyBalancedLoss(3, gamma=-1.0), "`gamma`"),
        (
            lambda: valf.ClassDifficultyBalancedLoss(3).set_class_weights([0.0, -1.0, 2.0]),
            r"`weights` must be finite and >= 0.*classes \[1\]",
        ),
        (
            lambda: valf.ClassDifficultyBalancedLoss(3).set_class_weights([0.0, 0.0, 0.0]),
            "`weights` must have a positive mean",
        ),
        (lambda: valf.ClassDifficultyBalancedLoss(3, prior=[0.0, 0.0, 0.0]), "`prior`"),
        (
            lambda: valf.class_difficulty_balanced_loss([0], [[0.5, 0.5]], [1.0, float("nan")]),
            "`class_weights`",
        ),
        (lambda: valf.DeferredReweightingLoss(COUNTS, beta=1.0), "`beta`"),
        (lambda: valf.DeferredReweightingLoss([10, 0, 5]), "`samples_per_class`"),
        (lambda: valf.DeferredReweightingLoss(COUNTS, gamma=-2.0), "`gamma`"),
        (
            lambda: valf.DeferredReweightingLoss(COUNTS).set_class_weights([1.0, 0.0, 1.0]),
            "`weights`",
        ),
    ],
)
def test_bad_arguments_name_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_wrong_length_alpha_or_weights_fail_at_call():
    labels, _, probs = batch(1)
    with pytest.raises(ValueError, match="4 class weights but the predictions have 3 classes"):
        valf.FocalLoss(alpha=[1.0, 1.0, 1.0, 1.0])(labels, probs)
    with pytest.raises(ValueError, match="2 class weights but the predictions have 3 classes"):
        valf.WeightedCategoricalCrossentropy([1.0, 2.0])(labels, probs)


def test_label_and_prediction_class_counts_must_match():
    _, _, probs = batch(1, n=4)
    with pytest.raises(ValueError, match=r"do not match predictions of shape \(4, 3\)"):
        valf.FocalLoss()(np.eye(4, dtype="float32"), probs)
    with pytest.raises(ValueError, match="expected one-hot labels"):
        valf.ValidationAdaptiveFocalLoss(C)(np.zeros((4, 2, 2)), probs)


# -- label smoothing, keyword-only options, models saved by valf 0.1 ------------------------

SMOOTHING = 0.2


@pytest.mark.parametrize("smoothing", [0.0, 0.1, SMOOTHING, 1.0])
def test_label_smoothing_equals_keras_on_the_losses_keras_has(smoothing):
    labels, logits, probs = batch(21)
    one_hot = np.eye(C, dtype="float32")[labels]
    for from_logits, y_pred in ((False, probs), (True, logits)):
        options = {"label_smoothing": smoothing, "from_logits": from_logits}
        cce = keras.losses.CategoricalCrossentropy(**options)
        focal = keras.losses.CategoricalFocalCrossentropy(alpha=WEIGHTS, gamma=2.0, **options)
        pairs = [
            (valf.WeightedCategoricalCrossentropy(np.ones(C), **options), cce),
            (valf.FocalLoss(gamma=0.0, **options), cce),
            (valf.CEFL(gamma=0.0, **options), cce),
            (valf.FocalLoss(gamma=2.0, alpha=WEIGHTS, **options), focal),
        ]
        for ours, theirs in pairs:
            expected = float(numpy(theirs(one_hot, y_pred)))
            for y_true in (one_hot, labels):  # integer labels are smoothed after one-hot
                assert math.isclose(float(numpy(ours(y_true, y_pred))), expected, rel_tol=2e-6)


def test_label_smoothing_of_the_adaptive_losses_follows_the_equation():
    labels, _, probs = batch(22)
    smooth = np.eye(C)[labels] * (1 - SMOOTHING) + SMOOTHING / C
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    expected = (smooth * WEIGHTS * (1 - p) ** 2.0 * -np.log(p)).sum(axis=1)
    loss = valf.ValidationAdaptiveFocalLoss(
        C, gamma=2.0, prior=WEIGHTS, label_smoothing=SMOOTHING, reduction="none"
    )
    np.testing.assert_allclose(numpy(loss(labels, probs)), expected, rtol=1e-5)
    restored = valf.ValidationAdaptiveFocalLoss.from_config(loss.get_config())
    assert restored.label_smoothing == SMOOTHING


@pytest.mark.parametrize(
    "build",
    [
        lambda: valf.FocalLoss(2.0),
        lambda: valf.CEFL(2.0),
        lambda: valf.ClassBalancedLoss([3, 2, 1], 0.9),
        lambda: valf.ValidationAdaptiveFocalLoss(3, 2.0),
        lambda: valf.ClassDifficultyBalancedLoss(3, 2.0),
        lambda: valf.DeferredReweightingLoss([3, 2, 1], 0.9),
        lambda: valf.focal_loss([0], [[0.6, 0.4]], 2.0),
        lambda: valf.class_difficulty_balanced_loss([0], [[0.6, 0.4]], [1.0, 1.0], 2.0),
    ],
)
def test_options_are_keyword_only(build):
    with pytest.raises(TypeError):
        build()


@pytest.mark.parametrize("smoothing", [-0.1, 1.5, "a", float("nan")])
def test_label_smoothing_outside_zero_one_is_refused(smoothing):
    with pytest.raises(ValueError, match=r"`label_smoothing` must be a number in \[0, 1\]"):
        valf.FocalLoss(label_smoothing=smoothing)


# -- CDB and DRW -------------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", [0.0, SMOOTHING])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_cdb_and_drw_per_sample_follow_the_equation(smoothing, from_logits, gamma):
    labels, logits, probs = batch(23)
    y_pred = logits if from_logits else probs
    options = {"label_smoothing": smoothing, "from_logits": from_logits}
    balanced = ref.class_balanced_weights(COUNTS, DRW_BETA)
    drw = valf.DeferredReweightingLoss(
        COUNTS, beta=DRW_BETA, gamma=gamma, reduction="none", **options
    )
    cases = [
        (cdb_loss(gamma, reduction="none", **options), CDB_WEIGHTS),
        (drw, np.ones(C)),  # during the warm-up
    ]
    for loss, weights in cases:
        expected = ref.smoothed_weighted_focal(
            labels, y_pred, weights, gamma, smoothing, from_logits
        )
        np.testing.assert_allclose(numpy(loss(labels, y_pred)), expected, rtol=1e-5, atol=1e-6)
    drw.use_balanced_weights(True)
    expected = ref.smoothed_weighted_focal(labels, y_pred, balanced, gamma, smoothing, from_logits)
    np.testing.assert_allclose(numpy(drw(labels, y_pred)), expected, rtol=1e-5, atol=1e-6)
    drw.use_balanced_weights(False)
    np.testing.assert_array_equal(drw.get_class_weights(), np.ones(C))
    per_sample = valf.class_difficulty_balanced_loss(
        labels, y_pred, CDB_WEIGHTS, gamma=gamma, **options
    )
    expected = ref.smoothed_weighted_focal(
        labels, y_pred, CDB_WEIGHTS, gamma, smoothing, from_logits
    )
    np.testing.assert_allclose(numpy(per_sample), expected, rtol=1e-5, atol=1e-6)


def test_a_class_at_weight_zero_contributes_nothing():
    labels, _, probs = batch(24)
    per_sample = numpy(cdb_loss(2.0, reduction="none")(labels, probs))
    assert CDB_WEIGHTS[0] == 0
    assert np.all(per_sample[labels == 0] == 0) and np.all(per_sample[labels != 0] > 0)


def test_cdb_and_drw_configs_carry_their_rule_and_weights():
    cdb = valf.ClassDifficultyBalancedLoss(C, gamma=1.0, tau="dynamic", label_smoothing=0.1)
    cdb.set_class_weights([0.0, 1.25, 1.75])
    config = cdb.get_config()
    assert config["tau"] == "dynamic" and config["class_weights"] == [0.0, 1.25, 1.75]
    restored = valf.ClassDifficultyBalancedLoss.from_config(config)
    assert restored.tau == "dynamic" and restored.label_smoothing == 0.1
    np.testing.assert_array_equal(restored.get_class_weights(), [0.0, 1.25, 1.75])
    assert valf.ClassDifficultyBalancedLoss(C, tau=2).get_config()["tau"] == 2.0

    drw = valf.DeferredReweightingLoss(COUNTS, beta=0.999, gamma=0.0)
    config = drw.get_config()
    assert "num_classes" not in config and "prior" not in config
    assert config["samples_per_class"] == COUNTS and config["beta"] == 0.999
    assert config["class_weights"] == [1.0, 1.0, 1.0]
    drw.use_balanced_weights(True)
    restored = valf.DeferredReweightingLoss.from_config(drw.get_config())
    np.testing.assert_allclose(
        restored.get_class_weights(), ref.class_balanced_weights(COUNTS, 0.999), rtol=1e-6
    )
    np.testing.assert_allclose(restored.balanced_weights, ref.class_balanced_weights(COUNTS, 0.999))
    np.testing.assert_array_equal(restored.prior, np.ones(C))
    assert valf.DeferredReweightingLoss(COUNTS).beta == 0.9999  # LDAM-DRW's


SAVED = Path(__file__).resolve().parents[1] / "data" / "saved_with_valf_0.1"


@pytest.mark.parametrize("name", ["WCCE", "FL", "CB", "CEFL", "CEFL2", "DWFL", "VALF"])
def test_models_saved_by_valf_0_1_load_and_give_the_same_loss(name):
    expected = json.loads((SAVED / "losses.json").read_text())[name]
    model = keras.saving.load_model(SAVED / f"{name}.keras")
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2])
    assert math.isclose(float(model.evaluate(x, y, verbose=0)), expected, rel_tol=1e-5)
    if name == "VALF":
        np.testing.assert_allclose(model.loss.get_class_weights(), [0.8, 1.5, 0.7], rtol=1e-6)
