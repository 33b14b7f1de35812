"""Auth methods of type `jwt`: verify a signed JWT, then bind it.

As Consul's jwt auth method (internal/go-sso/oidcauth, agent/consul/
authmethod/ssoauth): the token's signature is checked against static PEM
public keys (`JWTValidationPubKeys`) or a JSON Web Key Set (`JWKSURL`,
here a `file://` path: the agent makes no outbound calls); `exp`, `nbf`,
`iss` (`BoundIssuer`) and `aud` (`BoundAudiences`) are enforced with
Consul's leeways; `ClaimMappings` and `ListClaimMappings` turn claims into
the variables binding rules select on (`value.x`, `list.y`) and
interpolate into `BindName` (`${value.x}`). PyJWT does the cryptography.
No I/O: the JWKS file's bytes arrive as an argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import jwt

from waypost.core.acl.model import (
    BindingRule,
    Grants,
    Link,
    NodeIdentity,
    ServiceIdentity,
    TemplatedPolicy,
)
from waypost.core.filterexpr import FilterError, compile_filter
from waypost.exceptions import InvalidRequest, PermissionDenied

#: Consul's default `JWTSupportedAlgs`.
DEFAULT_ALGORITHMS = ("RS256",)
#: Consul's defaults when the leeways are 0 (oidcauth/jwt.go).
DEFAULT_LEEWAY = 150.0
ALLOWED_ALGORITHMS = frozenset(
    {
        "RS256",
        "RS384",
        "RS512",
        "ES256",
        "ES384",
        "ES512",
        "PS256",
        "PS384",
        "PS512",
        "EdDSA",
    }
)

_KNOWN = frozenset(
    {
        "JWTValidationPubKeys",
        "JWKSURL",
        "JWKSCACert",
        "OIDCDiscoveryURL",
        "OIDCDiscoveryCACert",
        "BoundIssuer",
        "BoundAudiences",
        "ClaimMappings",
        "ListClaimMappings",
        "JWTSupportedAlgs",
        "ExpirationLeeway",
        "NotBeforeLeeway",
        "ClockSkewLeeway",
    }
)


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid Auth Method: {message}")


def validate_config(config: Mapping[str, Any]) -> None:
    """Refuse a config that could never verify a token (400 at creation)."""
    unknown = sorted(set(config) - _KNOWN)
    if unknown:
        raise _invalid(f"unknown config field {unknown[0]!r}")
    keys = config.get("JWTValidationPubKeys") or []
    jwks = config.get("JWKSURL") or ""
    if config.get("OIDCDiscoveryURL"):
        # differs: OIDC discovery fetches keys over the network; not served.
        raise _invalid(
            "OIDCDiscoveryURL is not supported; use JWTValidationPubKeys or JWKSURL"
        )
    if bool(keys) == bool(jwks):
        raise _invalid(
            "exactly one of 'JWTValidationPubKeys', 'JWKSURL' or"
            " 'OIDCDiscoveryURL' must be set"
        )
    if jwks and not str(jwks).startswith("file://"):
        raise _invalid("JWKSURL must be a file:// URL (the agent fetches nothing)")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise _invalid("JWTValidationPubKeys must be a list of PEM strings")
    for index, key in enumerate(keys):
        try:
            _load_pem(key)
        except ValueError as exc:
            raise _invalid(
                f"error parsing public key JWTValidationPubKeys[{index}]: {exc}"
            ) from None
    for algorithm in config.get("JWTSupportedAlgs") or ():
        if algorithm not in ALLOWED_ALGORITHMS:
            raise _invalid(f"Invalid supported algorithm: {algorithm}")
    for field in ("ClaimMappings", "ListClaimMappings"):
        mapping = config.get(field) or {}
        if not isinstance(mapping, dict) or not all(
            isinstance(v, str) for v in mapping.values()
        ):
            raise _invalid(f"{field} must map claim names to strings")


def _load_pem(text: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(text.encode())


def validate_selector(selector: str) -> None:
    try:
        compile_filter(selector)
    except FilterError as exc:
        raise InvalidRequest(
            f"invalid Binding Rule: Selector is invalid: {exc}"
        ) from None


def verify(
    token: str,
    config: Mapping[str, Any],
    *,
    jwks: bytes | None,
    now: float,
) -> dict[str, dict[str, Any]]:
    """The verified identity as binding rules see it: `value` and `list`
    variables. Any failure is 403 with the reason (never the token)."""
    if not token:
        raise PermissionDenied("Permission denied: missing bearer token")
    algorithms = list(config.get("JWTSupportedAlgs") or DEFAULT_ALGORITHMS)
    skew = float(config.get("ClockSkewLeeway") or 0) or 60.0
    leeway = (
        max(
            float(config.get("ExpirationLeeway") or 0) or DEFAULT_LEEWAY,
            float(config.get("NotBeforeLeeway") or 0) or DEFAULT_LEEWAY,
        )
        + skew
    )
    audiences = list(config.get("BoundAudiences") or [])
    issuer = config.get("BoundIssuer") or None
    options = {"require": [], "verify_aud": bool(audiences), "verify_iss": bool(issuer)}
    errors: list[str] = []
    for key in _keys(config, jwks, token):
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=audiences or None,
                issuer=issuer,
                leeway=leeway,
                options=options,  # type: ignore[arg-type]
            )
        except jwt.InvalidSignatureError as exc:
            errors.append(str(exc))
            continue
        except jwt.PyJWTError as exc:
            raise PermissionDenied(f"Permission denied: {exc}") from None
        _check_time(claims, now, leeway)
        return _identity(claims, config)
    reason = errors[0] if errors else "no key verifies this token"
    raise PermissionDenied(f"Permission denied: {reason}")


def _keys(config: Mapping[str, Any], jwks: bytes | None, token: str) -> Iterable[Any]:
    for pem in config.get("JWTValidationPubKeys") or ():
        yield _load_pem(pem)
    if jwks is None:
        return
    try:
        key_set = jwt.PyJWKSet.from_json(jwks.decode())
        kid = jwt.get_unverified_header(token).get("kid")
    except (jwt.PyJWTError, UnicodeDecodeError, ValueError) as exc:
        raise PermissionDenied(f"Permission denied: {exc}") from None
    for key in key_set.keys:
        if kid is None or key.key_id == kid:
            yield key.key


def _check_time(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    # PyJWT checks exp and nbf against its own clock; the agent's `now` is
    # the one its tests control, so check again against it.
    expires = claims.get("exp")
    if isinstance(expires, int | float) and now > expires + leeway:
        raise PermissionDenied("Permission denied: Signature has expired")
    not_before = claims.get("nbf")
    if isinstance(not_before, int | float) and now + leeway < not_before:
        raise PermissionDenied("Permission denied: The token is not yet valid (nbf)")


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    # Consul's claim paths: a name, or a JSON pointer ("/a/b").
    if not path.startswith("/"):
        return claims.get(path)
    value: Any = claims
    for part in path[1:].split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part.replace("~1", "/").replace("~0", "~"))
    return value


def _identity(
    claims: Mapping[str, Any], config: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    values: dict[str, Any] = {}
    for claim, name in (config.get("ClaimMappings") or {}).items():
        found = _claim(claims, claim)
        if found is not None:
            if not isinstance(found, str | int | float | bool):
                raise PermissionDenied(
                    f"Permission denied: error converting claim {claim!r} to string"
                )
            values[name] = str(found).lower() if isinstance(found, bool) else str(found)
    lists: dict[str, Any] = {}
    for claim, name in (config.get("ListClaimMappings") or {}).items():
        found = _claim(claims, claim)
        if found is not None:
            items = found if isinstance(found, list) else [found]
            lists[name] = [str(item) for item in items]
    return {"value": values, "list": lists}


_HIL = re.compile(r"\$\{([^}]*)\}")
_BIND_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,256}$")


def _interpolate(
    template: str, identity: Mapping[str, Mapping[str, Any]]
) -> str | None:
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        scope, _, name = match.group(1).strip().partition(".")
        value = identity.get(scope, {}).get(name)
        if not isinstance(value, str):
            missing = True
            return ""
        return value

    name = _HIL.sub(substitute, template)
    return None if missing or not _BIND_NAME.match(name) else name


def bind(
    rules: Iterable[BindingRule],
    identity: Mapping[str, Mapping[str, Any]],
    *,
    datacenter: str,
) -> Grants:
    """What the matching binding rules grant (Consul's binder.Bind)."""
    services: list[ServiceIdentity] = []
    nodes: list[NodeIdentity] = []
    roles: list[Link] = []
    policies: list[Link] = []
    templated: list[TemplatedPolicy] = []
    for rule in sorted(rules, key=lambda r: r.id):
        if rule.selector and not compile_filter(rule.selector).matches(identity):
            continue
        name = _interpolate(rule.bind_name, identity)
        if name is None:
            continue
        if rule.bind_type == "service":
            services.append(ServiceIdentity(service_name=name))
        elif rule.bind_type == "node":
            nodes.append(NodeIdentity(node_name=name, datacenter=datacenter))
        elif rule.bind_type == "role":
            roles.append(Link(name=name))
        elif rule.bind_type == "policy":
            policies.append(Link(name=name))
        elif rule.bind_type == "templated-policy":
            templated.append(TemplatedPolicy(template_name=name))
    return Grants(
        policies=tuple(policies),
        roles=tuple(roles),
        service_identities=tuple(services),
        node_identities=tuple(nodes),
        templated_policies=tuple(templated),
    )
