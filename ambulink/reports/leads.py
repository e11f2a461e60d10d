"""Lead names: the standard 12 in report order, and matching of record names to them."""

from __future__ import annotations

from collections.abc import Sequence

STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

# Report columns, each three leads top to bottom (the usual 3x4 layout).
LAYOUT_COLUMNS = (("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6"))

RHYTHM_LEAD = "II"

# Upper-cased spellings seen in PhysioNet headers besides the standard names themselves:
# MIT-BIH's modified limb leads (MLII) and the European DI/DII/DIII.
_ALIASES = {
    "MLI": "I",
    "MLII": "II",
    "MLIII": "III",
    "DI": "I",
    "DII": "II",
    "DIII": "III",
}
_BY_UPPER = {name.upper(): name for name in STANDARD_LEADS}


def canonical_lead(name: str) -> str | None:
    """The standard name of ``name`` (case-insensitive, aliases such as MLII → II), or None."""
    key = name.strip().upper().replace(" ", "").replace("-", "")
    key = key.removeprefix("LEAD")
    return _BY_UPPER.get(key) or _ALIASES.get(key)


def match_leads(names: Sequence[str]) -> dict[str, int]:
    """Standard lead name → column index in ``names``; unknown names are skipped.

    When two columns map to one lead (e.g. ``II`` and ``MLII``) the first column wins.
    """
    found: dict[str, int] = {}
    for index, name in enumerate(names):
        lead = canonical_lead(name)
        if lead is not None and lead not in found:
            found[lead] = index
    return found
