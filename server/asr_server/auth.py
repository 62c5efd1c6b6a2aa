"""Who may open a session: API keys, signed tokens, and a back-off for guessing.

Pure functions and one small state machine with the clock passed in; the I/O layer hands
in what the request carried and the client's address, and says the outcome to the client.

- A client offers **one** credential: an API key (``?api_key=`` or
  ``Authorization: Bearer``) or a token (``?token=``). Several keys in one request would
  let a client try hundreds of guesses per connection.
- A token counts only while the key it was issued to is still configured: removing a key
  revokes its tokens.
- An address that fails too often within a window is refused for a while without its
  credential being checked (:class:`FailureBackoff`).

:class:`Authenticator` puts the three together for every route of the gateway (the own
WebSocket contract, token issuing, and whatever route is added next): the configured keys,
the token secret and one back-off shared by all of them, so failures on one route count on
the others too.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from .tokens import TokenClaims, TokenError, issue_token, key_id, verify_token

__all__ = [
    "Authenticator",
    "Decision",
    "FailureBackoff",
    "IssuedToken",
    "authenticate",
    "bearer",
    "matching_key",
    "origin_allowed",
    "refusal_status",
]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :func:`authenticate`.

    Attributes:
        refusal: Why the client may not open a session (said to it); ``None`` if it may.
        key_id: Fingerprint of the key the client authenticated with, safe to log.
        token_id: The token's id when a token was used.
        retry_after: Seconds the address is still refused for, when the refusal is the
            back-off's (its credential was not even checked); ``None`` otherwise.
    """

    refusal: str | None
    key_id: str | None = None
    token_id: str | None = None
    retry_after: float | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def bearer(authorization: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer X`` header value, if it is one."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def origin_allowed(allowed_origins: Sequence[str], origin: str | None) -> bool:
    """Whether a request with this ``Origin`` header may go on.

    An empty allow-list lets every origin in. A request without ``Origin`` is let through
    too: servers and apps send none, and API keys guard them; the allow-list keeps other
    web pages' scripts out of a browser's credentials.
    """
    return not allowed_origins or origin is None or origin in allowed_origins


def refusal_status(decision: Decision) -> tuple[int, dict[str, str]]:
    """The HTTP status and headers that refuse a request ``decision`` did not allow.

    429 with ``Retry-After`` (whole seconds, at least 1) when the back-off refused the
    address without checking its credential; otherwise 401 with ``WWW-Authenticate``
    (RFC 6750 section 3), which tells a client a key is what it lacks.
    """
    if decision.retry_after is not None:
        return 429, {"Retry-After": str(max(1, round(decision.retry_after)))}
    return 401, {"WWW-Authenticate": 'Bearer realm="asr"'}


def matching_key(offered: str, api_keys: Sequence[str]) -> str | None:
    """The configured key equal to ``offered``, compared in constant time for each key."""
    found = None
    for key in api_keys:
        if hmac.compare_digest(offered.encode(), key.encode()):
            found = key
    return found


def authenticate(
    api_keys: Sequence[str],
    token_secret: bytes,
    *,
    query_keys: Sequence[str],
    query_tokens: Sequence[str],
    authorization: str | None,
    now: float,
) -> Decision:
    """Check the credentials of one request.

    Args:
        api_keys: The configured keys; none means the server is open to all.
        token_secret: Signs and verifies browser tokens.
        query_keys: Every ``api_key`` value of the query string.
        query_tokens: Every ``token`` value of the query string.
        authorization: The ``Authorization`` header, if any.
        now: Wall-clock time (tokens carry an expiry in epoch seconds).
    """
    if not api_keys:
        return Decision(None)
    header = bearer(authorization)
    offered = [*query_keys, *query_tokens, *([header] if header else [])]
    if not offered:
        return Decision("missing or invalid API key")
    if len(offered) > 1:
        return Decision("give one credential: one API key or one token")
    if query_tokens:
        return _token(api_keys, token_secret, query_tokens[0], now)
    key = matching_key(offered[0], api_keys)
    if key is None:
        return Decision("missing or invalid API key")
    return Decision(None, key_id=key_id(key))


def _token(api_keys: Sequence[str], secret: bytes, token: str, now: float) -> Decision:
    try:
        claims: TokenClaims = verify_token(secret, token, now=now)
    except TokenError as exc:
        return Decision(str(exc))
    if claims.key_id not in {key_id(key) for key in api_keys}:
        # Signed by us, but for a key that has since been removed: revoked with it.
        return Decision("the token's API key is no longer accepted", key_id=claims.key_id)
    return Decision(None, key_id=claims.key_id, token_id=claims.token_id)


class FailureBackoff:
    """Refuses an address for ``penalty`` seconds after ``max_failures`` failed attempts
    within ``window`` seconds.

    Memory is bounded: at most ``max_addresses`` addresses are remembered, the least
    recently failed forgotten first. A success clears the address.

    Args:
        max_failures: Failures that trigger the penalty.
        window: Seconds over which failures are counted.
        penalty: Seconds an address is refused once it tripped.
        max_addresses: Addresses remembered at once.
    """

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window: float = 60.0,
        penalty: float = 30.0,
        max_addresses: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.penalty = penalty
        self.max_addresses = max_addresses
        # address -> (failures in the current window, window start, refused until)
        self._state: OrderedDict[str, tuple[int, float, float]] = OrderedDict()

    def blocked_for(self, address: str, now: float) -> float:
        """Seconds ``address`` is still refused for; 0 when it may try."""
        state = self._state.get(address)
        if state is None:
            return 0.0
        return max(0.0, state[2] - now)

    def failed(self, address: str, now: float) -> None:
        """``address`` offered a wrong credential at ``now``."""
        count, start, until = self._state.pop(address, (0, now, 0.0))
        if now - start > self.window:
            count, start = 0, now
        count += 1
        if count >= self.max_failures:
            count, start, until = 0, now, now + self.penalty
        self._state[address] = (count, start, until)
        while len(self._state) > self.max_addresses:
            self._state.popitem(last=False)

    def succeeded(self, address: str) -> None:
        """``address`` authenticated: its failures are forgotten."""
        self._state.pop(address, None)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """The outcome of :meth:`Authenticator.issue`: a token, or why none was issued.

    Attributes:
        decision: Whether the API key was accepted (a refusal says why not).
        token: The signed token, when issued.
        claims: Its claims, when issued.
    """

    decision: Decision
    token: str | None = None
    claims: TokenClaims | None = None


class Authenticator:
    """The gateway's credentials and its back-off, shared by every route; no I/O.

    Args:
        api_keys: The configured keys; none means every client is let in.
        token_secret: Signs and verifies browser tokens.
        backoff: Failures per address; a default :class:`FailureBackoff` when omitted.
    """

    def __init__(
        self,
        api_keys: Sequence[str],
        token_secret: bytes,
        backoff: FailureBackoff | None = None,
    ) -> None:
        self.api_keys = tuple(api_keys)
        self.token_secret = token_secret
        self.backoff = backoff if backoff is not None else FailureBackoff()

    @property
    def enabled(self) -> bool:
        """Whether credentials are checked at all (API keys are configured)."""
        return bool(self.api_keys)

    def _blocked(self, address: str, now: float) -> Decision | None:
        if wait := self.backoff.blocked_for(address, now):
            return Decision(
                f"too many failed attempts; try again in {wait:.0f} s", retry_after=wait
            )
        return None

    def check(
        self,
        address: str,
        *,
        query_keys: Sequence[str] = (),
        query_tokens: Sequence[str] = (),
        authorization: str | None = None,
        now: float,
        wall: float,
    ) -> Decision:
        """Whether a request from ``address`` carrying these credentials may go on.

        Args:
            address: The client's IP address (the unit of the back-off).
            query_keys: Every ``api_key`` value of the query string.
            query_tokens: Every ``token`` value of the query string.
            authorization: The ``Authorization`` header, if any.
            now: Monotonic clock reading (the back-off's clock).
            wall: Unix time (tokens expire in epoch seconds).
        """
        if not self.enabled:
            return Decision(None)
        if (blocked := self._blocked(address, now)) is not None:
            return blocked
        decision = authenticate(
            self.api_keys,
            self.token_secret,
            query_keys=query_keys,
            query_tokens=query_tokens,
            authorization=authorization,
            now=wall,
        )
        if decision.allowed:
            self.backoff.succeeded(address)
        else:
            self.backoff.failed(address, now)
        return decision

    def issue(
        self, address: str, authorization: str | None, *, now: float, wall: float, ttl: float
    ) -> IssuedToken:
        """A browser token for the API key in ``authorization`` (``Bearer KEY``; never a
        token, never from the URL).

        Args:
            address: The client's IP address.
            authorization: The request's ``Authorization`` header.
            now: Monotonic clock reading.
            wall: Unix time, the token's issue time.
            ttl: The token's lifetime in seconds.
        """
        if (blocked := self._blocked(address, now)) is not None:
            return IssuedToken(blocked)
        offered = bearer(authorization)
        key = matching_key(offered, self.api_keys) if offered else None
        if key is None:
            self.backoff.failed(address, now)
            return IssuedToken(Decision("send an API key as 'Authorization: Bearer KEY'"))
        token, claims = issue_token(self.token_secret, api_key=key, now=wall, ttl=ttl)
        return IssuedToken(Decision(None, key_id=claims.key_id), token, claims)
