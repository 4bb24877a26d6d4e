"""Test metrics against scikit-learn on fixed predictions, and ECE and the bootstrap by hand."""

import numpy as np
import pytest
from sklearn import metrics as skm

from valf_study import metrics

Y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
P = np.array(
    [
        [0.8, 0.1, 0.1],
        [0.6, 0.3, 0.1],
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1],
        [0.3, 0.3, 0.4],
        [0.1, 0.1, 0.8],
        [0.2, 0.2, 0.6],
        [0.5, 0.1, 0.4],
        [0.0, 0.1, 0.9],
        [0.2, 0.5, 0.3],
    ]
)


def test_metrics_match_scikit_learn():
    result = metrics.classification_metrics(Y, P, class_names=["ACA", "NOR", "SCC"])
    predicted = P.argmax(1)
    assert result["accuracy"] == skm.accuracy_score(Y, predicted)
    assert result["balanced_accuracy"] == skm.balanced_accuracy_score(Y, predicted)
    assert result["precision"] == pytest.approx(skm.precision_score(Y, predicted, average="macro"))
    assert result["recall"] == pytest.approx(skm.recall_score(Y, predicted, average="macro"))
    assert result["f1"] == pytest.approx(skm.f1_score(Y, predicted, average="macro"))
    assert result["auc"] == pytest.approx(skm.roc_auc_score(Y, P, multi_class="ovr"))
    per_class = skm.f1_score(Y, predicted, average=None)
    assert [result["f1_ACA"], result["f1_NOR"], result["f1_SCC"]] == pytest.approx(per_class)
    assert result["f1_ci_low"] <= result["f1"] <= result["f1_ci_high"]


@pytest.mark.parametrize("num_classes", [2, 4, 50])
def test_metrics_match_scikit_learn_for_any_number_of_classes(num_classes):
    rng = np.random.default_rng(num_classes)
    y = np.concatenate([np.arange(num_classes), rng.integers(0, num_classes, 300)])
    logits = rng.normal(size=(len(y), num_classes)) + 1.5 * np.eye(num_classes)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    names = [f"c{k}" for k in range(num_classes)]
    result = metrics.classification_metrics(y, p, class_names=names, bootstrap_resamples=0)
    predicted = p.argmax(1)
    assert result["f1"] == pytest.approx(skm.f1_score(y, predicted, average="macro"))
    assert result["recall"] == pytest.approx(skm.recall_score(y, predicted, average="macro"))
    if num_classes == 2:  # the AUC of the positive class, label 1
        assert result["auc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
    else:
        assert result["auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    recalls = skm.recall_score(y, predicted, average=None)
    assert [result[f"recall_{name}"] for name in names] == pytest.approx(recalls)


def test_confusion_rows_sum_to_one():
    matrix = metrics.confusion_matrix(Y, P)
    np.testing.assert_allclose(matrix.sum(1), 1.0)
    np.testing.assert_allclose(matrix, skm.confusion_matrix(Y, P.argmax(1), normalize="true"))


def test_expected_calibration_error_by_hand():
    # Two bins used: (0.8, 0.9] holds 0.9 (correct) -> |1 - 0.9|; (0.7, 0.8] holds 0.8
    # (wrong) -> |0 - 0.8|; each weighs 1/2: ECE = 0.05 + 0.4 = 0.45.
    assert metrics.expected_calibration_error([0, 1], [[0.9, 0.1], [0.8, 0.2]], 10) == 0.45
    perfect = np.eye(3)[[0, 1, 2, 0]]
    assert metrics.expected_calibration_error([0, 1, 2, 0], perfect) == 0.0


def test_bootstrap_is_seeded_and_brackets_the_value():
    first = metrics.bootstrap_interval(Y, P, seed=1, n_resamples=300)
    assert first == metrics.bootstrap_interval(Y, P, seed=1, n_resamples=300)
    assert first != metrics.bootstrap_interval(Y, P, seed=2, n_resamples=300)
    assert first[0] < metrics.macro_f1(Y, P) < first[1]


def test_absent_class_gives_nan_auc_and_bad_shapes_fail():
    result = metrics.classification_metrics([0, 0, 1, 1], P[:4], bootstrap_resamples=50)
    assert np.isnan(result["auc"])
    with pytest.raises(ValueError, match=r"shape \(N, C\) with N = 3"):
        metrics.classification_metrics([0, 1, 2], P)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        metrics.macro_f1([0, 5] + [0] * 8, P)


def test_macro_f1_of_resamples_equals_scikit_learn_on_each():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 40)
    predicted = np.where(rng.random(40) < 0.6, y, rng.integers(0, 4, 40))
    predicted[predicted == 3] = 2  # class 3 is never predicted: its F1 is 0
    indices = rng.integers(0, 40, (200, 40))
    fast = metrics.macro_f1_of_resamples(y, predicted, indices, 4)
    slow = [
        skm.f1_score(y[i], predicted[i], labels=range(4), average="macro", zero_division=0)
        for i in indices
    ]
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
