"""Scoring STEMI findings against reference groups (pure).

A record counts as flagged when the analysis says ``stemi``; a record it could not evaluate is
not flagged (it counts against Se, and for Sp as a correct "no STEMI"), and the tables show how
many there were. Se is over the positives, Sp over the normals; the old-MI and subendocardial
groups get the share not flagged as STEMI and the share flagged with ischemic ST depression.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ambulink.evaluation.st_reference import Group, StReference

TERRITORIES = ("anterior", "inferior", "lateral", "posterior", "right_ventricle")


class StFinding(Protocol):
    """The fields of ``ambulink.signal.st.STResult`` that scoring reads."""

    @property
    def stemi(self) -> bool: ...
    @property
    def territories(self) -> tuple[str, ...]: ...
    @property
    def reasons(self) -> tuple[str, ...]: ...
    @property
    def ischemic_depression(self) -> bool: ...
    @property
    def confounders(self) -> tuple[str, ...]: ...
    @property
    def evaluable(self) -> bool: ...
    @property
    def why_not(self) -> str | None: ...


@dataclass(frozen=True)
class RecordOutcome:
    """One record's reference and what the analysis found."""

    dataset: str
    name: str
    reference: StReference
    stemi: bool
    territories: tuple[str, ...]
    ischemic_depression: bool
    reasons: tuple[str, ...]
    confounders: tuple[str, ...]
    evaluable: bool
    why_not: str | None

    @classmethod
    def of(cls, dataset: str, name: str, reference: StReference, found: StFinding) -> RecordOutcome:
        return cls(
            dataset,
            name,
            reference,
            bool(found.stemi),
            tuple(found.territories),
            bool(found.ischemic_depression),
            tuple(found.reasons),
            tuple(found.confounders),
            bool(found.evaluable),
            found.why_not,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "record": self.name,
            "group": self.reference.group.value,
            "reference_territories": list(self.reference.territories),
            "reference_note": self.reference.note,
            "sex": self.reference.sex,
            "age": self.reference.age,
            "stemi": self.stemi,
            "territories": list(self.territories),
            "ischemic_depression": self.ischemic_depression,
            "reasons": list(self.reasons),
            "confounders": list(self.confounders),
            "evaluable": self.evaluable,
            "why_not": self.why_not,
        }


# A number (not the digit of a lead name such as V2), with its comparison sign and unit.
_NUMBER = re.compile(
    r"[≥≤<>=~±]?\s*(?<![A-Za-z\d.])[-+\u2212]?\d+(?:[.,]\d+)?(?![\d.])\s*(?:mV|ms|mm|%|years|y\b)?"
)


def reason_key(text: str) -> str:
    """A reason without its numbers and the leads after "in", to count how often each kind
    fired: "ST elevation ≥ 0.1 mV in II, III, aVF" → "ST elevation";
    "V2-V3 threshold 0.2 mV used (man ≥ 40 y)" → "V2-V3 threshold used (man)"."""
    head = re.split(r"\s(?:in|at)\s|:", text, maxsplit=1)[0]
    head = _NUMBER.sub(" ", head)
    head = re.sub(r"\(\s*\)", "", re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", head)))
    return re.sub(r"\s+", " ", head).strip(" ,;") or text.strip()


@dataclass
class GroupTally:
    """Counts for one reference group."""

    records: int = 0
    stemi: int = 0
    depression: int = 0
    not_evaluable: int = 0

    @property
    def no_stemi(self) -> int:
        return self.records - self.stemi

    def add(self, outcome: RecordOutcome) -> None:
        self.records += 1
        self.stemi += outcome.stemi
        self.depression += outcome.ischemic_depression
        self.not_evaluable += not outcome.evaluable

    def as_dict(self) -> dict[str, int]:
        return {
            "records": self.records,
            "stemi": self.stemi,
            "no_stemi": self.no_stemi,
            "ischemic_depression": self.depression,
            "not_evaluable": self.not_evaluable,
        }


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class TerritoryAgreement:
    """Positives with a reference territory: flagged, sharing a territory, finding all of them;
    and per territory how often the reference named it and the analysis found it."""

    with_reference: int = 0
    flagged: int = 0
    overlap: int = 0
    all_found: int = 0
    named: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    extra: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: RecordOutcome) -> None:
        wanted = set(outcome.reference.territories)
        if not wanted:
            return
        got = set(outcome.territories) if outcome.stemi else set()
        self.with_reference += 1
        self.flagged += outcome.stemi
        self.overlap += bool(wanted & got)
        self.all_found += wanted <= got
        # sorted: set order follows string hashing, which changes from run to run
        self.named.update(sorted(wanted))
        self.found.update(sorted(wanted & got))
        self.extra.update(sorted(got - wanted))

    def as_dict(self) -> dict[str, object]:
        return {
            "with_reference": self.with_reference,
            "flagged": self.flagged,
            "overlap": self.overlap,
            "all_found": self.all_found,
            "named": dict(sorted(self.named.items())),
            "found": dict(sorted(self.found.items())),
            "extra": dict(sorted(self.extra.items())),
        }


@dataclass
class StScore:
    """Tallies over a set of records."""

    groups: dict[Group, GroupTally] = field(
        default_factory=lambda: {g: GroupTally() for g in Group}
    )
    territory: TerritoryAgreement = field(default_factory=TerritoryAgreement)
    reasons: Counter[str] = field(default_factory=Counter)  # records where a kind of reason fired
    confounders: Counter[str] = field(default_factory=Counter)
    why_not: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: RecordOutcome) -> None:
        group = outcome.reference.group
        self.groups[group].add(outcome)
        if group is Group.STEMI:
            self.territory.add(outcome)
        # dict.fromkeys, not a set: counts of equal size keep the order the reasons came in
        self.reasons.update(dict.fromkeys(reason_key(r) for r in outcome.reasons).keys())
        self.confounders.update(dict.fromkeys(reason_key(c) for c in outcome.confounders).keys())
        if not outcome.evaluable:
            self.why_not[outcome.why_not or "no reason given"] += 1

    @property
    def records(self) -> int:
        return sum(t.records for t in self.groups.values())

    @property
    def se(self) -> float | None:
        """Share of the positives flagged as STEMI."""
        positives = self.groups[Group.STEMI]
        return share(positives.stemi, positives.records)

    def not_flagged(self, group: Group) -> float | None:
        """Share of ``group`` not flagged as STEMI (Sp for the normals)."""
        tally = self.groups[group]
        return share(tally.no_stemi, tally.records)

    @property
    def sp(self) -> float | None:
        return self.not_flagged(Group.NORMAL)

    def as_dict(self) -> dict[str, object]:
        return {
            "records": self.records,
            "se": self.se,
            "sp": self.sp,
            "not_flagged_old_mi": self.not_flagged(Group.OLD_MI),
            "not_flagged_subendocardial": self.not_flagged(Group.SUBENDOCARDIAL),
            "depression_subendocardial": share(
                self.groups[Group.SUBENDOCARDIAL].depression,
                self.groups[Group.SUBENDOCARDIAL].records,
            ),
            "groups": {g.value: t.as_dict() for g, t in self.groups.items()},
            "territory": self.territory.as_dict(),
            "reasons": dict(self.reasons.most_common()),
            "confounders": dict(self.confounders.most_common()),
            "not_evaluable": dict(self.why_not.most_common()),
        }


def score(outcomes: Iterable[RecordOutcome]) -> StScore:
    result = StScore()
    for outcome in outcomes:
        result.add(outcome)
    return result


def score_by_dataset(outcomes: Sequence[RecordOutcome]) -> dict[str, StScore]:
    datasets = dict.fromkeys(o.dataset for o in outcomes)
    return {d: score(o for o in outcomes if o.dataset == d) for d in datasets}
