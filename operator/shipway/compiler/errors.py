"""Typed errors raised at the API boundary.

Every user-facing problem with a Pipeline names the field it comes from (``spec.services.web
.volumes[0]``), so both ``shipway validate`` and the operator's Failed status point at the line
to fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a Pipeline."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ShipwayError(Exception):
    """Base class of every error Shipway raises on purpose."""


class InvalidSpecError(ShipwayError):
    """The Pipeline spec cannot run; carries every field error found, not just the first."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__("; ".join(str(e) for e in self.errors))

    @classmethod
    def single(cls, field: str, message: str) -> InvalidSpecError:
        return cls([FieldError(field, message)])


def raise_if_any(errors: Iterable[FieldError]) -> None:
    """Raise :class:`InvalidSpecError` when ``errors`` is not empty."""
    collected = list(errors)
    if collected:
        raise InvalidSpecError(collected)
