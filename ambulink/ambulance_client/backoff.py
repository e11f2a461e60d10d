"""Reconnection backoff: how long to wait before the next attempt, as a pure formula.

Like redis-py's ``backoff.compute(failures)`` (STYLE §4): this module never sleeps; the uplink's
reconnect loop asks for a delay and sleeps on its own clock, so tests check the formula exactly
with a seeded ``random.Random``.
"""

from __future__ import annotations

import math
import random

from ambulink.errors import ConfigError


class Backoff:
    """Jittered exponential backoff capped at ``cap_s`` (s).

    The un-jittered delay after ``failures`` consecutive failures is
    ``min(cap_s, base_s * 2 ** (failures - 1))``: 0.25, 0.5, 1, 2, 4, 5, 5... s by default, and
    0 before any failure. ``jitter`` (0..1) is the fraction of that delay drawn at random:
    ``delay = raw * (1 - jitter) + uniform(0, raw * jitter)``. ``jitter=1`` is "full jitter"
    (uniform over ``[0, raw]``), ``0.5`` (default) is "equal jitter" (``[raw / 2, raw]``),
    ``0`` none. The result is never negative and never above ``cap_s``; spreading a fleet's
    reconnects keeps 100 ambulances leaving a tunnel from hitting the hub in the same instant.
    """

    def __init__(
        self,
        base_s: float = 0.25,
        cap_s: float = 5.0,
        jitter: float = 0.5,
        *,
        rng: random.Random | None = None,
    ) -> None:
        if not (math.isfinite(base_s) and base_s > 0):
            raise ConfigError(f"backoff base_s must be a positive number of s, got {base_s}")
        if not (math.isfinite(cap_s) and cap_s >= base_s):
            raise ConfigError(f"backoff cap_s must be >= base_s ({base_s} s), got {cap_s}")
        if not 0.0 <= jitter <= 1.0:
            raise ConfigError(f"backoff jitter must be in 0..1, got {jitter}")
        self.base_s = base_s
        self.cap_s = cap_s
        self.jitter = jitter
        self._rng = rng if rng is not None else random.Random()
        # Beyond this many failures the raw delay is the cap; also keeps 2 ** n finite.
        self._cap_after = 1 + math.ceil(math.log2(cap_s / base_s))
        self.failures = 0

    def raw_delay(self, failures: int) -> float:
        """The delay before jitter (s) after ``failures`` consecutive failures."""
        if failures < 0:
            raise ValueError(f"failures must be >= 0, got {failures}")
        if failures == 0:
            return 0.0
        if failures > self._cap_after:
            return self.cap_s
        return min(self.cap_s, self.base_s * 2.0 ** (failures - 1))

    def delay(self, failures: int) -> float:
        """Seconds to wait before the next attempt after ``failures`` consecutive failures."""
        raw = self.raw_delay(failures)
        spread = raw * self.jitter
        return min(self.cap_s, max(0.0, raw - spread + self._rng.uniform(0.0, spread)))

    def next_delay(self) -> float:
        """Count one more failure and return the delay before the next attempt."""
        self.failures += 1
        return self.delay(self.failures)

    def reset(self) -> None:
        """A connection succeeded: the next failure starts again from ``base_s``."""
        self.failures = 0
