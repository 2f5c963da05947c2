"""Which squid mode the allow-list snippet is for, and what an intercepting squid adds.

The snippet's `ssl_bump splice posnet_nobump` matches `ssl::server_name`, and its allow
lines match `dstdomain`. In an explicit proxy both see the CONNECT request's name from
ssl_bump step 1. An intercepting squid has only the server's IP address at step 1: the
splice can match the client's SNI only after an `ssl_bump peek` at step 1, and dstdomain
gets only the address there. The snippet used to say none of this, so an intercepting
proxy that included it as told would bump the connections it meant to splice.

The snippet and the handover now say that it is for an explicit proxy and name the two
lines an intercepting squid puts before the include; the intercept layout built from the
handover's own lines is checked with `squid -k parse`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from generator.plan import Plan
from generator.targets import handover, squid
from tests.conftest import require_tool
from tests.test_target_services import bump_cert, run, write  # noqa: F401 - fixture

PEEK_LINES = ("acl step1 at_step SslBump1", "ssl_bump peek step1")
STORES = ("ostend-05", "bruges-06")  # openpos with ssl_inspection; the cloud connector


def snippet(plan: Plan) -> str:
    return squid.render(plan)["allowlist/squid-posnet.conf"]


def exemptions_section(plan: Plan) -> str:
    sheet = handover.render(plan)["HANDOVER.md"]
    return " ".join(sheet.split("### SSL-inspection exemptions", 1)[1].split("\n- ", 1)[0].split())


@pytest.mark.parametrize("site", STORES)
def test_the_snippet_says_it_is_for_an_explicit_proxy(
    demo_plans: dict[str, Plan], site: str
) -> None:
    text = snippet(demo_plans[site])
    comment = " ".join(
        ln[2:] for ln in text.split("\nacl ", 1)[0].splitlines() if ln.startswith("# ")
    )
    assert "For squid as an explicit proxy (clients send CONNECT name:port)" in comment
    assert "An intercepting squid sees only the server's IP address at step 1" in comment
    for line in PEEK_LINES:
        assert f'"{line}"' in comment
    # the snippet does not peek itself: that would take step 1 from the proxy's own rules
    directives = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert not any(ln.startswith("ssl_bump peek") for ln in directives)
    assert "ssl_bump splice posnet_nobump" in directives


@pytest.mark.parametrize("site", STORES)
def test_the_handover_says_what_an_intercepting_squid_adds(
    demo_plans: dict[str, Plan], site: str
) -> None:
    text = exemptions_section(demo_plans[site])
    assert "The snippet is for squid as an explicit proxy" in text
    assert "An intercepting squid sees only the server's IP address at that step" in text
    assert "`acl step1 at_step SslBump1` and `ssl_bump peek step1` before the include" in text
    assert "let the proxy's own `http_access` rules admit the connection at that step" in text


@pytest.mark.realtool
@pytest.mark.parametrize("site", STORES)
def test_the_intercept_layout_the_handover_gives_parses(
    demo_plans: dict[str, Plan],
    site: str,
    tmp_path: Path,
    bump_cert: Path,  # noqa: F811 - the fixture imported above
) -> None:
    """An intercepting https_port, the handover's lines, the include, then the proxy's
    own bump and deny: squid reads it without a warning."""
    plan = demo_plans[site]
    given = re.findall(r"`([^`]+)`", exemptions_section(plan))
    peek = [ln for ln in given if ln.startswith(("acl step1", "ssl_bump peek"))]
    assert tuple(peek) == PEEK_LINES
    inc = write(tmp_path, "squid-posnet.conf", snippet(plan), 0o644)
    conf = write(
        tmp_path,
        "squid.conf",
        f"pid_filename {tmp_path / 'squid.pid'}\n"
        f"cache_log {tmp_path / 'cache.log'}\n"
        "access_log none\n"
        "cache_store_log none\n"
        f"coredump_dir {tmp_path}\n"
        "http_port 127.0.0.1:3128\n"
        f"https_port 127.0.0.1:3129 intercept ssl-bump cert={bump_cert}"
        " generate-host-certificates=off\n" + "".join(f"{ln}\n" for ln in peek) + f"include {inc}\n"
        "ssl_bump bump all\n"
        "http_access deny all\n",
        0o644,
    )
    res = run(require_tool("squid"), "-k", "parse", "-f", str(conf))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert not re.search(r"WARNING|ERROR|FATAL|Bungled", out), out
