"""WebRTC signalling: ``POST /v1/webrtc/offer`` answers an SDP offer, ``DELETE`` of the
session's resource hangs up.

The offer is JSON ``{"sdp": ..., "type": "offer"}`` (answered with JSON ``{"sdp": ...,
"type": "answer"}``, 200) or, as WHIP does (RFC 9725), an ``application/sdp`` body
(answered with ``application/sdp``, 201). Both carry ``Location:
/v1/webrtc/sessions/{session_id}``. The answer is complete (no trickle ICE): its host
candidates, and the relayed or server-reflexive ones of ``ASR_SERVER_ICE_SERVERS``.

Before a peer connection exists, the request passes what a WebSocket handshake passes:
the Origin allow-list (403), the API key or browser token (``?api_key=``, ``?token=`` or
``Authorization: Bearer``; 401, or 429 during the failure back-off), the session's options
in the query string (400 ``invalid_config``) and the admission's limits (503
``too_many_sessions``). The offer must have one audio track and a data channel (400).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any, Literal
from urllib.parse import parse_qs

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from asr.contract import ErrorCode
from asr.logs import ContextAdapter

from ..credentials import allowed_origin, check_credentials
from ..protocol import config_from_query
from ..settings import IceServer
from ..state import Gateway, owner_of
from .metrics import INTERFACE, WebRtcMetrics
from .peer import WebRtcPeer, host_addresses
from .session import audio_format_problem

__all__ = ["OFFER_PATH", "SESSION_PATH", "SessionDescription", "WebRtcPeers", "router_for"]

OFFER_PATH = "/v1/webrtc/offer"
"""Where offers are posted."""

SESSION_PATH = "/v1/webrtc/sessions/{session_id}"
"""A session's resource (the answer's ``Location``): ``DELETE`` hangs up."""

MAX_OFFER_BYTES = 64 * 1024
"""An offer of one audio track and a data channel is 2-8 KB."""

logger = logging.getLogger("asr.server.webrtc")


class SessionDescription(BaseModel):
    """``RTCSessionDescriptionInit``: an offer posted as JSON, or the answer to it."""

    sdp: str
    type: Literal["offer", "answer"]


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> Response:
        return JSONResponse(
            {"error": self.message, "code": self.code},
            status_code=self.status,
            headers=self.headers,
        )


def _refused(status: int, code: ErrorCode | str, message: str, **headers: str) -> _Refused:
    return _Refused(status, str(getattr(code, "value", code)), message, headers)


def ice_configuration(servers: tuple[IceServer, ...]) -> RTCConfiguration:
    """aiortc's configuration for ``servers``; none means host candidates only (aiortc's
    own default would be a public STUN server)."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=list(s.urls) if isinstance(s.urls, tuple) else s.urls,
                username=s.username,
                credential=s.credential.get_secret_value() if s.credential else None,
            )
            for s in servers
        ]
    )


class WebRtcPeers:
    """The WebRTC peers of one gateway: signalling and the peers' tasks.

    Args:
        gw: The gateway's shared parts.
    """

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.metrics = WebRtcMetrics(gw.metrics)
        self.peers: dict[str, WebRtcPeer] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def offer(self, request: Request) -> Response:
        try:
            return await self._offer(request)
        except _Refused as refused:
            return refused.response()

    async def hang_up(self, request: Request, session_id: str) -> Response:
        try:
            self._check_client(request)
        except _Refused as refused:
            return refused.response()
        peer = self.peers.get(session_id)
        if peer is None:
            return JSONResponse({"error": "no such session"}, status_code=404)
        peer.hang_up()
        return Response(status_code=200)

    # -- steps ------------------------------------------------------------------------

    def _check_client(self, request: Request) -> tuple[dict[str, list[str]], str]:
        """Origin and credentials, as the WebSocket checks them; the parsed query and the
        session's owner."""
        if not allowed_origin(request, self.gw):
            origin = request.headers.get("origin")
            raise _refused(403, "forbidden_origin", f"origin {origin} is not allowed")
        query = parse_qs(request.url.query, keep_blank_values=True)
        decision = check_credentials(request, self.gw)
        if not decision.allowed:
            assert decision.refusal is not None
            if decision.retry_after is not None:
                retry = str(max(1, round(decision.retry_after)))
                raise _refused(
                    429, ErrorCode.UNAUTHORIZED, decision.refusal, **{"retry-after": retry}
                )
            raise _refused(
                401, ErrorCode.UNAUTHORIZED, decision.refusal, **{"www-authenticate": "Bearer"}
            )
        return query, owner_of(decision.key_id)

    async def _read_offer(self, request: Request) -> tuple[str, bool]:
        """The offer's SDP and whether it came as ``application/sdp`` (WHIP)."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("application/sdp", "application/json"):
            raise _refused(
                415,
                "unsupported_media_type",
                "post the offer as application/json or application/sdp",
            )
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_OFFER_BYTES:
                raise _refused(
                    413, "offer_too_large", f"an offer is at most {MAX_OFFER_BYTES} bytes"
                )
        if kind == "application/sdp":
            return body.decode("utf-8", "replace"), True
        try:
            description = SessionDescription.model_validate_json(body)
        except ValidationError as exc:
            raise _refused(
                400, "invalid_offer", f"not an RTCSessionDescriptionInit: {exc.errors()[0]['msg']}"
            ) from None
        if description.type != "offer":
            raise _refused(400, "invalid_offer", f"expected an offer, not an {description.type}")
        return description.sdp, False

    async def _offer(self, request: Request) -> Response:
        gw = self.gw
        query, owner = self._check_client(request)
        try:
            config_from_query(query)
            single = {k: v[0] for k, v in query.items() if len(v) == 1}
            if (problem := audio_format_problem(single)) is not None:
                raise ValueError(problem)
        except ValueError as exc:
            raise _refused(400, ErrorCode.INVALID_CONFIG, f"bad query string: {exc}") from None
        sdp, whip = await self._read_offer(request)
        loop = asyncio.get_running_loop()
        if (refusal := gw.admission.refusal(loop.time())) is not None:
            logger.warning("refused: %s", refusal.log)
            raise _refused(503, refusal.code, refusal.message, **{"retry-after": "1"})
        session_id = secrets.token_hex(8)
        log = ContextAdapter(logger, {"session_id": session_id})
        pc = RTCPeerConnection(ice_configuration(gw.settings.ice_servers))
        self.metrics.peers.inc()
        peer = WebRtcPeer(
            gw, self.metrics, pc, session_id=session_id, query=query, owner=owner, log=log
        )
        # Held from here, with no await since the refusal check: concurrent offers cannot
        # pass the limit together.
        hold = contextlib.ExitStack()
        hold.enter_context(gw.admission.hold(peer, INTERFACE))
        try:
            answer = await self._negotiate(pc, sdp)
        except BaseException:
            await pc.close()
            self.metrics.peers.dec()
            hold.close()
            raise
        self.peers[session_id] = peer

        def release() -> None:
            self.peers.pop(session_id, None)
            hold.close()

        task = asyncio.create_task(peer.run(release), name=f"webrtc-{session_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        client = request.client
        log.info("answered an offer from %s", (client.host, client.port) if client else None)
        location = SESSION_PATH.format(session_id=session_id)
        if whip:
            return Response(
                answer,
                status_code=201,
                media_type="application/sdp",
                headers={"location": location},
            )
        return JSONResponse(
            SessionDescription(sdp=answer, type="answer").model_dump(),
            headers={"location": location},
        )

    async def _negotiate(self, pc: RTCPeerConnection, sdp: str) -> str:
        """The answer's SDP, its candidates gathered."""
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc's parser raises whatever a bad line makes it
            raise _refused(
                400, "invalid_offer", f"not a valid SDP offer: {exc or type(exc).__name__}"
            ) from None
        kinds = [t.kind for t in pc.getTransceivers()]
        if kinds != ["audio"] or pc.sctp is None:
            raise _refused(
                400,
                "invalid_offer",
                "the offer must have one audio track and a data channel "
                f"(it has {kinds.count('audio')} audio, {kinds.count('video')} video, "
                f"{'a' if pc.sctp is not None else 'no'} data channel)",
            )
        settings = self.gw.settings
        try:
            async with asyncio.timeout(settings.webrtc.connect_timeout):
                with host_addresses(settings.webrtc.host_addresses):
                    await pc.setLocalDescription(await pc.createAnswer())
        except TimeoutError:
            raise _refused(
                503,
                "ice_gathering_timeout",
                "ICE candidates could not be gathered in time",
                **{"retry-after": "1"},
            ) from None
        description = pc.localDescription
        return str(description.sdp)


def router_for(gw: Gateway) -> APIRouter:
    """The signalling routes of ``gw`` (its WebRTC metrics are registered now)."""
    peers = WebRtcPeers(gw)
    router = APIRouter(tags=["webrtc"])
    offer_body: dict[str, Any] = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": SessionDescription.model_json_schema()},
                "application/sdp": {"schema": {"type": "string"}},
            },
        }
    }

    @router.post(
        OFFER_PATH,
        summary="Answer a WebRTC offer: the session's audio track and its data channel",
        response_model=SessionDescription,
        responses={
            201: {"content": {"application/sdp": {}}, "description": "WHIP: the answer"},
            400: {"description": "Not an offer of one audio track and a data channel"},
            401: {"description": "No API key or token, or a wrong one"},
            403: {"description": "The Origin is not allowed"},
            503: {"description": "The gateway or its backend is at its session limit"},
        },
        openapi_extra=offer_body,
    )
    async def offer(request: Request) -> Response:
        """The answer to an SDP offer (JSON, or WHIP's ``application/sdp``); its
        ``Location`` is the session's resource."""
        return await peers.offer(request)

    @router.delete(SESSION_PATH, summary="Hang up a WebRTC session (WHIP)")
    async def hang_up(request: Request, session_id: str) -> Response:
        """End the session as a client closing its connection would."""
        return await peers.hang_up(request, session_id)

    return router
