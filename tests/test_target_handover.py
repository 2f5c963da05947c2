"""HANDOVER.md: content per demo store, no secrets, and well-formed Markdown tables.

Tables are checked twice: our own cell count (every row as wide as its header) and the
real Markdown parser that `rich` ships (markdown-it-py, GFM tables), which must read back
every cell exactly, including an escaped `|`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from generator.pipeline import load_plans
from generator.plan import Plan
from generator.targets import handover
from tests.conftest import DEMO

PATH = "HANDOVER.md"
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


@pytest.fixture(scope="module")
def sheets(demo_plans: dict[str, Plan]) -> dict[str, str]:
    return {site_id: handover.render(plan)[PATH] for site_id, plan in demo_plans.items()}


def section(sheet: str, title: str) -> str:
    """The text of one `## title` section."""
    start = sheet.index(f"\n## {title}\n")
    end = sheet.find("\n## ", start + 1)
    return sheet[start : end if end != -1 else len(sheet)]


def tables(sheet: str) -> list[list[str]]:
    """Runs of consecutive lines starting with `|`."""
    out: list[list[str]] = []
    previous = False
    for line in sheet.splitlines():
        is_row = line.startswith("|")
        if is_row and not previous:
            out.append([])
        if is_row:
            out[-1].append(line)
        previous = is_row
    return out


def cell_count(row: str) -> int:
    assert row.startswith("|") and row.endswith("|"), row
    return len(UNESCAPED_PIPE.split(row)) - 2


def parsed_tables(sheet: str) -> list[list[list[str]]]:
    """Tables as the real Markdown parser reads them: rows of cell source texts."""
    tokens = MarkdownIt("commonmark").enable("table").parse(sheet)
    out: list[list[list[str]]] = []
    in_cell = False
    for tok in tokens:
        if tok.type == "table_open":
            out.append([])
        elif tok.type == "tr_open":
            out[-1].append([])
        elif tok.type in ("th_open", "td_open"):
            in_cell = True
        elif tok.type in ("th_close", "td_close"):
            in_cell = False
        elif tok.type == "inline" and in_cell:
            out[-1][-1].append(tok.content)
    return out


# ---- every store ---------------------------------------------------------------------


def test_every_store_gets_a_sheet(demo_plans: dict[str, Plan], sheets: dict[str, str]) -> None:
    assert sorted(sheets) == sorted(demo_plans)
    for site_id, sheet in sheets.items():
        assert sheet.startswith(f"<!-- posnet {site_id} HANDOVER.md: generated, do not edit. -->")
        assert sheet.endswith("\n") and not sheet.endswith("\n\n")
        for title in (
            "Store",
            "Hosts",
            "What to tell each partner",
            "What store IT must open",
            "Checks to run after apply",
            "Secrets needed",
        ):
            assert f"\n## {title}\n" in sheet, (site_id, title)


def test_no_secret_marker_reaches_a_sheet(sheets: dict[str, str]) -> None:
    for site_id, sheet in sheets.items():
        assert "@@POSNET_SECRET" not in sheet, site_id
        assert "@@" not in sheet, site_id


def test_every_table_row_has_as_many_cells_as_its_header(sheets: dict[str, str]) -> None:
    for site_id, sheet in sheets.items():
        found = tables(sheet)
        assert found, site_id
        for rows in found:
            width = cell_count(rows[0])
            assert re.fullmatch(r"\|(---\|)+", rows[1]), rows[1]
            assert rows[1].count("---") == width
            for row in rows[2:]:
                assert cell_count(row) == width, (site_id, row)


def test_the_markdown_parser_reads_the_same_tables(sheets: dict[str, str]) -> None:
    for site_id, sheet in sheets.items():
        ours = tables(sheet)
        theirs = parsed_tables(sheet)
        assert len(theirs) == len(ours), site_id
        for raw, parsed in zip(ours, theirs, strict=True):
            assert len(parsed) == len(raw) - 1  # the delimiter row is not a row
            assert {len(r) for r in parsed} == {cell_count(raw[0])}


def test_sheets_are_deterministic(demo_plans: dict[str, Plan], sheets: dict[str, str]) -> None:
    for site_id, plan in demo_plans.items():
        assert handover.render(plan)[PATH] == sheets[site_id]
        assert not re.search(
            r"\b20\d\d-\d\d-\d\d\b|(?<![\w:])\d\d:\d\d:\d\d(?![\w:])", sheets[site_id]
        )


def test_every_exposure_has_a_probe_and_an_outside_check(
    demo_plans: dict[str, Plan], sheets: dict[str, str]
) -> None:
    for site_id, plan in demo_plans.items():
        checks = section(sheets[site_id], "Checks to run after apply")
        for e in plan.exposures:
            assert f"`posnet probe build --site {site_id} --as partner`" in checks
            assert f"nmap -Pn -p {e.public_port} " in checks
        if plan.exposures:
            assert "Validate the public access to that specific port" in checks


def test_every_secret_is_listed_by_reference(
    demo_plans: dict[str, Plan], sheets: dict[str, str]
) -> None:
    for site_id, plan in demo_plans.items():
        secrets = section(sheets[site_id], "Secrets needed")
        for s in plan.secrets:
            assert f"| `{s.ref}` | {s.purpose} |" in secrets


# ---- per store -----------------------------------------------------------------------


def test_gent_sheet_names_the_port_forward_and_its_sources(sheets: dict[str, str]) -> None:
    sheet = sheets["gent-01"]
    store = section(sheet, "Store")
    assert "| Public IP | 203.0.113.10 |" in store
    assert "| FQDN | `gent-01.pos.example.com` |" in store
    assert "| WAN mode | static |" in store
    assert "not recommended" not in store
    inbound = section(sheet, "What store IT must open")
    assert (
        "| `deliverect-pos1-api` | 18443 -> pos1 198.51.100.140:8443 | tcp"
        " | 198.51.100.0/28, 203.0.113.20/32 | Deliverect |"
    ) in inbound
    assert "| `pos1` | pos | linux | 198.51.100.140 | `52:54:00:00:01:40` |" in sheet
    partner = section(sheet, "What to tell each partner")
    assert "- `https://gent-01.pos.example.com:18443/`" in partner
    checks = section(sheet, "Checks to run after apply")
    assert "`nmap -Pn -p 18443 203.0.113.10`" in checks
    assert "`curl -sSI https://gent-01.pos.example.com:18443/`" in checks


def test_antwerp_sheet_warns_about_the_dynamic_ip(sheets: dict[str, str]) -> None:
    store = section(sheets["antwerp-02"], "Store")
    assert "| WAN mode | dynamic (not recommended) |" in store
    assert "**Dynamic public IP: not recommended.**" in store
    assert "noip via inadyn" in store
    assert "hostname `antwerp-02.pos.example.com`" in store
    assert "password from `env:POSNET_DDNS_ANTWERP`" in store
    assert "`dig +short antwerp-02.pos.example.com`" in sheets["antwerp-02"]


def test_ostend_sheet_has_tunnel_windows_and_egress_steps(sheets: dict[str, str]) -> None:
    sheet = sheets["ostend-05"]
    tunnel = section(sheet, "Tunnel steps")
    steps = [
        "Uninstall any previous tunnel first: browse to `Program Files (x86)/deliverect-tunnel`",
        "`unis000.exe`",
        "Token: the secret `vault:ostend_05_tunnel_token`",
        "Port: `8081` (the POS service `touch1/orders`)",
        "Open `https://localhost:4040` on `touch1`",
        "Give the partner `https://DOMAIN.tunnel.deliverect.com`",
        "Send a test order",
    ]
    positions = [tunnel.index(s) for s in steps]
    assert positions == sorted(positions)
    assert "Not suggested for large-scale roll-outs" in tunnel

    windows = section(sheet, "Windows steps")
    assert "Maintenance window: **Monday 02:00-04:00**" in windows
    assert "`windows/swiftpos-netpos-backoffice-enable-https.cmd`" in windows
    assert "`windows/swiftpos-netpos-backoffice-undo.cmd`" in windows
    assert "Run as administrator" in windows
    assert "tick Secured, click Refresh Interface List" in windows

    opened = section(sheet, "What store IT must open")
    assert "No inbound port is opened" in opened
    assert (
        "| `deliverect-tunnel` | touch1 (198.51.100.11) | `*.tunnel.deliverect.com` | 443/tcp"
        " | no |"
    ) in opened
    assert "| `openpos-outbound` | touch2 (198.51.100.12), tablet1 (198.51.100.21) |" in opened
    assert "| 443/tcp | yes | Open POS backend" in opened
    assert (
        "| `swiftpos-netpos-backoffice-https` | touch1 (198.51.100.11), touch2 (198.51.100.12)"
        " | backoffice (198.51.100.5) | 10101/tcp |"
    ) in opened
    assert "| `tablet1` | kiosk | other | 198.51.100.21 | none: set the IP on the host |" in sheet


def test_bruges_sheet_has_the_partner_endpoints(sheets: dict[str, str]) -> None:
    sheet = sheets["bruges-06"]
    partners = section(sheet, "What to tell each partner")
    assert "- `wss://api.qa.ppaas.tech/cloud-connector/v1/pos-listener`" in partners
    assert "- `POST https://ws.bruges-06.pos.example.com:8443/api/powerepos/v1/auth`" in partners
    assert "`token` kept out of the logs" in partners
    connector = section(sheet, "Cloud connector steps")
    assert "provisioned and enabled" in connector
    assert (
        "`terminal1`: `~/posnet-devices/bruges-06/ppaas-terminal1.properties`"
        " (secret from `vault:bruges_06_ppaas_secret`)"
    ) in connector
    # the CA from the catalog, the path from the store file (the guide names none)
    assert (
        "4. Put the PEM file of the certificate authority `INGETRUST` (the partner's\n"
        "   `ssl_profile_name`, from the catalog) on each device at the path the store file"
        " gives\n   as `ssl_profile_crt` (the partner's guide names no location):"
        " `terminal1`: `/HOST/INGETRUST.pem`."
    ) in connector
    assert "pos1 (198.51.100.70) -> terminal1 (198.51.100.80) port 9100/tcp" in connector
    devices = section(sheet, "Device and service settings")
    assert "| `~/posnet-devices/bruges-06/powerepos-auth.properties` | `integrator` |" in devices
    assert "| `devices/powerepos-auth.properties` |\n" in devices
    assert "| `vault:bruges_06_auth_secret` |" in devices
    assert "| yes | PPaaS Cloud Connector" in section(sheet, "What store IT must open")


def test_proxy_stores_tell_the_partner_how_to_authenticate(sheets: dict[str, str]) -> None:
    assert "basic auth (credentials from `vault:brussels_03_htpasswd`)" in sheets["brussels-03"]
    leuven = sheets["leuven-04"]
    assert "client certificates signed by the CA in `file:certs/deliverect-client-ca.pem`" in (
        leuven
    )
    assert "curl -sSI --cert CLIENT.crt --key CLIENT.key https://" in leuven
    hq = section(sheets["mechelen-hq"], "What to tell each partner")
    assert "- `https://hq.pos.example.com:443/gent-01/ -> gent-01/pos1/api`" in hq


# ---- escaping --------------------------------------------------------------------------


def test_table_cells_escape_pipes_and_the_parser_agrees() -> None:
    text = handover.table(("Key", "Value"), [("a|b", "`x|y`"), ("", "plain")])
    rows = text.splitlines()
    assert rows[2] == "| a\\|b | `x\\|y` |"
    assert rows[3] == "| - | plain |"
    assert [cell_count(r) for r in rows if not r.startswith("|-")] == [2, 2, 2]
    assert parsed_tables(text + "\n") == [[["Key", "Value"], ["a|b", "`x|y`"], ["-", "plain"]]]


def test_an_unescaped_pipe_is_caught_by_both_checks() -> None:
    """The checks above can fail: a raw `|` splits the cell."""
    broken = "| Key | Value |\n|---|---|\n| a|b | c |\n"
    assert cell_count(broken.splitlines()[2]) == 3
    assert parsed_tables(broken)[0][1] != ["a|b", "c"]


def test_rows_must_match_their_header() -> None:
    with pytest.raises(ValueError, match="does not match headers"):
        handover.table(("A", "B"), [("only one",)])
    with pytest.raises(ValueError, match="cannot span lines"):
        handover.table(("A",), [("two\nlines",)])


def test_prose_escapes_markdown_but_keeps_names_readable() -> None:
    assert handover.text("payment_terminal") == "payment_terminal"
    assert handover.text("_x_ a*b [c] <d>") == "\\_x\\_ a\\*b \\[c\\] \\<d\\>"
    assert handover.code("a`b") == "`` a`b ``"


def test_each_partner_brief_lists_only_its_own_integration(tmp_path: Path) -> None:
    """Two integrations of one partner are two briefs: each names its own port once
    (every brief used to list every port of its partner: a store with n integrations
    had n² lines)."""
    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)
    gent = root / "sites/gent-01.yaml"
    gent.write_text(
        gent.read_text(encoding="utf-8")
        + "  - partner: deliverect\n    pattern: direct\n    service: pos2/api\n"
        '    public_port: 18444\n    sources: ["198.51.100.0/28"]\n',
        encoding="utf-8",
    )
    fleet, plans = load_plans(root)
    assert fleet.ok, fleet.diagnostics
    (plan,) = [p for p in plans if p.site_id == "gent-01"]
    partner = section(handover.render(plan)[PATH], "What to tell each partner")
    for port in (18443, 18444):
        assert partner.count(f"Requests to port {port} are accepted only from") == 1, partner


@given(st.text(alphabet=st.sampled_from([*"ab_9 \\`*[]<>|-.é"]), max_size=12))
@settings(max_examples=500, deadline=None)
def test_prose_escaping_skips_only_text_with_nothing_to_escape(value: str) -> None:
    """text() returns a value untouched when no character could need escaping: the
    same as running the substitution on it."""
    assert handover.text(value) == handover._MD_SPECIAL.sub(r"\\\1", value)


def test_the_pos_is_not_told_to_connect_where_the_devices_register(
    demo_plans: dict[str, Plan],
) -> None:
    """The POS step listed the device-listener among the POS's own endpoints (seed 001:
    the device connects to device-listener, the POS to pos-listener)."""
    steps = section(
        handover.render(demo_plans["bruges-06"])["HANDOVER.md"], "Cloud connector steps"
    )
    pos_step = steps.split("\n2. ", 1)[1].split("\n3. ", 1)[0]
    device_step = steps.split("\n3. ", 1)[1].split("\n4. ", 1)[0]
    assert "pos-listener" in pos_step and "device-listener" not in pos_step, pos_step
    assert "device-listener" in device_step and "pos-listener" not in device_step, device_step
