"""Typed results of the analysis. Samples are indices since the stream started."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BeatLabel = Literal["N", "V", "S", "Q"]
RhythmLabel = Literal["AF", "VT", "VF", "ASYSTOLE", "PAUSE", "BRADY", "TACHY"]
RHYTHM_LABELS: tuple[RhythmLabel, ...] = ("AF", "VT", "VF", "ASYSTOLE", "PAUSE", "BRADY", "TACHY")


@dataclass(frozen=True, slots=True)
class Beat:
    """One detected beat: R-peak ``sample`` and its AAMI class ``label`` (N, V, S or Q)."""

    sample: int
    label: BeatLabel
    rr_ms: float | None = None  # interval from the previous beat, None for the first
    qrs_ms: float | None = None  # estimated QRS duration
    morphology: int | None = None  # id of the QRS shape cluster the beat joined


@dataclass(frozen=True, slots=True)
class Episode:
    """A rhythm episode ``[start, end)`` in samples; ``decided_at`` is when a streaming analysis
    raised it (None when unknown)."""

    start: int
    end: int
    label: RhythmLabel
    decided_at: int | None = None


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


# -- Analyzer events: each has a ``kind`` naming it on the wire ------------------------------


@dataclass(frozen=True, slots=True)
class BeatEvent:
    """A labelled beat on the analysed lead."""

    beat: Beat
    kind: Literal["beat"] = "beat"


@dataclass(frozen=True, slots=True)
class HeartRateEvent:
    """Heart rate at a beat: beat-to-beat and averaged over the last beats, as monitors show."""

    sample: int
    bpm: float  # from the last RR interval
    average_bpm: float  # from the last (up to) 8 RR intervals, extremes dropped
    kind: Literal["hr"] = "hr"


@dataclass(frozen=True, slots=True)
class EpisodeStart:
    """A rhythm episode began at ``onset``; the analysis knew it at ``decided_at``."""

    label: RhythmLabel
    onset: int
    decided_at: int
    evidence: EvidenceWindow
    kind: Literal["episode_start"] = "episode_start"


@dataclass(frozen=True, slots=True)
class EpisodeEnd:
    """The episode that began at ``start`` ended at ``end``; known at ``decided_at``."""

    label: RhythmLabel
    start: int
    end: int
    decided_at: int
    kind: Literal["episode_end"] = "episode_end"


@dataclass(frozen=True, slots=True)
class LeadOffEvent:
    """A lead came off (``off`` True) or back on, from ``sample``."""

    lead: str
    sample: int
    off: bool
    kind: Literal["lead_off"] = "lead_off"


@dataclass(frozen=True, slots=True)
class QualityEvent:
    """A lead's signal-quality index (0-1) changed band (good >= 0.7 > fair >= 0.4 > poor)."""

    lead: str
    sample: int
    sqi: float
    band: Literal["good", "fair", "poor"]
    kind: Literal["quality"] = "quality"


@dataclass(frozen=True, slots=True)
class AnalysisLeadEvent:
    """Beats and rhythm come from ``lead`` from ``sample`` on: the backup lead (``backup``)
    while the analysis lead is off, or the analysis lead again."""

    lead: str
    sample: int
    backup: bool
    kind: Literal["analysis_lead"] = "analysis_lead"


AnalyzerEvent = (
    BeatEvent
    | HeartRateEvent
    | EpisodeStart
    | EpisodeEnd
    | LeadOffEvent
    | QualityEvent
    | AnalysisLeadEvent
)


def event_order(event: AnalyzerEvent) -> tuple[int, int, str]:
    """Sort key: the sample an event is about, then a fixed kind order, then its label."""
    rank = ("lead_off", "quality", "analysis_lead", "episode_end", "beat", "hr", "episode_start")
    match event:
        case BeatEvent(beat=beat):
            return (beat.sample, rank.index("beat"), "")
        case HeartRateEvent(sample=sample):
            return (sample, rank.index("hr"), "")
        case EpisodeStart(decided_at=at, label=label):
            return (at, rank.index("episode_start"), label)
        case EpisodeEnd(decided_at=at, label=label):
            return (at, rank.index("episode_end"), label)
        case LeadOffEvent(sample=sample, lead=lead):
            return (sample, rank.index("lead_off"), lead)
        case QualityEvent(sample=sample, lead=lead):
            return (sample, rank.index("quality"), lead)
        case AnalysisLeadEvent(sample=sample, lead=lead):
            return (sample, rank.index("analysis_lead"), lead)
