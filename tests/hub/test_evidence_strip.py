from ambulink.hub.app import strip_lead
from tests.conftest import bundled


def test_the_strip_shows_the_lead_that_carried_the_beats() -> None:
    record = bundled("mitdb/100")
    strip = record.signals_mv[: int(10 * record.fs)].copy()
    assert strip_lead(strip, record.fs, record.leads) == 0  # MLII, the analysis lead
    strip[: int(7 * record.fs), 0] = 0.4  # MLII detached for 7 of the 10 s
    assert strip_lead(strip, record.fs, record.leads) == 1  # V5, the backup
    strip[:, 0] = record.signals_mv[: int(10 * record.fs), 0]
    strip[: int(3 * record.fs), 0] = 0.4  # off for 3 s only: MLII still shows most
    assert strip_lead(strip, record.fs, record.leads) == 0
    assert strip_lead(strip[:, :1], record.fs, record.leads[:1]) == 0  # no backup: MLII
