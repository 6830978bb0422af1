"""What a failed Kubernetes call raises: one :class:`KubeError`, whichever way the call went.

The client's ``ApiException``, a ``pods/log`` answer read by hand and an API server that does
not answer at all all become the same error, with the status and the Status body's message and
reason, so a caller decides (retry, give up, fail the step) on those alone.
"""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException


class KubeError(Exception):
    """A Kubernetes API call failed in a way the caller must handle."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)

    @property
    def permanent(self) -> bool:
        """4xx other than conflicts and throttling: retrying the same request will not help."""
        return 400 <= self.status < 500 and self.status not in (408, 409, 429)

    @property
    def quota(self) -> bool:
        """A ResourceQuota refused the object: it may fit later, when other objects go."""
        return self.status == 403 and "exceeded quota" in str(self).lower()

    @property
    def too_large(self) -> bool:
        """The object (a status) is larger than the API server or etcd will store."""
        text = str(self).lower()
        return self.status == 413 or "too large" in text or "too long" in text


def _error(exc: ApiException) -> KubeError:
    return _status_error(int(exc.status or 0), str(exc.reason or ""), exc.body)


def _status_error(status: int, reason: str, body: str | bytes | None) -> KubeError:
    """The error of an answer: the message and reason of its Status body when it has one."""
    message = reason or "request failed"
    try:
        parsed = json.loads(body or "{}")
        message = parsed.get("message") or message
        reason = parsed.get("reason") or reason
    except (ValueError, TypeError, AttributeError):
        pass
    return KubeError(status, reason, str(message))
