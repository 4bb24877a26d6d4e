"""VALF's update rule by hand, the DWFL rule, and the callbacks inside model.fit."""

import keras
import numpy as np
import pytest

import valf
from tests import reference as ref

C = 3


def test_worked_example_by_hand():
    # a = (1.0, 0.5, 0.0): mean 0.5; r = 0.1 gives factors 0.95, 1.0, 1.05.
    # w = (0.5, 1.0, 1.5) * factors = (0.475, 1.0, 1.575); mean 3.05 / 3.
    updated = valf.update_class_weights([0.5, 1.0, 1.5], [1.0, 0.5, 0.0], rate=0.1)
    np.testing.assert_allclose(updated, [1.425 / 3.05, 3.0 / 3.05, 4.725 / 3.05], rtol=1e-12)
    # The paper's rate on uniform weights: at most a 1 % change per epoch.
    np.testing.assert_allclose(
        valf.update_class_weights([1.0, 1.0, 1.0], [0.9, 0.6, 0.9]),
        [0.999, 1.002, 0.999],
        rtol=1e-12,
    )


def test_update_matches_equations_and_keeps_mean_one():
    rng = np.random.default_rng(0)
    weights = np.ones(5)
    for _ in range(200):
        accuracy = rng.uniform(size=5)
        rate = rng.choice([0.01, 0.1, 1.0])
        expected = ref.valf_update(weights, accuracy, rate)
        weights = valf.update_class_weights(weights, accuracy, rate)
        np.testing.assert_allclose(weights, expected, rtol=1e-12)
        assert abs(weights.mean() - 1.0) < 1e-12
        assert np.all(weights > 0)


def test_percentage_reading_is_rate_one_on_fractions():
    weights, accuracy = np.array([0.9, 1.2, 0.9]), np.array([0.95, 0.55, 0.80])
    percent = accuracy * 100
    by_percent = weights * (1 + (percent.mean() - percent) / 100)
    np.testing.assert_allclose(
        valf.update_class_weights(weights, accuracy, rate=1.0),
        by_percent / by_percent.mean(),
        rtol=1e-12,
    )


def test_equal_accuracies_leave_weights_unchanged():
    weights = np.array([0.5, 1.0, 1.5])
    np.testing.assert_allclose(valf.update_class_weights(weights, [0.7, 0.7, 0.7]), weights)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: valf.update_class_weights([1, 1, 1], [0.5, 0.5, 0.5], rate=0.0), "`rate`"),
        (lambda: valf.update_class_weights([1, 1, 1], [0.5, 0.5, 0.5], rate=-0.01), "`rate`"),
        (lambda: valf.update_class_weights([1, 1, 1], [90.0, 50.0, 70.0]), "not percentages"),
        (lambda: valf.update_class_weights([1, 1, 1], [0.5, 0.5]), "one value per class"),
        (lambda: valf.update_class_weights([1, 0, 1], [0.5, 0.5, 0.5]), "`weights`"),
        (lambda: valf.update_class_weights([1, 1, 1], [1.0, 1.0, 0.0], rate=3.0), "too large"),
        (lambda: valf.dynamic_class_weights([0.5, 1.5]), "fractions"),
        (lambda: valf.dynamic_class_weights([0.5, 0.5], smoothing=0.0), "`smoothing`"),
    ],
)
def test_bad_update_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_per_class_accuracy_equals_scikit_learn_recall():
    recall_score = pytest.importorskip("sklearn.metrics").recall_score
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=200)
    scores = rng.normal(size=(200, 4)) + np.eye(4)[labels]
    expected = recall_score(labels, scores.argmax(1), labels=range(4), average=None)
    np.testing.assert_allclose(valf.per_class_accuracy(labels, scores, 4), expected)
    np.testing.assert_allclose(valf.per_class_accuracy(np.eye(4)[labels], scores, 4), expected)
    np.testing.assert_allclose(valf.per_class_accuracy(labels[:, None], scores, 4), expected)


def test_per_class_accuracy_is_zero_for_a_class_without_samples():
    accuracy = valf.per_class_accuracy([0, 0, 2], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], 3)
    np.testing.assert_array_equal(accuracy, [0.5, 0.0, 1.0])


def test_per_class_accuracy_rejects_mismatches():
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        valf.per_class_accuracy([0, 1], np.zeros((2, 2)), 3)
    with pytest.raises(ValueError, match="3 samples but `y_pred` has 2"):
        valf.per_class_accuracy([0, 1, 2], np.zeros((2, 3)), 3)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        valf.per_class_accuracy([0, 5], np.zeros((2, 3)), 3)


def test_dynamic_rule():
    np.testing.assert_allclose(
        valf.dynamic_class_weights([0.9, 0.6, 0.9], smoothing=0.1),
        np.array([0.2, 0.5, 0.2]) / 0.3,
        rtol=1e-12,
    )
    np.testing.assert_allclose(valf.dynamic_class_weights([1.0, 1.0, 1.0]), np.ones(3))


def test_callback_rejects_bad_arguments():
    data = (np.zeros((4, 2)), np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="`loss` must be a ValidationAdaptiveFocalLoss"):
        valf.ValidationAdaptiveWeights(valf.FocalLoss(), data)
    loss = valf.ValidationAdaptiveFocalLoss(C)
    with pytest.raises(ValueError, match="`rate`"):
        valf.ValidationAdaptiveWeights(loss, data, rate=0)
    with pytest.raises(ValueError, match="`warmup_epochs`"):
        valf.ValidationAdaptiveWeights(loss, data, warmup_epochs=-1)
    with pytest.raises(ValueError, match=r"\[4\] inputs but 3 labels"):
        valf.ValidationAdaptiveWeights(loss, (np.zeros((4, 2)), np.zeros(3)))
    with pytest.raises(ValueError, match="`class_names`"):
        valf.ValidationAdaptiveWeights(loss, data, class_names=["a", "b"])


# ---------------------------------------------------------------------------
# Inside model.fit
# ---------------------------------------------------------------------------


def imbalanced_blobs(seed, counts=(120, 60, 120), hard_overlap=0.4):
    """Three Gaussian classes in 2-D; class 2 sits close to class 0 (the hard one)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 4.0], [hard_overlap, hard_overlap]]) * 2.5
    x = np.concatenate([rng.normal(centres[c], 1.0, size=(n, 2)) for c, n in enumerate(counts)])
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    order = rng.permutation(len(y))
    return x[order].astype("float32"), y[order]


def tiny_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((2,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(C, activation="softmax")(hidden))


@pytest.mark.slow
def test_warmup_leaves_weights_fixed_then_the_hard_class_gains():
    x, y = imbalanced_blobs(0)
    x_val, y_val = imbalanced_blobs(1, counts=(40, 20, 40))
    loss = valf.ValidationAdaptiveFocalLoss(C)
    callback = valf.ValidationAdaptiveWeights(
        loss, (x_val, y_val), warmup_epochs=4, rate=1.0, class_names=["A", "B", "H"]
    )
    model = tiny_model(0)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=loss)
    history = model.fit(x, y, epochs=12, batch_size=32, verbose=0, callbacks=[callback])

    rows = callback.history
    assert [row["updated"] for row in rows] == [False] * 3 + [True] * 9
    for row in rows[:3]:
        assert [row["weight_A"], row["weight_B"], row["weight_H"]] == [1.0, 1.0, 1.0]
    final = loss.get_class_weights()
    assert abs(final.mean() - 1.0) < 1e-6
    # The overlapping classes are below the mean accuracy; the separable one is not.
    assert rows[-1]["val_acc_B"] > max(rows[-1]["val_acc_A"], rows[-1]["val_acc_H"])
    assert final[1] < 1.0 < final[2]
    # Logs carry the same values, so CSVLogger and History record them.
    np.testing.assert_allclose(history.history["weight_H"], [row["weight_H"] for row in rows])
    np.testing.assert_allclose(history.history["val_acc_A"], [row["val_acc_A"] for row in rows])


@pytest.mark.slow
@pytest.mark.parametrize("jit_compile", [False, True])
def test_next_epoch_loss_uses_the_updated_weights(tmp_path, jit_compile):
    if jit_compile and keras.backend.backend() != "tensorflow":
        pytest.skip("XLA compilation is checked on the TensorFlow backend")
    # Learning rate 0: the model never changes, so each epoch's reported loss
    # is the VALF loss of fixed predictions under the weights then in force.
    x, y = imbalanced_blobs(2, counts=(30, 15, 30))
    loss = valf.ValidationAdaptiveFocalLoss(C, gamma=2.0, prior=[1.0, 2.0, 0.5])
    callback = valf.ValidationAdaptiveWeights(loss, (x, y), warmup_epochs=2, rate=1.0)
    model = tiny_model(1)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss, jit_compile=jit_compile)
    logger = keras.callbacks.CSVLogger(str(tmp_path / "history.csv"))
    history = model.fit(x, y, epochs=6, batch_size=len(y), verbose=0, callbacks=[callback, logger])
    probs = model.predict(x, verbose=0).astype(np.float64)
    accuracy = valf.per_class_accuracy(y, probs, C)

    weights = np.array([1.0, 2.0, 0.5])
    for epoch, reported in enumerate(history.history["loss"]):
        expected = ref.valf(y, probs, weights, 2.0).mean()
        assert abs(reported - expected) < 1e-5 * expected, (epoch, reported, expected)
        if epoch + 1 >= 2:
            weights = ref.valf_update(weights, accuracy, 1.0)
    assert not np.allclose(weights, [1.0, 2.0, 0.5])

    import csv

    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    np.testing.assert_allclose(
        [float(r["weight_2"]) for r in rows], [r["weight_2"] for r in callback.history], rtol=1e-6
    )
    np.testing.assert_allclose(float(rows[-1]["weight_0"]), weights[0], rtol=1e-6)


@pytest.mark.slow
def test_dynamic_weights_callback_recomputes_from_training_accuracy():
    x, y = imbalanced_blobs(3, counts=(30, 15, 30))
    loss = valf.DynamicWeightedFocalLoss(C)
    batches = [
        (x[i : i + 16], y[i : i + 16]) for i in range(0, len(y), 16)
    ]  # an iterable of batches
    callback = valf.DynamicWeights(loss, batches, smoothing=0.1)
    model = tiny_model(2)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    history = model.fit(x, y, epochs=2, batch_size=len(y), verbose=0, callbacks=[callback])
    accuracy = valf.per_class_accuracy(y, model.predict(x, verbose=0), C)
    np.testing.assert_allclose(
        loss.get_class_weights(), valf.dynamic_class_weights(accuracy, 0.1), rtol=1e-6
    )
    assert [row["updated"] for row in callback.history] == [True, True]
    assert "train_acc_0" in history.history and "weight_2" in history.history


# ---------------------------------------------------------------------------
# CDB's rule (Sinha et al.) and DRW's switch (Cao et al.)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.5, 1.0, 1.5, 2.0, 5.0])
def test_cdb_weights_follow_the_equation_for_a_fixed_tau(tau):
    rng = np.random.default_rng(4)
    for _ in range(50):
        accuracy = rng.uniform(size=5)
        weights = valf.cdb_class_weights(accuracy, tau)
        np.testing.assert_allclose(weights, ref.cdb_weights(accuracy, tau), rtol=1e-12)
        assert weights.dtype == np.float64 and abs(weights.mean() - 1.0) < 1e-12


def test_dynamic_tau_is_the_official_imagenet_lt_formula():
    accuracy = np.array([1.0, 0.6, 0.3])
    difficulty = 1 - accuracy
    imagenet, cifar = ref.cdb_tau_imagenet(difficulty), ref.cdb_tau_cifar(difficulty)
    assert abs(imagenet - cifar) > 0.5  # the two formulas disagree here
    np.testing.assert_allclose(
        valf.cdb_class_weights(accuracy, "dynamic"), ref.cdb_weights(accuracy, imagenet)
    )
    assert not np.allclose(
        valf.cdb_class_weights(accuracy, "dynamic"), ref.cdb_weights(accuracy, cifar)
    )
    rng = np.random.default_rng(5)
    for _ in range(50):
        accuracy = rng.uniform(size=4)
        expected = ref.cdb_weights(accuracy, ref.cdb_tau_imagenet(1 - accuracy))
        np.testing.assert_allclose(valf.cdb_class_weights(accuracy), expected, rtol=1e-12)
    # Equal difficulties give tau close to 1 (the ratio is about 1, less the 0.01 guard).
    assert 0.99 < ref.cdb_tau_imagenet(np.full(3, 0.2)) < 1.0


def test_a_class_at_accuracy_one_gets_weight_zero_and_all_perfect_gives_uniform():
    for tau in (0.5, 1.5, "dynamic"):
        weights = valf.cdb_class_weights([1.0, 0.5, 0.2], tau)
        assert weights[0] == 0 and weights[1] > 0 and abs(weights.mean() - 1.0) < 1e-12
    np.testing.assert_array_equal(valf.cdb_class_weights([1.0, 1.0, 1.0]), np.ones(3))
    np.testing.assert_array_equal(valf.cdb_class_weights([1.0, 1.0], tau=2.0), np.ones(2))
    # The official code divides by the zero sum there (NaN weights); valf documents uniform.
    assert np.allclose(ref.cdb_weights([1.0, 1.0, 1.0], 1.0), 1.0)
    # Equal accuracies below 1: uniform too, for any tau.
    np.testing.assert_allclose(valf.cdb_class_weights([0.7, 0.7, 0.7], tau=3.0), np.ones(3))


def test_a_large_tau_does_not_underflow():
    weights = valf.cdb_class_weights([0.5, 0.9, 0.99], tau=2000.0)
    assert np.all(np.isfinite(weights)) and abs(weights.mean() - 1.0) < 1e-12
    np.testing.assert_allclose(weights, [3.0, 0.0, 0.0], atol=1e-12)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: valf.cdb_class_weights([0.5, 0.5], tau=0.0), "`tau`"),
        (lambda: valf.cdb_class_weights([0.5, 0.5], tau=-1.0), "`tau`"),
        (lambda: valf.cdb_class_weights([0.5, 0.5], tau="adaptive"), "`tau`"),
        (lambda: valf.cdb_class_weights([0.5, 0.5], tau=float("nan")), "`tau`"),
        (lambda: valf.cdb_class_weights([0.5, 0.5], tau=True), "`tau`"),
        (lambda: valf.cdb_class_weights([0.5, 1.5]), "`per_class_accuracy`.*fractions"),
        (lambda: valf.cdb_class_weights([-0.1, 0.5]), "`per_class_accuracy`"),
        (lambda: valf.cdb_class_weights([[0.5, 0.5]]), "`per_class_accuracy`"),
        (lambda: valf.cdb_class_weights([0.5, float("nan")]), "`per_class_accuracy`"),
    ],
)
def test_bad_cdb_arguments_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_cdb_and_drw_callbacks_check_their_arguments():
    data = (np.zeros((4, 2)), np.array([0, 1, 2, 0]))
    cdb = valf.ClassDifficultyBalancedLoss(C, tau=1.5)
    with pytest.raises(ValueError, match="`loss` must be a ClassDifficultyBalancedLoss"):
        valf.ClassDifficultyWeights(valf.ValidationAdaptiveFocalLoss(C), data)
    with pytest.raises(ValueError, match=r"`tau` 2\.0 differs from the loss's tau 1\.5"):
        valf.ClassDifficultyWeights(cdb, data, tau=2.0)
    with pytest.raises(ValueError, match="`tau`"):
        valf.ClassDifficultyWeights(cdb, data, tau=0)
    assert valf.ClassDifficultyWeights(cdb, data, tau=1.5).tau == 1.5
    assert valf.ClassDifficultyWeights(cdb, data).tau == 1.5
    with pytest.raises(ValueError, match="`warmup_epochs`"):
        valf.ClassDifficultyWeights(cdb, data, warmup_epochs=-1)
    with pytest.raises(TypeError):
        valf.ClassDifficultyWeights(cdb, data, 1.5)  # options are keyword-only

    drw = valf.DeferredReweightingLoss([10, 5, 2])
    with pytest.raises(ValueError, match="`loss` must be a DeferredReweightingLoss"):
        valf.DeferredReweighting(cdb, warmup_epochs=1)
    with pytest.raises(ValueError, match="`warmup_epochs`"):
        valf.DeferredReweighting(drw, warmup_epochs=-1)
    with pytest.raises(TypeError):
        valf.DeferredReweighting(drw)  # the warm-up has no default
    with pytest.raises(ValueError, match="`class_names`"):
        valf.DeferredReweighting(drw, warmup_epochs=1, class_names=["a"])


def test_drw_switch_follows_the_epoch_number_keras_passes():
    counts = [10, 5, 2]
    loss = valf.DeferredReweightingLoss(counts, beta=0.9)
    callback = valf.DeferredReweighting(loss, warmup_epochs=3)
    balanced = ref.class_balanced_weights(counts, 0.9)
    for epoch in (5, 0, 2, 3, 1, 4):  # in any order, as after a resume
        callback.on_epoch_begin(epoch)
        expected = ref.drw_weights(counts, 0.9, epoch, 3)
        np.testing.assert_allclose(loss.get_class_weights(), expected, rtol=1e-6)
    logs = {}
    callback.on_epoch_end(2, logs)  # after the third epoch: the fourth trains balanced
    np.testing.assert_allclose(loss.get_class_weights(), balanced, rtol=1e-6)
    assert callback.history == [{"epoch": 2, "updated": True, **logs}]
    assert sorted(logs) == ["weight_0", "weight_1", "weight_2"]


# -- inside model.fit, learning rate 0 ------------------------------------------------------


def fixed_fit(loss, callback, x, y, *, epochs, initial_epoch=0, model=None):
    """Fit the fixed softmax model of fit_probe (learning rate 0) and return the reported
    loss per epoch, the model and its predictions."""
    from tests.library.fit_probe import fixed_softmax_model

    model = model or fixed_softmax_model("auto", loss)
    history = model.fit(
        x,
        y,
        batch_size=len(y),
        epochs=epochs,
        initial_epoch=initial_epoch,
        shuffle=False,
        verbose=0,
        callbacks=[callback],
    )
    return history.history["loss"], model, model.predict(x, verbose=0).astype(np.float64)


def drw_data():
    rng = np.random.default_rng(6)
    counts = (24, 4, 8)
    y = rng.permutation(np.repeat([0, 1, 2], counts))
    return counts, rng.normal(size=(len(y), 3)).astype("float32"), y


@pytest.mark.slow
@pytest.mark.parametrize("warmup", [0, 2])
def test_drw_in_fit_is_uniform_for_the_warmup_then_class_balanced(warmup):
    counts, x, y = drw_data()
    loss = valf.DeferredReweightingLoss(counts, beta=0.999, gamma=0.0)
    callback = valf.DeferredReweighting(loss, warmup_epochs=warmup)
    reported, _, probs = fixed_fit(loss, callback, x, y, epochs=4)
    for epoch, value in enumerate(reported):
        weights = ref.drw_weights(counts, 0.999, epoch, warmup)
        expected = ref.wcce(y, probs, weights).mean()
        assert abs(value - expected) < 2e-5 * expected, (epoch, value, expected)
    if warmup:  # the switch changed the loss
        assert abs(reported[0] - reported[-1]) > 0.01
    assert [row["updated"] for row in callback.history] == [e + 1 >= warmup for e in range(4)]


@pytest.mark.slow
def test_drw_resumed_fit_switches_by_epoch_not_by_a_counter():
    counts, x, y = drw_data()
    loss = valf.DeferredReweightingLoss(counts, beta=0.999, gamma=2.0)
    first = valf.DeferredReweighting(loss, warmup_epochs=3)
    reported, model, probs = fixed_fit(loss, first, x, y, epochs=2)
    # A new callback (its history restored, as the study's training state does) and a loss
    # still holding the uniform weights: epochs 3 and 4 (0-based 2, 3) straddle the switch.
    second = valf.DeferredReweighting(loss, warmup_epochs=3)
    second.history = list(first.history)
    resumed, _, _ = fixed_fit(loss, second, x, y, epochs=5, initial_epoch=2, model=model)
    reported += resumed
    expected = [
        ref.focal(y, probs, 2.0, ref.drw_weights(counts, 0.999, e, 3)).mean() for e in range(5)
    ]
    np.testing.assert_allclose(reported, expected, rtol=2e-5)
    assert [row["epoch"] for row in second.history] == [0, 1, 2, 3, 4]
    # Restored weights that disagree with the epoch are overridden at the epoch's start.
    loss.use_balanced_weights(True)
    third = valf.DeferredReweighting(loss, warmup_epochs=3)
    again, _, _ = fixed_fit(loss, third, x, y, epochs=2, initial_epoch=1, model=model)
    np.testing.assert_allclose(again, expected[1:2], rtol=2e-5)


@pytest.mark.slow
def test_cdb_resumed_fit_continues_from_the_saved_weights_and_history():
    from tests.library.fit_probe import cdb_validation_data

    x_val, y_val = cdb_validation_data()
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(30, 3)).astype("float32"), rng.integers(0, 3, 30)
    loss = valf.ClassDifficultyBalancedLoss(C, gamma=2.0, tau=1.5)
    callback = valf.ClassDifficultyWeights(loss, (x_val, y_val), class_names=["A", "B", "H"])
    reported, _, probs = fixed_fit(loss, callback, x, y, epochs=2)
    saved_weights, saved_history = loss.get_class_weights().tolist(), list(callback.history)
    weights = ref.cdb_weights([1.0, 0.6, 0.3], 1.5)
    assert saved_weights[0] == 0
    np.testing.assert_allclose(saved_weights, weights, rtol=1e-6, atol=1e-7)
    assert saved_history[-1]["val_acc_A"] == 1.0 and saved_history[-1]["weight_A"] == 0.0

    # A fresh loss, model and callback restored as the study's training state restores them.
    restored = valf.ClassDifficultyBalancedLoss(C, gamma=2.0, tau=1.5)
    restored.set_class_weights(saved_weights)
    again = valf.ClassDifficultyWeights(restored, (x_val, y_val), class_names=["A", "B", "H"])
    again.history = saved_history
    resumed, _, _ = fixed_fit(restored, again, x, y, epochs=4, initial_epoch=2)
    expected = [ref.focal(y, probs, 2.0, w).mean() for w in (np.ones(3), weights)]
    np.testing.assert_allclose(reported, expected, rtol=2e-5)
    np.testing.assert_allclose(resumed, [expected[1]] * 2, rtol=2e-5)
    assert [row["epoch"] for row in again.history] == [0, 1, 2, 3]
