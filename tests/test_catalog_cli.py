"""`posnet catalog` (issue 9, item 7): the partner catalog made visible, built-in and the
fleet's own, and the unknown-environment error that says where an environment is added.
Runs the installed `posnet` as a user would (exit codes, stdout, stderr)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from test_bad_input import errors, make_fleet, run_cli, sub

from generator.catalog import BUILTIN
from generator.yamlload import load_file

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo-fleet"
BUILTIN_IDS = sorted(load_file(BUILTIN, "builtin").data["partners"])
BR = "sites/bruges-06.yaml"  # cloud connector (ppaas), environment qa


def catalog_json(*args: str) -> list[dict[str, object]]:
    res = run_cli("catalog", "--format", "json", *args)
    assert res.returncode == 0, res.stderr
    items = json.loads(res.stdout)
    assert isinstance(items, list)
    return items


def test_lists_every_builtin_partner_with_patterns_domains_and_ports() -> None:
    items = {i["id"]: i for i in catalog_json()}
    assert sorted(items) == BUILTIN_IDS
    assert all(i["origin"] == "built-in" for i in items.values())
    assert items["ppaas"]["environments"] == {
        "qa": {"api_host": "api.qa.ppaas.tech", "auth_host": "auth.qa.ppaas.tech"}
    }
    assert "devices.pos.prod.op3n.dev" in items["openpos"]["domains"]  # type: ignore[operator]
    assert items["openpos"]["ports"] == ["tcp/443 outbound"]
    assert items["deliverect"]["patterns"] == ["direct", "reverse_proxy", "tunnel"]
    assert "tcp/10101 HTTPS binding on the Windows host" in items["swiftpos-netpos"]["ports"]  # type: ignore[operator]


def test_text_names_the_same_facts_and_is_deterministic() -> None:
    a, b = run_cli("catalog"), run_cli("catalog")
    assert a.returncode == 0 and a.stdout == b.stdout
    for pid in BUILTIN_IDS:
        assert f"\n{pid}  " in "\n" + a.stdout
    assert "  environments: qa (api.qa.ppaas.tech, auth.qa.ppaas.tech)" in a.stdout
    assert "  patterns:     cloud_connector" in a.stdout
    # notes that hold for one pattern only are labelled with it
    assert "  note (tunnel): Ask the Deliverect account manager to add the tunnel" in a.stdout
    assert "  note (direct): Allow-list the Deliverect outgoing IPs" in a.stdout


def test_one_partner_and_the_fleets_changes(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)
    fleet = root / "fleet.yaml"
    fleet.write_text(
        fleet.read_text().replace(
            "partners:\n",
            "partners:\n"
            "  kiosko:\n    title: Kiosko\n    patterns: [outbound_only]\n"
            "    egress:\n      - {purpose: Kiosko API, domains: [api.kiosko.example],"
            " ports: [8443]}\n"
            "  ppaas:\n    cloud_connector:\n      environments:\n"
            "        prod: {api_host: api.ppaas.example, auth_host: auth.ppaas.example}\n",
            1,
        )
    )
    items = {i["id"]: i for i in catalog_json("--fleet", str(root))}
    assert items["kiosko"]["origin"] == "fleet.yaml"
    assert items["kiosko"]["ports"] == ["tcp/8443 outbound"]
    assert items["deliverect"]["origin"] == "built-in, changed in fleet.yaml"
    assert items["deliverect"]["sources"] == ["198.51.100.0/28"]
    assert items["openpos"]["origin"] == "built-in"
    # lists replace, mappings merge: the fleet's environment joins the built-in qa
    assert sorted(items["ppaas"]["environments"]) == ["prod", "qa"]  # type: ignore[call-overload]
    one = catalog_json("kiosko", "--fleet", str(root))
    assert [i["id"] for i in one] == ["kiosko"]


def test_unknown_partner_is_a_clear_error() -> None:
    res = run_cli("catalog", "nosuchpartner")
    assert res.returncode == 1 and res.stdout == ""
    assert "no partner 'nosuchpartner' in the catalog (known: deliverect," in res.stderr
    assert "Traceback" not in res.stderr


def test_a_broken_fleet_file_is_reported_not_crashed(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)
    (root / "fleet.yaml").write_text("fleet: demo\npartners:\n  x: {patterns: [teleport]}\n")
    res = run_cli("catalog", "--fleet", str(root))
    assert res.returncode == 1, res
    assert "fleet.yaml:3" in res.stdout + res.stderr and "Traceback" not in res.stderr
    res = run_cli("catalog", "--fleet", str(root / "nothing-here"))
    assert res.returncode == 2 and "is not a fleet folder" in res.stderr


def test_help_explains() -> None:
    res = run_cli("catalog", "--help")
    assert res.returncode == 0
    flat = " ".join(res.stdout.split())
    for words in (
        "built-in ones and the fleet's own",
        "patterns, environments (cloud connector), the domains and ports",
        "an unknown id exits 1",
        "partners.<id>.cloud_connector.environments",
        "--format [text|json]",
    ):
        assert words in flat, flat


def test_unknown_environment_says_where_to_add_one(tmp_path: Path) -> None:
    root, _ = make_fleet(tmp_path, BR, sub("    environment: qa\n", "    environment: prod\n"))
    mine = [d for d in errors(root) if d.path.endswith(".environment")]
    assert len(mine) == 1, errors(root)
    assert mine[0].message == (
        "partner 'ppaas' has no environment 'prod'; environments are added under "
        "partners.ppaas.cloud_connector.environments in fleet.yaml"
    )
    assert "qa (see `posnet catalog ppaas`)" in mine[0].expected
    # ... and doing what it says makes the store valid.
    fleet = root / "fleet.yaml"
    fleet.write_text(
        fleet.read_text().replace(
            "  powerepos:\n",
            "  ppaas:\n    cloud_connector:\n      environments:\n"
            "        prod: {api_host: api.ppaas.example, auth_host: auth.ppaas.example}\n"
            "  powerepos:\n",
        )
    )
    assert errors(root) == []


def test_an_allow_list_is_suggested_only_for_partners_that_connect_in() -> None:
    """`catalog` told the user to set partners.openpos.sources, for a partner that
    needs no inbound access (sources would allow nothing)."""
    by_id = {str(p["id"]): p for p in catalog_json()}
    assert by_id["deliverect"]["inbound"] is True and by_id["openpos"]["inbound"] is False
    assert by_id["ppaas"]["inbound"] is False
    text = run_cli("catalog").stdout
    blocks = {b.split()[0]: b for b in text.split("\n\n")}
    assert "sources:" in blocks["deliverect"]
    assert "sources:" not in blocks["openpos"] and "sources:" not in blocks["ppaas"]
