"""A DDNS username is asked for where the provider takes one, refused where it is unused.

duckdns authenticates with its token alone and cloudflare with an API token for the
zone: inadyn and ddclient send no login for them. The username was required for every
provider, so a duckdns store had to give one, and it was dropped without a word (inadyn's
username field carries the duckdns token).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from generator.pipeline import load_plans
from generator.targets import render_site
from tests.test_bad_input import errors, make_fleet, pos, sub

ANTWERP = "sites/antwerp-02.yaml"
DUCKDNS = sub(
    "  fqdn: antwerp-02.pos.example.com\n  ddns:\n    provider: noip\n",
    "  fqdn: antwerp-02.duckdns.org\n  ddns:\n    provider: duckdns\n",
)


def _no_username(raw: bytes) -> bytes:
    return sub("    username: msp-antwerp\n", "")(raw)


@pytest.mark.parametrize(
    ("edit", "code", "path", "at", "message"),
    [
        (
            DUCKDNS,
            "E211",
            "wan.ddns.username",
            "msp-antwerp",
            "has no effect: duckdns authenticates with its token (the password) alone",
        ),
        (_no_username, "E206", "wan.ddns", "provider: noip", "noip DDNS needs wan.ddns.username"),
        (
            # only cloudflare sends a zone: for noip it validated and was dropped unsaid
            sub(
                "    username: msp-antwerp\n",
                "    username: msp-antwerp\n    zone: zone.example.org\n",
            ),
            "E211",
            "wan.ddns.zone",
            "zone.example.org",
            "has no effect: only cloudflare takes a zone, noip updates the host name alone",
        ),
    ],
    ids=["duckdns with a username", "noip without one", "noip with a zone"],
)
def test_a_username_where_it_cannot_apply_or_is_missing(
    tmp_path: Path, edit: Callable[[bytes], bytes], code: str, path: str, at: str, message: str
) -> None:
    root, text = make_fleet(tmp_path, ANTWERP, edit)
    errs = [e for e in errors(root) if e.location.file.endswith(ANTWERP)]  # hq routes here
    assert [(e.code, e.path) for e in errs] == [(code, path)], errs
    assert errs[0].message == message
    assert (errs[0].location.line, errs[0].location.col) == pos(text, at)


def test_duckdns_without_a_username_renders_its_token_as_the_login(tmp_path: Path) -> None:
    root, _ = make_fleet(tmp_path, ANTWERP, lambda raw: _no_username(DUCKDNS(raw)))
    assert errors(root) == []
    _, plans = load_plans(root)
    plan = next(p for p in plans if p.site_id == "antwerp-02")
    files = render_site(plan)
    inadyn = next(text for rel, text in files.items() if rel.endswith("inadyn.conf"))
    assert f'username = "{plan.ddns.password.marker}"' in inadyn  # type: ignore[union-attr]
    handover = files["HANDOVER.md"]
    ddns_row = next(line for line in handover.splitlines() if line.startswith("| DDNS"))
    assert "account" not in ddns_row and "password from `env:POSNET_DDNS_ANTWERP`" in ddns_row
