"""SIGTERM as a clean exit, so registrations deregister before the process ends.

Installed only where nobody else handles SIGTERM (its handler is still the
default) and only from the main thread, so it never takes the signal away
from uvicorn, gunicorn or an application's own handler. The registrations'
guards (`TerminationGuard` in `_async_io.py` / `_sync_io.py`) use the same
rule.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

#: Exit status after a SIGTERM handled this way: a clean, asked-for stop.
SIGTERM_EXIT_CODE = 0


def is_unhandled() -> bool:
    """True in the main thread while SIGTERM still has its default handler."""
    return (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    )


def exit_on_sigterm() -> Callable[[], None] | None:
    """Make SIGTERM raise SystemExit in the main thread; return the undo.

    `with` blocks unwind (and deregister) as they would on Ctrl-C.
    """
    if not is_unhandled():
        return None

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(SIGTERM_EXIT_CODE)

    signal.signal(signal.SIGTERM, handler)

    def undo() -> None:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return undo
