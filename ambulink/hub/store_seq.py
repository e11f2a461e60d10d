"""Which sequence numbers of one ECG stream are stored: the contiguous prefix and the rest.

Pure bookkeeping for the case store (no I/O): the hub acks "highest contiguous durable seq"
(DESIGN §3.2) and answers ``resume`` with the missing ranges, on every frame, so both must be
cheap. Seqs arrive mostly in order; the few that arrive early wait in a set until the hole below
them fills, so adding a seq is O(1) amortised.
"""

from __future__ import annotations


class SeqTracker:
    """Stored seqs of one stream: all of ``0..contiguous`` plus the set ``above`` it."""

    def __init__(self, contiguous: int = -1, above: set[int] | None = None) -> None:
        self.contiguous = contiguous  # -1 while seq 0 is not stored
        self._above: set[int] = set()
        for seq in above or ():
            self.add(seq)

    def add(self, seq: int) -> None:
        """Record ``seq`` as stored (idempotent)."""
        if seq <= self.contiguous:
            return
        if seq != self.contiguous + 1:
            self._above.add(seq)
            return
        top = seq
        while top + 1 in self._above:
            top += 1
            self._above.discard(top)
        self.contiguous = top

    def __contains__(self, seq: object) -> bool:
        return isinstance(seq, int) and (0 <= seq <= self.contiguous or seq in self._above)

    @property
    def highest(self) -> int:
        """Highest stored seq (-1 when none)."""
        return max(self._above) if self._above else self.contiguous

    def missing(self, up_to_seq: int) -> list[tuple[int, int]]:
        """Inclusive ranges of seqs in ``[0, up_to_seq]`` that are not stored, in order."""
        ranges: list[tuple[int, int]] = []
        start = self.contiguous + 1
        for seq in sorted(s for s in self._above if s <= up_to_seq):
            if seq > start:
                ranges.append((start, seq - 1))
            start = seq + 1
        if start <= up_to_seq:
            ranges.append((start, up_to_seq))
        return ranges
