"""The agent's logs: text or one JSON object per line (`--log-json`), and
the hub `/v1/agent/monitor` streams them from.

JSON lines use Consul's (hclog's) keys: `@timestamp`, `@level`, `@message`,
`@module`, then the record's own fields (`logger.info(..., extra={...})`).
A monitor asking for a lower level than the agent's gets it: the root
logger's level is lowered while it listens, the stderr handler keeps its own.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import sys
import threading
from collections.abc import AsyncIterator

TEXT_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"

#: Consul's monitor levels (hclog.LevelFromString), case-insensitive.
MONITOR_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}
#: Lines a slow monitor may fall behind before lines are dropped (Consul
#: drops too, and logs how many).
MONITOR_BUFFER = 512

#: hclog's level names.
_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, hclog's keys first."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        line: dict[str, object] = {
            "@timestamp": stamp.isoformat(timespec="microseconds").replace(
                "+00:00", "Z"
            ),
            "@level": _LEVELS.get(record.levelno, record.levelname.lower()),
            "@message": record.getMessage(),
            "@module": record.name,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def make_formatter(*, json_lines: bool) -> logging.Formatter:
    return JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: str, *, json_lines: bool = False) -> None:
    """The CLI's logging: stderr at `level`, plus the monitor hub."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(json_lines=json_lines))
    handler.setLevel(level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    HUB.install(root, handler.level)


class _Subscriber:
    __slots__ = ("dropped", "json_lines", "level", "loop", "queue")

    def __init__(
        self, level: int, loop: asyncio.AbstractEventLoop, *, json_lines: bool
    ) -> None:
        self.level = level
        self.json_lines = json_lines
        self.loop = loop
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(MONITOR_BUFFER)
        self.dropped = 0

    def offer(self, line: str | None) -> None:
        try:
            self.queue.put_nowait(line)
        except asyncio.QueueFull:
            self.dropped += 1


class LogHub(logging.Handler):
    """Fans log records out to the monitors listening (any thread logs)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._subscribers: set[_Subscriber] = set()
        self._lock = threading.Lock()
        self._root: logging.Logger | None = None
        self._base_level = logging.INFO
        self._text = make_formatter(json_lines=False)
        self._json = make_formatter(json_lines=True)

    def install(self, root: logging.Logger, base_level: int) -> None:
        self._root = root
        self._base_level = base_level
        if self not in root.handlers:
            root.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            subscribers = [s for s in self._subscribers if record.levelno >= s.level]
        if not subscribers:
            return
        lines: dict[bool, str] = {}
        for subscriber in subscribers:
            line = lines.get(subscriber.json_lines)
            if line is None:
                formatter = self._json if subscriber.json_lines else self._text
                try:
                    line = lines[subscriber.json_lines] = (
                        formatter.format(record) + "\n"
                    )
                except Exception:  # a bad format string must not break logging
                    self.handleError(record)
                    return
            _call_in_loop(subscriber.loop, subscriber.offer, line)

    async def stream(self, level: int, *, json_lines: bool) -> AsyncIterator[bytes]:
        """Lines at `level` and above until `close_streams()` (or the caller
        stops); text as on stderr, or JSON lines."""
        subscriber = _Subscriber(
            level, asyncio.get_running_loop(), json_lines=json_lines
        )
        with self._lock:
            self._subscribers.add(subscriber)
        self._retune()
        try:
            while True:
                line = await subscriber.queue.get()
                if line is None:
                    return
                yield line.encode()
        finally:
            with self._lock:
                self._subscribers.discard(subscriber)
            self._retune()
            if subscriber.dropped:
                logging.getLogger("waypost.agent").warning(
                    "Dropped logs during monitor request: dropped_count=%d",
                    subscriber.dropped,
                )

    def close_streams(self) -> None:
        """End every stream (shutdown)."""
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            _call_in_loop(subscriber.loop, subscriber.offer, None)

    def _retune(self) -> None:
        """Root level: the agent's, or lower while a monitor wants more."""
        if self._root is None:
            return
        with self._lock:
            wanted = [s.level for s in self._subscribers]
        self._root.setLevel(min([self._base_level, *wanted]))


def _call_in_loop(loop: asyncio.AbstractEventLoop, fn: object, arg: str | None) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fn(arg)  # type: ignore[operator]
    elif not loop.is_closed():
        loop.call_soon_threadsafe(fn, arg)  # type: ignore[arg-type]


#: The process's hub (logging is process-wide).
HUB = LogHub()
