"""``POST /api/rooms/{case_id}/media/offer``: a room member's one peer connection (docs/rooms.md).

The member must have joined the room (its socket); sending media needs ``publish``. The hub
answers with VP8/Opus pinned and forwards media without decoding (``ambulink.rooms``). Refusals
are JSON errors with a code: 400 ``bad_offer``/``unsupported_codec``, 401 ``invalid_token``,
403 ``forbidden``/``not_a_member``, 409 ``room_full``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field

from ambulink.hub.tokens import Grant, InvalidToken
from ambulink.rooms.media_offer import answer_member_offer, plan_offer
from ambulink.rooms.model import NotAllowed

router = APIRouter()


class MediaOffer(BaseModel):
    sdp: str = Field(min_length=1, max_length=65536)
    type: str = Field(pattern="^offer$")


def _grant(hub: Any, authorization: str | None) -> Grant:
    if authorization is None or not authorization.startswith("Bearer "):
        raise InvalidToken("send Authorization: Bearer <token>")
    grant: Grant = hub.tokens.verify(authorization.removeprefix("Bearer ").strip())
    return grant


@router.post("/api/rooms/{case_id}/media/offer")
async def media_offer(
    case_id: str,
    offer: MediaOffer,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, str]:
    """The member's offer in, the hub's answer out; a new offer replaces the member's previous
    peer connection."""
    hub = request.state.hub
    grant = _grant(hub, authorization)
    member_id = f"{grant.role}:{grant.sub}"
    hub.media.watch(hub.rooms)
    try:
        member = hub.rooms.get(case_id).require(member_id, "view")
        sends = any(section.publish for section in plan_offer(offer.sdp))
        if sends:
            hub.rooms.get(case_id).require(member_id, "publish")
    except NotAllowed:
        await hub.audit.append(member_id, "denied", case_id, "forbidden")
        raise
    answer = await answer_member_offer(
        hub.media, case_id, member_id, member.role, member.can("publish"), offer.sdp
    )
    await hub.audit.append(member_id, "media", case_id)
    return {"sdp": answer.sdp, "type": answer.type}
