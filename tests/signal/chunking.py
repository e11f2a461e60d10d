"""Helpers to feed a record in arbitrary chunk sizes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray


def chunks(x: NDArray[np.float64], sizes: list[int]) -> Iterator[NDArray[np.float64]]:
    """Split ``x`` along its first axis cycling through ``sizes``."""
    ends = itertools.accumulate(itertools.cycle(sizes))
    cuts = list(itertools.takewhile(lambda i: i < len(x), ends))
    yield from np.split(x, cuts)
