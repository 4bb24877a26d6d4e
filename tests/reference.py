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
