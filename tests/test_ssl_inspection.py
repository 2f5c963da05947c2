"""`ssl_inspection` on an outbound_only integration decides whether its exemptions render
(issue 9, item 3).

true: the squid snippet splices the partner's names (`ssl_bump splice posnet_nobump`,
checked by `squid -k parse` in a sandbox) and the handover lists them under
"SSL-inspection exemptions", saying the store's own proxy must apply them (the edge runs
none). false: neither the splice lines nor the list, and the flow is marked "no". The
cloud connector's flows keep their exemption either way (its devices trust only their
ssl_profile CA).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import DEMO

from generator.pipeline import load_plans
from generator.plan import Plan
from generator.targets import handover, squid
from tests.test_target_services import bump_cert, squid_parse  # noqa: F401 - fixture

OPENPOS = (
    "devices.pos.prod.op3n.dev",
    "ingest.logging.tools.openpos.tech",
    "cdnassetsstorage.blob.core.windows.net",
    ".firebaseio.com",
    ".googleapis.com",
    ".gstatic.com",
)


def ostend(tmp_path: Path, inspection: str | None) -> Plan:
    """ostend-05 with its `ssl_inspection: true` line set to `inspection` (None: removed)."""
    fleet = tmp_path / "fleet"
    shutil.copytree(DEMO, fleet)
    site = fleet / "sites" / "ostend-05.yaml"
    text = site.read_text()
    assert "    ssl_inspection: true\n" in text
    line = "" if inspection is None else f"    ssl_inspection: {inspection}\n"
    site.write_text(text.replace("    ssl_inspection: true\n", line))
    loaded, plans = load_plans(fleet)
    assert loaded.ok, loaded.diagnostics
    return next(p for p in plans if p.site_id == "ostend-05")


def snippet(plan: Plan) -> str:
    return squid.render(plan)["allowlist/squid-posnet.conf"]


def sheet(plan: Plan) -> str:
    return handover.render(plan)["HANDOVER.md"]


@pytest.mark.realtool
def test_true_splices_the_partner_names_and_squid_parses(
    tmp_path: Path,
    bump_cert: Path,  # noqa: F811 - the fixture imported above
) -> None:
    plan = ostend(tmp_path, "true")
    text = snippet(plan)
    for name in OPENPOS:
        assert f"acl posnet_nobump ssl::server_name {name}\n" in text
    assert "\nssl_bump splice posnet_nobump\n" in text
    res = squid_parse(tmp_path, text, bump_cert)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.realtool
@pytest.mark.parametrize("inspection", ["false", None])
def test_false_or_absent_renders_no_exemption(
    tmp_path: Path,
    bump_cert: Path,  # noqa: F811 - the fixture imported above
    inspection: str | None,
) -> None:
    plan = ostend(tmp_path, inspection)
    text = snippet(plan)
    directives = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert not [d for d in directives if "ssl_bump" in d or "posnet_nobump" in d]
    assert "Exempt from SSL inspection" not in text
    # the allow-list itself is unchanged: only the exemptions go
    for name in OPENPOS:
        assert f"acl posnet_openpos-outbound_dst dstdomain {name}\n" in text
    assert squid_parse(tmp_path, text, bump_cert).returncode == 0
    md = sheet(plan)
    assert "SSL-inspection exemptions" not in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| `openpos-outbound`"))
    assert "| 443/tcp | no |" in row


def test_true_lists_the_exemptions_in_the_handover(tmp_path: Path) -> None:
    md = sheet(ostend(tmp_path, "true"))
    section = md.split("### SSL-inspection exemptions\n", 1)[1].split("\n### ", 1)[0]
    assert "posnet runs no proxy on the edge: apply the exemptions on the store's own" in section
    assert "include `allowlist/squid-posnet.conf` before its `ssl_bump bump`" in section
    listed = [ln for ln in section.splitlines() if ln.startswith("- ")]
    assert listed == [
        "- `*.firebaseio.com` (`openpos-outbound`)",
        "- `*.googleapis.com` (`openpos-outbound`)",
        "- `*.gstatic.com` (`openpos-outbound`)",
        "- `cdnassetsstorage.blob.core.windows.net` (`openpos-outbound`)",
        "- `devices.pos.prod.op3n.dev` (`openpos-outbound`)",
        "- `ingest.logging.tools.openpos.tech` (`openpos-outbound`)",
    ]
    # the tunnel flow is allowed but never listed: inspection does not break it
    assert "tunnel.deliverect.com` (`" not in section


def test_true_and_false_render_differently(tmp_path: Path) -> None:
    on, off = ostend(tmp_path / "on", "true"), ostend(tmp_path / "off", "false")
    assert snippet(on) != snippet(off)
    assert sheet(on) != sheet(off)


def test_cloud_connector_keeps_its_exemption(demo_plans: dict[str, Plan]) -> None:
    plan = demo_plans["bruges-06"]
    assert "acl posnet_nobump ssl::server_name api.qa.ppaas.tech\n" in snippet(plan)
    assert "- `api.qa.ppaas.tech` (`ppaas-cloud-connector`)" in sheet(plan)
