"""Collecting findings while walking one file, and the small value checks both files share."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shipway.codeship.issues import ConversionWarning, Issue, WarningKind
from shipway.codeship.yamlfile import text_of


def join(where: str, key: str | int) -> str:
    """``app`` + ``volumes`` → ``app.volumes``; ``app.volumes`` + 0 → ``app.volumes[0]``."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


@dataclass
class Report:
    """Errors and warnings of one conversion, each tied to a file and a place in it."""

    errors: list[Issue] = field(default_factory=list)
    warnings: list[ConversionWarning] = field(default_factory=list)

    def error(self, source: str, where: str, message: str) -> None:
        self.errors.append(Issue(source, where, message))

    def warn(
        self, source: str, where: str, message: str, kind: WarningKind = WarningKind.NOTE
    ) -> None:
        self.warnings.append(ConversionWarning(source, where, message, kind))

    def unknown_key(
        self, source: str, where: str, key: str, *, known: Iterable[str], elsewhere: str = ""
    ) -> None:
        """A key this place does not know: Codeship ignored it without a word, Shipway ignores
        it with one (``elsewhere`` says where the key does belong, a typo gets a suggestion)."""
        close = difflib.get_close_matches(key, list(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close and not elsewhere else ""
        place = f"; it is a key of {elsewhere}" if elsewhere else ""
        self.warn(
            source,
            where,
            f"ignored: unknown key {key!r} here{hint}{place}: it has no effect, as on Codeship",
            WarningKind.IGNORED,
        )


class Reporting:
    """``error`` and ``warn`` against one file, for a walker of one place in it that holds the
    file's name (``source``) and the conversion's ``report``."""

    source: str
    report: Report

    def error(self, where: str, message: str) -> None:
        self.report.error(self.source, where, message)

    def warn(self, where: str, message: str, kind: WarningKind = WarningKind.NOTE) -> None:
        self.report.warn(self.source, where, message, kind)


def is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and value is not None


def scalar_text(report: Report, source: str, where: str, value: Any) -> str | None:
    """A string value as written; numbers keep their digits, ``true`` is the text ``true``
    (Codeship's Go parser reads any scalar into a string: ``command: true`` runs ``true``).
    None (and an error) for a map, a list or nothing."""
    if isinstance(value, str | int | float):
        return text_of(value)
    report.error(source, where, f"must be a string, not {type_name(value)}")
    return None


def string_list(report: Report, source: str, where: str, value: Any) -> list[str] | None:
    """A list of strings (a single string is accepted as a list of one)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        report.error(source, where, f"must be a list of strings, not {type_name(value)}")
        return None
    result: list[str] = []
    for index, item in enumerate(value):
        text = scalar_text(report, source, join(where, index), item)
        if text is not None:
            result.append(text)
    return result


def command_value(report: Report, source: str, where: str, value: Any) -> str | list[str] | None:
    """A command: one string (split later like a shell would) or a list of arguments."""
    if isinstance(value, list):
        return string_list(report, source, where, value)
    return scalar_text(report, source, where, value)


def type_name(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string"
