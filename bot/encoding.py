"""base64url as Microsoft sends it: padding optional, and sometimes the standard alphabet (``+``, ``/``)."""

from __future__ import annotations

import base64


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding, accepting the standard alphabet too. Raises
    ``binascii.Error`` (a ``ValueError``) when it is not base64."""
    body = text.strip().rstrip("=").replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
