"""Turn a detector's onset/offset transitions into episodes, checking they alternate."""

from __future__ import annotations

from ambulink.signal.events import Transition


def detected_episodes(transitions: list[Transition], n_samples: int) -> list[tuple[int, int, int]]:
    """(start, end, decided_at) of each detected episode; one still open ends at ``n_samples``."""
    episodes: list[tuple[int, int, int]] = []
    onset: Transition | None = None
    for t in transitions:
        if t.active:
            assert onset is None, f"two onsets in a row: {onset}, {t}"
            onset = t
        else:
            assert onset is not None, f"offset without onset: {t}"
            episodes.append((onset.sample, t.sample, onset.decided_at))
            onset = None
    if onset is not None:
        episodes.append((onset.sample, n_samples, onset.decided_at))
    return episodes
