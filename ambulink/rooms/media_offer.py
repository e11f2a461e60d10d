"""A member's media offer: checked, answered with VP8/Opus pinned, and wired into its room.

The member offers up to ``MAX_SECTIONS_PER_KIND`` video and audio transceivers and a
``room-media`` data channel (docs/rooms.md, "Media"). The first video and the first audio section
that send are its camera and microphone; every other section is a slot the hub fills. The hub is
the answerer: it creates its transceivers before ``setRemoteDescription`` (aiortc matches them to
the offer's sections by kind, in order) with codec preferences that leave only VP8 (and its RTX)
for video and Opus for audio, so the offer's own codec order (H.264 first, say) cannot win.
A connection that is not up within ``MediaRouter.ice_timeout_s`` is closed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp

from ambulink.rooms.encoded import tap_receiver
from ambulink.rooms.forwarding import ForwardedTrack, PublishedTrack, forward_keyframe_requests
from ambulink.rooms.media_room import SLOTS_CHANNEL, MediaMember, MediaRouter, Slot, close_pc
from ambulink.rooms.model import NotAllowed, RoomError

logger = logging.getLogger(__name__)

MAX_SECTIONS_PER_KIND = 8  # a room holds 8 parties: own camera + 7 others at most
FORWARDED_CODECS = {"video": "video/VP8", "audio": "audio/opus"}
SENDING = ("sendrecv", "sendonly")


class BadOffer(RoomError):
    """The offer is not usable SDP, or not what docs/rooms.md asks for."""

    code = "bad_offer"


class UnsupportedCodec(RoomError):
    """A media section offers none of the codecs the hub forwards (VP8, Opus)."""

    code = "unsupported_codec"


@dataclass(frozen=True)
class Section:
    kind: str
    mid: str
    sends: bool
    publish: bool  # the member's camera or microphone


def plan_offer(sdp: str) -> list[Section]:
    """The offer's audio and video sections, checked; ``BadOffer``/``UnsupportedCodec`` else."""
    try:
        description = aiortc_sdp.SessionDescription.parse(sdp)
    except (ValueError, IndexError, KeyError, TypeError, AssertionError) as exc:
        # aiortc's parser asserts on some malformed lines (e.g. an m= line without formats)
        raise BadOffer(f"the offer is not valid SDP: {exc or 'malformed line'}") from exc
    sections: list[Section] = []
    counts = {"audio": 0, "video": 0}
    publishing: set[str] = set()
    for media in description.media:
        if media.kind not in counts:
            continue
        counts[media.kind] += 1
        if counts[media.kind] > MAX_SECTIONS_PER_KIND:
            raise BadOffer(f"the offer has more than {MAX_SECTIONS_PER_KIND} {media.kind} sections")
        mid = media.rtp.muxId
        if not mid:
            raise BadOffer(f"{media.kind} section {counts[media.kind]} has no a=mid")
        wanted = FORWARDED_CODECS[media.kind]
        offered = [c.mimeType for c in media.rtp.codecs]
        if not any(m.lower() == wanted.lower() for m in offered):
            raise UnsupportedCodec(
                f"{media.kind} section mid {mid} offers {', '.join(offered) or 'no codec'}; "
                f"the hub forwards {wanted.split('/')[1]} only (passthrough, no transcoding)"
            )
        sends = media.direction in SENDING
        publish = sends and media.kind not in publishing
        if publish:
            publishing.add(media.kind)
        sections.append(Section(media.kind, mid, sends, publish))
    if not sections:
        raise BadOffer("the offer has no audio or video section (or is not SDP)")
    return sections


def _pin_codec(transceiver: RTCRtpTransceiver, kind: str) -> None:
    capabilities = RTCRtpSender.getCapabilities(kind)
    wanted = FORWARDED_CODECS[kind].lower()
    codecs = [c for c in capabilities.codecs if c.mimeType.lower() == wanted]
    if kind == "video":
        codecs += [c for c in capabilities.codecs if c.mimeType.lower() == "video/rtx"]
    transceiver.setCodecPreferences(codecs)


async def answer_member_offer(
    router: MediaRouter,
    case_id: str,
    member_id: str,
    role: str,
    may_publish: bool,
    sdp: str,
) -> RTCSessionDescription:
    """Answer ``member_id``'s offer; its previous connection (if any) is closed first."""
    sections = plan_offer(sdp)
    if any(s.publish for s in sections) and not may_publish:
        raise NotAllowed(f"a {role} may not send video or audio; offer recvonly transceivers")
    await router.remove(case_id, member_id)
    # max-bundle: every pre-created transceiver shares the first one's transport. With aiortc's
    # default (balanced) the 2nd+ transceivers of the 2nd kind stay on a transport that the
    # BUNDLE step then stops, and their senders never start.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    member = MediaMember(member_id, role, pc)
    taps: list[tuple[Section, RTCRtpTransceiver]] = []
    try:
        for section in sections:
            if section.publish:
                transceiver = pc.addTransceiver(section.kind, direction="recvonly")
                taps.append((section, transceiver))
            else:
                track = ForwardedTrack(section.kind)
                transceiver = pc.addTransceiver(track, direction="sendonly")
                forward_keyframe_requests(transceiver.sender, track)
                member.slots.append(Slot(section.mid, section.kind, track))
            _pin_codec(transceiver, section.kind)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except (ValueError, TypeError, KeyError) as exc:
            raise BadOffer(f"the offer was refused: {exc}") from exc
        except Exception as exc:  # aiortc's InvalidStateError/OperationError for broken offers
            if type(exc).__module__.startswith("aiortc"):
                raise BadOffer(f"the offer was refused: {exc or type(exc).__name__}") from exc
            raise
        for section, transceiver in taps:
            published = PublishedTrack(member_id, section.kind)
            tap = tap_receiver(transceiver.receiver, published.on_frame)
            published.send_keyframe_request = tap.request_keyframe
            member.published[section.kind] = published
        await pc.setLocalDescription(await pc.createAnswer())
    except BaseException:
        for slot in member.slots:
            slot.track.stop()
        await close_pc(pc)
        raise
    _watch_connection(router, case_id, member, router.ice_timeout_s)
    router.room(case_id).add(member)
    logger.info(
        "media of %s in case %s: %d slots, publishing %s",
        member_id,
        case_id,
        len(member.slots),
        ", ".join(member.published) or "nothing",
    )
    return pc.localDescription


def _watch_connection(
    router: MediaRouter, case_id: str, member: MediaMember, ice_timeout_s: float
) -> None:
    pc = member.pc
    assert pc is not None
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState == "connected":
            connected.set()
        elif pc.connectionState in ("failed", "closed"):
            router.spawn(router.remove(case_id, member.member_id, pc))

    @pc.on("datachannel")
    def on_datachannel(channel: RTCDataChannel) -> None:
        if channel.label != SLOTS_CHANNEL:
            logger.info("ignoring data channel %r of %s", channel.label, member.member_id)
            return
        member.channel = channel
        room = router.rooms.get(case_id)
        if room is not None:
            room.tell(member.member_id)

    async def expire() -> None:
        try:
            async with asyncio.timeout(ice_timeout_s):
                await connected.wait()
        except TimeoutError:
            logger.warning(
                "media of %s in case %s not connected within %.0f s; closing",
                member.member_id,
                case_id,
                ice_timeout_s,
            )
            await router.remove(case_id, member.member_id, pc)

    task = router.spawn(expire())
    member.tasks.add(task)
    task.add_done_callback(member.tasks.discard)
