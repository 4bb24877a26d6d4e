"""Per-class reweighting during training: VALF's rule, this project's DWFL rule, and the closest
prior art, CDB (weights from per-class validation difficulty) and DRW (class-balanced weights
after a warm-up).

The rules are pure NumPy functions; the callbacks measure per-class accuracy
once per epoch, apply a rule, assign the result to the loss's weight variable
(so the next epoch's compiled train steps use it) and record what they did.

The weight variable is state that the model's compiled train step reads, on every Keras
backend: the callbacks make the model track it (:func:`track_class_weights`), as it tracks a
BatchNormalization layer's moving mean. TensorFlow's ``tf.function`` (with or without
``jit_compile``) reads variables by reference and PyTorch runs eagerly, so there the variable
alone would do; JAX's jitted train step takes the model's variables as arguments, and a
variable it does not track would be read once, when the step is traced, and frozen in.

VALF (paper eqs. 7-8), after every epoch from the warm-up on::

    a_bar = mean(a)                       # a_c: validation accuracy of class c
    w_c  <- w_c * (1 + (a_bar - a_c) * r) # classes below the mean gain weight
    w    <- w / mean(w)                   # mean weight stays 1

``r = 0.01`` is the paper's 1/100 with accuracies as fractions; ``r = 1``
is the percentage reading (the book, ``book/method.md``, section "VALF's update rule", says
why both are kept).
"""

from __future__ import annotations

import keras
import numpy as np

from valf import _validation as check
from valf._keras_private import track_variable
from valf.losses import ClassDifficultyBalancedLoss, DeferredReweightingLoss, _AdaptiveFocalLoss

__all__ = [
    "ClassDifficultyWeights",
    "DeferredReweighting",
    "DynamicWeights",
    "ValidationAdaptiveWeights",
    "cdb_class_weights",
    "dynamic_class_weights",
    "per_class_accuracy",
    "track_class_weights",
    "update_class_weights",
]


def track_class_weights(model, loss):
    """Make ``loss``'s class weights a non-trainable variable of ``model``.

    Then every backend's compiled train step reads the weights as state, so a value assigned
    between epochs (:meth:`~valf.losses.ValidationAdaptiveFocalLoss.set_class_weights`) is
    the one the next epoch trains with; on JAX an untracked variable would be frozen into the
    jitted step at its first value. The callbacks call this when Keras hands them the model;
    call it yourself after ``compile`` when you assign the weights some other way. Calling it
    again does nothing. The model's weights (``model.weights``, its checkpoints) then include
    the class weights, after the layers' own.

    Parameters
    ----------
    model : keras.Model
    loss : ValidationAdaptiveFocalLoss, DynamicWeightedFocalLoss, ClassDifficultyBalancedLoss
        or DeferredReweightingLoss

    Returns
    -------
    The same ``model``.

    Examples
    --------
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> loss = valf.ValidationAdaptiveFocalLoss(3)
    >>> model.compile(optimizer="adam", loss=loss)
    >>> len(track_class_weights(model, loss).non_trainable_variables)
    1
    """
    _check_adaptive(loss)
    variable = loss.class_weights
    if any(tracked is variable for tracked in model.variables):
        return model
    # Keras has no public call that tracks a variable made elsewhere: valf._keras_private
    # holds the one private call, checked before use.
    return track_variable(model, variable)


def per_class_accuracy(y_true, y_pred, num_classes):
    """Fraction of each class's samples whose argmax prediction is that class.

    Parameters
    ----------
    y_true : array-like
        Integer labels (N,) or (N, 1), or one-hot rows (N, C).
    y_pred : array-like
        Scores (N, C): probabilities or logits (only the argmax matters).
    num_classes : int
        Number of classes C.

    Returns
    -------
    numpy.ndarray
        (C,) float64 accuracies in [0, 1]; 0 for a class with no samples.

    Examples
    --------
    >>> per_class_accuracy([0, 0, 1, 1], [[.9, .1], [.4, .6], [.2, .8], [.3, .7]], 2)
    array([0.5, 1. ])
    """
    num_classes = check.check_num_classes(num_classes)
    labels = _labels(y_true, num_classes)
    scores = np.asarray(y_pred)
    if scores.ndim != 2 or scores.shape[1] != num_classes:
        raise ValueError(
            f"`y_pred` must be scores of shape (N, {num_classes}), received shape {scores.shape}."
        )
    if scores.shape[0] != labels.shape[0]:
        raise ValueError(
            f"`y_true` has {labels.shape[0]} samples but `y_pred` has {scores.shape[0]}."
        )
    predicted = np.argmax(scores, axis=1)
    support = np.bincount(labels, minlength=num_classes)
    correct = np.bincount(labels[predicted == labels], minlength=num_classes)
    return np.divide(correct, support, out=np.zeros(num_classes), where=support > 0)


def update_class_weights(weights, per_class_accuracy, rate=0.01):
    """One VALF update: eq. 7, then the mean-1 normalisation of eq. 8.

    .. math::

        w_c \\leftarrow w_c \\, (1 + (\\bar a - a_c)\\, r), \\qquad
        w \\leftarrow w / \\operatorname{mean}(w)

    Parameters
    ----------
    weights : sequence of float
        Current per-class weights, positive.
    per_class_accuracy : sequence of float
        Validation accuracy per class, fractions in [0, 1].
    rate : float
        Update rate r > 0; 0.01 is the paper's 1/100 on fractions.

    Returns
    -------
    numpy.ndarray
        New weights (float64), mean 1.

    Notes
    -----
    The paper writes :math:`r = 1/100` without saying whether :math:`a_c` is
    a fraction or a percentage. This project reads it as a fraction, so one
    update changes a weight by at most 1 % (the paper's "small multiplicative
    change"); ``rate=1.0`` on fractions is exactly the percentage reading.
    A rate so large that a factor would reach 0 raises instead of clipping.

    References
    ----------
    - VALF: Validation-Adaptive Focal Loss for Histopathology (2025). Eurasian Journal of
      Mathematical and Computer Applications 13(4), 128-140.
      https://doi.org/10.32523/2306-6172-2025-13-4-128-140

    Examples
    --------
    >>> update_class_weights([1.0, 1.0, 1.0], [0.9, 0.6, 0.9], rate=0.01).round(6)
    array([0.999, 1.002, 0.999])
    """
    weights = check.check_class_weights(weights, name="weights")
    accuracy = check.check_accuracies(per_class_accuracy, weights.shape[0])
    rate = check.check_positive(rate, "rate")
    factors = 1.0 + (accuracy.mean() - accuracy) * rate
    if np.any(factors <= 0):
        raise ValueError(
            f"`rate` {rate} is too large for accuracies {accuracy.round(3).tolist()}: "
            f"it would make weights non-positive (factors {factors.round(3).tolist()}). "
            "Use a rate below 1 / max(a_c - mean(a))."
        )
    updated = weights * factors
    return updated / updated.mean()


def dynamic_class_weights(per_class_accuracy, smoothing=0.1):
    """This project's DWFL rule: weights from per-class training error.

    .. math:: w_c = \\frac{1 - a_c + s}{\\operatorname{mean}_k(1 - a_k + s)}

    Examples
    --------
    >>> dynamic_class_weights([0.9, 0.6, 0.9], smoothing=0.1).round(4)
    array([0.6667, 1.6667, 0.6667])
    """
    accuracy = np.asarray(per_class_accuracy, dtype=np.float64)
    accuracy = check.check_accuracies(accuracy, accuracy.shape[0] if accuracy.ndim == 1 else -1)
    smoothing = check.check_positive(smoothing, "smoothing")
    error = 1.0 - accuracy + smoothing
    return error / error.mean()


def cdb_class_weights(per_class_accuracy, tau="dynamic"):
    """CDB's rule: weights from per-class difficulty, Sinha et al. (2020, 2022).

    .. math::

        d_c = 1 - a_c, \\qquad
        w_c = \\frac{d_c^\\tau}{\\frac{1}{C} \\sum_k d_k^\\tau}

    with :math:`a_c` the per-class validation accuracy. Recomputed from the accuracies alone
    (no memory of earlier weights); the weights have mean 1, and a class at accuracy 1 gets
    weight 0.

    ``tau="dynamic"`` sets the exponent from the difficulties themselves:

    .. math::

        \\tau = 2\\,\\sigma\\!\\left(\\frac{1 - \\min_c d_c}{1 - \\max_c d_c + 0.01} - 1\\right),
        \\qquad \\sigma(x) = \\frac{1}{1 + e^{-x}}.

    The official code (github.com/hitachi-rd-cv/CDB-loss) has two formulas for it. Its
    CIFAR-LT (and EGTEA) ``losses/cdb_loss.py``::

        bias = (1 - np.min(class_difficulty))/(1 - np.max(class_difficulty) + 0.01)
        tau = sigmoid(bias)

    and its ImageNet-LT ``loss/CDBSoftmaxLoss.py``::

        bias = (1 - np.min(class_difficulty))/ (1 - np.max(class_difficulty) + epsilon) - 1
        tau = 2 * sigmoid(bias)

    (``epsilon = 0.01``). This function uses the second, for three reasons. (1) When every
    class is equally difficult the ratio is about 1, so the second gives
    :math:`\\tau \\approx 1` (weights proportional to difficulty), and :math:`\\tau`
    grows towards 2 as the hardest class falls behind the easiest; the first can never
    exceed 1, so it only ever compresses differences in difficulty. (2) The fixed values the
    authors train with (``--tau 1.5`` in the README's CIFAR-LT and EGTEA commands,
    ``tau: 1`` in the ImageNet-LT config) lie in the second formula's range, not the
    first's. (3) The ImageNet-LT ``create_loss`` is the one that combines CDB weights with
    focal loss (its ``focal_gamma``), the combination this library implements. The paper
    text was not at hand to settle it.

    Parameters
    ----------
    per_class_accuracy : sequence of float
        Validation accuracy per class, fractions in [0, 1].
    tau : float or "dynamic"
        The exponent, > 0, or ``"dynamic"``.

    Returns
    -------
    numpy.ndarray
        float64 weights >= 0 with mean 1.

    Notes
    -----
    When every class is at accuracy 1 all difficulties are 0 and the formula is 0 / 0: the
    official code divides by the zero sum (NumPy gives NaN weights, and the loss NaN). This
    function returns uniform weights instead, the limit of the rule as the difficulties
    approach 0 together, and the choice that favours no class when there is nothing to
    rebalance. The powers are taken of :math:`d_c / \\max_k d_k`, which leaves the
    normalised weights unchanged and keeps a large ``tau`` from underflowing to 0 / 0.

    References
    ----------
    - Sinha, S., Ohashi, H., Nakamura, K. (2020). Class-wise difficulty-balanced loss for
      solving class-imbalance. ACCV 2020. https://arxiv.org/abs/2010.01824
    - Sinha, S., Ohashi, H., Nakamura, K. (2022). Class-difficulty based methods for
      long-tailed visual recognition. International Journal of Computer Vision.
      https://doi.org/10.1007/s11263-022-01643-3

    Examples
    --------
    >>> cdb_class_weights([1.0, 0.6, 0.4], tau=1.0).round(6)
    array([0. , 1.2, 1.8])
    >>> cdb_class_weights([0.9, 0.6, 0.9], tau=2.0).round(4)
    array([0.1667, 2.6667, 0.1667])
    >>> cdb_class_weights([1.0, 1.0, 1.0])
    array([1., 1., 1.])
    """
    accuracy = np.asarray(per_class_accuracy, dtype=np.float64)
    accuracy = check.check_accuracies(accuracy, accuracy.shape[0] if accuracy.ndim == 1 else -1)
    tau = check.check_cdb_tau(tau)
    difficulty = 1.0 - accuracy
    if tau == "dynamic":
        tau = _cdb_dynamic_tau(difficulty)
    hardest = difficulty.max()
    if hardest == 0:
        return np.ones_like(difficulty)
    weights = np.power(difficulty / hardest, tau)
    return weights / weights.mean()


def _cdb_dynamic_tau(difficulty):
    """The official ImageNet-LT code's dynamic tau (see :func:`cdb_class_weights`)."""
    bias = (1.0 - difficulty.min()) / (1.0 - difficulty.max() + 0.01) - 1.0
    return 2.0 / (1.0 + np.exp(-bias))


class _PerClassAccuracyCallback(keras.callbacks.Callback):
    """Measure per-class accuracy on some data after each epoch and reweight a loss.

    Subclasses give the rule (:meth:`_new_weights`) and the log-key prefix.
    """

    data_role = "data"
    accuracy_prefix = "acc"

    def __init__(self, loss, data, warmup_epochs=0, batch_size=32, class_names=None):
        super().__init__()
        self.loss = _check_adaptive(loss)
        self.num_classes = loss.num_classes
        self.warmup_epochs = check.check_non_negative_int(warmup_epochs, "warmup_epochs")
        self.batch_size = int(check.check_positive(batch_size, "batch_size"))
        self.data = _check_data(data, self.data_role)
        self.class_names = _class_names(class_names, self.num_classes)
        self.history = []

    # The rule ------------------------------------------------------------
    def _new_weights(self, weights, accuracy):
        raise NotImplementedError

    # Keras hooks ---------------------------------------------------------
    def set_model(self, model):
        super().set_model(model)
        # Before fit builds its train step: the weights become state the step reads.
        track_class_weights(model, self.loss)

    def on_epoch_end(self, epoch, logs=None):
        y_true, y_pred = self._predict()
        accuracy = per_class_accuracy(y_true, y_pred, self.num_classes)
        weights = self.loss.get_class_weights()
        updated = epoch + 1 >= self.warmup_epochs
        if updated:
            weights = self._new_weights(weights, accuracy)
            self.loss.set_class_weights(weights)
        record = {"epoch": int(epoch), "updated": bool(updated)}
        for name, acc, weight in zip(self.class_names, accuracy, weights):
            record[f"{self.accuracy_prefix}_{name}"] = float(acc)
            record[f"weight_{name}"] = float(weight)
        self.history.append(record)
        if logs is not None:
            logs.update({k: v for k, v in record.items() if k not in ("epoch", "updated")})

    # Helpers --------------------------------------------------------------
    def _predict(self):
        # predict_on_batch reuses one compiled predict function; model.predict
        # would build a new data adapter and iterator every epoch (~0.1 s).
        labels, scores = [], []
        for x, y in self._batches():
            labels.append(np.asarray(keras.ops.convert_to_numpy(y)))
            scores.append(np.asarray(keras.ops.convert_to_numpy(self.model.predict_on_batch(x))))
        return np.concatenate(labels), np.concatenate(scores)

    def _batches(self):
        if isinstance(self.data, tuple):
            x, y = self.data
            for start in range(0, len(y), self.batch_size):
                stop = start + self.batch_size
                batch = keras.tree.map_structure(lambda a, i=start, j=stop: a[i:j], x)
                yield batch, y[start:stop]
        else:
            for batch in self.data:
                yield batch[0], batch[1]


class ValidationAdaptiveWeights(_PerClassAccuracyCallback):
    """Apply VALF's update rule to a :class:`~valf.losses.ValidationAdaptiveFocalLoss`.

    After every epoch the callback predicts the validation set once and
    computes per-class accuracy. For the first ``warmup_epochs`` epochs the
    weights stay as they are; after epoch ``warmup_epochs`` (counting from 1)
    and every later one it applies :func:`update_class_weights` and assigns
    the result to ``loss.class_weights``, so the next epoch trains with it.

    Each epoch adds to ``logs`` (hence to ``History`` and ``CSVLogger``) the
    keys ``val_acc_<class>`` and ``weight_<class>``: the weight *after* this
    epoch's update, i.e. the one the next epoch trains with. The same rows,
    plus ``epoch`` and ``updated``, are kept in :attr:`history`. Keras hands
    one ``logs`` dict to the callbacks in list order, so put this callback
    before ``CSVLogger`` (and before anything else that should see the keys).

    Parameters
    ----------
    loss : ValidationAdaptiveFocalLoss
        The loss the model was compiled with.
    validation_data : tuple or iterable
        A tuple ``(x, y)`` of arrays, or an iterable of ``(x, y)`` batches (a list, a
        ``tf.data.Dataset`` or a ``keras.utils.PyDataset``) that can be
        iterated once per epoch. ``y`` is integer or one-hot.
    warmup_epochs : int
        Epochs with fixed weights (default 10, as in the paper).
    rate : float
        Update rate r (default 0.01, the paper's 1/100 on fractions).
    batch_size : int
        Prediction batch size for array inputs.
    class_names : sequence of str, optional
        Names used in the log keys; default the class indices.

    References
    ----------
    - VALF: Validation-Adaptive Focal Loss for Histopathology (2025). Eurasian Journal of
      Mathematical and Computer Applications 13(4), 128-140.
      https://doi.org/10.32523/2306-6172-2025-13-4-128-140

    Examples
    --------
    >>> import numpy as np
    >>> loss = valf.ValidationAdaptiveFocalLoss(3)
    >>> x_val, y_val = np.zeros((6, 4)), np.array([0, 0, 1, 1, 2, 2])
    >>> callback = ValidationAdaptiveWeights(loss, (x_val, y_val), warmup_epochs=2)
    >>> # model.compile(optimizer="adam", loss=loss)
    >>> # model.fit(x, y, epochs=20, callbacks=[callback])
    """

    data_role = "validation_data"
    accuracy_prefix = "val_acc"

    def __init__(
        self, loss, validation_data, warmup_epochs=10, rate=0.01, batch_size=32, class_names=None
    ):
        super().__init__(loss, validation_data, warmup_epochs, batch_size, class_names)
        self.rate = check.check_positive(rate, "rate")

    def _new_weights(self, weights, accuracy):
        return update_class_weights(weights, accuracy, self.rate)


class DynamicWeights(_PerClassAccuracyCallback):
    """Apply this project's DWFL rule to a :class:`~valf.losses.DynamicWeightedFocalLoss`.

    After every epoch (from ``warmup_epochs`` on, default 0) the callback
    predicts ``training_data`` once, in inference mode, and sets the loss's
    weights to :func:`dynamic_class_weights` of the per-class accuracies. Pass
    the training set without augmentation. Logs ``train_acc_<class>`` and
    ``weight_<class>``, as :class:`ValidationAdaptiveWeights` does.

    References
    ----------
    - VALF: Validation-Adaptive Focal Loss for Histopathology (2025). Eurasian Journal of
      Mathematical and Computer Applications 13(4), 128-140.
      https://doi.org/10.32523/2306-6172-2025-13-4-128-140

    Examples
    --------
    >>> import numpy as np
    >>> loss = valf.DynamicWeightedFocalLoss(3)
    >>> callback = DynamicWeights(loss, (np.zeros((6, 4)), np.array([0, 0, 1, 1, 2, 2])))
    """

    data_role = "training_data"
    accuracy_prefix = "train_acc"

    def __init__(
        self, loss, training_data, warmup_epochs=0, smoothing=0.1, batch_size=32, class_names=None
    ):
        super().__init__(loss, training_data, warmup_epochs, batch_size, class_names)
        self.smoothing = check.check_positive(smoothing, "smoothing")

    def _new_weights(self, weights, accuracy):
        return dynamic_class_weights(accuracy, self.smoothing)


class ClassDifficultyWeights(_PerClassAccuracyCallback):
    """Apply CDB's rule to a :class:`~valf.losses.ClassDifficultyBalancedLoss`.

    After every epoch (from ``warmup_epochs`` on, counted as in
    :class:`ValidationAdaptiveWeights`; default 0, as in the official code, which updates
    from the first epoch) the callback predicts the validation set once and sets the loss's
    weights to :func:`cdb_class_weights` of the per-class accuracies, recomputed from them
    alone. The first epoch trains with the loss's prior (uniform by default). Logs
    ``val_acc_<class>`` and ``weight_<class>`` (the weight the next epoch trains with) and
    keeps the same rows, with ``epoch`` and ``updated``, in :attr:`history`, as
    :class:`ValidationAdaptiveWeights` does; put it before ``CSVLogger``.

    The weights are model state on every backend (:func:`track_class_weights`). To resume a
    run, restore ``loss.set_class_weights(saved)`` (zeros included) and :attr:`history`, and
    start ``fit`` at the epoch reached: the rule needs nothing else.

    Parameters
    ----------
    loss : ClassDifficultyBalancedLoss
        The loss the model was compiled with.
    validation_data : tuple or iterable
        As in :class:`ValidationAdaptiveWeights`. A class with no sample in it has accuracy 0,
        so the largest weight.
    tau : None, float or "dynamic"
        None (the default) takes the loss's ``tau``, which its config records; a value that
        differs from it is refused, so that a saved model names the rule it trained with.
    warmup_epochs : int
        Epochs with fixed weights (default 0).
    batch_size, class_names
        As in :class:`ValidationAdaptiveWeights`.

    References
    ----------
    - Sinha, S., Ohashi, H., Nakamura, K. (2020). Class-wise difficulty-balanced loss for
      solving class-imbalance. ACCV 2020. https://arxiv.org/abs/2010.01824
    - Sinha, S., Ohashi, H., Nakamura, K. (2022). Class-difficulty based methods for
      long-tailed visual recognition. International Journal of Computer Vision.
      https://doi.org/10.1007/s11263-022-01643-3

    Examples
    --------
    >>> import numpy as np
    >>> loss = valf.ClassDifficultyBalancedLoss(3, tau="dynamic")
    >>> x_val, y_val = np.zeros((6, 4)), np.array([0, 0, 1, 1, 2, 2])
    >>> callback = ClassDifficultyWeights(loss, (x_val, y_val))
    >>> callback.tau
    'dynamic'
    >>> # model.compile(optimizer="adam", loss=loss)
    >>> # model.fit(x, y, epochs=20, callbacks=[callback])
    """

    data_role = "validation_data"
    accuracy_prefix = "val_acc"

    def __init__(
        self, loss, validation_data, *, tau=None, warmup_epochs=0, batch_size=32, class_names=None
    ):
        if not isinstance(loss, ClassDifficultyBalancedLoss):
            raise ValueError(
                f"`loss` must be a ClassDifficultyBalancedLoss, received {type(loss).__name__}."
            )
        super().__init__(loss, validation_data, warmup_epochs, batch_size, class_names)
        if tau is not None and check.check_cdb_tau(tau) != loss.tau:
            raise ValueError(
                f"`tau` {tau!r} differs from the loss's tau {loss.tau!r}; set it on the loss "
                "(ClassDifficultyBalancedLoss(..., tau=...)), whose config records it."
            )
        self.tau = loss.tau

    def _new_weights(self, weights, accuracy):
        return cdb_class_weights(accuracy, self.tau)


class DeferredReweighting(keras.callbacks.Callback):
    """Switch a :class:`~valf.losses.DeferredReweightingLoss` to class-balanced weights after a
    warm-up (DRW, Cao et al. 2019).

    The first ``warmup_epochs`` epochs train with uniform weights, every later one with the
    loss's class-balanced weights; with ``warmup_epochs=0``, every epoch. This is the
    convention of :class:`ValidationAdaptiveWeights`' ``warmup_epochs``: the weights change
    after epoch ``warmup_epochs`` (counting from 1). LDAM-DRW's ``idx = epoch // 160`` (0-based
    epochs, uniform weights for the first 160) is ``warmup_epochs=160``.

    The weights follow from the epoch number Keras passes, not from a counter: at the start
    of epoch ``e`` (0-based) the callback assigns the weights for ``e``, so a ``fit`` resumed
    at ``initial_epoch`` trains with the right ones whatever the restored state held. After
    each epoch it assigns those of the next and records them, as the other callbacks do:
    ``logs`` get ``weight_<class>`` (the weight the next epoch trains with), and
    :attr:`history` the same with ``epoch`` and ``updated`` (whether those are the
    class-balanced weights). The weights are model state on every backend
    (:func:`track_class_weights`).

    Parameters
    ----------
    loss : DeferredReweightingLoss
        The loss the model was compiled with.
    warmup_epochs : int
        Epochs with uniform weights, >= 0.
    class_names : sequence of str, optional
        Names used in the log keys; default the class indices.

    References
    ----------
    - Cao, K., Wei, C., Gaidon, A., Arechiga, N., Ma, T. (2019). Learning imbalanced datasets
      with label-distribution-aware margin loss. NeurIPS 32, 1567-1578.
      https://arxiv.org/abs/1906.07413

    Examples
    --------
    >>> loss = valf.DeferredReweightingLoss([100, 10, 50], beta=0.9)
    >>> callback = DeferredReweighting(loss, warmup_epochs=2)
    >>> callback.on_epoch_begin(2)  # what fit does at the third epoch
    >>> loss.get_class_weights().round(3)
    array([0.847, 1.301, 0.852])
    """

    def __init__(self, loss, *, warmup_epochs, class_names=None):
        super().__init__()
        if not isinstance(loss, DeferredReweightingLoss):
            raise ValueError(
                f"`loss` must be a DeferredReweightingLoss, received {type(loss).__name__}."
            )
        self.loss = loss
        self.warmup_epochs = check.check_non_negative_int(warmup_epochs, "warmup_epochs")
        self.class_names = _class_names(class_names, loss.num_classes)
        self.history = []

    def set_model(self, model):
        super().set_model(model)
        track_class_weights(model, self.loss)

    def on_epoch_begin(self, epoch, logs=None):
        self.loss.use_balanced_weights(epoch >= self.warmup_epochs)

    def on_epoch_end(self, epoch, logs=None):
        balanced = epoch + 1 >= self.warmup_epochs
        self.loss.use_balanced_weights(balanced)
        record = {"epoch": int(epoch), "updated": bool(balanced)}
        for name, weight in zip(self.class_names, self.loss.get_class_weights()):
            record[f"weight_{name}"] = float(weight)
        self.history.append(record)
        if logs is not None:
            logs.update({k: v for k, v in record.items() if k not in ("epoch", "updated")})


def _check_adaptive(loss):
    if not isinstance(loss, _AdaptiveFocalLoss):
        raise ValueError(
            "`loss` must be a ValidationAdaptiveFocalLoss, DynamicWeightedFocalLoss, "
            "ClassDifficultyBalancedLoss or DeferredReweightingLoss (a loss with a "
            f"`class_weights` variable), received {type(loss).__name__}."
        )
    return loss


def _class_names(class_names, num_classes):
    if class_names is None:
        class_names = [str(c) for c in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(
            f"`class_names` must name the {num_classes} classes, received {class_names!r}."
        )
    return [str(name) for name in class_names]


def _labels(y_true, num_classes):
    labels = np.asarray(y_true)
    if labels.ndim == 2 and labels.shape[1] == num_classes and num_classes > 1:
        labels = np.argmax(labels, axis=1)
    labels = labels.reshape(-1)
    if labels.size and (
        labels.min() < 0 or labels.max() >= num_classes or not np.all(labels == np.round(labels))
    ):
        raise ValueError(
            f"`y_true` must hold class indices in [0, {num_classes}) or one-hot rows, "
            f"received values {np.unique(labels)[:10].tolist()}."
        )
    return labels.astype(np.int64)


def _check_data(data, role):
    # A tuple is (x, y[, sample_weight]), as in Keras; any other iterable yields batches.
    if isinstance(data, tuple):
        if len(data) not in (2, 3):
            raise ValueError(
                f"`{role}` must be (x, y) or (x, y, sample_weight), received {len(data)} items."
            )
        x, y = data[0], data[1]
        sizes = {len(a) for a in keras.tree.flatten(x)}
        if sizes != {len(y)}:
            raise ValueError(f"`{role}` has {sorted(sizes)} inputs but {len(y)} labels.")
        return (x, y)
    if not hasattr(data, "__iter__"):
        raise ValueError(
            f"`{role}` must be (x, y) arrays or an iterable of (x, y) batches, "
            f"received {type(data).__name__}."
        )
    return data
