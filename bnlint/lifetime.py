"""Processes end with the run: SIGTERM (what `timeout` and CI cancellation send) stops
bnlint like Ctrl-C, and parallel workers die when their parent does, however it ends."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PARENT_POLL_SECONDS = 1.0
_GRACE_SECONDS = 3.0  # for the clean-up after SIGTERM


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises KeyboardInterrupt in the main thread (then the usual
    clean-up runs: workers are stopped, nothing is half written)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    deadlines: list[threading.Timer] = []

    def interrupt(signum: int, frame: FrameType | None) -> None:
        # An exception raised where Python ignores exceptions (an at-fork hook, a __del__)
        # is lost: then the process ends anyway once the grace period is over.
        deadline = threading.Timer(_GRACE_SECONDS, os._exit, args=(128 + signum,))
        deadline.daemon = True
        deadline.start()
        deadlines.append(deadline)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        for deadline in deadlines:  # the clean-up is done
            deadline.cancel()


def die_with_parent(parent: int) -> None:
    """Make this worker process end when `parent` ends, even by SIGKILL: the kernel sends
    SIGKILL on Linux, elsewhere a thread watches for the parent to go."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        installed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (OSError, AttributeError):
        installed = False
    if not installed:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="bnlint-parent-watch").start()
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_SECONDS)
    os._exit(1)
