"""The web dashboard served at `/ui/`: static ES modules and CSS committed as
they run (no build step, nothing fetched from outside the agent), plus the
few read endpoints the pages need beyond Consul's `/v1` (`handlers.py`).

Like `http/`, it sees only the `Registry`; it never imports the agent, the
stores or the runner.
"""

from __future__ import annotations
