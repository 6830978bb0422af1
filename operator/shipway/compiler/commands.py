"""Codeship command semantics: split like a shell would, never run through one."""

from __future__ import annotations

import shlex


def split_command(value: str | list[str] | None) -> tuple[str, ...] | None:
    """Return the argument vector for a command, or None for "use the image's default".

    A string is split with POSIX shell quoting rules, but ``&&``, ``|`` and ``>`` stay plain
    arguments, as in Codeship: wrap a command in ``sh -c '…'`` to get a shell. A list is taken
    as it is. Raises ValueError for unbalanced quotes or an empty command.
    """
    if value is None:
        return None
    argv = list(value) if isinstance(value, list) else shlex.split(value)
    if not argv:
        raise ValueError("the command is empty")
    return tuple(argv)


def display_command(argv: tuple[str, ...]) -> str:
    """A readable one-line form of an argument vector (used for generated step names)."""
    return shlex.join(argv)
