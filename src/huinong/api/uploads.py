"""Files that travel base64-encoded in a JSON body (batch, survey, bureau and register files)."""

from __future__ import annotations

import base64
import binascii

from huinong.errors import InvalidInput


def decode_file(content_base64: str, *, domain: str, field: str = "content_base64") -> bytes:
    """The file's bytes; ``{domain}.invalid_base64`` naming ``field`` if they do not decode."""
    try:
        return base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            f"{domain}.invalid_base64",
            "content_base64 is the file's bytes in standard base64",
            field=field,
        ) from None
