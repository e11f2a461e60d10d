"""Reference labels for STEMI scoring, parsed from PTB-XL, PTB Diagnostic and LUDB metadata.

Pure parsing (strings and rows in, labels out); st_records.py reads the files. Every record gets
one group: ``stemi`` (acute MI with ST elevation: the positives), ``normal`` (the negatives),
``old_mi``, ``subendocardial`` (ST-depression injury, which a STEMI detector must not flag) or
``other``. Territories use the names of ``ambulink.signal.st``: inferior, lateral, anterior,
posterior, right_ventricle.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from ambulink.errors import ConfigError


class Group(StrEnum):
    """Reference group of a record, in the order the reports list them."""

    STEMI = "stemi"
    NORMAL = "normal"
    OLD_MI = "old_mi"
    SUBENDOCARDIAL = "subendocardial"
    OTHER = "other"


GROUP_TITLES: dict[Group, str] = {
    Group.STEMI: "acute STEMI (positives)",
    Group.NORMAL: "normal (negatives)",
    Group.OLD_MI: "old MI",
    Group.SUBENDOCARDIAL: "subendocardial injury",
    Group.OTHER: "other",
}


@dataclass(frozen=True)
class StReference:
    """What the database says about one record; ``sex`` is "M", "F" or None, ``age`` in years."""

    group: Group
    territories: tuple[str, ...] = ()
    sex: str | None = None
    age: float | None = None
    note: str = ""


# PTB-XL ----------------------------------------------------------------------------------------

PTBXL_MIN_LIKELIHOOD = 50.0
# Subendocardial injury (ST depression) codes; PTB-XL files them under diagnostic class MI.
INJURY_CODES = frozenset({"INJAS", "INJAL", "INJIN", "INJLA", "INJIL"})
ACUTE_STADIA = frozenset({"Stadium I", "Stadium II", "Stadium I-II"})
PTBXL_TERRITORIES: dict[str, tuple[str, ...]] = {
    "IMI": ("inferior",),
    "ASMI": ("anterior",),
    "ILMI": ("inferior", "lateral"),
    "AMI": ("anterior",),
    "ALMI": ("anterior", "lateral"),
    "LMI": ("lateral",),
    "IPLMI": ("inferior", "posterior", "lateral"),
    "IPMI": ("inferior", "posterior"),
    "PMI": ("posterior",),
}


def parse_scp_codes(text: str) -> dict[str, float]:
    """PTB-XL's ``scp_codes`` column, a Python dict literal: ``"{'NORM': 100.0, 'SR': 0.0}"``."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ConfigError(f"scp_codes must be a dict literal, got {text!r}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"scp_codes must be a dict literal, got {text!r}")
    return {str(code): float(likelihood) for code, likelihood in value.items()}


def mi_codes(statements: Iterable[Mapping[str, str]]) -> frozenset[str]:
    """Codes whose ``diagnostic_class`` is MI, from rows of ``scp_statements.csv`` (the code is
    in the first, unnamed column)."""
    codes = set()
    for row in statements:
        code = row.get("") or row.get("code") or ""
        if row.get("diagnostic_class", "").strip() == "MI" and code.strip():
            codes.add(code.strip())
    return frozenset(codes)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def ptbxl_reference(row: Mapping[str, str], mi: frozenset[str]) -> StReference:
    """Group of one ``ptbxl_database.csv`` row (PTB-XL sex: 0 male, 1 female).

    Positive: a non-injury MI code with likelihood ≥ 50 and ``infarction_stadium1`` Stadium I,
    II or I-II. Subendocardial: an INJ* code ≥ 50. Old MI: MI codes ≥ 50 at any other stadium
    (III, II-III, unknown or blank). Normal: NORM ≥ 50 and no MI-class code at any likelihood.
    """
    codes = parse_scp_codes(row.get("scp_codes", "{}"))
    likely = {c for c, p in codes.items() if p >= PTBXL_MIN_LIKELIHOOD}
    infarct = {c for c in likely if c in mi and c not in INJURY_CODES}
    stadium = (row.get("infarction_stadium1") or "").strip()
    sex = {"0": "M", "1": "F"}.get((row.get("sex") or "").strip().removesuffix(".0"))
    age = _number(row.get("age"))
    territories = tuple(
        dict.fromkeys(t for c in sorted(infarct) for t in PTBXL_TERRITORIES.get(c, ()))
    )
    note = ", ".join(f"{c} {codes[c]:g}" for c in sorted(likely)) + (
        f"; {stadium}" if stadium else ""
    )
    if infarct and stadium in ACUTE_STADIA:
        group = Group.STEMI
    elif likely & INJURY_CODES:
        group = Group.SUBENDOCARDIAL
        territories = ()
    elif infarct:
        group = Group.OLD_MI
    elif "NORM" in likely and not any(c in mi for c in codes):
        group = Group.NORMAL
    else:
        group = Group.OTHER
    if group not in (Group.STEMI, Group.OLD_MI):
        territories = ()
    return StReference(group, territories, sex, age, note)


# PTB Diagnostic --------------------------------------------------------------------------------

PTB_ACUTE_DAYS = 7
_LOCALIZATION = (  # prefixes, so PTB's truncations ("infero-latera", "postero") still match
    ("infer", "inferior"),
    ("anter", "anterior"),
    ("sept", "anterior"),  # septal leads V1-V2 belong to the anterior/septal group
    ("later", "lateral"),
    ("poster", "posterior"),
)


def header_fields(comments: Iterable[str]) -> dict[str, str]:
    """``key: value`` pairs of WFDB header comments, keys lower-cased, ``#`` and ``<>`` removed."""
    fields: dict[str, str] = {}
    for comment in comments:
        key, sep, value = comment.lstrip("#").strip().partition(":")
        if sep:
            fields.setdefault(key.strip().strip("<>").lower(), value.strip())
    return fields


def ptb_territories(localization: str) -> tuple[str, ...]:
    """PTB's acute infarction localization → territories: "infero-latera" → inferior, lateral."""
    found = []
    for part in re.split(r"[-\s,/]+", localization.lower()):
        for prefix, territory in _LOCALIZATION:
            if part.startswith(prefix) and territory not in found:
                found.append(territory)
    return tuple(found)


def parse_ptb_date(text: str) -> date | None:
    """PTB dates: "01/10/1990" (day/month/year) or "29-Sep-90"; None for n/a or unknown forms."""
    for form in ("%d/%m/%Y", "%d-%b-%y", "%d-%b-%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(text.strip(), form).date()
        except ValueError:
            continue
    return None


def ptb_reference(comments: Iterable[str]) -> StReference:
    """Group of a PTB Diagnostic record from its header comments.

    Positive: admitted for myocardial infarction, with an acute infarction localization, and the
    ECG taken 0-7 days after the acute infarction date. "Healthy control" is normal; other
    MI records (later ECGs, no localization) are old MI; everything else is other.
    """
    fields = header_fields(comments)
    reason = fields.get("reason for admission", "").lower()
    sex = {"male": "M", "female": "F"}.get(fields.get("sex", "").lower())
    age = _number(fields.get("age"))
    localization = fields.get("acute infarction (localization)", "")
    territories = ptb_territories(localization) if localization.lower() not in ("no", "") else ()
    infarct_day = parse_ptb_date(fields.get("infarction date (acute)", ""))
    ecg_day = parse_ptb_date(fields.get("ecg date", ""))
    days = (ecg_day - infarct_day).days if ecg_day and infarct_day else None
    note = f"{reason or 'no reason given'}; {localization or 'no localization'}" + (
        f"; ECG {days} days after onset" if days is not None else ""
    )
    if "myocardial infarction" in reason:
        if territories and days is not None and 0 <= days <= PTB_ACUTE_DAYS:
            return StReference(Group.STEMI, territories, sex, age, note)
        return StReference(Group.OLD_MI, (), sex, age, note)
    if "healthy control" in reason:
        return StReference(Group.NORMAL, (), sex, age, note)
    return StReference(Group.OTHER, (), sex, age, note)


# LUDB ------------------------------------------------------------------------------------------

LUDB_TERRITORIES: dict[str, str] = {
    "anterior wall": "anterior",
    "septal": "anterior",
    "inferior wall": "inferior",
    "lateral wall": "lateral",
    "posterior wall": "posterior",
}  # "apical" spans anterior and lateral leads: not mapped
_NORMAL_RHYTHM = "rhythm: sinus rhythm"
_NORMAL_AXES = frozenset(
    f"electric axis of the heart: {axis}" for axis in ("normal", "vertical", "horizontal")
)


def ludb_diagnoses(comments: Iterable[str]) -> list[str]:
    """The diagnosis lines after ``#<diagnoses>:`` in a LUDB header, without the final dot."""
    lines = [c.lstrip("#").strip() for c in comments]
    if "<diagnoses>:" not in lines:
        return []
    after = lines[lines.index("<diagnoses>:") + 1 :]
    return [line.rstrip(". ").strip() for line in after if line.rstrip(". ").strip()]


def ludb_reference(comments: Iterable[str]) -> StReference:
    """Group of a LUDB record from its header: ``STEMI: <territory>`` lines make it positive;
    sinus rhythm with a normal, vertical or horizontal axis and nothing else is normal (as
    labels.csv "normal"); ``Scar formation`` is old MI."""
    comments = list(comments)
    fields = header_fields(comments)
    sex = fields.get("sex") if fields.get("sex") in ("M", "F") else None
    age = _number(fields.get("age"))
    diagnoses = ludb_diagnoses(comments)
    lowered = [d.lower() for d in diagnoses]
    note = " | ".join(diagnoses)
    stemi = [d.partition(":")[2].strip() for d in lowered if d.startswith("stemi:")]
    if stemi:
        territories = tuple(
            dict.fromkeys(LUDB_TERRITORIES[s] for s in stemi if s in LUDB_TERRITORIES)
        )
        return StReference(Group.STEMI, territories, sex, age, note)
    if lowered and lowered[0] == _NORMAL_RHYTHM and set(lowered[1:]) <= _NORMAL_AXES:
        return StReference(Group.NORMAL, (), sex, age, note)
    if any(d.startswith("scar formation") for d in lowered):
        return StReference(Group.OLD_MI, (), sex, age, note)
    return StReference(Group.OTHER, (), sex, age, note)
