"""Rhythm episode scoring (EC57 style): duration and episode Se / +P, false alarms, onset delay.

For each label, reference and detected episodes are first merged (episodes of the label that
overlap or touch count as one). Then:

- duration Se = annotated time covered by detections / annotated time;
  duration +P = detected time lying in annotated time / detected time;
- episode Se = reference episodes overlapped by a detection, split at a per-label minimum
  duration (AF 30 s, VT and VF 6 s) into long and short episodes;
- episode +P = detected episodes overlapping a reference episode / detected episodes; the other
  detected episodes are false, reported per hour of record;
- onset delay (VT, VF, ventricular) = when the first detection overlapping a long reference
  episode was raised minus the reference onset, in seconds (negative when it was raised earlier).
  "Raised" is the detection's ``decided_at`` (the sample at which a streaming detector had seen
  enough to alarm) when the detector reports it, else its start.

``ventricular`` treats VT and VF as one class: a VF alarm during annotated VT is a correct
ventricular alarm. Scoring covers the whole record (no learning period).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from ambulink.evaluation.matching import ratio
from ambulink.evaluation.reference import REFERENCE_LABELS
from ambulink.signal.events import Episode

VENTRICULAR = "ventricular"
SCORED_LABELS: tuple[str, ...] = (*REFERENCE_LABELS, VENTRICULAR)
LONG_EPISODE_S: dict[str, float] = {"AF": 30.0, "VT": 6.0, "VF": 6.0, VENTRICULAR: 6.0}
ONSET_LABELS = frozenset({"VT", "VF", VENTRICULAR})
ONSET_LIMIT_S = 10.0

Interval = tuple[int, int]


def merge_intervals(intervals: Iterable[Interval], n_samples: int) -> list[Interval]:
    """Sorted union of ``[start, end)`` intervals clipped to the record; touching ones join."""
    merged: list[Interval] = []
    clipped = ((max(0, s), min(e, n_samples)) for s, e in intervals)
    for start, end in sorted(i for i in clipped if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def overlap_samples(a: Sequence[Interval], b: Sequence[Interval]) -> int:
    """Samples in both of two merged interval lists."""
    total, i, j = 0, 0, 0
    while i < len(a) and j < len(b):
        total += max(0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def overlapping(interval: Interval, others: Sequence[Interval]) -> list[Interval]:
    """The intervals of ``others`` sharing at least one sample with ``interval``."""
    return [o for o in others if o[0] < interval[1] and interval[0] < o[1]]


@dataclass(frozen=True)
class LabelScore:
    """One label's counts over one record or summed over records (times in seconds)."""

    label: str
    record_s: float = 0.0
    reference_s: float = 0.0
    detected_s: float = 0.0
    overlap_s: float = 0.0
    long_episodes: int = 0
    long_detected: int = 0
    short_episodes: int = 0
    short_detected: int = 0
    detected_episodes: int = 0
    true_detected_episodes: int = 0
    onset_delays_s: tuple[float, ...] = field(default=())

    def __add__(self, other: LabelScore) -> LabelScore:
        if other.label != self.label:
            raise ValueError(f"cannot add {other.label} scores to {self.label} scores")
        return replace(
            self,
            record_s=self.record_s + other.record_s,
            reference_s=self.reference_s + other.reference_s,
            detected_s=self.detected_s + other.detected_s,
            overlap_s=self.overlap_s + other.overlap_s,
            long_episodes=self.long_episodes + other.long_episodes,
            long_detected=self.long_detected + other.long_detected,
            short_episodes=self.short_episodes + other.short_episodes,
            short_detected=self.short_detected + other.short_detected,
            detected_episodes=self.detected_episodes + other.detected_episodes,
            true_detected_episodes=self.true_detected_episodes + other.true_detected_episodes,
            onset_delays_s=self.onset_delays_s + other.onset_delays_s,
        )

    @property
    def long_min_s(self) -> float:
        return LONG_EPISODE_S.get(self.label, 0.0)

    @property
    def active(self) -> bool:
        """Anything annotated or detected for this label."""
        return self.reference_s > 0 or self.detected_s > 0

    @property
    def duration_se(self) -> float | None:
        return ratio(self.overlap_s, self.reference_s)

    @property
    def duration_ppv(self) -> float | None:
        return ratio(self.overlap_s, self.detected_s)

    @property
    def long_se(self) -> float | None:
        return ratio(self.long_detected, self.long_episodes)

    @property
    def short_se(self) -> float | None:
        return ratio(self.short_detected, self.short_episodes)

    @property
    def episode_ppv(self) -> float | None:
        return ratio(self.true_detected_episodes, self.detected_episodes)

    @property
    def false_episodes(self) -> int:
        return self.detected_episodes - self.true_detected_episodes

    @property
    def false_per_hour(self) -> float | None:
        return ratio(self.false_episodes, self.record_s / 3600.0)

    @property
    def delay_median_s(self) -> float | None:
        return statistics.median(self.onset_delays_s) if self.onset_delays_s else None

    @property
    def delay_max_s(self) -> float | None:
        return max(self.onset_delays_s) if self.onset_delays_s else None

    @property
    def within_onset_limit(self) -> float | None:
        """Share of detected long episodes alarmed at most ``ONSET_LIMIT_S`` after onset."""
        within = sum(d <= ONSET_LIMIT_S for d in self.onset_delays_s)
        return ratio(within, len(self.onset_delays_s))

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "record_s": self.record_s,
            "reference_s": self.reference_s,
            "detected_s": self.detected_s,
            "overlap_s": self.overlap_s,
            "duration_se": self.duration_se,
            "duration_ppv": self.duration_ppv,
            "long_min_s": self.long_min_s,
            "long_episodes": self.long_episodes,
            "long_detected": self.long_detected,
            "long_se": self.long_se,
            "short_episodes": self.short_episodes,
            "short_detected": self.short_detected,
            "short_se": self.short_se,
            "detected_episodes": self.detected_episodes,
            "true_detected_episodes": self.true_detected_episodes,
            "episode_ppv": self.episode_ppv,
            "false_episodes": self.false_episodes,
            "false_per_hour": self.false_per_hour,
            "onset_delays_s": list(self.onset_delays_s),
            "delay_median_s": self.delay_median_s,
            "delay_max_s": self.delay_max_s,
            "within_onset_limit": self.within_onset_limit,
        }


def score_label(
    label: str,
    reference: Iterable[Interval],
    detected: Iterable[Interval],
    fs: float,
    n_samples: int,
    raised: Sequence[int] | None = None,
) -> LabelScore:
    """Score one label's detected intervals against its reference intervals (samples).

    ``raised`` gives, per detected interval (same order), the sample its alarm was raised at;
    without it an interval counts as raised at its start.
    """
    detected = list(detected)
    alarms = list(
        zip(detected, raised if raised is not None else [d[0] for d in detected], strict=True)
    )
    ref = merge_intervals(reference, n_samples)
    det = merge_intervals(detected, n_samples)
    long_min = LONG_EPISODE_S.get(label, 0.0) * fs
    long_ref = [r for r in ref if r[1] - r[0] >= long_min]
    short_ref = [r for r in ref if r[1] - r[0] < long_min]
    delays: list[float] = []
    if label in ONSET_LABELS:
        for r in long_ref:
            times = [at for d, at in alarms if d[0] < r[1] and r[0] < d[1]]
            if times:
                delays.append((min(times) - r[0]) / fs)
    return LabelScore(
        label=label,
        record_s=n_samples / fs,
        reference_s=sum(e - s for s, e in ref) / fs,
        detected_s=sum(e - s for s, e in det) / fs,
        overlap_s=overlap_samples(ref, det) / fs,
        long_episodes=len(long_ref),
        long_detected=sum(bool(overlapping(r, det)) for r in long_ref),
        short_episodes=len(short_ref),
        short_detected=sum(bool(overlapping(r, det)) for r in short_ref),
        detected_episodes=len(det),
        true_detected_episodes=sum(bool(overlapping(d, ref)) for d in det),
        onset_delays_s=tuple(delays),
    )


def _intervals(episodes: Sequence[Episode], labels: Iterable[str]) -> list[Interval]:
    wanted = set(labels)
    return [(int(e.start), int(e.end)) for e in episodes if e.label in wanted]


def _raised(episodes: Sequence[Episode], labels: Iterable[str]) -> list[int]:
    """When each episode's alarm was raised: its ``decided_at`` if reported, else its start."""
    wanted = set(labels)
    return [
        int(at) if (at := getattr(e, "decided_at", None)) is not None else int(e.start)
        for e in episodes
        if e.label in wanted
    ]


@dataclass(frozen=True)
class RhythmScore:
    """All scored labels of one record, and detected episodes of labels with no reference."""

    labels: dict[str, LabelScore]
    unscored_detected: dict[str, int]


def score_rhythm(
    reference: Sequence[Episode], detected: Sequence[Episode], fs: float, n_samples: int
) -> RhythmScore:
    """Score detected episodes against reference episodes of a record of ``n_samples``."""
    groups: dict[str, tuple[str, ...]] = {label: (label,) for label in REFERENCE_LABELS}
    groups[VENTRICULAR] = ("VT", "VF")
    labels = {
        name: score_label(
            name,
            _intervals(reference, group),
            _intervals(detected, group),
            fs,
            n_samples,
            _raised(detected, group),
        )
        for name, group in groups.items()
    }
    unscored: dict[str, int] = {}
    for episode in detected:
        if episode.label not in groups:
            unscored[episode.label] = unscored.get(episode.label, 0) + 1
    return RhythmScore(labels, unscored)
