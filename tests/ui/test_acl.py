"""With ACLs on, the dashboard shows only what its token may read, and says
so when the token may read nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.ui.conftest import DESKTOP

from waypost.testing import AgentProcess, run_agent

pw = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
expect = pw.expect

MGMT = uuid.uuid4().hex


@pytest.fixture(scope="module")
def acl_agent() -> Iterator[tuple[AgentProcess, str]]:
    """An agent denying by default; `web` and `db` registered; a token that
    may read `web` only."""
    args = ["--acl-enabled", "--acl-default-policy", "deny"]
    with run_agent(extra_args=[*args, "--acl-initial-management", MGMT]) as agent:
        headers = {"X-Consul-Token": MGMT}
        for name in ("web", "db"):
            body = {"Name": name, "ID": f"{name}-1", "Port": 80}
            response = httpx.put(
                f"{agent.url}/v1/agent/service/register", json=body, headers=headers
            )
            assert response.status_code == 200, response.text
        rules = 'service "web" { policy = "read" }\nnode_prefix "" { policy = "read" }'
        policy = httpx.put(
            f"{agent.url}/v1/acl/policy",
            json={"Name": "web-reader", "Rules": rules},
            headers=headers,
        ).json()
        token = httpx.put(
            f"{agent.url}/v1/acl/token",
            json={"Policies": [{"ID": policy["ID"]}]},
            headers=headers,
        ).json()
        yield agent, token["SecretID"]


def test_the_token_field_decides_what_is_shown(
    browser: Any, acl_agent: tuple[AgentProcess, str]
) -> None:
    agent, reader = acl_agent
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(f"{agent.url}/ui/#/services")
        # No token: the anonymous token may read nothing; the page says so.
        hidden = page.locator("#svc-notice")
        expect(hidden).to_contain_text("Some services are hidden")
        expect(hidden).to_have_attribute("role", "status")
        expect(page.locator("tr[data-service]")).to_have_count(0)
        # A token for `web`: web is listed, db is not.
        page.get_by_label("ACL token").fill(reader)
        page.get_by_role("button", name="Use").click()
        expect(page.locator('tr[data-service="web"]')).to_be_visible()
        expect(page.locator('tr[data-service="db"]')).to_have_count(0)
        expect(hidden).to_contain_text("Some services are hidden")
        # The management token: everything, and nothing said hidden.
        page.get_by_label("ACL token").fill(MGMT)
        page.get_by_role("button", name="Use").click()
        expect(page.locator('tr[data-service="db"]')).to_be_visible()
        expect(hidden).to_be_hidden()
        page.get_by_label("ACL token").fill(reader)
        page.get_by_role("button", name="Use").click()
        expect(page.locator('tr[data-service="db"]')).to_have_count(0)
        # It is kept for the next visit, and sent as X-Consul-Token.
        assert page.evaluate("localStorage.getItem('waypost.token')") == reader
        with page.expect_request("**/v1/internal/ui/services*") as sent:
            page.reload()
        assert sent.value.headers["x-consul-token"] == reader
        # A write the token may not make: refused with the reason shown.
        page.goto(f"{agent.url}/ui/#/services/web")
        instance = page.locator('article[data-instance="web-1"]')
        instance.get_by_role("button", name="Deregister").click()
        page.get_by_role("dialog").get_by_role("button", name="Deregister").click()
        expect(page.get_by_role("alert")).to_contain_text("Permission denied")
        services = httpx.get(
            f"{agent.url}/v1/agent/services", headers={"X-Consul-Token": MGMT}
        ).json()
        assert "web-1" in services
    finally:
        context.close()
