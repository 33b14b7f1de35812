"""The registry-health page against an agent whose brake engages: clients
going quiet at once show as self-preservation engaged, why and since when;
heartbeats show as a rate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.ui.conftest import DESKTOP
from tests.ui.test_dashboard import Tab

from waypost.testing import AgentProcess, run_agent

pw = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
expect = pw.expect

QUIET = 12  # TTL checks that go quiet together: over the brake's minimum of 10


@pytest.fixture
def brake_agent() -> Iterator[AgentProcess]:
    with run_agent(node="braking") as agent:
        yield agent


def test_heartbeats_per_second_and_the_brake_engaging(
    browser: Any, brake_agent: AgentProcess
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    with httpx.Client(base_url=brake_agent.url, timeout=10) as http:
        try:
            body = {"Name": "beat", "ID": "beat-1", "Check": {"TTL": "10m"}}
            assert http.put("/v1/agent/service/register", json=body).status_code == 200
            tab = Tab(context.new_page(), brake_agent)
            page = tab.open("#/health")
            brake = page.locator("#brake .big")
            expect(brake).to_have_attribute("data-engaged", "false", timeout=10_000)
            # Heartbeats until a 2 s poll has seen them as a rate.
            rate = page.locator("#beats-rate")
            deadline = time.monotonic() + 20
            while True:
                for _ in range(10):
                    http.put("/v1/agent/check/pass/service:beat-1")
                try:
                    expect(rate).not_to_have_text("0.0 /s", timeout=200)
                    expect(rate).not_to_have_text("measuring…", timeout=200)
                    break
                except AssertionError:
                    assert time.monotonic() < deadline, "no heartbeat rate shown"
            assert float(rate.inner_text().split()[0]) > 0
            # Twelve clients heard from once, then quiet: the brake engages.
            for i in range(QUIET):
                body = {"Name": "quiet", "ID": f"q-{i}", "Check": {"TTL": "2s"}}
                assert (
                    http.put("/v1/agent/service/register", json=body).status_code == 200
                )
                assert (
                    http.put(f"/v1/agent/check/pass/service:q-{i}").status_code == 200
                )
            expect(brake).to_have_attribute("data-engaged", "true", timeout=15_000)
            expect(brake).to_have_text("engaged")
            card = page.locator("#brake")
            expect(card).to_contain_text("TTL checks went quiet")
            expect(card).to_contain_text("expiry and reaping are held")
            since = card.locator("dt:text-is('Since') + dd")
            expect(since).not_to_have_text("—")
            expect(
                card.locator("dt:text-is('Engagements since start') + dd")
            ).to_have_text("1")
            assert tab.errors == []
        finally:
            context.close()
