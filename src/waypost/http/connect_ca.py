"""The Connect CA, as Consul's built-in (`consul`) provider keeps it: a real
root certificate made with `cryptography` (EC P-256 by default), its SPIFFE
trust domain `<cluster id>.consul` as a URI SAN, kept durable as settings
rows and made once (a CAS on an absent row: one root, whichever agent asks
first). `/v1/connect/ca/roots`, `/v1/connect/ca/configuration`,
`/v1/agent/connect/ca/roots`, `/v1/agent/connect/ca/leaf/:service`.

Data for tools that read it: waypost runs no proxies, so nothing here is
used for mTLS by waypost itself.
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from waypost.core.config.changes import (
    CA_CONFIG,
    CA_ROOTS,
    PutSetting,
    setting_topic,
)
from waypost.core.config.model import Setting
from waypost.durations import format_duration, parse_duration
from waypost.exceptions import InvalidRequest
from waypost.http.catalog import require_local_datacenter
from waypost.http.decode import decode_json
from waypost.http.messages import Query, Request, Response, json_response

if TYPE_CHECKING:
    from waypost.registry import Registry

TOPICS = [setting_topic(CA_ROOTS), setting_topic(CA_CONFIG)]
HOUR = 3600.0
#: Consul's defaults for the consul provider (agent/config/default.go).
DEFAULTS: dict[str, Any] = {
    "LeafCertTTL": "72h",
    "IntermediateCertTTL": "8760h",
    "RootCertTTL": "87600h",
    "PrivateKeyType": "ec",
    "PrivateKeyBits": 256,
}
KEY_BITS = {"ec": (224, 256, 384, 521), "rsa": (2048, 4096)}
_CURVES: dict[int, ec.EllipticCurve] = {
    224: ec.SECP224R1(),
    256: ec.SECP256R1(),
    384: ec.SECP384R1(),
    521: ec.SECP521R1(),
}
PEM_TYPE = (b"content-type", b"application/pem-certificate-chain")

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def colon_hex(data: bytes) -> str:
    """Consul's connect.HexString: lowercase hex bytes joined by colons."""
    return ":".join(f"{b:02x}" for b in data)


def _new_key(key_type: str, bits: int) -> Key:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return ec.generate_private_key(_CURVES[bits])


def _key_pem(key: Key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _key_id(public: Any) -> bytes:
    return x509.SubjectKeyIdentifier.from_public_key(public).digest


def make_root(
    cluster_id: str, config: dict[str, Any], serial: int, key: Key | None = None
) -> dict[str, Any]:
    """A self-signed root as connect.CARoot: what the provider's
    GenerateRoot makes (CN `pri-<id>.consul.ca.<domain>.consul`, the trust
    domain as a SPIFFE URI SAN, CA basic constraints, cert and CRL signing)."""
    key_type = str(config["PrivateKeyType"])
    bits = int(config["PrivateKeyBits"])
    key = key or _new_key(key_type, bits)
    domain = f"{cluster_id}.consul"
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    ttl = parse_duration(str(config["RootCertTTL"]))
    name = x509.Name(
        [
            x509.NameAttribute(
                NameOID.COMMON_NAME,
                f"pri-{uuid.uuid4().hex[:8]}.consul.ca.{cluster_id[:8]}.consul",
            )
        ]
    )
    key_id = _key_id(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(seconds=ttl))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier(key_id), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(key_id, None, None), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"spiffe://{domain}")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return _root_record(cert, key, cluster_id, key_type, bits)


def _root_record(
    cert: x509.Certificate, key: Key, cluster_id: str, key_type: str, bits: int
) -> dict[str, Any]:
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "ID": colon_hex(hashlib.sha1(der, usedforsecurity=False).digest()),
        "Name": "Consul CA Primary Cert",
        "SerialNumber": cert.serial_number,
        "SigningKeyID": colon_hex(_key_id(key.public_key())),
        "ExternalTrustDomain": cluster_id,
        "NotBefore": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "NotAfter": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "RootCert": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "IntermediateCerts": None,
        "Active": True,
        "PrivateKeyType": key_type,
        "PrivateKeyBits": bits,
        # Kept with the row as Consul keeps it in its state store; never
        # answered over HTTP.
        "SigningKey": _key_pem(key),
    }


# ---------------------------------------------------------------- state


async def _ensure(registry: Registry) -> tuple[dict[str, Any], Setting, Setting]:
    """The CA configuration and roots, made once if absent."""
    state = registry.catalog.config
    while True:
        config_row = state.setting(CA_CONFIG)
        roots_row = state.setting(CA_ROOTS)
        if config_row is not None and roots_row is not None:
            return msgspec.json.decode(config_row.body), config_row, roots_row
        cluster_id = str(uuid.uuid4())
        config = {"ClusterID": cluster_id, "Provider": "consul", "Config": DEFAULTS}
        if config_row is None:
            await registry.apply(
                PutSetting(
                    setting=Setting(key=CA_CONFIG, body=msgspec.json.encode(config)),
                    cas=0,
                )
            )
            continue  # read back whichever configuration won
        config = msgspec.json.decode(config_row.body)
        root = make_root(config["ClusterID"], config["Config"], serial=1)
        roots = {"Roots": [root], "NextSerial": 2}
        await registry.apply(
            PutSetting(
                setting=Setting(key=CA_ROOTS, body=msgspec.json.encode(roots)),
                cas=0,
            )
        )


def _public_root(root: dict[str, Any], index: Setting) -> dict[str, Any]:
    out = {k: v for k, v in root.items() if k != "SigningKey"}
    out["CreateIndex"] = index.create_index
    out["ModifyIndex"] = index.modify_index
    return out


async def roots(registry: Registry, request: Request) -> Query:
    """structs.IndexedCARoots; `?pem=true`: the roots as a PEM bundle."""
    require_local_datacenter(registry, request)
    await _ensure(registry)
    pem = request.flag("pem")

    def render() -> Response:
        state = registry.catalog.config
        config_row, roots_row = state.setting(CA_CONFIG), state.setting(CA_ROOTS)
        assert config_row is not None and roots_row is not None  # made above
        config = msgspec.json.decode(config_row.body)
        listed = msgspec.json.decode(roots_row.body)["Roots"]
        if pem:
            bundle = "".join(r["RootCert"] for r in listed)
            return Response(200, bundle.encode(), [PEM_TYPE])
        active = next((r["ID"] for r in listed if r["Active"]), "")
        return json_response(
            {
                "ActiveRootID": active,
                "TrustDomain": f"{config['ClusterID']}.consul",
                "Roots": [_public_root(r, roots_row) for r in listed],
            }
        )

    return Query(TOPICS, render)


async def configuration(registry: Registry, request: Request) -> Response | Query:
    require_local_datacenter(registry, request)
    if request.method == "PUT":
        return await _put_configuration(registry, request)
    await _ensure(registry)

    def render() -> Response:
        row = registry.catalog.config.setting(CA_CONFIG)
        assert row is not None
        config = msgspec.json.decode(row.body)
        return json_response(
            {
                "ClusterID": config["ClusterID"],
                "Provider": config["Provider"],
                "Config": config["Config"],
                "State": None,
                "ForceWithoutCrossSigning": False,
                "CreateIndex": row.create_index,
                "ModifyIndex": row.modify_index,
            }
        )

    return Query(TOPICS, render)


def _validate(config: dict[str, Any]) -> dict[str, Any]:
    """The consul provider's ParseConsulCAConfig and CommonCAProviderConfig
    checks, in Consul's words."""
    out = dict(DEFAULTS)
    for key, value in config.items():
        canonical = next(
            (
                k
                for k in (*DEFAULTS, "PrivateKey", "RootCert")
                if k.lower() == key.lower()
            ),
            None,
        )
        if canonical is None:
            continue  # Consul's WeakDecode ignores what it does not know
        out[canonical] = value
    ttls: dict[str, float] = {}
    for name in ("LeafCertTTL", "IntermediateCertTTL", "RootCertTTL"):
        value = out[name]
        try:
            ttls[name] = (
                float(value) / 1e9
                if isinstance(value, int | float)
                else parse_duration(str(value))
            )
        except ValueError:
            raise InvalidRequest(
                f"error decoding config: {name}: invalid duration {value!r}"
            ) from None
    if ttls["LeafCertTTL"] < HOUR:
        raise InvalidRequest("leaf cert TTL must be greater or equal than 1h0m0s")
    if ttls["LeafCertTTL"] > 365 * 24 * HOUR:
        raise InvalidRequest("leaf cert TTL must be less than 8760h0m0s")
    if ttls["IntermediateCertTTL"] < 3 * ttls["LeafCertTTL"]:
        raise InvalidRequest(
            "Intermediate Cert TTL must be greater or equal than 3 * LeafCertTTL"
            f" (>={format_duration(3 * ttls['LeafCertTTL'])})."
        )
    key_type = out["PrivateKeyType"]
    if key_type not in KEY_BITS:
        raise InvalidRequest(
            f"private key type must be either 'ec' or 'rsa', got {key_type!r}"
        )
    bits = out["PrivateKeyBits"]
    if (
        isinstance(bits, bool)
        or not isinstance(bits, int)
        or bits not in KEY_BITS[key_type]
    ):
        raise InvalidRequest(
            f"{key_type.upper()} key length must be one of"
            f" {', '.join(map(str, KEY_BITS[key_type]))} bits"
        )
    return out


async def _put_configuration(registry: Registry, request: Request) -> Response:
    data = decode_json(request.body) if request.body.strip() else {}
    if not isinstance(data, dict):
        raise InvalidRequest("Request decode failed: body is not a JSON object")
    folded = {k.lower(): v for k, v in data.items()}
    provider = folded.get("provider") or "consul"
    if provider != "consul":
        raise InvalidRequest(
            f"unknown CA provider {provider!r}: waypost has the built-in"
            " 'consul' provider only"
        )
    raw_config = folded.get("config") or {}
    if not isinstance(raw_config, dict):
        raise InvalidRequest("Request decode failed: Config must be an object")
    config = _validate(raw_config)
    current, _config_row, roots_row = await _ensure(registry)
    root_key_pem = config.pop("PrivateKey", None)
    root_cert_pem = config.pop("RootCert", None)
    rotate = (
        root_key_pem is not None
        or config["PrivateKeyType"] != current["Config"]["PrivateKeyType"]
        or config["PrivateKeyBits"] != current["Config"]["PrivateKeyBits"]
    )
    if rotate:
        await _rotate(registry, current, config, roots_row, root_key_pem, root_cert_pem)
    new = {**current, "Config": config}
    await registry.apply(
        PutSetting(setting=Setting(key=CA_CONFIG, body=msgspec.json.encode(new)))
    )
    return Response(200, b"", [(b"content-type", b"text/plain; charset=utf-8")])


async def _rotate(
    registry: Registry,
    current: dict[str, Any],
    config: dict[str, Any],
    roots_row: Setting,
    key_pem: object,
    cert_pem: object,
) -> None:
    """A new active root; the old ones stay, inactive (Consul keeps them
    for the leaves they signed)."""
    stored = msgspec.json.decode(roots_row.body)
    serial = int(stored.get("NextSerial", len(stored["Roots"]) + 1))
    if key_pem is not None:
        if not isinstance(key_pem, str) or not isinstance(cert_pem, str):
            raise InvalidRequest("PrivateKey and RootCert must both be PEM strings")
        try:
            key = serialization.load_pem_private_key(key_pem.encode(), None)
            cert = x509.load_pem_x509_certificate(cert_pem.encode())
        except ValueError as exc:
            raise InvalidRequest(
                f"error parsing private key or root cert: {exc}"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise InvalidRequest("PrivateKey must be an EC or RSA key")
        key_type = "ec" if isinstance(key, ec.EllipticCurvePrivateKey) else "rsa"
        root = _root_record(cert, key, current["ClusterID"], key_type, key.key_size)
    else:
        root = make_root(current["ClusterID"], config, serial=serial)
    old = [{**r, "Active": False} for r in stored["Roots"]]
    body = {"Roots": [*old, root], "NextSerial": serial + 1}
    await registry.apply(
        PutSetting(
            setting=Setting(key=CA_ROOTS, body=msgspec.json.encode(body)),
            cas=roots_row.modify_index,
        )
    )


# ---------------------------------------------------------------- leaf


async def leaf(registry: Registry, request: Request) -> Response:
    """structs.IssuedCert for a service, signed by the active root (made
    per request, as Consul's agent cache makes one on a miss)."""
    require_local_datacenter(registry, request)
    service = request.tail
    if not service:
        raise InvalidRequest("Missing service name")
    config, _config_row, roots_row = await _ensure(registry)
    stored = msgspec.json.decode(roots_row.body)
    root = next(r for r in stored["Roots"] if r["Active"])
    ca_key = serialization.load_pem_private_key(root["SigningKey"].encode(), None)
    ca_cert = x509.load_pem_x509_certificate(root["RootCert"].encode())
    key = ec.generate_private_key(ec.SECP256R1())
    domain = f"{config['ClusterID']}.consul"
    dc = registry.config.datacenter
    uri = f"spiffe://{domain}/ns/default/dc/{dc}/svc/{service}"
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    ttl = parse_duration(str(config["Config"]["LeafCertTTL"]))
    serial = x509.random_serial_number()
    # A name a certificate cannot hold (not ASCII, a CN over 64 characters)
    # is the caller's mistake: found by bench/fuzz_api.py as a 500.
    try:
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, service)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(seconds=ttl))
            .add_extension(
                x509.BasicConstraints(ca=False, path_length=None), critical=True
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.UniformResourceIdentifier(uri),
                        x509.DNSName(f"{service}.svc.default.{domain[:8]}.consul"),
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [
                        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                        x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,
                    ]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise InvalidRequest(
            f'Invalid service name "{service}" for a certificate: {exc}'
        ) from None
    return json_response(
        {
            "SerialNumber": colon_hex(serial.to_bytes(20, "big").lstrip(b"\0")),
            "CertPEM": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "PrivateKeyPEM": _key_pem(key),
            "Service": service,
            "ServiceURI": uri,
            "ValidAfter": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ValidBefore": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Kind": "",
            "CreateIndex": roots_row.modify_index,
            "ModifyIndex": roots_row.modify_index,
        }
    )
