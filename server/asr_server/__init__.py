"""WebSocket gateway in front of Riva ASR: the JSON contract, the session protocol and the
asyncio server that relays browser or app audio to Riva.

The contract is documented in ``docs/websocket-api.md``; its JSON Schema is generated
from :mod:`asr_server.messages`.
"""

from __future__ import annotations
