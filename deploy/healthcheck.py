"""The image's HEALTHCHECK: ``GET /health`` on this container's own port; exit 0 when healthy.

It reads the same variables as ``agenthost serve`` (``AGENTHOST_PORT``, and
``AGENTHOST_SSL_CERTFILE`` for HTTPS), so moving the server moves the check.
Standard library only: the image has no curl.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("AGENTHOST_PORT", "8000")
    https = bool(os.environ.get("AGENTHOST_SSL_CERTFILE"))
    url = f"{'https' if https else 'http'}://127.0.0.1:{port}/health"
    # The certificate names the service, not 127.0.0.1: the check trusts the process.
    context = ssl._create_unverified_context() if https else None
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as response:
            return 0 if json.load(response).get("status") == "healthy" else 1
    except (OSError, ValueError):
        return 1


if __name__ == "__main__":
    sys.exit(main())
