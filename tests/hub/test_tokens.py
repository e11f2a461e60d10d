import jwt
import pytest

from ambulink.errors import ConfigError
from ambulink.hub.tokens import Forbidden, Grant, InvalidToken, TokenIssuer


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_token_carries_role_unit_and_room_and_expires() -> None:
    clock = Clock(1_800_000_000.0)
    issuer = TokenIssuer("s" * 32, ttl_s=600, clock=clock)
    grant = issuer.verify(issuer.mint("u-1", "crew", unit="amb-7", room="r-3"))
    assert (grant.sub, grant.role, grant.unit, grant.room) == ("u-1", "crew", "amb-7", "r-3")
    clock.now += 599
    issuer.verify(issuer.mint("u-1", "crew"))
    old = issuer.mint("u-1", "crew")
    clock.now += 600
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(old)


def test_forged_malformed_and_missing_tokens_are_refused() -> None:
    issuer = TokenIssuer("s" * 32)
    other = TokenIssuer("t" * 32)
    with pytest.raises(InvalidToken, match="not valid"):
        issuer.verify(other.mint("u", "admin"))
    with pytest.raises(InvalidToken, match="not valid"):
        issuer.verify("not-a-token")
    with pytest.raises(InvalidToken, match="required"):
        issuer.verify(None)
    long_lived = jwt.encode(
        {"sub": "u", "role": "admin", "iat": 0, "exp": 10**10}, "s" * 32, algorithm="HS256"
    )
    with pytest.raises(InvalidToken, match="longer than 600"):
        issuer.verify(long_lived)


def test_roles_and_units_are_checked() -> None:
    issuer = TokenIssuer("s" * 32)
    crew = issuer.verify(issuer.mint("u", "crew", unit="amb-1"))
    crew.require("crew", unit="amb-1")
    with pytest.raises(Forbidden, match="needs dispatch"):
        crew.require("dispatch")
    with pytest.raises(Forbidden, match="not amb-2"):
        crew.require("crew", unit="amb-2")
    with pytest.raises(ConfigError, match="role must be one of"):
        issuer.mint("u", "patient")
    with pytest.raises(ConfigError, match="lifetime"):
        TokenIssuer("s" * 32, ttl_s=3600)


def test_a_refreshed_token_keeps_its_claims_until_the_session_ends() -> None:
    clock = Clock(1_800_000_000.0)
    issuer = TokenIssuer("s" * 32, ttl_s=600, clock=clock)
    token = issuer.mint("u-1", "crew", unit="amb-7")
    for _ in range(71):  # 71 renewals, 9 min apart: 10 h 39 min after sign-in
        clock.now += 540
        grant = issuer.verify(issuer.refresh(issuer.verify(token)))
        token = issuer.refresh(grant)
    grant = issuer.verify(token)
    assert (grant.sub, grant.role, grant.unit) == ("u-1", "crew", "amb-7")
    assert grant.signed_in_at == 1_800_000_000.0
    clock.now = 1_800_000_000.0 + 12 * 3600
    with pytest.raises(InvalidToken, match="sign in again"):
        issuer.refresh(Grant("u-1", "crew", "amb-7", signed_in_at=1_800_000_000.0))
