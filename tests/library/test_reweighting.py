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
