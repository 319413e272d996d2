"""Bearer secrets (operator tokens, agency API keys): random, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets


def new_token(prefix: str) -> str:
    """A new secret; the prefix makes it recognisable (in a leaked file, in a secret scanner)."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
