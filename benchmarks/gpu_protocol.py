"""The paper's protocol on one GPU: a run's cost, what packing runs buys, the grid's wall time.

Measured in one process tree, for each backbone of ``studies/paper.yaml`` at 300x400, batch 4,
on the backend Keras runs on (``KERAS_BACKEND``; run the script once per backend present):

1. Train-step time with CCE and with VALF, timed in interleaved blocks (the order alternates
   each round; :func:`loss_overhead.measure_step_ratio`). Goal: VALF/CCE at most 1.02.
2. Images per second of one run, and the aggregate of N runs packed on the GPU (N separate
   processes, as ``valf sweep --runs-per-gpu N`` starts them), N in 1, 2, 4, 8. Goal: the best
   aggregate at least 3x one run.
3. The input pipeline's images per second at 1200x1600 with the faithful augmentation, on the
   machine's cores, from the decode cache (second epoch), against what the packed runs consume.
4. From these, the projected wall time of ``studies/lr-selection.yaml`` plus ``studies/paper.yaml``
   on one GPU: every run at its maximum epochs (an upper bound: early stopping ends most runs
   sooner), each epoch training on the official split's training images and predicting the
   validation images once (twice for VALF and DWFL, whose callback predicts them again), at the
   best packing's rate and never faster than the input pipeline. Goal: at most 2 hours on an H100.
   Runs that lr-selection and paper share (the chosen learning rate, seed 0) train once in a
   sweep but count twice here: one more reason the projection is an upper bound.

Backbones start from random weights (timing does not depend on them; no download), images are
random. Usage on a GPU machine::

    KERAS_BACKEND=jax python benchmarks/gpu_protocol.py \\
        --json benchmarks/results/gpu_protocol-h100-jax.json

and a smoke test of the script on a CPU::

    python benchmarks/gpu_protocol.py --backbones SmallCNN --height 32 --width 48 \\
        --rounds 2 --steps 2 --pack 1 2 --pack-seconds 5 --pipeline-images 4 \\
        --pipeline-size 120 160 --pipeline-scale 0.025
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Packed runs share the GPU: no process may take all of its memory at start.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PAPER_BACKBONES = ["ResNet50", "EfficientNetV2B3", "DenseNet121", "InceptionV3", "ConvNeXtTiny"]
NUM_CLASSES = 3


def build(backbone, shape, loss, seed=0):
    """The study's model (:func:`valf_study.run.backbones.build_model`), random weights, Adam."""
    import keras

    from valf_study.run.backbones import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(backbone, NUM_CLASSES, shape, weights=None)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    return model


def step_ratio(backbone, shape, args):
    """VALF against CCE, interleaved (loss_overhead's measurement on the study's models)."""
    import loss_overhead

    loss_overhead.build = lambda name, shape_, loss, seed: build(name, shape_, loss, seed)
    options = SimpleNamespace(
        backbone=backbone,
        batch_size=args.batch_size,
        steps=args.steps,
        rounds=args.rounds,
        valf_first=False,
    )
    return loss_overhead.measure_step_ratio(options, shape)


def train_rate(backbone, shape, batch_size, seconds):
    """Training images per second of one model, after a warm-up pass (trace and compile)."""
    import keras
    import numpy as np

    model = build(backbone, shape, keras.losses.CategoricalCrossentropy())
    rng = np.random.default_rng(0)
    steps = 8
    x = rng.uniform(size=(steps * batch_size, *shape)).astype("float32")
    y = np.eye(NUM_CLASSES, dtype="float32")[rng.integers(0, NUM_CLASSES, len(x))]
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    images, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
        images += len(x)
    elapsed = time.perf_counter() - start
    predict_start = time.perf_counter()
    model.predict(x, batch_size=batch_size, verbose=0)
    predict_s = time.perf_counter() - predict_start
    return {"images": images, "seconds": elapsed, "predict_images_per_s": len(x) / predict_s}


def packed_rate(backbone, shape, batch_size, runs, seconds):
    """Aggregate training images/s of ``runs`` processes training at once on the device."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        backbone,
        "--height",
        str(shape[0]),
        "--width",
        str(shape[1]),
        "--batch-size",
        str(batch_size),
        "--pack-seconds",
        str(seconds),
    ]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(runs)
    ]
    results = []
    for process in processes:
        output, _ = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"a packed run of {backbone} failed (exit {process.returncode})")
        results.append(json.loads(output.strip().splitlines()[-1]))
    # The runs started together and trained for the same time: the aggregate is the sum of
    # their rates (each over its own timed span, so compile time is left out).
    per_run = [r["images"] / r["seconds"] for r in results]
    return {
        "runs": runs,
        "images_per_s": round(sum(per_run), 2),
        "per_run_images_per_s": [round(r, 2) for r in per_run],
        "predict_images_per_s": round(sum(r["predict_images_per_s"] for r in results), 2),
    }


def pipeline_rate(images, size, scale, workers):
    """Training images/s of the input pipeline: the faithful recipe on ``size`` images (the
    release's 1200x1600) to the network's input (``scale``), from the decode cache (second
    epoch), fetched by ``workers`` threads."""
    import input_pipeline

    from valf_study.data.augment import train_transform
    from valf_study.data.decode import DecodedImageCache

    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "images"
        folder.mkdir()
        frame = input_pipeline.write_images(folder, images)
        cache = DecodedImageCache(Path(work) / "cache", "bench", "20x", tuple(size))
        transform = train_transform(scale=scale, fast=False, input_size=tuple(size))
        first, second = input_pipeline.pipeline_rates(frame, transform, cache, 4, workers)
    return {
        "input_size": list(size),
        "first_epoch": round(first, 2),
        "second_epoch": round(second, 2),
        "workers": workers,
    }


def split_counts():
    """Images per (magnification, split) of LungHist700's official split."""
    from valf_study.data import lunghist700

    frame = lunghist700.official_split(lunghist700.reference_metadata())
    return frame.groupby(["resolution", "split"]).size().to_dict()


def protocol_work():
    """Per backbone: (training images, validation images predicted) summed over every run's
    epochs of lr-selection plus paper at their maximum epochs; and the number of runs.

    The paper's learning rates wait for lr-selection's results; the count does not depend on
    them, so the study's defaults stand in (as ``valf sweep --dry-run`` does)."""
    from valf_study.run.parameters import run_id
    from valf_study.studies.plan import _combinations, _resolve
    from valf_study.studies.spec import find_study_file, load_study

    counts = split_counts()
    work, seen = {}, set()
    for name in ("lr-selection", "paper"):
        study = load_study(find_study_file(name, ROOT / "studies"))
        for experiment in study.experiments:
            for combination in _combinations(study.experiments[experiment]):
                params = _resolve(study, experiment, combination, {})
                if (name, run_id(params)) in seen:
                    continue
                seen.add((name, run_id(params)))
                magnification = params["magnification"]
                # VALF's and DWFL's callbacks predict the validation images a second time.
                passes = 2 if params["loss"] in ("VALF", "DWFL") else 1
                train, val = work.get(params["backbone"], (0, 0))
                work[params["backbone"]] = (
                    train + params["epochs"] * counts[(magnification, "train")],
                    val + params["epochs"] * passes * counts[(magnification, "val")],
                )
    return work, len(seen)


def project(work, rates, pipeline):
    """Hours on one GPU: each backbone's work at its best packed rate, capped by the pipeline."""
    seconds = 0.0
    for backbone, (train, val) in work.items():
        best = max(rates[backbone]["packed"], key=lambda r: r["images_per_s"])
        train_rate = min(best["images_per_s"], pipeline["second_epoch"])
        seconds += train / train_rate + val / best["predict_images_per_s"]
    return seconds / 3600


def environment():
    from valf_study.run.environment import environment_record

    return environment_record(backend_devices=True)


def worker(args):
    result = train_rate(
        args.worker, (args.height, args.width, 3), args.batch_size, args.pack_seconds
    )
    print(json.dumps(result))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=PAPER_BACKBONES)
    parser.add_argument("--height", type=int, default=300)
    parser.add_argument("--width", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20, help="train steps per timed block")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved blocks per loss")
    parser.add_argument("--pack", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--pack-seconds", type=float, default=20.0)
    parser.add_argument("--pipeline-images", type=int, default=32)
    parser.add_argument("--pipeline-size", type=int, nargs=2, default=[1200, 1600])
    parser.add_argument("--pipeline-scale", type=float, default=0.25)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    shape = (args.height, args.width, 3)
    result = {
        "machine": environment(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "input_shape": list(shape),
        "batch_size": args.batch_size,
        "backbones": {},
    }
    for backbone in args.backbones:
        print(f"{backbone}: VALF against CCE", flush=True)
        entry = {"step": step_ratio(backbone, shape, args), "packed": []}
        for runs in args.pack:
            entry["packed"].append(
                packed_rate(backbone, shape, args.batch_size, runs, args.pack_seconds)
            )
            print(f"  {runs} packed: {entry['packed'][-1]['images_per_s']} images/s", flush=True)
        one = entry["packed"][0]["images_per_s"]
        entry["packing_gain"] = round(max(p["images_per_s"] for p in entry["packed"]) / one, 2)
        result["backbones"][backbone] = entry
    result["pipeline"] = pipeline_rate(
        args.pipeline_images, args.pipeline_size, args.pipeline_scale, os.cpu_count()
    )
    work, runs = protocol_work()
    result["protocol"] = {
        "runs": runs,
        "training_images": {b: w[0] for b, w in work.items()},
        "validation_predictions": {b: w[1] for b, w in work.items()},
    }
    if set(work) <= set(result["backbones"]):
        result["protocol"]["projected_hours_one_gpu"] = round(
            project(work, result["backbones"], result["pipeline"]), 2
        )
    result["goals"] = {"valf_over_cce": 1.02, "packing_gain": 3, "projected_hours": 2}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
