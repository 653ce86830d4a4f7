"""SIGTERM and SIGINT, heard by the signal handler itself, with a deadline to exit by.

An event-loop signal handler (``loop.add_signal_handler``, anyio's signal receiver)
runs only when the loop gets to it: at a thousand nodes an overloaded loop took
longer than the pod's termination grace to even notice SIGTERM, and the kubelet
had to SIGKILL it. Here the Python signal handler, which runs between two bytecodes
of the main thread whatever the loop is doing, does two things at once:

- it wakes the loop (``call_soon_threadsafe``) so the graceful path starts: nodes
  are cancelled, SaladCloud mutations already sent get their grace, pools close;
- it arms a watchdog thread that ends the process when ``deadline`` seconds have
  passed, whatever is still running then. The graceful path finishes well before
  that; the deadline is for a loop that cannot, and it exits ``128 + signal``, as a
  process killed by the signal would, so a forced exit is never mistaken for a
  clean one.

A second signal exits at once, as a second Ctrl-C is expected to.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Any

import anyio

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """``with StopSignals(deadline) as stop, stop.scope: serve()``: the signal cancels
    ``scope`` (whatever the code in it is doing, start-up included) and starts the
    deadline. Enter it in the event loop's thread, the main thread, where Python runs
    signal handlers."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.received: signal.Signals | None = None
        self.received_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.scope = anyio.CancelScope()
        self._signalled = threading.Event()
        self._finished = threading.Event()
        self._previous: dict[int, Any] = {}
        self._watchdog = threading.Thread(target=self._watch, name="shutdown-deadline", daemon=True)

    def __enter__(self) -> StopSignals:
        self._loop = asyncio.get_running_loop()
        for number in SIGNALS:
            self._previous[number] = signal.signal(number, self._on_signal)
        self._watchdog.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        if self.received is None:
            # Never signalled: nothing to time; the process ends its own way.
            self._finished.set()
            self._signalled.set()
        # Signalled: the deadline stays armed until the process is gone, because
        # what follows (closing the loop, joining worker threads) can hang too.

    def _on_signal(self, number: int, _frame: FrameType | None) -> None:
        if self.received is not None:
            # The second one: the user (or the kubelet) wants out now.
            os._exit(128 + number)
        self.received = signal.Signals(number)
        self.received_at = time.monotonic()
        self._signalled.set()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop)

    def _stop(self) -> None:
        """In the event loop, as soon as it gets here: start the graceful path."""
        assert self.received is not None
        log.info("%s received: shutting down", self.received.name)
        self.scope.cancel()

    def _watch(self) -> None:
        self._signalled.wait()
        if self._finished.wait(self.deadline):
            return
        assert self.received is not None
        log.error(
            "shutdown did not finish within %.0fs of %s; exiting now",
            self.deadline,
            self.received.name,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(128 + int(self.received))
