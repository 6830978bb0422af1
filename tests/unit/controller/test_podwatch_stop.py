"""A pod watch blocked on an idle stream ends at once when asked (issue 18: 53 s shutdown)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import SimpleNamespace

from shipway.controller.podwatch import unblock


def test_unblock_ends_a_read_blocked_in_another_thread_without_waiting_for_it() -> None:
    ours, server = socket.socketpair()
    reader = ours.makefile("rb")  # a buffered reader, as under an HTTP response
    ended = threading.Event()

    def read() -> None:
        with contextlib.suppress(OSError):
            reader.read(1)  # nothing ever comes: blocked, holding the reader's lock
        ended.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    unblock(SimpleNamespace(connection=SimpleNamespace(sock=ours)))
    assert ended.wait(2), "the blocked read did not return"
    assert time.monotonic() - started < 1
    unblock(SimpleNamespace(connection=SimpleNamespace(sock=ours)))  # twice: no error
    unblock(SimpleNamespace(connection=None))  # nothing to unblock: no error
    server.close()
    ours.close()
