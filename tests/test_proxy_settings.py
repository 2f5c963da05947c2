"""Proxy settings that could not work, or would be ignored, are errors at their line.

Each was accepted before (exit 0) and rendered something other than what the spec said:
a central-proxy route to its own store (sent out to its own public name, where nothing
forwards the service's port), a route key its routing does not read, an auth setting
its auth type does not read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_bad_input import errors, make_fleet, pos, sub

HQ = "sites/mechelen-hq.yaml"
BRUSSELS = "sites/brussels-03.yaml"

CASES: list[tuple[str, str, Callable[[bytes], bytes], str, str, str, str]] = [
    (
        "route to itself",
        HQ,
        sub("{site: gent-01, site_service", "{site: mechelen-hq, site_service"),
        "mechelen-hq, site_service",
        "E210",
        "integrations[0].routes[0].site",
        "a route to this store itself",
    ),
    (
        "another resolver under restricted egress",
        HQ,
        lambda raw: sub("lan:\n", "edge: {egress: restricted}\nlan:\n")(
            sub(
                "    routing: path\n",
                "    routing: path\n    resolvers: [192.0.2.129, 192.0.2.53]\n",
            )(raw)
        ),
        "192.0.2.53]",
        "E210",
        "integrations[0].resolvers[1]",
        "under egress: restricted the proxy reaches other stores only at addresses the "
        "edge's resolver answered; 192.0.2.53 is not the edge",
    ),
    (
        "subdomain under path routing",
        BRUSSELS,
        sub("{service: pos1/api, path: /pos1/}", "{service: pos1/api, path: /pos1/, subdomain: a}"),
        "a}",
        "E211",
        "integrations[0].routes[0].subdomain",
        "subdomain has no effect with routing: path",
    ),
    (
        "path under subdomain routing",
        BRUSSELS,
        lambda raw: sub("routing: path", "routing: subdomain")(
            sub(
                "{service: pos1/api, path: /pos1/}", "{service: pos1/api, subdomain: a, path: /x/}"
            )(sub("{service: pos2/api, path: /pos2/,", "{service: pos2/api, subdomain: b,")(raw))
        ),
        "/x/}",
        "E211",
        "integrations[0].routes[0].path",
        "path has no effect with routing: subdomain",
    ),
    (
        "client_ca under basic auth",
        BRUSSELS,
        sub(
            "      htpasswd: vault:brussels_03_htpasswd\n",
            "      htpasswd: vault:brussels_03_htpasswd\n      client_ca: file:ca.pem\n",
        ),
        "file:ca.pem",
        "E210",
        "integrations[0].auth.client_ca",
        "auth.client_ca is for client_cert auth, not basic",
    ),
    (
        "htpasswd without basic auth",
        BRUSSELS,
        sub("      type: basic\n", "      type: none\n"),
        "vault:brussels_03_htpasswd",
        "E210",
        "integrations[0].auth.htpasswd",
        "auth.htpasswd is for basic auth, not none",
    ),
]


@pytest.mark.parametrize(
    ("rel", "edit", "at", "code", "path", "message"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_a_proxy_setting_that_cannot_apply_is_an_error(
    tmp_path: Path,
    rel: str,
    edit: Callable[[bytes], bytes],
    at: str,
    code: str,
    path: str,
    message: str,
) -> None:
    root, text = make_fleet(tmp_path, rel, edit)
    errs = errors(root)
    assert [(e.code, e.path) for e in errs] == [(code, path)], errs
    e = errs[0]
    assert e.location.file.endswith(rel)
    assert (e.location.line, e.location.col) == pos(text, at)
    assert message in e.message


def test_the_edge_as_resolver_under_restricted_egress_passes(tmp_path: Path) -> None:
    """The default (no resolvers: the gateway) and the gateway named: the edge's dnsmasq
    answers, and fills the set that admits the proxy to each store."""
    root, _ = make_fleet(tmp_path, HQ, sub("lan:\n", "edge: {egress: restricted}\nlan:\n"))
    assert errors(root) == []
    site = root / HQ
    site.write_text(
        site.read_text().replace(
            "    routing: path\n", "    routing: path\n    resolvers: [192.0.2.129]\n"
        )
    )
    assert errors(root) == []
