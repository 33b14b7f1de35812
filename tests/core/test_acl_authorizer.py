"""Consul's rule semantics: most specific wins, exact beats prefix, deny
beats all when policies merge, read does not grant write, the default
decides only where no rule matches (and never grants `acl`)."""

from __future__ import annotations

import pytest

from waypost.core.acl.authorizer import Authorizer
from waypost.core.acl.rules import LIST, READ, WRITE, parse_rules
from waypost.exceptions import InvalidRequest


def authorizer(*policies: str, default_allow: bool = False) -> Authorizer:
    rules = [rule for text in policies for rule in parse_rules(text)]
    return Authorizer("a-token", rules, default_allow=default_allow)


def test_exact_beats_prefix_and_the_longest_prefix_wins() -> None:
    authz = authorizer(
        """
        service_prefix "" { policy = "read" }
        service_prefix "web" { policy = "write" }
        service_prefix "web-admin" { policy = "deny" }
        service "web-admin-ui" { policy = "read" }
        """
    )
    assert authz.allows("service", "db", READ)
    assert not authz.allows("service", "db", WRITE)
    assert authz.allows("service", "web-1", WRITE)
    assert not authz.allows("service", "web-admin-x", READ)
    assert authz.allows("service", "web-admin-ui", READ)
    assert not authz.allows("service", "web-admin-ui", WRITE)


def test_deny_beats_write_when_policies_merge() -> None:
    authz = authorizer(
        'key_prefix "app/" { policy = "write" }',
        'key_prefix "app/" { policy = "deny" }',
    )
    assert not authz.allows("key", "app/x", READ)


def test_write_beats_read_when_policies_merge() -> None:
    authz = authorizer(
        'node "n1" { policy = "read" }', 'node "n1" { policy = "write" }'
    )
    assert authz.allows("node", "n1", WRITE)


def test_a_matching_read_rule_refuses_write_even_when_the_default_allows() -> None:
    authz = authorizer('service "web" { policy = "read" }', default_allow=True)
    assert not authz.allows("service", "web", WRITE)
    assert authz.allows("service", "other", WRITE)  # no rule: the default


def test_list_grants_read_and_list_not_write() -> None:
    authz = authorizer('key_prefix "a/" { policy = "list" }')
    assert authz.allows("key", "a/b", READ)
    assert authz.allows("key", "a/b", LIST)
    assert not authz.allows("key", "a/b", WRITE)


def test_the_default_policy_never_grants_acl() -> None:
    assert not authorizer(default_allow=True).allows("acl", "", READ)
    assert authorizer('acl = "read"').allows("acl", "", READ)
    assert not authorizer('acl = "read"').allows("acl", "", WRITE)


def test_recursive_key_write_needs_write_on_everything_beneath() -> None:
    authz = authorizer(
        'key_prefix "app/" { policy = "write" }\nkey "app/secret" { policy = "read" }'
    )
    assert authz.allows_key_write_prefix("app/public/")
    assert not authz.allows_key_write_prefix("app/")
    assert not authorizer().allows_key_write_prefix("app/")


def test_json_rules_read_like_hcl() -> None:
    hcl = authorizer('service "web" { policy = "write" }\noperator = "read"')
    json = authorizer('{"service": {"web": {"policy": "write"}}, "operator": "read"}')
    for authz in (hcl, json):
        assert authz.allows("service", "web", WRITE)
        assert authz.allows("operator", "", READ)
        assert not authz.allows("operator", "", WRITE)


@pytest.mark.parametrize(
    "rules",
    [
        'service "web" { policy = "list" }',  # list is for keys only
        'service "web" { policy = "all" }',
        'operator = "sudo"',
        'unknown "x" { policy = "read" }',
        'service "web" { policy = ',
    ],
)
def test_bad_rules_are_a_400(rules: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_rules(rules)
