"""Self-preservation: a brake on expiry when the registry, not its clients, is cut off.

If the registry's own network is cut, or the process was paused, every client
goes quiet at once; expiring them all would empty the catalog. The rule, in
one sentence a user can check against `/v1/agent/self`:

    When more than `threshold` (15 %), and at least `min_quiet` (10), of the
    live TTL checks went quiet within one `window` (1 min) — already expired by
    TTL in that window, or not heard from for over `quiet_after` (¾) of their
    TTL — the registry stops turning TTL checks critical and stops reaping,
    until fewer than that are quiet.
    On release, every check it held back gets one more full TTL (and every
    held reap one more DeregisterCriticalServiceAfter) before it counts.

Why "quiet" and not only "expired": when a partition starts, clients'
deadlines come due one after another over a TTL. Counting only expiries would
let the first 15 % turn critical before the brake bites. A client that
heartbeats at least every half TTL (waypost's client: every TTL/3) is never
quiet while healthy, and in a cut every client is quiet by the time the first
deadline passes — so the brake engages before the first wrong expiry, while a
single crashed instance (one quiet check) still expires on time.

The per-service panic threshold (`?passing` answering every instance when too
few pass) is here too: it is the same idea seen from a caller.

No I/O, no clock: time arrives as `now`; log lines are handed out as notices.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from enum import StrEnum

import msgspec

DEFAULT_THRESHOLD = 0.15
DEFAULT_WINDOW = 60.0
#: A live TTL check is quiet once this fraction of its TTL passed unheard.
DEFAULT_QUIET_AFTER = 0.75
#: Fewer quiet checks than this never engage the brake: one application
#: process with a few services dying in a small registry is a failure to
#: report, not a partition.
DEFAULT_MIN_QUIET = 10
#: While engaged, how often the census is retaken to see whether to release.
REASSESS_EVERY = 0.25
#: While not engaged and nothing is due, how often the census is retaken (so
#: a partition engages the brake before the first deadline, and
#: /v1/agent/self shows current numbers).
CENSUS_EVERY = 1.0

PANIC_META_KEY = "waypost-panic-threshold"


class BrakeSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the brake decides (AgentConfig's self_preservation_* fields)."""

    enabled: bool = True
    threshold: float = DEFAULT_THRESHOLD
    window: float = DEFAULT_WINDOW
    quiet_after: float = DEFAULT_QUIET_AFTER
    min_quiet: int = DEFAULT_MIN_QUIET


class Transition(StrEnum):
    """What an assessment changed."""

    # More than the threshold went quiet: expiry and reaping are held.
    ENGAGED = "engaged"
    # Quiet checks fell back under the threshold: held checks get a grace.
    RELEASED = "released"


class Census(msgspec.Struct, frozen=True, kw_only=True):
    """TTL checks as the catalog sees them at one `now`."""

    # TTL checks not critical and still armed (heard from within their TTL,
    # or overdue but held by the brake).
    live: int
    # Live checks not heard from for over `quiet_after` of their TTL.
    quiet: int


class BrakeState(msgspec.Struct, frozen=True, kw_only=True, rename="pascal"):
    """The brake as reported under `Waypost.SelfPreservation` in /v1/agent/self.

    waypost's own key, not a Consul shape: field names are written as-is in
    PascalCase (none of them is an ID or a TTL that pascal would misspell).
    """

    enabled: bool
    engaged: bool
    threshold: float
    window_seconds: float
    quiet_after: float
    min_quiet: int
    live_checks: int
    quiet_checks: int
    recent_expiries: int
    engaged_seconds: float
    engagements: int
    last_event: str


class Brake:
    """The registry-wide self-preservation brake; one per agent."""

    def __init__(self, settings: BrakeSettings | None = None) -> None:
        self.settings = settings or BrakeSettings()
        self.engaged = False
        self.engaged_since = 0.0
        self.engagements = 0
        self.last_event = ""
        self.census = Census(live=0, quiet=0)
        self._expiries: deque[tuple[float, int]] = deque()
        self._next_assessment = float("-inf")
        self._notices: list[str] = []
        #: Why expiry is held regardless of the census ("" when it is not):
        #: the store cannot be written, so nothing it says is current.
        self.held = ""

    def hold(self, now: float, reason: str) -> None:
        """Hold expiry and reaping for a reason outside the census."""
        if self.held:
            return
        self.held = reason
        self.engaged_since = now
        self.engagements += 1
        self.last_event = (
            f"self-preservation brake engaged: {reason};"
            " holding TTL expiry and reaping until it is back"
        )
        self._notices.append(self.last_event)

    def release_hold(self, now: float) -> bool:
        """End a `hold`; True when one ended (held checks then get a grace)."""
        if not self.held:
            return False
        self.last_event = (
            f"self-preservation brake released after {now - self.engaged_since:.1f}s:"
            f" {self.held} no longer; held checks get one more TTL"
        )
        self.held = ""
        self._notices.append(self.last_event)
        return True

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def record_expiries(self, now: float, count: int) -> None:
        """TTL checks that just turned critical by expiry (not by a client)."""
        if count:
            self._expiries.append((now, count))

    def recent_expiries(self, now: float) -> int:
        horizon = now - self.settings.window
        while self._expiries and self._expiries[0][0] < horizon:
            self._expiries.popleft()
        return sum(count for _, count in self._expiries)

    def wants_census(self, now: float, *, due: bool) -> bool:
        """Whether to take a census now: something is due, or the periodic
        one (throttled: a census visits every TTL check)."""
        if not self.enabled:
            return False
        return (due and not self.engaged) or now >= self._next_assessment

    def assess(self, now: float, census: Census) -> Transition | None:
        """Engage or release on a fresh census; None when nothing changed."""
        self.census = census
        recent = self.recent_expiries(now)
        at_risk = census.quiet + recent
        population = census.live + recent
        settings = self.settings
        over = (
            at_risk >= settings.min_quiet and at_risk > settings.threshold * population
        )
        self._next_assessment = now + (
            REASSESS_EVERY if over or self.engaged else CENSUS_EVERY
        )
        if over and not self.engaged:
            self.engaged = True
            self.engaged_since = now
            self.engagements += 1
            self.last_event = (
                f"self-preservation brake engaged: {at_risk} of {population} TTL"
                f" checks went quiet within {settings.window:g}s"
                f" ({_percent(at_risk, population)} > {settings.threshold:.0%});"
                " holding TTL expiry and reaping until heartbeats recover"
            )
            self._notices.append(self.last_event)
            return Transition.ENGAGED
        if not over and self.engaged:
            self.engaged = False
            self.last_event = (
                f"self-preservation brake released after"
                f" {now - self.engaged_since:.1f}s: {at_risk} of {population} TTL"
                f" checks quiet ({_percent(at_risk, population)});"
                " held checks get one more TTL"
            )
            self._notices.append(self.last_event)
            return Transition.RELEASED
        return None

    def drain_notices(self) -> list[str]:
        """Log lines for the agent: one per engagement, one per release."""
        notices, self._notices = self._notices, []
        return notices

    def state(self, now: float) -> BrakeState:
        return BrakeState(
            enabled=self.enabled,
            engaged=self.engaged or bool(self.held),
            threshold=self.settings.threshold,
            window_seconds=self.settings.window,
            quiet_after=self.settings.quiet_after,
            min_quiet=self.settings.min_quiet,
            live_checks=self.census.live,
            quiet_checks=self.census.quiet,
            recent_expiries=self.recent_expiries(now),
            engaged_seconds=round(now - self.engaged_since, 3)
            if self.engaged or self.held
            else 0.0,
            engagements=self.engagements,
            last_event=self.last_event,
        )


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "0%"


# ---------------------------------------------------------------- panic


def parse_fraction(text: str) -> float | None:
    """ "0.5", "50%" → 0.5; None for anything else or outside (0, 1]."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        return None
    return value if 0 < value <= 1 else None


def panic_threshold(metas: Iterable[Mapping[str, str]], default: float) -> float:
    """A service's panic threshold: the highest any instance's Meta asks for
    (`waypost-panic-threshold`), else the agent's default (0: off)."""
    asked = [
        value
        for meta in metas
        if PANIC_META_KEY in meta
        and (value := parse_fraction(meta[PANIC_META_KEY])) is not None
    ]
    return max(asked) if asked else default


def is_panicking(passing: int, total: int, threshold: float) -> bool:
    """Fewer than `threshold` of `total` instances pass: answer them all."""
    return threshold > 0 and total > 0 and passing < threshold * total


def panic_header(passing: int, total: int, threshold: float) -> str:
    """The `X-Waypost-Panic` value: why every instance was returned."""
    return (
        f"threshold={threshold:g}; passing={passing}; total={total};"
        " returning all instances"
    )
