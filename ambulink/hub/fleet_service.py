"""The fleet at run time: telematics from any transport in, coalesced unit updates out.

``FleetService.apply(unit_id, kind, payload)`` is the one entry for a report, whether MQTT
(``ambulink.hub.mqtt``), the tablet's data channel (``ambulink.hub.uplink``) or a REST status
change carried it. Changes mark the unit dirty; a loop publishes each dirty unit at most every
``COALESCE_S`` on the bus topic ``fleet:updates`` (``{"json": message, "unit": unit_id}``), which
every ``/ws/fleet`` socket reads. Alarm changes (``dispatch:alarms``) and the passing of time
(data age) mark units dirty too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ambulink.errors import ProtocolError
from ambulink.hub.alarm_service import DISPATCH_TOPIC
from ambulink.hub.bus import Bus
from ambulink.hub.fleet import Fleet, UnknownUnit
from ambulink.protocol.messages import StreamOpen
from ambulink.protocol.telematics import Report, StatusReport, encode_report

if TYPE_CHECKING:
    from ambulink.hub.mqtt import FleetMqtt

logger = logging.getLogger(__name__)

FLEET_TOPIC = "fleet:updates"
FLEET_KEEP = 20_000
COALESCE_S = 0.25  # at most ~4 updates per second per unit (docs/fleet.md)
GATHER_S = 0.02
DATA_AGE_EVERY_S = 1.0

OpenAlarms = Callable[[], list[dict[str, object]]]
StatusOut = Callable[[str, bytes], Awaitable[None]]


@dataclass
class FleetCounters:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0


class FleetService:
    """See the module docstring. ``clock`` returns Unix seconds."""

    def __init__(
        self,
        fleet: Fleet,
        bus: Bus,
        open_alarms: OpenAlarms = list,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fleet = fleet
        self.bus = bus
        self._open_alarms = open_alarms
        self._clock = clock
        self.counters = FleetCounters()
        self.status_out: StatusOut | None = None  # the MQTT adapter, when a broker is configured
        self.mqtt: FleetMqtt | None = None
        self._dirty_units: set[str] = set()
        self._dirty_hospitals: set[str] = set()
        self._changed = asyncio.Event()

    # -- in ---------------------------------------------------------------------------------

    async def apply(
        self, unit_id: str, kind: str, payload: bytes | str | Mapping[str, object] | Report
    ) -> bool:
        """Apply one report from ``unit_id`` (the topic's or the token's unit). True if it
        changed the unit; False for a repeat or a refused report (counted; the unit keeps its
        last good state)."""
        try:
            changed = self.fleet.apply(unit_id, kind, payload, self._clock())
        except ProtocolError as exc:
            self.counters.rejected += 1
            logger.info("telematics from unit %s refused: %s", unit_id, exc.code)
            return False
        except UnknownUnit:
            self.counters.rejected += 1
            logger.info("telematics from unknown unit refused")
            return False
        if not changed:
            self.counters.duplicates += 1
            return False
        self.counters.accepted += 1
        self._mark(unit_id)
        return True

    async def set_status(
        self, unit_id: str, status: str, destination: str | None, keep_destination: bool
    ) -> dict[str, object]:
        """A status change from REST: the same path as a unit's own (and published to the
        broker, retained, when one is configured)."""
        state = self.fleet.unit(unit_id)
        report = StatusReport.model_validate(
            {
                "unit_id": unit_id,
                "status": status,
                "case_id": state.case_id,
                "destination": state.destination if keep_destination else destination,
                "at": max(self._clock(), state.status_at),
                "seq": state.status_seq + 1,
            }
        )
        if report.destination is not None and report.destination not in self.fleet.hospitals:
            raise ProtocolError(f"destination {report.destination!r} is not a known hospital")
        await self.apply(unit_id, "status", report)
        if self.status_out is not None:
            await self.status_out(unit_id, encode_report(report))
        return self.unit_json(unit_id)

    def open_case(self, unit_id: str, case_id: str) -> None:
        if self.fleet.open_case(unit_id, case_id):
            self._mark(unit_id)

    def close_case(self, unit_id: str, case_id: str) -> None:
        self.fleet.close_case(case_id)
        if unit_id in self.fleet.units:
            self._mark(unit_id)

    def set_ready(self, hospital_id: str, ready: bool) -> dict[str, object]:
        self.fleet.set_ready(hospital_id, ready)
        self._dirty_hospitals.add(hospital_id)
        self._changed.set()
        return self.fleet.hospital_json(hospital_id)

    def on_ecg_stored(self, opened: StreamOpen, end_sample: int) -> None:
        """Ingest stored a case's ECG up to ``end_sample`` (exclusive): data age restarts."""
        newest_at = opened.started_at + end_sample / opened.fs
        if self.fleet.ecg_stored(opened.unit_id, opened.case_id, newest_at):
            self._dirty_units.add(opened.unit_id)  # published with the next data-age round

    # -- out --------------------------------------------------------------------------------

    def unit_json(
        self, unit_id: str, alarms: list[dict[str, object]] | None = None
    ) -> dict[str, object]:
        return self.fleet.unit_json(
            unit_id, self._clock(), self._open_alarms() if alarms is None else alarms
        )

    def snapshot(self, unit: str | None = None) -> dict[str, object]:
        """The ``fleet`` message: every unit (or only ``unit``) and every hospital."""
        alarms = self._open_alarms()
        ids = [u for u in self.fleet.units if unit is None or u == unit]
        return {
            "type": "fleet",
            "units": [self.unit_json(u, alarms) for u in ids],
            "hospitals": [self.fleet.hospital_json(h) for h in self.fleet.hospitals],
        }

    def weather(self) -> dict[str, object]:
        return {"type": "weather", "cells": self.fleet.weather(self._clock())}

    def _mark(self, unit_id: str) -> None:
        self._dirty_units.add(unit_id)
        self._changed.set()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FleetService]:
        tasks = [
            asyncio.create_task(self._publish_forever()),
            asyncio.create_task(self._follow_alarms()),
            asyncio.create_task(self._age_forever()),
        ]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _publish_forever(self) -> None:
        """Each dirty unit goes out at once (after ``GATHER_S``, so a unit's position and link
        sent together make one update), then at most every ``COALESCE_S``."""
        next_at: dict[str, float] = {}
        while True:
            if not (self._dirty_units or self._dirty_hospitals):
                self._changed.clear()
                await self._changed.wait()
                await asyncio.sleep(GATHER_S)
            now = time.monotonic()
            due = {u for u in self._dirty_units if next_at.get(u, 0.0) <= now}
            self._dirty_units -= due
            hospitals, self._dirty_hospitals = self._dirty_hospitals, set()
            await self._publish(due, hospitals)
            for unit_id in due:
                next_at[unit_id] = now + COALESCE_S
            if self._dirty_units and not due:
                wait_s = min(next_at[u] for u in self._dirty_units) - now
                await asyncio.sleep(max(wait_s, GATHER_S))

    async def _publish(self, units: set[str], hospitals: set[str]) -> None:
        alarms = self._open_alarms() if units else []
        for unit_id in units:
            text = json.dumps({"type": "unit", "unit": self.unit_json(unit_id, alarms)})
            await self.bus.append(FLEET_TOPIC, {"json": text, "unit": unit_id}, maxlen=FLEET_KEEP)
        for hospital_id in hospitals:
            hospital = self.fleet.hospital_json(hospital_id)
            text = json.dumps({"type": "hospital", "hospital": hospital})
            await self.bus.append(FLEET_TOPIC, {"json": text, "unit": ""}, maxlen=FLEET_KEEP)

    async def _age_forever(self) -> None:
        """Data age grows with time alone: republish units with a case every second."""
        while True:
            await asyncio.sleep(DATA_AGE_EVERY_S)
            for state in self.fleet.units.values():
                if state.case_id is not None and state.case_id in self.fleet.last_ecg_at:
                    self._dirty_units.add(state.unit_id)
            if self._dirty_units:
                self._changed.set()

    async def _follow_alarms(self) -> None:
        """An alarm raised, acknowledged or cleared changes its unit's open alarms."""
        after = f"{int(self._clock() * 1000)}-0"
        while True:
            entries = await self.bus.read(DISPATCH_TOPIC, after=after, count=500, block_ms=1000)
            if not entries:
                continue
            after = entries[-1][0]
            cases = set()
            for _, fields in entries:
                try:
                    alarm = json.loads(fields["json"]).get("alarm", {})
                    cases.add(alarm.get("case_id"))
                except (ValueError, KeyError, AttributeError):
                    continue
            for state in self.fleet.units.values():
                if state.case_id is not None and state.case_id in cases:
                    self._mark(state.unit_id)
