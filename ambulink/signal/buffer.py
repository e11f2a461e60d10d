"""A growable window of recent samples addressed by absolute sample index."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ambulink.errors import SignalError


class SampleWindow:
    """Keeps samples ``[start, end)`` of a stream; appends amortised O(1), trims from the front."""

    def __init__(self, capacity: int = 4096) -> None:
        self._data = np.zeros(max(capacity, 16))
        self._offset = 0  # index into _data of absolute sample ``start``
        self._size = 0
        self.start = 0  # absolute index of the oldest sample kept

    @property
    def end(self) -> int:
        """Absolute index one past the newest sample."""
        return self.start + self._size

    def append(self, x: NDArray[np.float64]) -> None:
        needed = self._offset + self._size + x.size
        if needed > self._data.size:
            if self._size + x.size <= self._data.size // 2:
                self._data[: self._size] = self._data[self._offset : self._offset + self._size]
            else:
                grown = np.zeros(max(2 * (self._size + x.size), 16))
                grown[: self._size] = self._data[self._offset : self._offset + self._size]
                self._data = grown
            self._offset = 0
        stop = self._offset + self._size
        self._data[stop : stop + x.size] = x
        self._size += x.size

    def view(self, start: int, end: int) -> NDArray[np.float64]:
        """Samples ``[start, end)`` (absolute), clipped to what is kept; a view, not a copy."""
        lo = max(start, self.start) - self.start
        hi = min(end, self.end) - self.start
        if hi <= lo:
            return self._data[:0]
        return self._data[self._offset + lo : self._offset + hi]

    def at(self, index: int) -> float:
        if not self.start <= index < self.end:
            raise SignalError(f"sample {index} is not kept (window holds {self.start}-{self.end})")
        return float(self._data[self._offset + index - self.start])

    def trim_before(self, index: int) -> None:
        """Forget samples before absolute ``index``."""
        drop = min(max(index - self.start, 0), self._size)
        self._offset += drop
        self._size -= drop
        self.start += drop
