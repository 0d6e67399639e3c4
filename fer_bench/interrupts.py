"""SIGTERM handled as Ctrl-C is: a scheduler's or ``kill``'s polite stop saves what a run has and
says where, instead of ending the process mid-write without a word.

Only the process that asks (``fer-bench run``, each torchrun rank included) turns SIGTERM into
``KeyboardInterrupt``; processes it forks keep the default (a SIGTERM ends them at once), and a
second SIGTERM ends the process at once, as a second Ctrl-C is the user's insistence.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import FrameType
from typing import Iterator, Optional

_received: Optional[int] = None


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises ``KeyboardInterrupt`` in this process's main thread."""
    global _received
    _received = None
    # A handler can only be set from the main thread; one already set (SIG_IGN included) is the
    # caller's choice, which this one must not replace.
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    owner = os.getpid()

    def handler(signum: int, frame: Optional[FrameType]) -> None:
        global _received
        signal.signal(signum, signal.SIG_DFL)
        if os.getpid() != owner:  # a forked child inherited the handler: end as it would have without it
            os.kill(os.getpid(), signum)
            return
        _received = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def received() -> Optional[int]:
    """The signal that the last interruption came from, when it was SIGTERM under
    :func:`sigterm_as_interrupt`; None for Ctrl-C."""
    return _received


def exit_status() -> int:
    """The shell's status of a process ended by the signal that interrupted this one: 143 for
    SIGTERM, 130 for Ctrl-C."""
    return 128 + (_received or signal.SIGINT)
