"""The files of one commit, read from the forge for the converter (the shell).

A delivery's time to its Pipeline is mostly these reads (docs/performance.md#triggers), so
none waits for another: every name the converter may look for first (both Codeship file
names of each kind) is asked for at once, in **one call** where the forge has one (Gitea's
``file-contents``) and otherwise in parallel, one call each. Files the services file names
(env files, encrypted files) are asked for together as soon as it is parsed. Each file is
fetched once; the converter then reads from memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future

from shipway.codeship.convert import SERVICES_FILES, STEPS_FILES
from shipway.models.repository import RepositorySpec
from shipway.triggers import forge, http

FIRST = (*SERVICES_FILES, *STEPS_FILES)
"""What every conversion looks for, asked for before it starts."""
Send = Callable[[forge.Request], http.Response]


class CommitFiles:
    """The converter's :data:`pipeline.Reader` for one commit, and its :meth:`prefetch`."""

    def __init__(
        self,
        spec: RepositorySpec,
        commit: str,
        pool: Executor,
        *,
        username: str = "",
        password: str = "",
        send: Send = http.send,
    ) -> None:
        self.spec, self.commit, self.pool, self.send = spec, commit, pool, send
        self.username, self.password = username, password
        self.waited = 0.0
        """Seconds the converter spent waiting for the forge (the log line's ``read``)."""
        self.calls = 0
        self._futures: dict[str, Future[str | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, path: str) -> str | None:
        """The text of ``path`` at the commit, None when there is no such file; OSError
        when the forge cannot say."""
        self.prefetch([path])
        started = time.monotonic()
        try:
            return self._futures[path].result()
        finally:
            self.waited += time.monotonic() - started

    def prefetch(self, paths: Iterable[str]) -> None:
        """Start reading ``paths`` not asked for yet: together in one call where the forge
        allows it, else each on its own thread."""
        with self._lock:
            new = [p for p in dict.fromkeys(paths) if p not in self._futures]
            for path in new:
                self._futures[path] = Future()
        if not new:
            return
        batch = (
            forge.read_files(
                self.spec, self.commit, new, username=self.username, password=self.password
            )
            if len(new) > 1
            else None
        )
        if batch is None:
            for path in new:
                self.pool.submit(self._one, path)
        else:
            self.pool.submit(self._many, batch, new)

    def _settle(self, path: str, read: Callable[[], str | None]) -> None:
        future = self._futures[path]
        try:
            future.set_result(read())
        except Exception as exc:
            future.set_exception(exc)

    def _one(self, path: str) -> None:
        self._settle(path, lambda: self._fetch(path))

    def _count(self) -> None:
        with self._lock:
            self.calls += 1

    def _fetch(self, path: str) -> str | None:
        self._count()
        got = self.send(
            forge.raw_file(
                self.spec, self.commit, path, username=self.username, password=self.password
            )
        )
        if got.status == 404:
            return None
        if got.status != 200:
            raise OSError(f"{path}: HTTP {got.status} from the forge")
        return got.body.decode()

    def _many(self, request: forge.Request, paths: list[str]) -> None:
        """One call for ``paths``; what it leaves undecided (an older forge without the
        endpoint, a refusal, a file too large to inline) is read one by one."""
        self._count()
        try:
            got = self.send(request)
            decided = forge.parse_files(got.body, paths) if got.status == 200 else {}
        except http.ForgeError:
            decided = {}
        for path in paths:
            if path in decided:
                text = decided[path]
                self._settle(path, lambda text=text: text)  # type: ignore[misc]
            else:
                self.pool.submit(self._one, path)
