"""Key secrets: high-entropy random tokens, kept only as their sha256.

A plain sha256 suffices (no slow hash): the secret has 256 bits of entropy, so nothing can be
guessed from its hash, and lookups stay one index probe.
"""

from __future__ import annotations

import hashlib
import secrets

SECRET_PREFIX = "herd-"
# What is shown for a key once the secret is gone: enough to tell keys apart, too little to use.
DISPLAY_CHARS = 12


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:DISPLAY_CHARS]
