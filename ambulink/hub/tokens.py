"""Short-lived signed access tokens (JWT, HS256) with role, unit and room claims (DESIGN §3.8).

Identities, units and rooms are opaque ids, never patient data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import jwt

from ambulink.errors import AmbulinkError, ConfigError

Role = Literal["crew", "specialist", "dispatch", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
MAX_TTL_S = 600
MAX_SESSION_S = 12 * 3600  # a shift: refreshed tokens stop after this long since sign-in
ALGORITHM = "HS256"


class InvalidToken(AmbulinkError):
    """A missing, expired, forged or malformed token."""

    code = "invalid_token"


class Forbidden(AmbulinkError):
    """A valid token whose claims do not allow the action."""

    code = "forbidden"


@dataclass(frozen=True)
class Grant:
    """What a token allows: who (``sub``), as what ``role``, for which unit and room."""

    sub: str
    role: Role
    unit: str | None = None
    room: str | None = None
    expires_at: float = 0.0
    signed_in_at: float = 0.0  # when the holder first signed in; refreshes keep it

    def require(self, *roles: Role, unit: str | None = None) -> None:
        """Raise ``Forbidden`` unless the grant has one of ``roles`` (and ``unit``, if given)."""
        if self.role == "admin":
            return
        if roles and self.role not in roles:
            raise Forbidden(f"role {self.role} may not do this; needs {' or '.join(roles)}")
        if unit is not None and self.unit != unit:
            raise Forbidden(f"this token is for unit {self.unit}, not {unit}")


class TokenIssuer:
    """Mints and checks tokens with one secret. ``clock`` returns Unix seconds."""

    def __init__(
        self, secret: str, ttl_s: int = MAX_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        if not 10 <= ttl_s <= MAX_TTL_S:
            raise ConfigError(f"token lifetime must be 10-{MAX_TTL_S} s, got {ttl_s}")
        self._secret = secret
        self._ttl_s = ttl_s
        self._clock = clock

    def mint(
        self,
        sub: str,
        role: str,
        *,
        unit: str | None = None,
        room: str | None = None,
        signed_in_at: float | None = None,
    ) -> str:
        if role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
        now = int(self._clock())
        claims: dict[str, object] = {"sub": sub, "role": role, "iat": now, "exp": now + self._ttl_s}
        claims["auth_time"] = now if signed_in_at is None else int(signed_in_at)
        if unit is not None:
            claims["unit"] = unit
        if room is not None:
            claims["room"] = room
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str | None) -> Grant:
        if not token:
            raise InvalidToken("a token is required (Authorization: Bearer <token>)")
        try:
            # Expiry is checked below against our clock, so tests can drive time.
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={
                    "require": ["exp", "iat", "sub", "role"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token is not valid: {exc}") from exc
        if self._clock() >= claims["exp"]:
            raise InvalidToken("the token has expired; get a new one")
        if claims["exp"] - claims["iat"] > MAX_TTL_S:
            raise InvalidToken(f"the token lives longer than {MAX_TTL_S} s")
        role = claims["role"]
        if role not in ROLES:
            raise InvalidToken(f"unknown role {role!r} in token")
        return Grant(
            sub=str(claims["sub"]),
            role=role,
            unit=claims.get("unit"),
            room=claims.get("room"),
            expires_at=float(claims["exp"]),
            signed_in_at=float(claims.get("auth_time", claims["iat"])),
        )

    def refresh(self, grant: Grant) -> str:
        """A fresh token for a still-valid ``grant``, same claims, so a page open for a whole
        consult keeps working; refused once ``MAX_SESSION_S`` have passed since sign-in."""
        if self._clock() - grant.signed_in_at >= MAX_SESSION_S:
            raise InvalidToken(f"signed in more than {MAX_SESSION_S // 3600} h ago; sign in again")
        return self.mint(
            grant.sub,
            grant.role,
            unit=grant.unit,
            room=grant.room,
            signed_in_at=grant.signed_in_at,
        )
