"""Reference annotations → beats, AAMI classes, excluded spans and rhythm episodes."""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ambulink.data import record_path
from ambulink.evaluation.records import EcgRecord, read_record
from ambulink.evaluation.reference import (
    Annotations,
    Span,
    bracket_spans,
    build_reference,
    in_spans,
    merge_spans,
    rhythm_episodes,
)
from ambulink.signal.events import Episode


@cache
def bundled_record(name: str) -> EcgRecord:
    path = Path(record_path(name))
    return read_record(path.parent, path.name)


def synthetic(symbols: str, aux: dict[int, str] | None = None, spacing: int = 300) -> Annotations:
    """One annotation every ``spacing`` samples; ``aux`` maps annotation index to aux note."""
    notes = aux or {}
    return Annotations(
        sample=np.arange(len(symbols), dtype=np.int64) * spacing + spacing,
        symbol=tuple(symbols),
        aux_note=tuple(notes.get(i, "") for i in range(len(symbols))),
    )


def test_record_100_has_2273_reference_beats_in_aami_classes() -> None:
    ref = bundled_record("mitdb/100").reference()
    assert len(ref.beat_sample) == 2273
    assert np.all(np.diff(ref.beat_sample) > 0)
    assert Counter(ref.beat_class) == {"N": 2239, "S": 33, "V": 1}  # N, A and V in the .atr
    assert ref.excluded == ()
    assert ref.episodes == ()
    assert not ref.mostly_paced


def test_non_beat_annotations_are_not_beats() -> None:
    ref = build_reference(synthetic('N+~V|xN!F"Q'), fs=360.0, n_samples=10_000)
    assert ref.beat_class == ("N", "V", "N", "F", "Q")


def test_record_201_af_episodes_run_from_each_afib_note_to_the_next_rhythm_note() -> None:
    record = bundled_record("mitdb/201")
    ann = wfdb.rdann(record_path("mitdb/201"), "atr")
    changes = [
        (int(s), a.rstrip("\x00"))
        for s, sym, a in zip(ann.sample, ann.symbol, ann.aux_note, strict=True)
        if sym == "+"
    ]
    expected = [
        Episode(start, changes[i + 1][0] if i + 1 < len(changes) else record.n_samples, "AF")
        for i, (start, note) in enumerate(changes)
        if note == "(AFIB"
    ]
    assert len(expected) == 3
    assert list(record.reference().episodes) == expected


def test_record_207_flutter_spans_are_excluded() -> None:
    record = bundled_record("mitdb/207")
    ref = record.reference()
    ann = record.annotations
    brackets = [int(s) for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in "[]"]
    flutter_waves = np.array(
        [s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym == "!"], dtype=np.int64
    )
    assert len(brackets) == 12 and len(flutter_waves) == 472
    assert in_spans(np.array(brackets, dtype=np.int64), ref.excluded).all()
    assert in_spans(flutter_waves, ref.excluded).all()
    vfl = [e for e in ref.episodes if e.label == "VF"]
    assert len(vfl) == 6
    for episode in vfl:  # each (VFL episode lies wholly inside the exclusions
        inside = np.arange(episode.start, episode.end, dtype=np.int64)
        assert in_spans(inside, ref.excluded).all()
    assert not in_spans(ref.beat_sample, ref.excluded).any()  # no labelled beat in flutter


def test_vfdb_418_has_no_beats_but_vf_episodes() -> None:
    ref = bundled_record("vfdb/418").reference()
    assert not ref.has_beats
    assert {e.label for e in ref.episodes} == {"VF"}
    assert len(ref.episodes) == sum(
        1 for a in bundled_record("vfdb/418").annotations.aux_note if a.startswith("(VFL")
    )


def test_vfdb_422_noise_note_ends_the_vf_episode() -> None:
    record = bundled_record("vfdb/422")
    notes = {
        int(s): a.rstrip("\x00")
        for s, a in zip(record.annotations.sample, record.annotations.aux_note, strict=True)
    }
    vf = [e for e in record.reference().episodes if e.label == "VF"]
    assert notes[vf[0].start] == "(VFIB"
    assert notes[vf[0].end] == "(NOISE"


def test_touching_episodes_of_one_label_merge_and_nul_is_stripped() -> None:
    ann = synthetic("++++", {0: "(AFIB\x00", 1: "(AFL", 2: "(N\x00", 3: "(VT"})
    assert rhythm_episodes(ann, n_samples=2000) == [
        Episode(300, 900, "AF"),
        Episode(1200, 2000, "VT"),
    ]


def test_rhythm_notes_on_non_rhythm_annotations_are_ignored() -> None:
    ann = synthetic("N+N", {0: "(VT", 1: "(N"})  # only "+" annotations change rhythm
    assert rhythm_episodes(ann, n_samples=2000) == []


def test_unclosed_bracket_runs_to_record_end() -> None:
    assert bracket_spans(synthetic("N[N]N["), n_samples=5000) == [
        Span(600, 1201),
        Span(1800, 5000),
    ]


def test_merge_spans_joins_overlapping_and_touching() -> None:
    spans = [Span(10, 20), Span(0, 5), Span(20, 30), Span(25, 28), Span(40, 40)]
    assert merge_spans(spans) == [Span(0, 5), Span(10, 30)]


@pytest.mark.parametrize(("paced", "expected"), [(6, True), (5, False), (4, False)])
def test_mostly_paced_means_more_than_half_paced_beats(paced: int, expected: bool) -> None:
    symbols = "/" * (paced - 1) + "f" + "N" * (10 - paced) + "+~"
    ref = build_reference(synthetic(symbols), fs=360.0, n_samples=10_000)
    assert ref.mostly_paced is expected


def test_shared_paced_record_102_is_mostly_paced(shared_ecg: Path) -> None:
    if not (shared_ecg / "mitdb" / "102.hea").exists():
        pytest.skip("mitdb/102 is not in the shared records")
    ref = read_record(shared_ecg / "mitdb", "102").reference()
    assert ref.mostly_paced
    assert not read_record(shared_ecg / "mitdb", "101").reference().mostly_paced
