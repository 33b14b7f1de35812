"""The dashboard in a real browser against a real agent: every page loads
cleanly, updates live, and its actions work by keyboard.

Timing claims ("within 1 s") are Playwright expectations with a 1 s timeout
started after the API call that causes the change returned; nothing sleeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.ui.conftest import AXE, DESKTOP, PHONE

from waypost.testing import AgentProcess, run_agent

pw = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
expect = pw.expect

LIVE = 1000  # ms: how soon a change must show without a reload

PAGES = {
    "services": "#/services",
    "service": "#/services/web",
    "nodes": "#/nodes",
    "kv": "#/kv/config/",
    "kv-key": "#/kv/config/app.json",
    "health": "#/health",
}
#: What shows that a page has its data, by page.
LOADED = {
    "services": 'tr[data-service="web"]',
    "service": 'article[data-instance="web-1"]',
    "nodes": "tr[data-member]",
    "kv": 'a[href="#/kv/config/app.json"]',
    "kv-key": "#kv-meta:has-text('ModifyIndex')",
    "health": "#beats-rate:not(:has-text('measuring'))",
}


def put(agent: AgentProcess, path: str, body: object = None, **params: str) -> Any:
    content = (
        body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    )
    response = httpx.put(f"{agent.url}{path}", content=content, params=params)
    assert response.status_code == 200, response.text
    return response.json() if response.content else None


def register(agent: AgentProcess, name: str, sid: str, **extra: object) -> None:
    put(agent, "/v1/agent/service/register", {"Name": name, "ID": sid, **extra})


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """One agent with a small, varied catalog (the screenshots show it), on
    the durable SQLite store (so the health page has commits to time)."""
    folder = tmp_path_factory.mktemp("ui-agent")
    with run_agent(node="agent-1", dev=False, data_dir=folder) as a:
        ttl = {"TTL": "10m"}
        for i, verb in enumerate(["pass", "pass", "warn"], 1):
            register(
                a,
                "web",
                f"web-{i}",
                Port=8080 + i,
                Address=f"10.0.0.{i}",
                Tags=["http", "v2" if i < 3 else "v1"],
                Meta={"version": "2.4.1" if i < 3 else "2.3.0", "zone": f"eu-{i}"},
                Weights={"Passing": 10, "Warning": 1},
                Check={"CheckID": f"web-{i}-ttl", "Name": "heartbeat", **ttl},
            )
            put(
                a,
                f"/v1/agent/check/{verb}/web-{i}-ttl",
                note=f"{verb}: last beat at 12:00:0{i}",
            )
        for name, tags in [
            ("api", ["grpc", "public"]),
            ("db", ["postgres", "primary"]),
            ("cache", ["redis"]),
            ("search", ["http"]),
        ]:
            register(
                a,
                name,
                f"{name}-1",
                Port=5432,
                Tags=tags,
                Check={"CheckID": f"{name}-1-ttl", **ttl},
            )
            put(a, f"/v1/agent/check/pass/{name}-1-ttl")
        put(a, "/v1/agent/check/fail/cache-1-ttl", note="connection refused")
        put(
            a,
            "/v1/catalog/register",
            {
                "Node": "ext-db",
                "Address": "10.0.9.9",
                "Service": {
                    "Service": "billing",
                    "ID": "billing-1",
                    "Port": 9000,
                    "Tags": ["external"],
                },
                "Check": {
                    "CheckID": "billing-alive",
                    "ServiceID": "billing-1",
                    "Status": "passing",
                    "Output": "HTTP 200",
                },
            },
        )
        put(a, "/v1/kv/config/app.json", '{\n  "feature": true,\n  "limit": 100\n}\n')
        put(a, "/v1/kv/config/flags/beta", "on")
        yield a


class Tab:
    """A page that records console errors, page errors and failed requests."""

    def __init__(self, page: Any, agent: AgentProcess) -> None:
        self.page = page
        self.agent = agent
        self.errors: list[str] = []
        self.leaving = False
        page.on(
            "console",
            lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"),
        )
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("requestfailed", self._failed)
        page.on(
            "response",
            lambda r: r.status >= 400 and self.errors.append(f"{r.status} {r.url}"),
        )

    def _failed(self, request: Any) -> None:
        # A page's blocking queries are aborted on purpose when it is left.
        if "index=" in request.url and "ERR_ABORTED" in (request.failure or ""):
            return
        self.errors.append(f"request failed: {request.url} {request.failure}")

    def open(self, hash_: str) -> Any:
        self.page.goto(f"{self.agent.url}/ui/{hash_}")
        return self.page


@pytest.fixture
def tab(browser: Any, agent: AgentProcess) -> Iterator[Tab]:
    context = browser.new_context(viewport=DESKTOP, color_scheme="light")
    try:
        yield Tab(context.new_page(), agent)
    finally:
        context.close()


def seed_history(page: Any, now_ms: float) -> None:
    """A returning visitor's browser: an hour of passing counts recorded by
    earlier visits (the sparkline is kept in localStorage)."""
    history = {
        "web": [
            [now_ms - 3_600_000 + m * 60_000, 3 if m < 20 else 1 if m < 27 else 2]
            for m in range(0, 60, 3)
        ],
        "api": [[now_ms - 3_000_000, 1]],
        "db": [[now_ms - 3_600_000, 0], [now_ms - 2_400_000, 1]],
        "cache": [[now_ms - 3_600_000, 1], [now_ms - 600_000, 0]],
    }
    page.evaluate(
        "h => localStorage.setItem('waypost.passing-history', JSON.stringify(h))",
        history,
    )


@pytest.mark.parametrize("name", sorted(PAGES))
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_page_loads_without_errors(
    browser: Any, agent: AgentProcess, screenshots: Path, name: str, size: str
) -> None:
    """0 console errors, 0 failed requests; a screenshot per page and width."""
    for scheme in ("light", "dark") if size == "desktop" else ("light",):
        context = browser.new_context(
            viewport=DESKTOP if size == "desktop" else PHONE, color_scheme=scheme
        )
        try:
            seeding = context.new_page()
            seeding.goto(f"{agent.url}/ui/#/kv/")  # the origin holds the history
            seed_history(seeding, time.time() * 1000)
            seeding.close()
            tab = Tab(context.new_page(), agent)
            page = tab.open(PAGES[name])
            expect(page.locator(LOADED[name]).first).to_be_visible(timeout=10_000)
            state = "polling" if name == "health" else "live"
            expect(page.locator("#live")).to_have_attribute("data-state", state)
            suffix = "" if scheme == "light" else "-dark"
            page.screenshot(
                path=str(screenshots / f"{name}-{size}{suffix}.png"), full_page=True
            )
            assert tab.errors == []
        finally:
            context.close()


def test_a_registration_appears_without_reload_within_1s(tab: Tab) -> None:
    page = tab.open("#/services")
    expect(page.locator('tr[data-service="web"]')).to_be_visible(timeout=10_000)
    page.evaluate("window.notReloaded = true")
    register(tab.agent, "fresh-svc", "fresh-1", Port=1, Tags=["new"])
    expect(page.locator('tr[data-service="fresh-svc"]')).to_be_visible(timeout=LIVE)
    assert page.evaluate("window.notReloaded") is True
    assert tab.errors == []


def test_a_check_turning_critical_turns_red_within_1s(tab: Tab) -> None:
    register(
        tab.agent,
        "flappy",
        "flappy-1",
        Port=1,
        Check={"CheckID": "flappy-ttl", "TTL": "10m"},
    )
    put(tab.agent, "/v1/agent/check/pass/flappy-ttl")
    page = tab.open("#/services/flappy")
    instance = page.locator('article[data-instance="flappy-1"]')
    expect(instance).to_have_attribute("data-status", "passing", timeout=10_000)
    put(tab.agent, "/v1/agent/check/fail/flappy-ttl", note="boom")
    expect(instance).to_have_attribute("data-status", "critical", timeout=LIVE)
    badge = instance.locator('tr[data-check="flappy-ttl"] .badge')
    expect(badge).to_have_text("critical", timeout=LIVE)
    expect(instance.locator('tr[data-check="flappy-ttl"] pre.output')).to_have_text(
        "boom"
    )
    red = "rgb(207, 34, 46)"  # --crit-dot (light theme)
    expect(instance.locator("h3 .dot")).to_have_css("background-color", red)
    # The services page shows it too, with the same one blocking query.
    page.goto(f"{tab.agent.url}/ui/#/services")
    row = page.locator('tr[data-service="flappy"]')
    expect(row).to_have_attribute("data-status", "critical", timeout=10_000)
    put(tab.agent, "/v1/agent/check/pass/flappy-ttl")
    expect(row).to_have_attribute("data-status", "passing", timeout=LIVE)
    put(tab.agent, "/v1/agent/check/fail/flappy-ttl")
    expect(row).to_have_attribute("data-status", "critical", timeout=LIVE)
    expect(row.locator(".dot")).to_have_css("background-color", red)
    assert tab.errors == []


def test_maintenance_toggles(tab: Tab) -> None:
    register(tab.agent, "maint", "maint-1", Port=1)
    page = tab.open("#/services/maint")
    instance = page.locator('article[data-instance="maint-1"]')
    start = instance.get_by_role("button", name="Start maintenance")
    start.click()
    expect(instance).to_have_attribute("data-status", "maintenance", timeout=LIVE)
    checks = httpx.get(f"{tab.agent.url}/v1/agent/checks").json()
    assert (
        checks["_service_maintenance:maint-1"]["Notes"]
        or checks["_service_maintenance:maint-1"]["Status"] == "critical"
    )
    end = instance.get_by_role("button", name="End maintenance")
    expect(end).to_have_attribute("aria-pressed", "true")
    end.click()
    expect(instance).to_have_attribute("data-status", "passing", timeout=LIVE)
    assert (
        "_service_maintenance:maint-1"
        not in httpx.get(f"{tab.agent.url}/v1/agent/checks").json()
    )
    assert tab.errors == []


def test_deregister_asks_first(tab: Tab) -> None:
    register(tab.agent, "gone", "gone-1", Port=1)
    page = tab.open("#/services/gone")
    instance = page.locator('article[data-instance="gone-1"]')
    instance.get_by_role("button", name="Deregister").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("gone-1")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert "gone-1" in httpx.get(f"{tab.agent.url}/v1/agent/services").json()
    instance.get_by_role("button", name="Deregister").click()
    dialog.get_by_role("button", name="Deregister").click()
    expect(instance).to_have_count(0, timeout=LIVE)
    assert "gone-1" not in httpx.get(f"{tab.agent.url}/v1/agent/services").json()
    assert tab.errors == []


def test_kv_edit_shows_a_diff_and_saves_with_cas(tab: Tab) -> None:
    put(tab.agent, "/v1/kv/edit/me", "one\ntwo\n")
    page = tab.open("#/kv/edit/me")
    value = page.get_by_label("Value")
    expect(value).to_have_value("one\ntwo\n", timeout=10_000)
    value.fill("one\nTWO\n")
    page.get_by_role("button", name="Review changes").click()
    expect(page.locator("#kv-diff .d-del")).to_have_text("- two")
    expect(page.locator("#kv-diff .d-add")).to_have_text("+ TWO")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#kv-notice")).to_have_text("Saved.")
    assert httpx.get(f"{tab.agent.url}/v1/kv/edit/me?raw").text == "one\nTWO\n"
    assert tab.errors == []


def test_kv_edit_with_a_stale_cas_is_refused_and_says_so(tab: Tab) -> None:
    put(tab.agent, "/v1/kv/race/key", "mine")
    page = tab.open("#/kv/race/key")
    value = page.get_by_label("Value")
    expect(value).to_have_value("mine", timeout=10_000)
    value.fill("my edit")
    put(tab.agent, "/v1/kv/race/key", "theirs")  # someone else, meanwhile
    expect(page.locator("#kv-meta")).to_contain_text(
        "changed since loaded", timeout=LIVE
    )
    page.get_by_role("button", name="Review changes").click()
    page.get_by_role("button", name="Save").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Not saved: the key changed since you loaded it")
    assert httpx.get(f"{tab.agent.url}/v1/kv/race/key?raw").text == "theirs"
    page.get_by_role("button", name="Revert").click()
    expect(value).to_have_value("theirs")
    assert tab.errors == []


def _tab_through(page: Any, stops: int) -> list[str]:
    """Press Tab `stops` times; the accessible names of what got focus."""
    seen = []
    for _ in range(stops):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate(
                "() => { const e = document.activeElement; return (e.id ||"
                " e.getAttribute('aria-label') || e.textContent || e.tagName).trim() }"
            )
        )
    return seen


def test_keyboard_alone_reaches_every_action(tab: Tab) -> None:
    register(
        tab.agent, "keys", "keys-1", Port=1, Check={"CheckID": "keys-ttl", "TTL": "10m"}
    )
    page = tab.open("#/services/keys")
    expect(page.locator('article[data-instance="keys-1"]')).to_be_visible(
        timeout=10_000
    )
    reached = _tab_through(page, 20)
    for name in [
        "skip",
        "Services",
        "Nodes",
        "Key/Value",
        "Registry health",
        "token",
        "Use",
        "token-clear",
        "Copy curl",
        "Copy dig",
        "Copy waypost",
        "Start maintenance",
        "Deregister",
    ]:
        assert name in reached, (name, reached)
    # Maintenance by keyboard: focus stays on the toggle across the update.
    page.get_by_role("button", name="Start maintenance").focus()
    page.keyboard.press("Enter")
    expect(page.locator('article[data-instance="keys-1"]')).to_have_attribute(
        "data-status", "maintenance", timeout=LIVE
    )
    expect(page.get_by_role("button", name="End maintenance")).to_be_focused()
    # The confirmation dialog: opened by Enter, Cancel first, Escape closes.
    page.get_by_role("button", name="Deregister").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    # The services filters and the KV editor's buttons.
    page.goto(f"{tab.agent.url}/ui/#/services")
    expect(page.locator('tr[data-service="web"]')).to_be_visible(timeout=10_000)
    reached = _tab_through(page, 16)
    for name in ["svc-search", "svc-tag", "svc-status", "web"]:
        assert name in reached, (name, reached)
    page.goto(f"{tab.agent.url}/ui/#/kv/config/app.json")
    expect(page.locator("#kv-meta")).to_contain_text("ModifyIndex", timeout=10_000)
    reached = _tab_through(page, 16)
    for name in ["kv-value", "kv-review", "kv-revert", "kv-delete"]:
        assert name in reached, (name, reached)
    page.get_by_label("Value").focus()
    page.keyboard.type("x")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # Review changes
    expect(page.get_by_role("button", name="Save")).to_be_focused()
    assert tab.errors == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violations(
    browser: Any, agent: AgentProcess, scheme: str
) -> None:
    context = browser.new_context(
        viewport=DESKTOP, color_scheme=scheme, bypass_csp=True
    )
    problems: list[str] = []
    try:
        page = context.new_page()
        for name, hash_ in sorted(PAGES.items()):
            page.goto(f"{agent.url}/ui/{hash_}")
            expect(page.locator(LOADED[name]).first).to_be_visible(timeout=10_000)
            page.add_script_tag(path=str(AXE))
            result = page.evaluate(
                "async () => await axe.run(document, {resultTypes: ['violations']})"
            )
            for violation in result["violations"]:
                if violation["impact"] in ("serious", "critical"):
                    targets = [n["target"] for n in violation["nodes"][:3]]
                    what = f"{violation['id']} {violation['help']}"
                    problems.append(f"{name}/{scheme}: {what} {targets}")
    finally:
        context.close()
    assert problems == []


def test_services_filter_by_name_tag_and_status(tab: Tab) -> None:
    page = tab.open("#/services")
    rows = page.locator("tr[data-service]")
    expect(page.locator('tr[data-service="web"]')).to_be_visible(timeout=10_000)
    page.get_by_label("Name").fill("we")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-service", "web")
    page.get_by_label("Name").fill("")
    page.get_by_label("Tag").select_option("postgres")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-service", "db")
    page.get_by_label("Tag").select_option("")
    page.get_by_label("Status").select_option("warning")
    expect(page.locator('tr[data-service="web"]')).to_be_visible()
    expect(page.locator('tr[data-service="db"]')).to_have_count(0)
    page.get_by_label("Status").select_option("critical")
    expect(page.locator('tr[data-service="cache"]')).to_be_visible()
    expect(page.locator('tr[data-service="web"]')).to_have_count(0)
    expect(page.locator("#svc-count")).to_contain_text(" of ")
    assert tab.errors == []


def test_kv_create_and_delete_with_confirmation(tab: Tab) -> None:
    page = tab.open("#/kv/made/")
    expect(page.get_by_text("No keys here yet.")).to_be_visible(timeout=10_000)
    page.get_by_label("Key", exact=True).fill("by-hand")
    page.get_by_label("Value", exact=True).fill("hello")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#kv-meta")).to_contain_text("ModifyIndex")
    assert httpx.get(f"{tab.agent.url}/v1/kv/made/by-hand?raw").text == "hello"
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{tab.agent.url}/ui/#/kv/made/")
    assert httpx.get(f"{tab.agent.url}/v1/kv/made/by-hand").status_code == 404
    expect(page.get_by_text("No keys here yet.")).to_be_visible()
    assert tab.errors == []


def test_copy_puts_the_command_line_on_the_clipboard(tab: Tab) -> None:
    tab.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = tab.open("#/services/web")
    page.get_by_role("button", name="Copy curl").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert (
        copied == f"curl -s 'http://{tab.agent.address}/v1/health/service/web?passing'"
    )
    assert tab.errors == []
