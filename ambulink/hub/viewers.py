"""Member WebSockets: live waveform (batched ~100 ms), vitals, analysis events and alarms.

Browsers cannot set headers on a WebSocket, and tokens stay out of URLs, so the first message
must be ``{"type": "auth", "token": "..."}`` within 5 s. The Origin header is checked against
the configured origins. Each member reads the case's bus streams itself, so a slow member only
delays itself; waveform it cannot keep up with is skipped (it reads the newest entries), events
are never skipped. The viewer socket (``/ws/cases/{id}``), the dispatch socket and the consult
room socket (``ambulink.hub.room_socket``) share this serving loop through ``MemberSession``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect

from ambulink.errors import AmbulinkError, ProtocolError
from ambulink.hub.alarm_service import DISPATCH_TOPIC, HUB_TOPIC, alarms_topic
from ambulink.hub.ingest import ecg_topic, events_topic, vitals_topic
from ambulink.hub.tokens import Grant, InvalidToken
from ambulink.protocol.ecg_frame import decode_ecg_frame, split_ecg_frames

logger = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 5.0
BATCH_MS = 100
MAX_BATCH = 500  # bus entries read per topic and round; a full batch means the member is behind
STALLED_S = 30.0  # a member whose socket takes this long to accept a message is dropped

# Checks a verified grant against the first message (e.g. joins a room); raises to refuse.
Admit = Callable[[Grant, dict[str, Any]], Awaitable[None]]


def now_id(back_s: float = 0.0) -> str:
    """A bus position ``back_s`` before now (bus entry ids are "<ms>-<seq>"): the last id of
    the millisecond before, so an entry appended in this very millisecond (``"<ms>-0"``) is
    read too."""
    return f"{int((time.time() - back_s) * 1000) - 1}-{LAST_SEQ}"


LAST_SEQ = 2**64 - 1  # the highest sequence number of a bus id (Redis: 64 bits)


ALARM_OVERLAP_S = 1.0  # alarm topics are read from a little before the current-state snapshot:
# an update published while it is being sent is not missed (clients drop (id, counter) repeats)


class SessionEnded(Exception):
    """The hub ends a member's session (removed from its room, left): close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def authenticate(
    websocket: WebSocket,
    hub: Any,
    target: str,
    roles: tuple[str, ...],
    *,
    admit: Admit | None = None,
    action: str = "view",
) -> Grant | None:
    """Origin check, accept, then the token as the first message (and ``admit``, if given);
    None (closed with 1008 after an ``error`` message) when refused. Refusals of a valid token
    are audited as ``denied`` with the error code."""
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in hub.settings.allowed_origins:
        await websocket.close(code=1008, reason="origin not allowed")
        return None
    await websocket.accept()
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_S):
            first = json.loads(await websocket.receive_text())
        if not isinstance(first, dict) or first.get("type") != "auth":
            raise InvalidToken('the first message must be {"type": "auth", "token": ...}')
        grant: Grant = hub.tokens.verify(first.get("token"))
        try:
            grant.require(*roles)  # type: ignore[arg-type]
            if admit is not None:
                await admit(grant, first)
        except AmbulinkError as exc:
            await hub.audit.append(f"{grant.role}:{grant.sub}", "denied", target, exc.code)
            raise
    except (TimeoutError, ValueError, AmbulinkError, WebSocketDisconnect) as exc:
        code = getattr(exc, "code", "invalid_token")
        try:
            await websocket.send_json({"type": "error", "code": code, "message": str(exc) or code})
            await websocket.close(code=1008)
        except (RuntimeError, WebSocketDisconnect):
            pass
        return None
    await hub.audit.append(f"{grant.role}:{grant.sub}", action, target)
    return grant


class MemberSession:
    """One authenticated socket as the serving loop sees it. Subclasses add message types
    (``handle``), role checks on every message (``check``) and filter relayed topics."""

    def __init__(self, websocket: WebSocket, hub: Any, grant: Grant, case_id: str | None) -> None:
        self.websocket = websocket
        self.hub = hub
        self.grant = grant
        self.case_id = case_id
        self.member_id = f"{grant.role}:{grant.sub}"
        self.alarm_role = "specialist" if grant.role == "admin" else grant.role
        self._sending = asyncio.Lock()

    @property
    def target(self) -> str:
        return self.case_id or "fleet"

    async def send(self, data: dict[str, object]) -> None:
        await self.send_text(json.dumps(data))

    async def send_text(self, text: str) -> None:
        """One message; ``TimeoutError`` when the member takes longer than ``STALLED_S``."""
        async with asyncio.timeout(STALLED_S), self._sending:
            await self.websocket.send_text(text)

    async def relay(self, topic: str, text: str) -> None:
        """A message from a JSON topic (alarms, room changes) to the member."""
        await self.send_text(text)

    async def check(self, kind: object, message: dict[str, Any]) -> None:
        """Refuse (raise) a message the member may not send; token roles were checked at auth."""

    async def handle(self, kind: object, message: dict[str, Any]) -> None:
        """Receipts, acknowledgements and audio pauses, as every member socket has them."""
        alarm_id = str(message.get("alarm_id", ""))
        alarms = self.hub.alarms
        match kind:
            case "receipt":
                await alarms.receipt(alarm_id, self.member_id, self.alarm_role)
            case "alarm_ack":
                await alarms.acknowledge(alarm_id, self.member_id, self.alarm_role)
                await self.hub.audit.append(self.member_id, "ack", alarm_id)
            case "audio_pause":
                seconds = float(message.get("seconds", 120))
                await alarms.pause_audio(alarm_id, self.member_id, self.alarm_role, seconds)
                await self.hub.audit.append(self.member_id, "pause", alarm_id)
            case _:
                raise ProtocolError(
                    f"unknown message type {kind!r}; expected {', '.join(self.message_types)}"
                )

    message_types: tuple[str, ...] = ("receipt", "alarm_ack", "audio_pause")

    async def refused(self, kind: object, message: dict[str, Any], code: str) -> None:
        """Audit a refused acknowledgement or pause (done ones are audited in ``handle``)."""
        if kind in ("alarm_ack", "audio_pause"):
            action = "ack" if kind == "alarm_ack" else "pause"
            await self.hub.audit.append(
                self.member_id, action, str(message.get("alarm_id", "")), code
            )


async def viewer_socket(websocket: WebSocket, case_id: str) -> None:
    """A case's member: waveform, vitals, events and alarms; receipts and acks back."""
    hub = websocket.state.hub
    grant = await authenticate(websocket, hub, case_id, ("crew", "specialist", "dispatch"))
    if grant is None:
        return
    await websocket.send_json({"type": "ready", "case_id": case_id})
    session = MemberSession(websocket, hub, grant, case_id)
    await serve(session, case_cursors(case_id), hub.alarms.active(case_id))


async def dispatch_socket(websocket: WebSocket) -> None:
    """Dispatch: every case's alarms (and the hub's own), with acknowledgement."""
    hub = websocket.state.hub
    grant = await authenticate(websocket, hub, "fleet", ("dispatch",))
    if grant is None:
        return
    await websocket.send_json({"type": "ready", "scope": "fleet"})
    cursors = {DISPATCH_TOPIC: now_id(ALARM_OVERLAP_S)}
    await serve(MemberSession(websocket, hub, grant, None), cursors, hub.alarms.active(None))


def case_cursors(case_id: str) -> dict[str, str]:
    """Where a case member starts reading, in priority order: alarms first in every round,
    then vitals and events, waveform last (STYLE §7)."""
    return {
        alarms_topic(case_id): now_id(ALARM_OVERLAP_S),
        HUB_TOPIC: now_id(ALARM_OVERLAP_S),
        vitals_topic(case_id): "0",
        events_topic(case_id): "0",
        ecg_topic(case_id): now_id(),
    }


async def serve(
    session: MemberSession,
    cursors: dict[str, str],
    current_alarms: list[dict[str, object]],
    greeting: Sequence[dict[str, object]] = (),
) -> None:
    """Send ``greeting``, then push the member's topics (``cursors``, in priority order) until
    it goes, stalls or the hub ends the session; its messages are handled meanwhile."""
    hub, websocket, case_id = session.hub, session.websocket, session.case_id
    receiving = asyncio.create_task(_receive(session))
    skipped = 0
    try:
        for message in greeting:
            await session.send(message)
        # The current alarms once each (a reconnecting member gets no duplicate banners),
        # then every change from now on.
        for alarm in current_alarms:
            await session.send({"type": "alarm", "effect": "state", "alarm": alarm})
        while not receiving.done():
            sent = False
            for topic in list(cursors):
                entries = await hub.bus.read(topic, after=cursors[topic], count=MAX_BATCH)
                if not entries:
                    continue
                cursors[topic] = entries[-1][0]
                sent = True
                if case_id is not None and topic == ecg_topic(case_id):
                    if len(entries) == MAX_BATCH:
                        # A slow member: skip to the newest waveform (counted and shown to
                        # it); alarms and events are never skipped.
                        behind = await hub.bus.read(topic, after=cursors[topic], count=10_000)
                        if behind:
                            skipped += _frame_count(entries + behind[:-1])
                            cursors[topic] = behind[-1][0]
                            entries = behind[-1:]
                            await session.send({"type": "waveform_skipped", "frames": skipped})
                    await session.send(_waveform(entries))
                elif case_id is not None and topic == vitals_topic(case_id):
                    for _, fields in entries:
                        await session.send({"type": "vitals", "data": json.loads(fields["json"])})
                elif case_id is not None and topic == events_topic(case_id):
                    for _, fields in entries:
                        await session.send({"type": "event", "data": json.loads(fields["json"])})
                else:
                    for _, fields in entries:
                        await session.relay(topic, fields["json"].decode())
            if not sent:
                # Wait for the next alarm, or the next waveform batch, whichever comes first.
                first = next(iter(cursors))
                await hub.bus.read(first, after=cursors[first], count=1, block_ms=BATCH_MS)
        ended = receiving.result()
        if ended is not None:
            raise ended
    except WebSocketDisconnect:
        return
    except SessionEnded as end:
        await _close(websocket, end.code, end.reason)
    except TimeoutError:
        # Stalled for STALLED_S: drop the member; it resyncs (current alarms first) when it
        # reconnects.
        await hub.audit.append(session.member_id, "leave", session.target, "stalled")
        await _close(websocket, 1008, "stalled")
    finally:
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # closed by the member
        await websocket.close(code=code, reason=reason)


async def _receive(session: MemberSession) -> SessionEnded | None:
    """A member's messages, each checked then handled; a refused or bad one gets an error and
    the socket stays open. Returns when the member goes, or the hub ends its session."""
    while True:
        try:
            message = json.loads(await session.websocket.receive_text())
        except (WebSocketDisconnect, RuntimeError):
            return None
        except ValueError:
            if not await _answer(session, "bad_json", "not JSON"):
                return None
            continue
        if not isinstance(message, dict):
            message = {}
        kind = message.get("type")
        try:
            await session.check(kind, message)
            await session.handle(kind, message)
        except SessionEnded as end:
            return end
        except (AmbulinkError, ValueError, TypeError) as exc:
            code = getattr(exc, "code", "bad_message")
            await session.refused(kind, message, code)
            if not await _answer(session, code, str(exc)):
                return None


async def _answer(session: MemberSession, code: str, message: str) -> bool:
    """An ``error`` message to the member; False when its socket is gone."""
    try:
        await session.send({"type": "error", "code": code, "message": message})
    except (WebSocketDisconnect, RuntimeError):
        return False
    return True


def _frame_count(entries: list[tuple[str, dict[str, bytes]]]) -> int:
    return sum(len(split_ecg_frames(fields["frames"])) for _, fields in entries)


def _waveform(entries: list[tuple[str, dict[str, bytes]]]) -> dict[str, object]:
    """Frames grouped by stream: first sample, fs, gain, samples (leads by samples, ADC units).
    Each bus entry holds one or more frames back to back (one stored batch)."""
    streams: dict[int, dict[str, object]] = {}
    frames = (decode_ecg_frame(part) for _, f in entries for part in split_ecg_frames(f["frames"]))
    for frame in frames:
        item = streams.setdefault(
            frame.stream_id,
            {"stream_id": frame.stream_id, "fs": frame.fs, "gain": frame.gain, "chunks": []},
        )
        chunks = item["chunks"]
        assert isinstance(chunks, list)
        chunks.append(
            {
                "first_sample": frame.first_sample,
                "lead_off": frame.lead_off,
                "samples": np.asarray(frame.samples).T.tolist(),
            }
        )
    return {"type": "waveform", "streams": list(streams.values())}
