"""A token's permissions, compiled once for cheap per-request checks.

Consul's policyAuthorizer keeps one radix tree per resource and walks it on
every check. Here a token's merged rules become, per resource, a dict of
exact segments and a list of prefixes (longest first); each answer is
memoized per (resource, segment, access), so the hot path (the same
service read again and again) is one dict lookup. The state that built an
authorizer drops it whenever any ACL row changes.

Semantics, as Consul's (acl/policy_authorizer.go, policy_merger.go):
rules for the same segment from several policies merge to the strongest,
deny > write > list > read; an exact rule beats every prefix rule; among
prefixes the longest wins; a matching rule decides (read does not grant
write: denied, not "default"); only when no rule matches does the default
policy decide. `acl` is never granted by the default policy (Consul's
allow-all authorizer does not manage ACLs). No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from waypost.core.acl.rules import DENY, LEVEL_NAMES, READ, WRITE, Rule

MEMO_SIZE = 4096


class Compiled:
    """Merged rules of one resource: exact segments and prefixes."""

    __slots__ = ("exact", "prefixes")

    def __init__(self) -> None:
        self.exact: dict[str, int] = {}
        #: (prefix, level), longest prefix first.
        self.prefixes: list[tuple[str, int]] = []

    def rule(self, segment: str) -> int | None:
        level = self.exact.get(segment)
        if level is not None:
            return level
        for prefix, level in self.prefixes:
            if segment.startswith(prefix):
                return level
        return None


def compile_rules(rules: Iterable[Rule]) -> dict[str, Compiled]:
    exact: dict[str, dict[str, int]] = {}
    prefixes: dict[str, dict[str, int]] = {}
    for rule in rules:
        table = prefixes if rule.is_prefix else exact
        segments = table.setdefault(rule.resource, {})
        # Merging policies: the stronger level wins (deny > write > list > read).
        segments[rule.segment] = max(segments.get(rule.segment, 0), rule.level)
    compiled: dict[str, Compiled] = {}
    for resource in exact.keys() | prefixes.keys():
        entry = compiled[resource] = Compiled()
        entry.exact = exact.get(resource, {})
        entry.prefixes = sorted(
            prefixes.get(resource, {}).items(), key=lambda item: -len(item[0])
        )
    return compiled


class Authorizer:
    """What one token may do.

    `accessor_id` names the token in refusals (never its secret).
    """

    __slots__ = ("_compiled", "_default", "_memo", "accessor_id", "allows_all")

    def __init__(
        self,
        accessor_id: str,
        rules: Iterable[Rule],
        *,
        default_allow: bool,
        allows_all: bool = False,
    ) -> None:
        self.accessor_id = accessor_id
        self._compiled = compile_rules(rules)
        self._default = default_allow
        #: A management token: every check passes without a lookup.
        self.allows_all = allows_all
        self._memo: dict[tuple[str, str, int], bool] = {}

    def allows(self, resource: str, segment: str, access: int) -> bool:
        if self.allows_all:
            return True
        key = (resource, segment, access)
        decided = self._memo.get(key)
        if decided is None:
            decided = self._decide(resource, segment, access)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = decided
        return decided

    def _decide(self, resource: str, segment: str, access: int) -> bool:
        compiled = self._compiled.get(resource)
        level = compiled.rule(segment) if compiled is not None else None
        if level is None:
            return self._default and resource != "acl"
        return level != DENY and level >= access

    def allows_key_write_prefix(self, prefix: str) -> bool:
        """Consul's KeyWritePrefix: write on the prefix, and no rule under it
        that does not grant write (a recursive delete must be allowed all)."""
        if self.allows_all:
            return True
        compiled = self._compiled.get("key")
        if compiled is None:
            return self._default
        base: int | None = None
        for candidate, level in compiled.prefixes:
            if prefix.startswith(candidate):
                base = level
                break
        if base is not None and base != WRITE:
            return False
        for candidate, level in (*compiled.prefixes, *compiled.exact.items()):
            if candidate.startswith(prefix) and level != WRITE:
                return False
        return True if base is not None else self._default


def access_name(access: int) -> str:
    return LEVEL_NAMES.get(access, "read")


__all__ = ["READ", "WRITE", "Authorizer", "access_name", "compile_rules"]
