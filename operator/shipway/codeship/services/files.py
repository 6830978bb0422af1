"""The checkout next to the services file, as the converter reads it (env files, volume
directories, encrypted files)."""

from __future__ import annotations

from typing import Protocol


class ProjectFiles(Protocol):
    """The checkout next to the services file (env files, volume directories)."""

    def read_text(self, path: str) -> str:
        """The text of ``path`` (relative to the services file's directory); OSError if none."""
        ...

    def has_content(self, path: str) -> bool:
        """Whether ``path`` is a file, or a directory with something in it."""
        ...


class NoFiles:
    """No checkout at hand: env files cannot be read, volume directories are not looked at."""

    def read_text(self, path: str) -> str:
        raise FileNotFoundError(path)

    def has_content(self, path: str) -> bool:
        return False
