"""The one place that knows HTTP statuses: every ``AmbulinkError`` becomes JSON with a code."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ambulink.errors import AmbulinkError, ConfigError, ProtocolError, RecordNotFound, SignalError
from ambulink.hub.bus import BusUnavailable
from ambulink.hub.fleet import UnknownHospital, UnknownUnit
from ambulink.hub.store import (
    CaseConflict,
    StorageUnavailable,
    StoreRejected,
    StreamConflict,
    UnknownCase,
    UnknownStream,
)
from ambulink.hub.tokens import Forbidden, InvalidToken
from ambulink.rooms.model import NotAllowed, NotAMember, RoomError, RoomFull

HTTP_STATUS: dict[type[AmbulinkError], int] = {
    InvalidToken: 401,
    Forbidden: 403,
    RecordNotFound: 404,
    ProtocolError: 400,
    SignalError: 400,
    ConfigError: 400,
    StoreRejected: 400,
    UnknownCase: 404,
    UnknownStream: 404,
    UnknownUnit: 404,
    UnknownHospital: 404,
    CaseConflict: 409,
    StreamConflict: 409,
    StorageUnavailable: 503,
    BusUnavailable: 503,
    RoomFull: 409,
    NotAMember: 403,
    NotAllowed: 403,
    RoomError: 400,  # e.g. bad_offer, unsupported_codec (ambulink.rooms.media_offer)
}


async def error_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AmbulinkError)
    status = next((s for cls, s in HTTP_STATUS.items() if isinstance(exc, cls)), 500)
    return JSONResponse({"error": {"code": exc.code, "message": str(exc)}}, status_code=status)


async def invalid_request_response(request: Request, exc: Exception) -> JSONResponse:
    """A request body or query FastAPI could not validate, in the same shape as every other
    error: one message naming each bad field, e.g. ``name: String should match pattern ...``."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        what = str(error.get("msg", "invalid"))
        problems.append(f"{where}: {what}" if where else what)
    message = "; ".join(problems) or "the request is not valid"
    return JSONResponse({"error": {"code": "invalid_request", "message": message}}, 422)
