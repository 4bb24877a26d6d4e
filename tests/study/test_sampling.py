"""Resampling baselines and the long-tailed subsampler."""

import numpy as np
import pandas as pd
import pytest

from valf_study.data import sampling

LABELS = np.repeat([0, 1, 2], [109, 52, 102])  # LungHist700 20x training counts


@pytest.mark.parametrize(
    ("sampler", "target"), [(sampling.undersample, 52), (sampling.oversample, 109)]
)
def test_balancing_samplers(sampler, target):
    indices = sampler(LABELS, seed=0)
    assert np.bincount(LABELS[indices]).tolist() == [target] * 3
    assert indices.min() >= 0 and indices.max() < len(LABELS)
    assert np.array_equal(indices, sampler(LABELS, seed=0))
    assert not np.array_equal(indices, sampler(LABELS, seed=1))


def test_undersample_has_no_repeats_and_oversample_keeps_every_original():
    assert len(np.unique(sampling.undersample(LABELS, 3))) == 3 * 52
    kept = sampling.oversample(LABELS, 3)
    assert set(range(len(LABELS))) <= set(kept.tolist())


def test_long_tailed_counts_by_hand():
    # C = 3, N_max = 100: 100 * rho^0, 100 * rho^-0.5, 100 * rho^-1.
    assert sampling.long_tailed_counts(100, 10, 3).tolist() == [100, 31, 10]
    assert sampling.long_tailed_counts(100, 100, 3).tolist() == [100, 10, 1]
    # C = 5, rho = 16: 1600 * 16^(-i/4) = 1600, 800, 400, 200, 100.
    assert sampling.long_tailed_counts(1600, 16, 5).tolist() == [1600, 800, 400, 200, 100]


@pytest.mark.parametrize("rho", [10, 20, 50, 100])
def test_long_tailed_indices_reach_the_ratio(rho):
    labels = np.repeat([0, 1, 2], [1000, 900, 800])
    indices = sampling.long_tailed_indices(labels, rho, seed=0)
    counts = np.bincount(labels[indices])
    assert counts.tolist() == sampling.long_tailed_counts(1000, rho, 3).tolist()
    assert abs(sampling.imbalance_ratio(labels[indices]) - rho) / rho < 0.02
    assert np.all(counts <= np.bincount(labels))
    assert len(np.unique(indices)) == len(indices)


def test_long_tailed_order_and_shortfall():
    labels = np.repeat([0, 1, 2], [100, 100, 100])
    indices = sampling.long_tailed_indices(labels, 10, seed=0, order=[2, 0, 1])
    assert np.bincount(labels[indices]).tolist() == [31, 10, 100]
    with pytest.raises(ValueError, match=r"asks more samples than some classes have.*\(1, 5, 31\)"):
        sampling.long_tailed_indices(np.repeat([0, 1, 2], [100, 5, 100]), 10, 0, order=[0, 1, 2])
    with pytest.raises(ValueError, match="`rho` must be >= 1"):
        sampling.long_tailed_counts(100, 0.5, 3)


def test_resample_frame_and_bad_name():
    frame = pd.DataFrame({"label": LABELS, "path": [f"{i}.jpg" for i in range(len(LABELS))]})
    assert len(sampling.resample(frame, "none")) == len(frame)
    balanced = sampling.resample(frame, "oversample", seed=2)
    assert balanced["label"].value_counts().tolist() == [109] * 3
    assert list(balanced.index) == list(range(len(balanced)))
    tailed = sampling.resample(frame, "none", seed=2, rho=10)
    # 109 * 10^-0.5 = 34.5 and 109 / 10 = 10.9, floored: the ratio is 10.9 at this size.
    # Head first by count: ACA (109), SCC (102) then NOR (52) is the tail.
    assert tailed["label"].value_counts().sort_index().tolist() == [109, 10, 34]
    with pytest.raises(ValueError, match=r"choose one of \['none', 'oversample', 'undersample'\]"):
        sampling.resample(frame, "smote")
