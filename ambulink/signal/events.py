"""Typed results of the analysis. Samples are indices since the stream started."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BeatLabel = Literal["N", "V", "S", "Q"]
RhythmLabel = Literal["AF", "VT", "VF", "ASYSTOLE", "PAUSE", "BRADY", "TACHY"]
RHYTHM_LABELS: tuple[RhythmLabel, ...] = (
    "AF", "VT", "VF", "ASYSTOLE", "PAUSE", "BRADY", "TACHY"
)


@dataclass(frozen=True, slots=True)
class Beat:
    """One detected beat: R-peak ``sample`` and its AAMI class ``label`` (N, V, S or Q)."""

    sample: int
    label: BeatLabel
    rr_ms: float | None = None  # interval from the previous beat, None for the first
    qrs_ms: float | None = None  # estimated QRS duration


@dataclass(frozen=True, slots=True)
class Episode:
    """A rhythm episode ``[start, end)`` in samples."""

    start: int
    end: int
    label: RhythmLabel


@dataclass(frozen=True, slots=True)
class EvidenceWindow:
    """Reference to the samples ``[start, end)`` of the stream that show an event (10 s strip)."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Transition:
    """A detector's state change: ``active`` True for onset, False for offset.

    ``sample`` is the estimated true onset/offset; ``decided_at`` is the sample at which the
    detector had seen enough to decide (``decided_at >= sample``). Both depend only on the
    signal, never on how it was chunked.
    """

    sample: int
    active: bool
    decided_at: int
