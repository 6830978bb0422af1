"""DNS-safe forms of user-given names, shared by the compiler (which refuses two services
meeting in one form) and the engine's naming (which names objects with them)."""

from __future__ import annotations

import hashlib
import re

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def dns_label(text: str, limit: int = 63) -> str:
    """Lower-case, dashes for anything else, trimmed to ``limit``; never empty."""
    slug = _NOT_DNS.sub("-", text.lower()).strip("-")
    slug = re.sub(r"-{2,}", "-", slug)[:limit].strip("-")
    return slug or "x"


def short_hash(text: str, length: int = 5) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]
