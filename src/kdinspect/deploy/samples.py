"""Bounded samples for long-running statistics (a stream or a watcher that runs for weeks)."""

from __future__ import annotations

import random
import statistics

__all__ = ["Reservoir"]


class Reservoir:
    """Every value up to ``size``, then a uniform reservoir sample of ``size`` (Algorithm R, seeded); ``count``
    and ``max`` are exact. Percentiles are over the sample."""

    def __init__(self, size: int = 100_000, seed: int = 0) -> None:
        self.size = size
        self.values: list[float] = []
        self.count = 0
        self.max: float | None = None
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.count += 1
        self.max = value if self.max is None else max(self.max, value)
        if len(self.values) < self.size:
            self.values.append(value)
        elif (j := self._rng.randrange(self.count)) < self.size:
            self.values[j] = value

    def __len__(self) -> int:
        return len(self.values)

    def median(self) -> float | None:
        return round(statistics.median(self.values), 3) if self.values else None

    def percentile(self, q: float) -> float | None:
        if not self.values:
            return None
        s = sorted(self.values)
        return round(s[min(len(s) - 1, int(q * len(s)))], 3)

    def maximum(self) -> float | None:
        return None if self.max is None else round(self.max, 3)
