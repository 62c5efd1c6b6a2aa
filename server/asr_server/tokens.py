"""Short-lived signed tokens that let a browser open a session without holding an API key.

A backend that holds an API key asks ``GET /v1/tokens`` (``Authorization: Bearer KEY``) for
a token and hands it to the page, which connects with ``?token=...``. A token is

::

    v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, "v1." + claims part))>

with the claims ``iat``/``exp`` (Unix seconds), ``jti`` (random, for logs) and ``kid`` (the
first 8 hex digits of the SHA-256 of the API key that asked, so a leaked token can be
traced to a key without the key itself appearing anywhere).

Why the standard library rather than PyJWT: the gateway both issues and checks the tokens,
so nothing needs JWT interoperability, and a fixed format with one algorithm has no
``alg`` header to negotiate (the "alg: none" / algorithm-confusion class of JWT bugs cannot
happen). It is twenty lines of :mod:`hmac` with a constant-time comparison, and no new
dependency. Pure functions; the clock is passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from enum import Enum

__all__ = ["TokenClaims", "TokenError", "TokenProblem", "issue_token", "key_id", "verify_token"]

_VERSION = "v1"
# A token is a few hundred bytes; refuse anything far larger before decoding it.
_MAX_TOKEN_CHARS = 1024


class TokenProblem(Enum):
    """Why a token was refused (said to the client; never includes the token)."""

    MALFORMED = "token is malformed"
    BAD_SIGNATURE = "token signature is invalid"
    EXPIRED = "token has expired"


class TokenError(ValueError):
    """A token that is not accepted.

    Attributes:
        problem: Why.
    """

    def __init__(self, problem: TokenProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid token says.

    Attributes:
        issued_at: Unix time of issue.
        expires_at: Unix time after which the token is refused.
        token_id: Random id of the token, safe to log.
        key_id: Fingerprint of the API key the token was issued to, safe to log.
    """

    issued_at: int
    expires_at: int
    token_id: str
    key_id: str


def key_id(api_key: str) -> str:
    """A short fingerprint of ``api_key`` that can be logged without revealing it."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:8]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signed_part: str) -> str:
    return _b64(hmac.new(secret, signed_part.encode("ascii"), hashlib.sha256).digest())


def issue_token(secret: bytes, *, api_key: str, now: float, ttl: float) -> tuple[str, TokenClaims]:
    """A new token valid for ``ttl`` seconds from ``now``.

    Args:
        secret: The HMAC key.
        api_key: The API key the token is issued to (only its fingerprint goes in).
        now: Unix time.
        ttl: Lifetime in seconds.

    Returns:
        The token and its claims.
    """
    claims = TokenClaims(
        issued_at=int(now),
        expires_at=int(now + ttl),
        token_id=secrets.token_hex(8),
        key_id=key_id(api_key),
    )
    payload = {
        "iat": claims.issued_at,
        "exp": claims.expires_at,
        "jti": claims.token_id,
        "kid": claims.key_id,
    }
    signed_part = f"{_VERSION}.{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
    return f"{signed_part}.{_sign(secret, signed_part)}", claims


def verify_token(secret: bytes, token: str, *, now: float) -> TokenClaims:
    """The claims of ``token`` if it is well formed, signed with ``secret`` and not expired.

    Raises:
        TokenError: Why it is refused. The signature is checked (in constant time) before
            the claims are parsed, so nothing unsigned is ever interpreted.
    """
    if len(token) > _MAX_TOKEN_CHARS or not token.isascii():
        raise TokenError(TokenProblem.MALFORMED)
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _VERSION:
        raise TokenError(TokenProblem.MALFORMED)
    signed_part = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(secret, signed_part), parts[2]):
        raise TokenError(TokenProblem.BAD_SIGNATURE)
    try:
        payload = json.loads(_unb64(parts[1]))
        claims = TokenClaims(
            issued_at=int(payload["iat"]),
            expires_at=int(payload["exp"]),
            token_id=str(payload["jti"]),
            key_id=str(payload["kid"]),
        )
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise TokenError(TokenProblem.MALFORMED) from exc
    if now >= claims.expires_at:
        raise TokenError(TokenProblem.EXPIRED)
    return claims
