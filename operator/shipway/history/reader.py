"""Reading past runs, whoever asks: the :class:`RunReader` protocol and its store-backed side.

The command line, the history read API (served by the operator) and the dashboard read runs
the same way: a page of runs newest first, one run's record, one run's archived logs. Two
implementations: :class:`StoreReader` reads the store directly (the operator, or a user
given the store's URL); :class:`shipway.history.api.ApiReader` reads it through the cluster's
API server with the user's own credentials (``history.shipway.dev``, an aggregated API).
"""

from __future__ import annotations

from typing import Protocol

from shipway.history.records import RunRecord
from shipway.history.store import ArchivedLog, HistoryStore

PAGE_MAX = 500
"""The most runs one page holds, whatever is asked: a page is one query and one response."""


class RunReader(Protocol):
    """What reading the history needs; every call is synchronous."""

    def run(self, namespace: str, name: str) -> RunRecord | None:
        """The newest run of that name (with its spec and status), or None."""
        ...

    def page(
        self,
        namespace: str | None,
        *,
        project: str | None = None,
        branch: str | None = None,
        phase: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, without spec and status; ``namespace`` None: every namespace;
        ``before``: :func:`shipway.history.store.cursor` of the previous page's last run.
        A bad cursor raises ValueError."""
        ...

    def logs(self, namespace: str, name: str, uid: str) -> list[ArchivedLog]:
        """Every archived log of that run (every pod and container)."""
        ...

    def close(self) -> None: ...


class StoreReader:
    """A :class:`RunReader` over the store itself."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store

    def run(self, namespace: str, name: str) -> RunRecord | None:
        return self.store.run(namespace, name)

    def run_by_uid(self, uid: str) -> RunRecord | None:
        return self.store.run_by_uid(uid)

    def page(
        self,
        namespace: str | None,
        *,
        project: str | None = None,
        branch: str | None = None,
        phase: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[RunRecord]:
        return self.store.page(
            namespace,
            project=project,
            branch=branch,
            phase=phase,
            limit=max(1, min(limit, PAGE_MAX)),
            before=before,
        )

    def logs(self, namespace: str, name: str, uid: str) -> list[ArchivedLog]:
        return self.store.logs(uid)  # a UID is unique: namespace and name are for the API

    def close(self) -> None:
        self.store.close()
