"""The Windows HTTPS handover gives the host name the clients must use (a certificate
carries names, not the LAN address) and the service's own port; without a name it says
so instead of handing out an address that fails the certificate check."""

from __future__ import annotations

from pathlib import Path

from generator.plan import Plan
from generator.targets import handover
from tests.conftest import load_plans
from tests.test_bad_input import OS, errors, make_fleet, sub
from tests.test_target_handover import section

NAME_LINE = "    name: backoffice.ostend-05.lan.example.com\n"
IP = "198.51.100.5"


def ostend(tmp_path: Path, old: str, new: str, rel: str = OS) -> Plan:
    root, _ = make_fleet(tmp_path, rel, sub(old, new))
    fleet, plans = load_plans(root)
    assert fleet.ok, fleet.diagnostics
    return next(p for p in plans if p.site_id == "ostend-05")


def windows_text(plan: Plan) -> tuple[str, str]:
    sheet = handover.render(plan)["HANDOVER.md"]
    return section(sheet, "Windows steps"), sheet


def test_demo_names_the_host_and_port(demo_plans: dict[str, Plan]) -> None:
    (b,) = demo_plans["ostend-05"].windows
    assert b.name == "backoffice.ostend-05.lan.example.com"
    steps, sheet = windows_text(demo_plans["ostend-05"])
    assert f"Clients must use the name `{b.name}`, not {IP}" in " ".join(steps.split())
    assert f"`https://{b.name}:10101/`" in steps
    assert "The service keeps listening on its own port 10101" in steps
    assert f"`https://{b.name}:10101/` answers with the trusted certificate" in sheet
    assert f"https://{IP}:10101/" not in sheet


def test_without_a_name_the_sheet_says_so(tmp_path: Path) -> None:
    plan = ostend(tmp_path, NAME_LINE, "")  # neither name nor lan.domain
    assert plan.windows[0].name is None
    steps, sheet = windows_text(plan)
    assert "No host name is set" in steps and "clients cannot use" in steps
    assert f"from a client, `https://{IP}:10101/` answers" not in sheet
    assert "`https://NAME:10101/`, NAME being the host name the certificate carries" in sheet
    assert f"`https://{IP}:10101/` fails its name check" in sheet


def test_lan_domain_gives_the_default(tmp_path: Path) -> None:
    root, _ = make_fleet(tmp_path, OS, sub(NAME_LINE, ""))
    text = (root / OS).read_text()
    (root / OS).write_text(text.replace("lan:\n", "lan:\n  domain: shop.example.com\n", 1))
    fleet, plans = load_plans(root)
    assert fleet.ok, fleet.diagnostics
    plan = next(p for p in plans if p.site_id == "ostend-05")
    assert plan.windows[0].name == "backoffice.shop.example.com"
    assert "`https://backoffice.shop.example.com:10101/`" in windows_text(plan)[0]


def test_other_port_is_named(tmp_path: Path) -> None:
    root, _ = make_fleet(tmp_path, OS, sub(NAME_LINE, NAME_LINE + "    port: 10200\n"))
    text = (root / OS).read_text().replace("port: 10101, tls: true", "port: 10200, tls: true")
    (root / OS).write_text(text)
    fleet, plans = load_plans(root)
    assert fleet.ok, fleet.diagnostics
    plan = next(p for p in plans if p.site_id == "ostend-05")
    steps, _ = windows_text(plan)
    assert "its own port 10200" in steps and "change\nits port setting to 10200" in steps


def test_an_address_is_not_a_name(tmp_path: Path) -> None:
    root, _ = make_fleet(tmp_path, OS, sub(NAME_LINE, f'    name: "{IP}"\n'))
    hits = [d for d in errors(root) if d.path == "integrations[2].name"]
    assert hits and "checked against a host name" in hits[0].message, errors(root)


def test_a_default_name_longer_than_dns_allows_is_refused(tmp_path: Path) -> None:
    """backoffice.<lan.domain> with a 247-character domain is 258 characters: the scripts
    and the handover named it without a word. Each part is valid; together they are not."""
    from tests.test_bad_input import pos

    domain = ".".join(["a" * 60] * 4) + ".com"
    root, _ = make_fleet(tmp_path, OS, sub(NAME_LINE, ""))
    text = (root / OS).read_text().replace("lan:\n", f"lan:\n  domain: {domain}\n", 1)
    (root / OS).write_text(text)
    errs = errors(root)
    assert [e.code for e in errs] == ["E210"], errs
    (e,) = errs
    assert e.location.file.endswith(OS)
    assert (e.location.line, e.location.col) == pos(text.encode(), "backoffice\n    thumbprint")
    assert e.path == "integrations[2].host"
    assert e.message == (
        "the clients' default name backoffice.<lan.domain> is a 258-character host name: "
        "longer than the 253 characters DNS allows"
    )
    assert e.expected.startswith("name: the (shorter) name the certificate carries")


def test_a_binding_on_a_port_the_service_does_not_use_is_refused(tmp_path: Path) -> None:
    """The service declared on 10102 and no `port:`: the scripts bound 10101, so the
    service stayed on plain HTTP (seed: "replace 10101 with the port number of
    NetPOS.Net if you don't run it on the default port number")."""
    root, _ = make_fleet(tmp_path, OS, sub("port: 10101, tls: true", "port: 10102, tls: true"))
    (e,) = errors(root)
    assert (e.code, e.path) == ("E210", "integrations[2].host"), e
    assert "binding is for port 10101, but backoffice's services listen on 10102" in e.message
    assert e.expected == "port: the port of backoffice's service (10102)"
    root2, _ = make_fleet(tmp_path / "b", OS, sub(NAME_LINE, NAME_LINE + "    port: 8000\n"))
    (e2,) = errors(root2)
    assert (e2.code, e2.path) == ("E210", "integrations[2].port"), e2
