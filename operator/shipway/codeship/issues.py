"""What a conversion reports: typed warnings, and errors that stop it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from shipway.compiler.errors import ShipwayError


class WarningKind(StrEnum):
    IGNORED = "ignored"
    """A key that has no effect in Shipway (Codeship ignores most of them too)."""
    DEPRECATED = "deprecated"
    """An old spelling that still works; the message names the new one."""
    NOTE = "note"
    """Converted, but something behaves differently from Codeship; read before running."""


@dataclass(frozen=True)
class Issue:
    """One finding about one place in the Codeship files."""

    source: str
    """The file, as named to the converter (or "pipeline" for the produced manifest)."""
    where: str
    """Path inside the file, e.g. ``app.volumes[0]`` or ``[2].steps[0].type``."""
    message: str

    def __str__(self) -> str:
        place = f"{self.source}: {self.where}" if self.where else self.source
        return f"{place}: {self.message}"


@dataclass(frozen=True)
class ConversionWarning(Issue):
    kind: WarningKind = WarningKind.NOTE


class ConversionError(ShipwayError):
    """The files cannot become a Pipeline; carries every problem found, not just the first."""

    def __init__(self, errors: Sequence[Issue], warnings: Sequence[ConversionWarning] = ()) -> None:
        self.errors: tuple[Issue, ...] = tuple(errors)
        self.warnings: tuple[ConversionWarning, ...] = tuple(warnings)
        super().__init__("; ".join(str(e) for e in self.errors))
