"""WebRTC helpers shared by the hub and the ambulance client: ICE host addresses.

aioice gathers every interface address except loopback. Tests and a single-machine demo must
stay on loopback (nothing else is reachable or allowed there), so both the hub and the client
can restrict ICE to given addresses, e.g. ``("127.0.0.1",)``. This replaces aioice's address
lookup for the whole process; an empty tuple restores it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import aioice.ice
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver

_ORIGINAL: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses


def restrict_ice_hosts(addresses: Sequence[str]) -> None:
    """Offer only ``addresses`` as ICE host candidates (all interfaces when empty)."""
    if not addresses:
        aioice.ice.get_host_addresses = _ORIGINAL  # type: ignore[assignment]
        return
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


PREFERRED_VIDEO_CODECS = ("video/VP8",)  # DESIGN §3.5: VP8 pinned for the passthrough SFU


def prefer_codecs(transceiver: RTCRtpTransceiver, kind: str) -> None:
    """Put VP8 (and its retransmission codec) first for video; leave audio (Opus) as is."""
    if kind != "video":
        return
    capabilities = RTCRtpSender.getCapabilities("video")
    if capabilities is None:
        return
    preferred = [c for c in capabilities.codecs if c.mimeType in PREFERRED_VIDEO_CODECS]
    rtx = [c for c in capabilities.codecs if c.mimeType == "video/rtx"]
    transceiver.setCodecPreferences(preferred + rtx)


def add_sendonly(pc: RTCPeerConnection, track: MediaStreamTrack) -> RTCRtpTransceiver:
    """Send ``track`` on its own send-only transceiver, VP8 first for video."""
    transceiver = pc.addTransceiver(track, direction="sendonly")
    prefer_codecs(transceiver, track.kind)
    return transceiver
