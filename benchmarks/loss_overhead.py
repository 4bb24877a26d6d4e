"""What VALF costs next to categorical cross-entropy, measured in one run.

Two questions, two measurements:

1. Train-step time. The same backbone is compiled twice, once with
   ``CategoricalCrossentropy`` and once with ``ValidationAdaptiveFocalLoss``;
   their train steps are timed in interleaved blocks (the order alternates
   every round, because whichever model runs second tends to run faster) and
   the median over rounds of each round's VALF/CCE ratio is reported.
   Goal: at most 1.02. Because block timings are noisy (on a GPU at batch 4
   the step is mostly launch and transfer overhead), the loss and its
   gradient are also timed alone, compiled, as a share of the train step.
2. The callback. ``model.fit`` runs on a training and a validation set the
   size of LungHist700's (20x: 263 and 48 images) with
   ``ValidationAdaptiveWeights``; the callback's own time (one prediction of
   the validation set, the update, the assign) is reported as a share of the
   epoch. Goal: at most 5 %.

Images are random (timing does not depend on content) and backbones start
from random weights (no download). Usage::

    python benchmarks/loss_overhead.py                          # CPU default
    python benchmarks/loss_overhead.py --backbone ResNet50      # a GPU
    python benchmarks/loss_overhead.py --json out.json          # keep the figures
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
import valf

BACKBONES = {
    "MobileNetV3Small": lambda shape: keras.applications.MobileNetV3Small(
        input_shape=shape, include_top=False, weights=None, include_preprocessing=False
    ),
    "EfficientNetV2B0": lambda shape: keras.applications.EfficientNetV2B0(
        input_shape=shape, include_top=False, weights=None, include_preprocessing=False
    ),
    "ResNet50": lambda shape: keras.applications.ResNet50(
        input_shape=shape, include_top=False, weights=None
    ),
    "EfficientNetV2B3": lambda shape: keras.applications.EfficientNetV2B3(
        input_shape=shape, include_top=False, weights=None, include_preprocessing=False
    ),
    "DenseNet121": lambda shape: keras.applications.DenseNet121(
        input_shape=shape, include_top=False, weights=None
    ),
    "InceptionV3": lambda shape: keras.applications.InceptionV3(
        input_shape=shape, include_top=False, weights=None
    ),
    "ConvNeXtTiny": lambda shape: keras.applications.ConvNeXtTiny(
        input_shape=shape, include_top=False, weights=None, include_preprocessing=False
    ),
}
NUM_CLASSES = 3


def build(backbone, shape, loss, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    features = BACKBONES[backbone](shape)(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32")(pooled)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    return model


def time_steps(model, x, y, batch_size):
    """Seconds per train step over one pass of ``model.fit`` through (x, y).

    ``fit`` keeps the model state on the device between steps; timing single
    ``train_on_batch`` calls would mostly time their per-call set-up and sync.
    """
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    return (time.perf_counter() - start) / (len(y) // batch_size)


def measure_step_ratio(args, shape):
    rng = np.random.default_rng(0)
    n = args.batch_size * args.steps
    x = rng.uniform(size=(n, *shape)).astype("float32")
    y = np.eye(NUM_CLASSES, dtype="float32")[rng.integers(0, NUM_CLASSES, n)]
    losses = {
        "CCE": keras.losses.CategoricalCrossentropy,
        "VALF": lambda: valf.ValidationAdaptiveFocalLoss(NUM_CLASSES),
    }
    names = ["VALF", "CCE"] if args.valf_first else ["CCE", "VALF"]
    models = {name: build(args.backbone, shape, losses[name](), 0) for name in names}
    for model in models.values():  # compile and warm up outside the timing
        time_steps(model, x, y, args.batch_size)
    times = {name: [] for name in models}
    order = list(models)
    for round_index in range(args.rounds):
        for name in order if round_index % 2 == 0 else order[::-1]:
            times[name].append(time_steps(models[name], x, y, args.batch_size))
        print(
            f"  round {round_index + 1}/{args.rounds}: "
            + ", ".join(f"{n} {times[n][-1] * 1e3:.1f} ms" for n in order),
            flush=True,
        )
    medians = {name: statistics.median(values) for name, values in times.items()}
    # Each round's two blocks ran back to back, so their ratio cancels the
    # machine's drift; the median over rounds resists the odd slow block.
    paired = sorted(v / c for v, c in zip(times["VALF"], times["CCE"]))
    quartiles = statistics.quantiles(paired, n=4) if len(paired) > 1 else paired * 3
    return {
        "step_ms": {name: round(value * 1e3, 3) for name, value in medians.items()},
        "step_ms_all": {
            name: [round(v * 1e3, 3) for v in values] for name, values in times.items()
        },
        "ratio_valf_over_cce": round(statistics.median(paired), 4),
        "ratio_quartiles": [round(quartiles[0], 4), round(quartiles[2], 4)],
        # Shared machines slow down for seconds at a time; as timeit does, the
        # fastest block of each is the least disturbed estimate.
        "ratio_of_minima": round(min(times["VALF"]) / min(times["CCE"]), 4),
    }


def loss_and_gradient_function(loss):
    """A compiled function returning the loss and its gradient w.r.t. the predictions."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def step(y, p):
            with tf.GradientTape() as tape:
                tape.watch(p)
                value = loss(y, p)
            return value, tape.gradient(value, p)

        return step, lambda out: out[1].numpy()
    if backend == "jax":
        import jax

        step = jax.jit(jax.value_and_grad(lambda p, y: loss(y, p)))
        return (lambda y, p: step(p, y)), lambda out: out[1].block_until_ready()
    if backend == "torch":
        import torch

        def step(y, p):
            p = p.detach().requires_grad_(True)
            value = loss(y, p)
            (grad,) = torch.autograd.grad(value, p)
            return value, grad

        return step, lambda out: out[1].cpu()
    raise SystemExit(f"no loss timing for backend {backend}")


def measure_loss_alone(args, repeats=2000):
    """Seconds per call of each loss (forward and gradient) on a (batch, C) batch."""
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(NUM_CLASSES), size=args.batch_size).astype("float32")
    y = keras.ops.convert_to_tensor(
        np.eye(NUM_CLASSES, dtype="float32")[rng.integers(0, NUM_CLASSES, args.batch_size)]
    )
    p = keras.ops.convert_to_tensor(probs)
    seconds = {}
    for name, loss in (
        ("CCE", keras.losses.CategoricalCrossentropy()),
        ("VALF", valf.ValidationAdaptiveFocalLoss(NUM_CLASSES)),
    ):
        step, wait = loss_and_gradient_function(loss)
        for _ in range(20):
            wait(step(y, p))
        start = time.perf_counter()
        for _ in range(repeats):
            out = step(y, p)
        wait(out)
        seconds[name] = (time.perf_counter() - start) / repeats
    return seconds


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch up to the callbacks that follow it."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class TimedValidationAdaptiveWeights(valf.ValidationAdaptiveWeights):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seconds = []

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.seconds.append(time.perf_counter() - start)


def measure_callback_share(args, shape):
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(args.train_images, *shape)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, args.train_images)
    x_val = rng.uniform(size=(args.val_images, *shape)).astype("float32")
    y_val = rng.integers(0, NUM_CLASSES, args.val_images)
    loss = valf.ValidationAdaptiveFocalLoss(NUM_CLASSES)
    model = build(args.backbone, shape, loss, 0)
    timer = EpochTimer()
    callback = TimedValidationAdaptiveWeights(loss, (x_val, y_val), warmup_epochs=0)
    model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=0,
        callbacks=[timer, callback],
    )
    # Epoch 1 includes compilation of the train, test and predict functions.
    epoch = statistics.median(timer.seconds[1:])
    spent = statistics.median(callback.seconds[1:])
    return {
        "epoch_s": round(epoch, 3),
        "callback_s": round(spent, 4),
        "callback_share": round(spent / (epoch + spent), 4),
        "train_images": args.train_images,
        "val_images": args.val_images,
        "epochs_timed": args.epochs - 1,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="MobileNetV3Small", choices=sorted(BACKBONES))
    parser.add_argument("--height", type=int, default=300)
    parser.add_argument("--width", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="train steps per timed block")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved blocks per loss")
    parser.add_argument("--train-images", type=int, default=263)
    parser.add_argument("--val-images", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=3, help="fit epochs; the first is not timed")
    parser.add_argument(
        "--valf-first",
        action="store_true",
        help="build and time the VALF model first (checks order effects)",
    )
    parser.add_argument("--skip-callback", action="store_true")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch compiles)")

    shape = (args.height, args.width, 3)
    devices = [str(d) for d in _devices()]
    print(
        f"{args.backbone} at {args.height}x{args.width}, batch {args.batch_size}, "
        f"Keras {keras.__version__} on {keras.backend.backend()}, devices: {devices}"
    )
    print("Train step, interleaved:")
    result = {
        "backbone": args.backbone,
        "input_shape": list(shape),
        "batch_size": args.batch_size,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "devices": devices,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "step": measure_step_ratio(args, shape),
    }
    alone = measure_loss_alone(args)
    step = result["step"]
    step["loss_alone_us"] = {name: round(value * 1e6, 2) for name, value in alone.items()}
    step["valf_loss_share_of_step"] = round(alone["VALF"] / (step["step_ms"]["CCE"] / 1e3), 6)
    print(
        f"Median step: CCE {step['step_ms']['CCE']:.1f} ms, VALF {step['step_ms']['VALF']:.1f} ms;"
        f"\nRatio VALF/CCE, median of paired rounds = {step['ratio_valf_over_cce']:.3f} "
        f"(quartiles {step['ratio_quartiles'][0]:.3f}-{step['ratio_quartiles'][1]:.3f};"
        " goal <= 1.02)"
    )
    print(f"Ratio of the fastest blocks = {step['ratio_of_minima']:.3f}")
    print(
        f"Loss and its gradient alone (compiled, batch {args.batch_size}): "
        f"CCE {step['loss_alone_us']['CCE']:.0f} us, VALF {step['loss_alone_us']['VALF']:.0f} us"
        f" = {100 * step['valf_loss_share_of_step']:.3f} % of a CCE train step"
    )
    if not args.skip_callback:
        if keras.backend.backend() == "jax":
            print("Callback: not measured on JAX (the callback needs TensorFlow or PyTorch).")
        else:
            share = measure_callback_share(args, shape)
            result["callback"] = share
            print(
                f"Callback: {share['callback_s'] * 1e3:.0f} ms per epoch of "
                f"{share['epoch_s']:.1f} s = {100 * share['callback_share']:.2f} % "
                f"(goal <= 5 %; {share['train_images']} train, {share['val_images']} val images)"
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
        print(f"Figures written to {args.json}")
    return result


def _devices():
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices()]
    if backend == "torch":
        import torch

        return ["cuda:" + torch.cuda.get_device_name(0)] if torch.cuda.is_available() else ["cpu"]
    if backend == "jax":
        import jax

        return jax.devices()
    return [backend]


if __name__ == "__main__":
    main()
