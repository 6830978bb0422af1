"""CSRF tokens: a random nonce signed for one user, sent as a cookie and in every form.

An action is done only when the form's token equals the cookie's (double submit: another site
can make the browser send the cookie, never read it into a form) and its signature is the
dashboard's for this very user (a token planted by a sibling subdomain, or another user's, is
refused). The key lives in the process (a restart asks to reload the page); no session store.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE = "shipway_csrf"
FIELD = "csrf"


def new_key() -> bytes:
    return secrets.token_bytes(32)


def _sign(key: bytes, user: str, nonce: str) -> str:
    return hmac.new(key, f"{user}\n{nonce}".encode(), hashlib.sha256).hexdigest()


def issue(key: bytes, user: str) -> str:
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_sign(key, user, nonce)}"


def valid_for(key: bytes, user: str, token: str | None) -> bool:
    """The token was issued by this key for this user."""
    if not token or "." not in token:
        return False
    nonce, _, signature = token.partition(".")
    return hmac.compare_digest(signature, _sign(key, user, nonce))


def check(key: bytes, user: str, cookie: str | None, form: str | None) -> bool:
    """The action may go on: the form's token is the cookie's, and it is this user's."""
    if not cookie or not form or not hmac.compare_digest(cookie, form):
        return False
    return valid_for(key, user, form)
