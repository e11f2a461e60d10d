"""Plain-text tables."""

from __future__ import annotations

from ambulink.evaluation.report import num, pct, table


def test_table_pads_columns_and_right_aligns_numbers() -> None:
    text = table(["record", "Se %"], [["100", "99.50"], ["gross", "100.00"]])
    assert text.splitlines() == [
        "record    Se %",
        "------  ------",
        "100      99.50",
        "gross   100.00",
    ]


def test_undefined_figures_show_as_a_dash() -> None:
    assert (pct(None), num(None)) == ("-", "-")
    assert (pct(0.99834), num(2.25, 1)) == ("99.83", "2.2")
