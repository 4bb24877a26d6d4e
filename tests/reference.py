"""Independent NumPy (float64) implementations of the study's equations.

Written from the equations of book/method.md (section "The losses") in the p_t form, one line per
equation, with no code shared with ``valf.losses``: the tests compare the two.
"""

import numpy as np

EPSILON = 1e-7


def softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def true_class_probability(labels, probs):
    """p_t with Keras' guard: renormalise, then clip to [eps, 1 - eps]."""
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum(axis=-1, keepdims=True)
    probs = np.clip(probs, EPSILON, 1 - EPSILON)
    return probs[np.arange(len(labels)), labels]


def cce(labels, probs):
    return -np.log(true_class_probability(labels, probs))


def wcce(labels, probs, weights):
    return np.asarray(weights)[labels] * cce(labels, probs)


def focal(labels, probs, gamma, alpha=None):
    pt = true_class_probability(labels, probs)
    alpha_t = (
        1.0
        if alpha is None
        else np.broadcast_to(np.asarray(alpha, float), (probs.shape[1],))[labels]
    )
    return -alpha_t * (1 - pt) ** gamma * np.log(pt)


def class_balanced_weights(counts, beta):
    counts = np.asarray(counts, dtype=np.float64)
    w = (1 - beta) / (1 - beta**counts)
    return w / w.sum() * len(counts)


def cefl(labels, probs, gamma):  # Wang et al. 2020, eq. 9
    pt = true_class_probability(labels, probs)
    return -(1 - pt) * np.log(pt) - pt * (1 - pt) ** gamma * np.log(pt)


def cefl2(labels, probs, gamma):  # Wang et al. 2020, eq. 11
    pt = true_class_probability(labels, probs)
    d = (1 - pt) ** 2 + pt**2
    return -((1 - pt) ** 2 / d) * np.log(pt) - (pt**2 / d) * (1 - pt) ** gamma * np.log(pt)


def valf(labels, probs, weights, gamma):  # VALF eq. 6
    return focal(labels, probs, gamma, alpha=weights)


def valf_update(weights, accuracy, rate):  # VALF eqs. 7 and 8
    weights, accuracy = np.asarray(weights, float), np.asarray(accuracy, float)
    new = np.array([w * (1 + (accuracy.mean() - a) * rate) for w, a in zip(weights, accuracy)])
    return new / new.mean()


def smoothed_weighted_focal(labels, probs, weights, gamma, smoothing=0.0, from_logits=False):
    """sum_c y_c w_c (1 - p_c)^gamma (-log p_c), with y the one-hot label smoothed as
    y (1 - s) + s / C (Keras' label_smoothing); probabilities clipped as Keras does."""
    scores = np.asarray(probs, dtype=np.float64)
    num_classes = scores.shape[1]
    if from_logits:
        p = softmax(scores)
    else:
        p = np.clip(scores / scores.sum(axis=1, keepdims=True), EPSILON, 1 - EPSILON)
    y = np.eye(num_classes)[labels] * (1 - smoothing) + smoothing / num_classes
    w = np.asarray(weights, dtype=np.float64)
    return (y * w * (1 - p) ** gamma * -np.log(p)).sum(axis=1)


# CDB: Sinha, Ohashi, Nakamura (ACCV 2020; IJCV 2022), from the official code's two formulas.


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def cdb_tau_cifar(difficulty):  # CIFAR-LT/losses/cdb_loss.py
    return sigmoid((1 - np.min(difficulty)) / (1 - np.max(difficulty) + 0.01))


def cdb_tau_imagenet(difficulty):  # ImageNet-LT/loss/CDBSoftmaxLoss.py
    return 2 * sigmoid((1 - np.min(difficulty)) / (1 - np.max(difficulty) + 0.01) - 1)


def cdb_weights(accuracy, tau):
    """w_c = d_c^tau / mean_k d_k^tau with d = 1 - a; uniform when every d is 0 (the rule is
    0 / 0 there; valf's documented choice)."""
    d = 1 - np.asarray(accuracy, dtype=np.float64)
    if np.all(d == 0):
        return np.ones_like(d)
    w = np.array([dc**tau for dc in d])
    return w / w.mean()


# DRW: Cao et al. (NeurIPS 2019), LDAM-DRW's rule.


def drw_weights(counts, beta, epoch, warmup_epochs):
    """The weights epoch `epoch` (0-based) trains with: uniform for the first `warmup_epochs`
    epochs, Cui et al.'s class-balanced weights after."""
    if epoch < warmup_epochs:
        return np.ones(len(counts))
    return class_balanced_weights(counts, beta)
