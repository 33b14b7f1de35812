"""`waypost agent`'s ACL flags: Consul's `acl` stanza as flags.

Each is also read from the environment (`WAYPOST_ACL_ENABLED`,
`WAYPOST_ACL_DEFAULT_POLICY`, `WAYPOST_ACL_INITIAL_MANAGEMENT`,
`WAYPOST_ACL_ENABLE_TOKEN_PERSISTENCE`); the environment is the place for
the initial management secret, which a command line shows to `ps`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from waypost.config import AclConfig

F = TypeVar("F", bound=Callable[..., Any])


def acl_options(command: F) -> F:
    """Add the --acl-* flags to a click command."""
    options = [
        click.option(
            "--acl-enabled",
            is_flag=True,
            help="Check an ACL token on every request (Consul's acl.enabled).",
        ),
        click.option(
            "--acl-default-policy",
            type=click.Choice(["allow", "deny"], case_sensitive=False),
            default="allow",
            show_default=True,
            help="What a token may do where no rule of its policies says;"
            " production wants deny.",
        ),
        click.option(
            "--acl-initial-management",
            default="",
            metavar="TOKEN",
            help="Secret of a management token created at start-up (Consul's"
            " acl.tokens.initial_management); better given as"
            " WAYPOST_ACL_INITIAL_MANAGEMENT.",
        ),
        click.option(
            "--acl-enable-token-persistence",
            is_flag=True,
            help="Keep tokens set through /v1/agent/token across restarts.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def acl_settings(options: dict[str, Any]) -> AclConfig:
    """The AclConfig from the options `acl_options` added (popped)."""
    config = AclConfig(
        enabled=bool(options.pop("acl_enabled")),
        default_policy=str(options.pop("acl_default_policy")).lower(),
        initial_management=str(options.pop("acl_initial_management") or ""),
        enable_token_persistence=bool(options.pop("acl_enable_token_persistence")),
    )
    if config.initial_management and not config.enabled:
        raise click.BadParameter(
            "needs --acl-enabled", param_hint="--acl-initial-management"
        )
    return config
