"""The viewer WebSocket: live waveform (batched ~100 ms), vitals and analysis events of a case.

Browsers cannot set headers on a WebSocket, and tokens stay out of URLs, so the first message
must be ``{"type": "auth", "token": "..."}`` within 5 s. The Origin header is checked against
the configured origins. Each viewer reads the case's bus streams itself, so a slow viewer only
delays itself; waveform it cannot keep up with is skipped (it reads the newest entries), events
are never skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect

from ambulink.errors import AmbulinkError, ProtocolError
from ambulink.hub.alarm_service import DISPATCH_TOPIC, HUB_TOPIC, alarms_topic
from ambulink.hub.ingest import ecg_topic, events_topic, vitals_topic
from ambulink.hub.tokens import Grant, InvalidToken
from ambulink.protocol.ecg_frame import decode_ecg_frame

logger = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 5.0
BATCH_MS = 100
MAX_BATCH = 500  # bus entries read per topic and round; a full batch means the member is behind
STALLED_S = 30.0  # a member whose socket takes this long to accept a message is dropped


def _now_id(back_s: float = 0.0) -> str:
    """A bus position ``back_s`` before now (bus entry ids are "<ms>-<seq>")."""
    return f"{int((time.time() - back_s) * 1000)}-0"


ALARM_OVERLAP_S = 1.0  # alarm topics are read from a little before the current-state snapshot:
# an update published while it is being sent is not missed (clients drop (id, counter) repeats)


async def _authenticate(
    websocket: WebSocket, hub: Any, target: str, roles: tuple[str, ...]
) -> Grant | None:
    """Origin check, accept, then the token as the first message; None (closed) when refused."""
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
        except AmbulinkError:
            await hub.audit.append(f"{grant.role}:{grant.sub}", "denied", target, "forbidden")
            raise
    except (TimeoutError, ValueError, AmbulinkError, WebSocketDisconnect) as exc:
        code = getattr(exc, "code", "invalid_token")
        try:
            await websocket.send_json({"type": "error", "code": code, "message": str(exc) or code})
            await websocket.close(code=1008)
        except (RuntimeError, WebSocketDisconnect):
            pass
        return None
    await hub.audit.append(f"{grant.role}:{grant.sub}", "view", target)
    return grant


async def viewer_socket(websocket: WebSocket, case_id: str) -> None:
    """A case's member: waveform, vitals, events and alarms; receipts and acks back."""
    hub = websocket.state.hub
    grant = await _authenticate(websocket, hub, case_id, ("crew", "specialist", "dispatch"))
    if grant is None:
        return
    await websocket.send_json({"type": "ready", "case_id": case_id})
    # Alarms first in every round, waveform last (STYLE §7).
    cursors = {
        alarms_topic(case_id): _now_id(ALARM_OVERLAP_S),
        HUB_TOPIC: _now_id(ALARM_OVERLAP_S),
        vitals_topic(case_id): "0",
        events_topic(case_id): "0",
        ecg_topic(case_id): _now_id(),
    }
    await _serve(websocket, hub, grant, cursors, hub.alarms.active(case_id), case_id)


async def dispatch_socket(websocket: WebSocket) -> None:
    """Dispatch: every case's alarms (and the hub's own), with acknowledgement."""
    hub = websocket.state.hub
    grant = await _authenticate(websocket, hub, "fleet", ("dispatch",))
    if grant is None:
        return
    await websocket.send_json({"type": "ready", "scope": "fleet"})
    cursors = {DISPATCH_TOPIC: _now_id(ALARM_OVERLAP_S)}
    await _serve(websocket, hub, grant, cursors, hub.alarms.active(None), None)


async def _serve(
    websocket: WebSocket,
    hub: Any,
    grant: Grant,
    cursors: dict[str, str],
    current_alarms: list[dict[str, object]],
    case_id: str | None,
) -> None:
    # The current alarms once each (a reconnecting member gets no duplicate banners), then
    # every change from now on.
    for alarm in current_alarms:
        await websocket.send_json({"type": "alarm", "effect": "state", "alarm": alarm})
    member = f"{grant.role}:{grant.sub}"
    receiving = asyncio.create_task(_receive(websocket, hub, member, grant.role))
    skipped = 0
    try:
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
                            skipped += len(entries) + len(behind) - 1
                            cursors[topic] = behind[-1][0]
                            entries = behind[-1:]
                            await _send(websocket, {"type": "waveform_skipped", "frames": skipped})
                    await _send(websocket, _waveform(entries))
                elif case_id is not None and topic == vitals_topic(case_id):
                    for _, fields in entries:
                        await _send(
                            websocket, {"type": "vitals", "data": json.loads(fields["json"])}
                        )
                elif case_id is not None and topic == events_topic(case_id):
                    for _, fields in entries:
                        await _send(
                            websocket, {"type": "event", "data": json.loads(fields["json"])}
                        )
                else:
                    for _, fields in entries:
                        async with asyncio.timeout(STALLED_S):
                            await websocket.send_text(fields["json"].decode())
            if not sent:
                # Wait for the next alarm, or the next waveform batch, whichever comes first.
                first = next(iter(cursors))
                await hub.bus.read(first, after=cursors[first], count=1, block_ms=BATCH_MS)
    except WebSocketDisconnect:
        return
    except TimeoutError:
        # Stalled for STALLED_S: drop the member; it resyncs (current alarms first) when it
        # reconnects.
        await hub.audit.append(member, "leave", case_id or "fleet", "stalled")
        await websocket.close(code=1008, reason="stalled")
    finally:
        receiving.cancel()


async def _send(websocket: WebSocket, data: dict[str, object]) -> None:
    async with asyncio.timeout(STALLED_S):
        await websocket.send_json(data)


async def _receive(websocket: WebSocket, hub: Any, member: str, role: str) -> None:
    """A member's receipts, acknowledgements and audio pauses; bad messages get an error.
    Acknowledgements and pauses, done or refused, go to the audit log."""
    while True:
        try:
            message = json.loads(await websocket.receive_text())
        except (WebSocketDisconnect, RuntimeError):
            return
        except ValueError:
            await websocket.send_json({"type": "error", "code": "bad_json", "message": "not JSON"})
            continue
        kind = message.get("type") if isinstance(message, dict) else None
        alarm_id = str(message.get("alarm_id", "")) if isinstance(message, dict) else ""
        try:
            match kind:
                case "receipt":
                    await hub.alarms.receipt(alarm_id, member, _alarm_role(role))
                case "alarm_ack":
                    await hub.alarms.acknowledge(alarm_id, member, _alarm_role(role))
                    await hub.audit.append(member, "ack", alarm_id)
                case "audio_pause":
                    seconds = float(message.get("seconds", 120))
                    await hub.alarms.pause_audio(alarm_id, member, _alarm_role(role), seconds)
                    await hub.audit.append(member, "pause", alarm_id)
                case _:
                    raise ProtocolError(
                        f"unknown message type {kind!r}; expected receipt, alarm_ack, audio_pause"
                    )
        except (AmbulinkError, ValueError, TypeError) as exc:
            code = getattr(exc, "code", "bad_message")
            if kind in ("alarm_ack", "audio_pause"):
                await hub.audit.append(
                    member, "ack" if kind == "alarm_ack" else "pause", alarm_id, code
                )
            await websocket.send_json({"type": "error", "code": code, "message": str(exc)})


def _alarm_role(role: str) -> str:
    """Token roles map onto alarm roles: admins act as specialists."""
    return "specialist" if role == "admin" else role


def _waveform(entries: list[tuple[str, dict[str, bytes]]]) -> dict[str, object]:
    """Frames grouped by stream: first sample, fs, gain, samples (leads by samples, ADC units)."""
    streams: dict[int, dict[str, object]] = {}
    for _, fields in entries:
        frame = decode_ecg_frame(fields["frame"])
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
