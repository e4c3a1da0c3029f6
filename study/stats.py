"""Summary statistics shared by the study's tables and figures."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["mean_std"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0
