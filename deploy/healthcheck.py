"""Container health check: exit 0 if GET URL answers 2xx within the timeout, else 1.

Used by the Docker HEALTHCHECK of the gateway image (``/healthz`` on the gateway's own
HTTPS port). The gateway's certificate is self-signed or issued for a public name, never
for 127.0.0.1, so the check skips certificate verification: it talks to its own loopback.
Standard library only, so it runs in the slim image without extra packages.
"""

from __future__ import annotations

import ssl
import sys
import urllib.request


def check(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url`` answers a 2xx status within ``timeout`` seconds."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return 200 <= response.status < 300
    except OSError:  # URLError, timeouts and TLS errors are all OSError
        return False


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "https://127.0.0.1:8443/healthz"
    sys.exit(0 if check(target) else 1)
