"""SIGTERM as a clean exit, so registrations deregister before the process ends.

Installed only where nobody else handles SIGTERM (its handler is still the
default) and only from the main thread, so it never takes the signal away
from uvicorn, gunicorn or an application's own handler.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType

#: Exit status after a SIGTERM handled this way: a clean, asked-for stop.
SIGTERM_EXIT_CODE = 0


def _is_unhandled() -> bool:
    return (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    )


def exit_on_sigterm() -> Callable[[], None] | None:
    """Make SIGTERM raise SystemExit in the main thread; return the undo.

    `with` blocks unwind (and deregister) as they would on Ctrl-C.
    """
    if not _is_unhandled():
        return None

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(SIGTERM_EXIT_CODE)

    signal.signal(signal.SIGTERM, handler)

    def undo() -> None:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return undo


def cancel_on_sigterm(
    loop: asyncio.AbstractEventLoop, task: asyncio.Task[object], fired: list[bool]
) -> Callable[[], None] | None:
    """Make SIGTERM cancel `task` (and note it in `fired`); return the undo."""
    if not _is_unhandled():
        return None

    def on_signal() -> None:
        fired.append(True)
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_signal)
    except (NotImplementedError, RuntimeError):  # not a Unix loop
        return None

    def undo() -> None:
        loop.remove_signal_handler(signal.SIGTERM)

    return undo
