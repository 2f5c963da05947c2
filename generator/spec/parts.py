"""Building blocks shared by the site model and the pattern modules' integration models.

Kept apart from generator.spec.model so that a pattern module can define its model
without importing the Site (which lists every pattern's model).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from generator.spec.types import Hostname, SecretRef, UrlPath

ServiceRef = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?/[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"
    ),
]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TlsSpec(Model):
    certificate: SecretRef = Field(description="Reference to the PEM chain (resolved at apply)")
    key: SecretRef
    openssl: Literal["3.0", "3.5"] = Field(
        "3.0", description="OpenSSL on the proxy host: 3.0 (Debian 12) lacks X25519MLKEM768"
    )
    trusted: bool = Field(True, description="False for a self-signed certificate")
    ocsp_stapling: bool | None = Field(
        None,
        description="Staple the CA's OCSP answer (default: on for a trusted certificate);"
        " false for a certificate without an OCSP responder URL, which nginx and Apache"
        " otherwise warn about at every load",
    )


UserName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]


class BasicUser(Model):
    """One basic-auth user: posnet hashes the referenced password (bcrypt) at apply time."""

    name: UserName = Field(description="User name the partner sends (no colon, no spaces)")
    password: SecretRef = Field(
        description="Reference to the password the partner is given (hashed at apply)"
    )


class ProxyAuth(Model):
    type: Literal["none", "basic", "client_cert"] = "basic"
    users: list[BasicUser] | None = Field(
        None,
        description="Basic auth: users with a password reference each; the htpasswd file"
        " is generated at apply",
    )
    htpasswd: SecretRef | None = None
    client_ca: SecretRef | None = None


class ProxyRoute(Model):
    service: ServiceRef | None = Field(None, description="host/service in this store")
    site: Hostname | None = Field(None, description="another store (central proxy)")
    site_service: ServiceRef | None = Field(None, description="host/service in that store")
    subdomain: Hostname | None = None
    path: UrlPath | None = None
    websocket: bool = Field(
        False, description="Forward WebSocket upgrades (101) and keep idle sockets an hour"
    )
    upstream_ca: SecretRef | None = Field(
        None,
        description="https upstream: PEM CA its certificate must chain to, instead of the"
        " public CAs (a store's private CA)",
    )
    upstream_certificate: SecretRef | None = Field(
        None,
        description="https upstream: pin its own self-signed certificate (PEM); the name"
        " must still match",
    )
