"""Consult-room media through a real hub: the ambulance's camera and mic and a specialist's camera
reach the other members over POST /api/rooms/{case_id}/media/offer, forwarded without decoding;
bad offers are refused with clear errors and leak nothing, while another room keeps flowing.

Members join the room through the member socket ``/ws/rooms/{case_id}`` first, as browsers do;
the sockets are read (and their messages dropped) until the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import websockets
from aiortc import RTCSessionDescription

from ambulink.hub.tokens import TokenIssuer
from tests.e2e.conftest import HubFactory, RunningHub, poll_until
from tests.rooms.media_peers import Answerer, MemberPeer, decoded_waiting

UNIT = "amb-7"


def via_hub(hub: RunningHub, case_id: str, token: str) -> Answerer:
    async def answer(sdp: str) -> RTCSessionDescription:
        async with httpx.AsyncClient(timeout=20) as http:
            response = await http.post(
                f"{hub.url}/api/rooms/{case_id}/media/offer",
                json={"sdp": sdp, "type": "offer"},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert response.status_code == 200, response.text
        body = response.json()
        return RTCSessionDescription(sdp=body["sdp"], type=body["type"])

    return answer


async def post_offer(hub: RunningHub, case_id: str, token: str, sdp: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=20) as http:
        return await http.post(
            f"{hub.url}/api/rooms/{case_id}/media/offer",
            json={"sdp": sdp, "type": "offer"},
            headers={"Authorization": f"Bearer {token}"},
        )


async def poll_or_explain(
    condition: Callable[[], bool], timeout_s: float, what: str, state: Callable[[], str]
) -> None:
    """``poll_until``, failing with what the members saw."""
    try:
        await poll_until(condition, timeout_s, what)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}: {state()}") from None


class RoomSockets:
    """Member sockets held open (and drained) for a test: the seats media offers need."""

    def __init__(self, hub: RunningHub) -> None:
        self.hub = hub
        self.stack = AsyncExitStack()
        self.readers: list[asyncio.Task[None]] = []
        self.sockets: dict[tuple[str, str], websockets.ClientConnection] = {}

    async def join(self, case_id: str, sub: str, token_role: str) -> None:
        """Join as ``<token_role>:<sub>``; returns once the hub said ``joined``."""
        url = self.hub.url.replace("http://", "ws://") + f"/ws/rooms/{case_id}"
        socket = await self.stack.enter_async_context(websockets.connect(url))
        await socket.send(
            json.dumps({"type": "auth", "token": self.hub.issuer.mint(sub, token_role)})
        )
        while (message := json.loads(await socket.recv()))["type"] != "joined":
            assert message["type"] != "error", message
        self.readers.append(asyncio.create_task(self._drain(socket)))
        self.sockets[case_id, sub] = socket

    async def leave(self, case_id: str, sub: str) -> None:
        await self.sockets[case_id, sub].send(json.dumps({"type": "leave"}))

    @staticmethod
    async def _drain(socket: websockets.ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in socket:
                pass

    async def close(self) -> None:
        await self.stack.aclose()
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


async def consult_scenario(hub_factory: HubFactory, buffer_dir: Path) -> None:
    async with hub_factory() as hub:
        client = hub.camera_client(UNIT, buffer_dir)
        stop = asyncio.Event()
        running = asyncio.create_task(client.run(until=stop))
        specialist = MemberPeer("specialist", publish=True, slots=2)
        observer = MemberPeer("dispatch", slots=2)
        sockets = RoomSockets(hub)
        try:
            await poll_until(
                lambda: any(s.room for s in hub.hub.uplinks), 20, "the uplink in a room"
            )
            (session,) = hub.hub.uplinks
            case_id = session.case_id
            assert case_id is not None
            ambulance = session.member_id
            await sockets.join(case_id, "dr-a", "specialist")
            await sockets.join(case_id, "desk", "dispatch")
            await specialist.connect(via_hub(hub, case_id, hub.issuer.mint("dr-a", "specialist")))
            await observer.connect(via_hub(hub, case_id, hub.issuer.mint("desk", "dispatch")))
            await poll_or_explain(
                lambda: (
                    len(observer.seen(ambulance)) >= 10
                    and len(observer.seen("specialist:dr-a")) >= 10
                    and len(specialist.seen(ambulance)) >= 10
                    and observer.heard(ambulance) >= 50
                    and specialist.heard(ambulance) >= 50
                ),
                40,
                "members seeing and hearing the ambulance and the specialist",
                lambda: f"observer {observer.state()}; specialist {specialist.state()}",
            )
            for numbers in (observer.seen(ambulance), specialist.seen(ambulance)):
                assert numbers == sorted(numbers) and numbers[-1] > numbers[0]
            # The uplink's camera and mic were tapped, not decoded.
            assert session.media_frames["video"] >= 10 and session.media_frames["audio"] >= 50
            for receiver in session.pc.getReceivers():
                if receiver.track is not None:
                    assert decoded_waiting(receiver) == 0
            assert hub.hub.media.peer_connections == 2

            # A keyframe request from the observer reaches the specialist's camera, throttled.
            published = hub.hub.media.rooms[case_id].members["specialist:dr-a"].published["video"]
            asked = specialist.keyframe_requests
            sent = published.throttle.sent
            mid = observer.mid_of("specialist:dr-a", "video")
            (receiver,) = [t.receiver for t in observer.pc.getTransceivers() if t.mid == mid]
            ssrc = receiver.getSynchronizationSources()[0].source
            await asyncio.gather(*(receiver._send_rtcp_pli(ssrc) for _ in range(5)))
            await poll_until(
                lambda: specialist.keyframe_requests > asked, 10, "the PLI at the publisher"
            )
            assert published.throttle.sent - sent <= 2 and published.throttle.suppressed >= 3

            # The specialist leaves the room: the hub closes its connection, the observer is told.
            observer.slots_changed.clear()
            await sockets.leave(case_id, "dr-a")
            await poll_until(lambda: hub.hub.media.peer_connections == 1, 10, "the pc closed")
            await asyncio.wait_for(observer.slots_changed.wait(), 10)
            assert {s["member_id"] for s in observer.slot_messages[-1]} == {ambulance}
            seen = len(observer.seen(ambulance))
            await poll_until(lambda: len(observer.seen(ambulance)) >= seen + 5, 20, "more video")
        finally:
            await specialist.close()
            await observer.close()
            await sockets.close()
            stop.set()
            await asyncio.wait_for(running, 15)


def test_members_see_and_hear_the_ambulance_and_each_other(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    asyncio.run(consult_scenario(hub_factory, tmp_path / "tablet"))


def sdp_with_only(sdp: str, kind: str, keep: str) -> str:
    """``sdp`` with the ``kind`` sections' codecs reduced to those named ``keep``."""
    lines = sdp.splitlines()
    out: list[str] = []
    section = ""
    drop: set[str] = set()
    for line in lines:
        if line.startswith("m="):
            section = line[2:].split()[0]
        if section == kind and line.startswith("a=rtpmap:"):
            pt, name = line[len("a=rtpmap:") :].split(" ", 1)
            if not name.upper().startswith(keep.upper()):
                drop.add(pt)
        out.append(line)
    result = []
    for line in out:
        if line.startswith(f"m={kind}"):
            parts = line.split()
            line = " ".join(parts[:3] + [p for p in parts[3:] if p not in drop])
        if any(
            line.startswith(f"a={a}:{pt} ") for pt in drop for a in ("rtpmap", "fmtp", "rtcp-fb")
        ):
            continue
        result.append(line)
    return "\r\n".join(result) + "\r\n"


async def refusal_scenario(hub_factory: HubFactory) -> None:
    async with hub_factory() as hub:
        hub.hub.media.ice_timeout_s = 2.0
        busy = await hub.hub.store.create_case(UNIT)
        quiet = await hub.hub.store.create_case(UNIT)
        # Another room with media flowing all along.
        sockets = RoomSockets(hub)
        await sockets.join(busy, "pub", "specialist")
        await sockets.join(busy, "view", "specialist")
        publisher = MemberPeer("pub", publish=True, slots=1)
        viewer = MemberPeer("view", slots=1)
        probe = MemberPeer(
            "probe", publish=True, slots=1, audio_codecs=("audio/opus", "audio/PCMU")
        )
        silent = MemberPeer("silent", slots=1)
        before = set(asyncio.all_tasks())
        try:
            await publisher.connect(via_hub(hub, busy, hub.issuer.mint("pub", "specialist")))
            await viewer.connect(via_hub(hub, busy, hub.issuer.mint("view", "specialist")))
            await poll_until(lambda: len(viewer.seen("specialist:pub")) >= 5, 30, "busy room video")

            await sockets.join(quiet, "probe", "specialist")
            await sockets.join(quiet, "desk", "dispatch")
            await probe.pc.setLocalDescription(await probe.pc.createOffer())
            offer = probe.pc.localDescription.sdp
            token = hub.issuer.mint("probe", "specialist")
            expired = TokenIssuer(
                hub.hub.settings.token_secret, 10, clock=lambda: time.time() - 3600
            ).mint("probe", "specialist")
            cases = [
                (token, "v=0\r\nthis is not SDP\r\n", 400, "bad_offer"),
                (token, "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF\r\n", 400, "bad_offer"),
                (token, sdp_with_only(offer, "video", "H264"), 400, "unsupported_codec"),
                (token, sdp_with_only(offer, "audio", "PCMU"), 400, "unsupported_codec"),
                (expired, offer, 401, "invalid_token"),
                (hub.issuer.mint("stranger", "specialist"), offer, 403, "not_a_member"),
                (hub.issuer.mint("desk", "dispatch"), offer, 403, "forbidden"),
            ]
            for bearer, sdp, status, code in cases:
                response = await post_offer(hub, quiet, bearer, sdp)
                assert (response.status_code, response.json()["error"]["code"]) == (status, code)
                assert response.json()["error"]["message"]
            assert "H264" in (await post_offer(hub, quiet, token, cases[2][1])).text
            assert quiet not in hub.hub.media.rooms

            # A member that never completes ICE: its connection is closed after the timeout.
            await sockets.join(quiet, "silent", "specialist")
            await silent.pc.setLocalDescription(await silent.pc.createOffer())
            response = await post_offer(
                hub, quiet, hub.issuer.mint("silent", "specialist"), silent.pc.localDescription.sdp
            )
            assert response.status_code == 200  # answered, but the answer is never applied
            assert hub.hub.media.peer_connections == 3
            await poll_until(
                lambda: hub.hub.media.peer_connections == 2, 15, "the silent pc closed"
            )

            seen = len(viewer.seen("specialist:pub"))
            await poll_until(
                lambda: len(viewer.seen("specialist:pub")) >= seen + 10,
                20,
                "busy room still flowing",
            )
        finally:
            for peer in (publisher, viewer, probe, silent):
                await peer.close()
            await sockets.close()
        await hub.hub.media.close()
        assert hub.hub.media.peer_connections == 0 and hub.hub.media.tasks == 0
        await poll_until(
            lambda: not {t for t in asyncio.all_tasks() - before if "aiortc" in repr(t)},
            10,
            "aiortc tasks of closed peer connections ending",
        )


def test_bad_offers_are_refused_clearly_and_leak_nothing(hub_factory: HubFactory) -> None:
    asyncio.run(refusal_scenario(hub_factory))
