"""WFDB reference annotations turned into what EC57 scores: beats, excluded spans, episodes.

Pure: takes annotation arrays, never reads files (``records.py`` does that).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ambulink.signal.events import Episode, RhythmLabel

AamiClass = Literal["N", "S", "V", "F", "Q"]

# MIT-BIH beat symbols and their AAMI class. "r" (R-on-T PVC) is ventricular by definition;
# the MIT-BIH records do not use it.
AAMI_CLASS: dict[str, AamiClass] = {
    **dict.fromkeys("NLRBejn", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VEr", "V"),
    "F": "F",
    **dict.fromkeys("/fQ?", "Q"),
}
BEAT_SYMBOLS = frozenset(AAMI_CLASS)
PACED_SYMBOLS = frozenset("/f")

# Rhythm aux notes ("(AFIB" ...) that name a rhythm we score; others (N, SVTA, B, NOISE ...)
# only end the previous rhythm.
RHYTHM_NOTES: dict[str, RhythmLabel] = {
    "(AFIB": "AF",
    "(AFL": "AF",
    "(VT": "VT",
    "(VFL": "VF",
    "(VF": "VF",
    "(VFIB": "VF",
    "(ASYS": "ASYSTOLE",
    "(SBR": "BRADY",
}
REFERENCE_LABELS: tuple[RhythmLabel, ...] = ("AF", "VT", "VF", "ASYSTOLE", "BRADY")


@dataclass(frozen=True)
class Annotations:
    """Raw WFDB annotations in file order: sample, symbol and aux note of each."""

    sample: NDArray[np.int64]
    symbol: tuple[str, ...]
    aux_note: tuple[str, ...]

    def __post_init__(self) -> None:
        if not len(self.sample) == len(self.symbol) == len(self.aux_note):
            raise ValueError(
                f"annotation arrays differ in length: {len(self.sample)} samples, "
                f"{len(self.symbol)} symbols, {len(self.aux_note)} aux notes"
            )


@dataclass(frozen=True)
class Span:
    """Samples ``[start, end)``."""

    start: int
    end: int

    def __len__(self) -> int:
        return max(0, self.end - self.start)


@dataclass(frozen=True)
class Reference:
    """What a record's annotations say, in samples at ``fs`` Hz.

    ``beat_sample`` is sorted and ``beat_class`` holds the AAMI class of each beat;
    ``excluded`` are the merged ventricular flutter/fibrillation spans EC57 leaves out of beat
    scoring; ``episodes`` are the reference rhythm episodes (labels in ``REFERENCE_LABELS``).
    """

    fs: float
    n_samples: int
    beat_sample: NDArray[np.int64]
    beat_class: tuple[AamiClass, ...]
    excluded: tuple[Span, ...]
    episodes: tuple[Episode, ...]
    paced_share: float

    @property
    def has_beats(self) -> bool:
        return len(self.beat_sample) > 0

    @property
    def mostly_paced(self) -> bool:
        """More than half of the reference beats are paced (``/``) or fusion of paced (``f``)."""
        return self.paced_share > 0.5


def build_reference(annotations: Annotations, fs: float, n_samples: int) -> Reference:
    """Reference beats, exclusions and rhythm episodes of a record of ``n_samples`` samples."""
    samples = np.asarray(annotations.sample, dtype=np.int64)
    is_beat = np.fromiter((s in BEAT_SYMBOLS for s in annotations.symbol), bool, len(samples))
    is_beat &= (samples >= 0) & (samples < n_samples)
    beat_symbols = [s for s, beat in zip(annotations.symbol, is_beat, strict=True) if beat]
    order = np.argsort(samples[is_beat], kind="stable")
    beat_sample = samples[is_beat][order]
    beat_class = tuple(AAMI_CLASS[beat_symbols[i]] for i in order)
    paced = sum(s in PACED_SYMBOLS for s in beat_symbols)
    episodes = rhythm_episodes(annotations, n_samples)
    flutter = (Span(e.start, e.end) for e in episodes if e.label == "VF")
    excluded = merge_spans([*bracket_spans(annotations, n_samples), *flutter])
    return Reference(
        fs=float(fs),
        n_samples=int(n_samples),
        beat_sample=beat_sample,
        beat_class=beat_class,
        excluded=tuple(excluded),
        episodes=tuple(episodes),
        paced_share=paced / len(beat_symbols) if beat_symbols else 0.0,
    )


def rhythm_note(aux_note: str) -> str:
    """An aux note without the trailing NUL some MIT-BIH notes carry, e.g. ``"(AFIB"``."""
    return aux_note.replace("\x00", "").strip()


def rhythm_episodes(annotations: Annotations, n_samples: int) -> list[Episode]:
    """Reference episodes: each scored rhythm note runs to the next rhythm note or record end.

    Episodes of one label that touch (``(AFIB`` then ``(AFL``) are merged into one.
    """
    changes = [
        (int(sample), rhythm_note(aux))
        for sample, symbol, aux in zip(
            annotations.sample, annotations.symbol, annotations.aux_note, strict=True
        )
        if symbol == "+" and rhythm_note(aux).startswith("(")
    ]
    changes.sort(key=lambda change: change[0])
    episodes: list[Episode] = []
    for i, (start, note) in enumerate(changes):
        label = RHYTHM_NOTES.get(note)
        end = changes[i + 1][0] if i + 1 < len(changes) else n_samples
        start, end = max(0, start), min(end, n_samples)
        if label is None or end <= start:
            continue
        if episodes and episodes[-1].label == label and episodes[-1].end >= start:
            episodes[-1] = Episode(episodes[-1].start, end, label)
        else:
            episodes.append(Episode(start, end, label))
    return episodes


def bracket_spans(annotations: Annotations, n_samples: int) -> list[Span]:
    """Spans between ``[`` (flutter/fibrillation onset) and ``]`` (its end), inclusive of ``]``.

    An onset without an end runs to the record end; an end without an onset, from its start.
    """
    spans: list[Span] = []
    onset: int | None = None
    order = np.argsort(annotations.sample, kind="stable")
    for i in order:
        symbol, sample = annotations.symbol[i], int(annotations.sample[i])
        if symbol == "[" and onset is None:
            onset = sample
        elif symbol == "]":
            spans.append(Span(0 if onset is None else onset, min(sample + 1, n_samples)))
            onset = None
    if onset is not None:
        spans.append(Span(onset, n_samples))
    return spans


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Sorted, non-overlapping union of ``spans`` (touching spans join); empty spans dropped."""
    merged: list[Span] = []
    for span in sorted((s for s in spans if len(s) > 0), key=lambda s: s.start):
        if merged and span.start <= merged[-1].end:
            merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end))
        else:
            merged.append(span)
    return merged


def in_spans(samples: NDArray[np.int64], spans: Sequence[Span]) -> NDArray[np.bool_]:
    """Which ``samples`` fall inside any of the merged, sorted ``spans``."""
    if not spans:
        return np.zeros(len(samples), dtype=bool)
    starts = np.array([s.start for s in spans], dtype=np.int64)
    ends = np.array([s.end for s in spans], dtype=np.int64)
    index = np.searchsorted(starts, samples, side="right") - 1
    inside: NDArray[np.bool_] = (index >= 0) & (samples < ends[np.maximum(index, 0)])
    return inside
