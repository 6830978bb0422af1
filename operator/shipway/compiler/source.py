"""What ``spec.source`` means: checked, with its limits in numbers (pure).

The CRD's CEL rules refuse the same things at ``kubectl apply``; this module says them again
for ``shipway validate`` and for an operator reading an object the API server kept as-is.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from shipway.compiler.errors import FieldError
from shipway.models import Source
from shipway.models.durations import parse_duration

DEFAULT_DEPTH = 1
DEFAULT_UPLOAD_TIMEOUT = 1800.0
_SUFFIXES: dict[str, int | Decimal] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "m": Decimal("0.001"),
    "": 1,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([KMGTPE]i|[kMGTPEm]|[eE][+-]?[0-9]+)?$")
_USERINFO = re.compile(r"^[a-z]+://([^/@]*)@")


def parse_quantity(text: str) -> int:
    """A Kubernetes quantity (``2Gi``, ``500M``, ``1e9``) in whole units, rounded up."""
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a quantity like 500Mi or 2Gi")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        value = Decimal(number)
        if suffix[:1] in ("e", "E"):
            value *= Decimal(10) ** int(suffix[1:])
        else:
            value *= Decimal(_SUFFIXES[suffix])
    except (InvalidOperation, KeyError):
        raise ValueError(f"{text!r} is not a quantity like 500Mi or 2Gi") from None
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


def repo_name(url: str) -> str:
    """``https://host/org/app.git`` → ``app``: Codeship's CI_REPO_NAME is the repository's name."""
    path = url.rstrip("/")
    if "://" not in path and ":" in path:
        path = path.split(":", 1)[1]
    name = posixpath.basename(path)
    return name[:-4] if name.endswith(".git") else name


_COMMIT_ID = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64})$")


def source_revision(source: Source | None) -> str | None:
    """The branch or tag a git source names (None for a commit id, the default branch or an
    upload): what the build tag is before the checkout has said more."""
    if source is None or source.git is None or source.git.revision is None:
        return None
    revision = source.git.revision
    return None if _COMMIT_ID.match(revision) else revision


@dataclass(frozen=True)
class GitCheckout:
    url: str
    revision: str | None
    depth: int
    submodules: bool
    secret_name: str | None
    max_size: int | None
    """Bytes; None: the operator's limit."""
    repo_name: str


@dataclass(frozen=True)
class Upload:
    timeout: float


CompiledSource = GitCheckout | Upload


def compile_source(source: Source | None) -> tuple[CompiledSource | None, list[FieldError]]:
    """The source in numbers, or every problem with it."""
    if source is None:
        return None, []
    where = "spec.source"
    if (source.git is None) == (source.upload is None):
        return None, [FieldError(where, "set exactly one of git and upload")]
    if source.upload is not None:
        timeout = DEFAULT_UPLOAD_TIMEOUT
        if source.upload.timeout is not None:
            try:
                timeout = parse_duration(source.upload.timeout)
            except ValueError as exc:
                return None, [FieldError(f"{where}.upload.timeout", str(exc))]
        return Upload(timeout), []
    git = source.git
    assert git is not None
    errors: list[FieldError] = []
    userinfo = _USERINFO.match(git.url)
    if userinfo is not None and git.url.startswith(("http://", "https://")):
        errors.append(
            FieldError(
                f"{where}.git.url",
                "credentials in an http(s) URL would be shown in status and logs: put them "
                "in a Secret and set secretName",
            )
        )
    elif userinfo is not None and ":" in userinfo.group(1):
        errors.append(
            FieldError(
                f"{where}.git.url",
                "a password in the URL would be shown in status and logs: put it in a Secret "
                "and set secretName",
            )
        )
    max_size = None
    if git.maxSize is not None:
        try:
            max_size = parse_quantity(git.maxSize)
        except ValueError as exc:
            errors.append(FieldError(f"{where}.git.maxSize", str(exc)))
        else:
            if max_size < 1:
                errors.append(FieldError(f"{where}.git.maxSize", "must be positive"))
    if errors:
        return None, errors
    return (
        GitCheckout(
            url=git.url,
            revision=git.revision,
            depth=DEFAULT_DEPTH if git.depth is None else git.depth,
            submodules=git.submodules,
            secret_name=git.secretName,
            max_size=max_size,
            repo_name=repo_name(git.url),
        ),
        [],
    )
