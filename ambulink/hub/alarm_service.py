"""The hub's alarm service: analysis events in, alarm states out to every member and to dispatch.

It drives the pure ``AlarmLedger`` (``ambulink.hub.alarms``) with the hub's clocks: analysis and
technical events raise and clear alarms, members' receipts, acknowledgements and audio pauses
come back from their WebSockets, and a tick every 0.5 s carries out redelivery, "not delivered",
escalation and re-annunciation. Every effect is saved to the durable alarm store first, then
published on the bus: per case (``case:{id}:alarms``, read by the case's members) and for the
fleet (``dispatch:alarms``). After a restart the unfinished alarms are restored and published
once. If the tick loop dies, an "alarm system failure" is announced before the error propagates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from ambulink.hub.alarms import (
    AlarmKind,
    AlarmLedger,
    AlarmStore,
    Annunciate,
    Effect,
    Escalate,
    Publish,
    Redeliver,
)
from ambulink.hub.alarms.model import Alarm, AlarmRejected, alarm_to_json, check_role
from ambulink.hub.bus import Bus

logger = logging.getLogger(__name__)

T = TypeVar("T")

TICK_S = 0.5
DISPATCH_TOPIC = "dispatch:alarms"
HUB_TOPIC = "hub:alarms"  # alarms of the hub itself (alarm system failure), read by every member
ALARM_KEEP = 10_000


def alarms_topic(case_id: str) -> str:
    return f"case:{case_id}:alarms"


RHYTHM_LABELS = frozenset({"AF", "VT", "VF", "ASYSTOLE", "PAUSE", "BRADY", "TACHY"})


class AlarmService:
    """One per hub process; see the module docstring."""

    def __init__(
        self,
        bus: Bus,
        store_path: Path,
        *,
        ledger: AlarmLedger | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.ledger = ledger or AlarmLedger()
        self._store_path = store_path
        self._store: AlarmStore | None = None
        self._disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alarm-store")
        self._clock = clock
        self._wall = wall
        self._lock = asyncio.Lock()

    async def _on_disk(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._disk, fn, *args)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[AlarmService]:
        self._store = await self._on_disk(AlarmStore.open, self._store_path)
        try:
            unfinished = await self._on_disk(self._store.load_unfinished)
            await self._apply(self.ledger.restore(unfinished, now=self._clock()))
            ticking = asyncio.create_task(self._tick_forever())
            try:
                yield self
            finally:
                ticking.cancel()
                await asyncio.gather(ticking, return_exceptions=True)
        finally:
            await self._on_disk(self._store.close)
            self._disk.shutdown(wait=True)

    def active(self, case_id: str) -> list[dict[str, object]]:
        """The current state of the case's alarms (and hub-wide ones), once each."""
        return [alarm_to_json(a) for a in self.ledger.active(case_id)]

    async def on_event(self, case_id: str, data: dict[str, object]) -> None:
        """An event the hub published for ``case_id`` (analysis or technical)."""
        kind = data.get("kind")
        now = self._clock()
        onset_at = float(data.get("onset_at", data.get("at", self._wall())))  # type: ignore[arg-type]
        delayed = bool(data.get("delayed", False))
        effects: list[Effect] = []
        async with self._lock:
            match kind:
                case "episode_start" if data.get("label") in RHYTHM_LABELS:
                    evidence = data.get("evidence")
                    effects = self.ledger.raise_alarm(
                        case_id,
                        AlarmKind.for_rhythm(str(data["label"])),
                        now=now,
                        onset_at=onset_at,
                        onset_sample=_int(data.get("onset")),
                        delayed=delayed,
                        evidence={
                            "stream_id": data.get("stream_id"),
                            "decided_at": data.get("decided_at"),
                            **evidence,
                        }
                        if isinstance(evidence, dict)
                        else None,
                    )
                case "episode_end" if data.get("label") in RHYTHM_LABELS:
                    effects = self.ledger.clear(
                        case_id, AlarmKind.for_rhythm(str(data["label"])), now=now
                    )
                case "stemi_suspected":
                    summary: dict[str, object] = {
                        k: data[k] for k in ("territories", "reasons", "stream_id") if k in data
                    }
                    window = data.get("evidence")
                    if isinstance(window, dict):
                        summary.update({str(k): v for k, v in window.items()})  # start, end
                    effects = self.ledger.raise_alarm(
                        case_id,
                        AlarmKind.STEMI,
                        now=now,
                        onset_at=onset_at,
                        onset_sample=_int(data.get("sample")),
                        delayed=delayed,
                        evidence=summary,
                    )
                case "stemi_cleared":
                    effects = self.ledger.clear(case_id, AlarmKind.STEMI, now=now)
                case "lead_off":
                    effects = self._lead_off(case_id, data, now, onset_at, delayed)
                case "no_signal":
                    effects = self.ledger.raise_alarm(
                        case_id, AlarmKind.NO_SIGNAL, now=now, onset_at=onset_at
                    )
                case "signal_restored":
                    effects = self.ledger.clear(case_id, AlarmKind.NO_SIGNAL, now=now)
                case _:
                    return
            await self._apply(effects)

    def _lead_off(
        self, case_id: str, data: dict[str, object], now: float, onset_at: float, delayed: bool
    ) -> list[Effect]:
        """One lead-off alarm per case while any lead is off; its evidence names them all, so
        one lead coming back does not clear the alarm of another that is still off."""
        lead = str(data.get("lead"))
        alarm = self.ledger.current(case_id, AlarmKind.LEAD_OFF)
        known = (alarm.evidence or {}).get("leads") if alarm is not None else None
        off = {str(name) for name in known} if isinstance(known, list) else set()
        if alarm is not None and not off:  # raised before leads were listed
            off = {str((alarm.evidence or {}).get("lead"))}
        if data.get("off"):
            off.add(lead)
        else:
            off.discard(lead)
            if not off:  # (with no alarm, nothing to clear)
                return self.ledger.clear(case_id, AlarmKind.LEAD_OFF, now=now)
        return self.ledger.raise_alarm(
            case_id,
            AlarmKind.LEAD_OFF,
            now=now,
            onset_at=onset_at if alarm is None else alarm.onset_at,
            delayed=delayed,
            evidence={"lead": lead if data.get("off") else sorted(off)[0], "leads": sorted(off)},
        )

    async def receipt(self, alarm_id: str, member_id: str, role: str) -> None:
        async with self._lock:
            await self._apply(
                self.ledger.receipt(alarm_id, member_id, check_role(role), now=self._clock())
            )

    async def acknowledge(self, alarm_id: str, member_id: str, role: str) -> None:
        async with self._lock:
            alarm = self.ledger.get(alarm_id)  # UnknownAlarm for an id it never raised
            if alarm.acknowledged:
                by = alarm.acks[0].member_id
                raise AlarmRejected(f"alarm {alarm_id} was already acknowledged by {by}")
            await self._apply(
                self.ledger.acknowledge(alarm_id, member_id, check_role(role), now=self._clock())
            )

    async def pause_audio(self, alarm_id: str, member_id: str, role: str, seconds: float) -> None:
        async with self._lock:
            await self._apply(
                self.ledger.pause_audio(
                    alarm_id,
                    member_id,
                    seconds,
                    role=check_role(role),
                    now=self._clock(),
                )
            )

    async def _tick_forever(self) -> None:
        try:
            while True:
                await asyncio.sleep(TICK_S)
                async with self._lock:
                    await self._apply(self.ledger.tick(now=self._clock()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("the alarm tick loop failed")
            effects = self.ledger.alarm_system_failure(
                None, now=self._clock(), reason=type(exc).__name__, onset_at=self._wall()
            )
            await self._apply(effects)
            raise

    async def _apply(self, effects: list[Effect]) -> None:
        if not effects:
            return
        assert self._store is not None
        alarms = [_alarm_of(e) for e in effects]
        await self._on_disk(self._store.save_all, alarms)  # durable before anyone sees it
        for effect, alarm in zip(effects, alarms, strict=True):
            message: dict[str, object] = {
                "type": "alarm",
                "effect": type(effect).__name__.lower(),
                "alarm": alarm_to_json(alarm),
            }
            match effect:
                case Escalate(level=level, target=target):
                    message["escalation"] = {"level": level, "target": target}
                    logger.warning("alarm %s escalated to %s", alarm.alarm_id, target)
                case Publish(to=to) | Redeliver(to=to) | Annunciate(to=to):
                    message["to"] = to
            text = json.dumps(message)
            topic = HUB_TOPIC if alarm.case_id is None else alarms_topic(alarm.case_id)
            await self.bus.append(topic, {"json": text}, maxlen=ALARM_KEEP)
            await self.bus.append(DISPATCH_TOPIC, {"json": text}, maxlen=ALARM_KEEP)


def _alarm_of(effect: Effect) -> Alarm:
    alarm: Alarm = effect.alarm
    return alarm


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None
