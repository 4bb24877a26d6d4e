"""Statistics of the book: intervals over replicates (seeds or folds).

Every function takes plain arrays; the tables (:mod:`valf.report.tables`) and figures
(:mod:`valf.report.figures`) call them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mean_ci"]


def mean_ci(values, confidence=0.95):
    """Mean and half-width of the Student-t interval; the half-width is NaN for one value.

    Examples
    --------
    >>> mean, half = mean_ci([0.8, 0.9, 1.0])
    >>> round(mean, 3), round(half, 3)
    (0.9, 0.248)
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan
    sem = values.std(ddof=1) / np.sqrt(len(values))
    return mean, float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * sem)
