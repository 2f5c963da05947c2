"""Networks no store can have, and what every spec check says was expected.

Each case breaks sites/gent-01.yaml of a copy of the demo fleet. A LAN is moved as a
whole (subnet, gateway, pool, hosts) so the only problem left is the one under test:
the check must name it once, accurately, with what would be right.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from generator.errors import Diagnostic
from tests.test_bad_input import errors, make_fleet, pos, sub

ROOT = Path(__file__).resolve().parent.parent
G = "sites/gent-01.yaml"  # LAN 198.51.100.128/26: gateway .129, pool .150-.180, hosts .140/.141
LAN_ADDRESSES = "198.51.100.1"  # every LAN address of gent-01 starts so; its sources do not


def gent_errors(tmp_path: Path, *edits: tuple[str, str]) -> tuple[list[Diagnostic], bytes]:
    def mutate(raw: bytes) -> bytes:
        for old, new in edits:
            raw = (
                sub(old, new)(raw)
                if old != LAN_ADDRESSES
                else raw.replace(old.encode(), new.encode())
            )
        return raw

    root, broken = make_fleet(tmp_path, G, mutate)
    return [d for d in errors(root) if d.location.file == str(root / G)], broken


def moved_lan(subnet: str, first_three: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """gent-01's LAN moved to `subnet`, its addresses to first_three.1xx."""
    return ('subnet: "198.51.100.128/26"', f'subnet: "{subnet}"'), (
        LAN_ADDRESSES,
        f"{first_three}.1",
    )


# ------------------------------------------------------------------------- the LAN

# (subnet, its addresses' first three octets, message fragments of the lan.subnet errors)
IMPOSSIBLE_LANS = [
    ("224.0.0.128/26", "224.0.0", ["overlaps the multicast range 224.0.0.0/4"]),
    ("127.0.0.128/26", "127.0.0", ["overlaps the loopback range 127.0.0.0/8"]),
    ("169.254.0.128/26", "169.254.0", ["overlaps the link-local range 169.254.0.0/16"]),
    ("240.0.0.128/26", "240.0.0", ["overlaps the reserved range 240.0.0.0/4"]),
    ("0.0.0.128/26", "0.0.0", ["overlaps the 'this network' range 0.0.0.0/8"]),
    ("10.0.0.0/15", "10.0.0", ["10.0.0.0/15 is too large for a store LAN (131,072 addresses)"]),
    (
        "0.0.0.0/1",
        "0.0.0",
        ["0.0.0.0/1 is too large", "overlaps the 'this network' range 0.0.0.0/8"],
    ),
]


@pytest.mark.parametrize(
    "subnet, first_three, fragments", IMPOSSIBLE_LANS, ids=[c[0] for c in IMPOSSIBLE_LANS]
)
def test_a_lan_no_store_can_have_is_refused_at_the_subnet(
    tmp_path: Path, subnet: str, first_three: str, fragments: list[str]
) -> None:
    found, broken = gent_errors(tmp_path, *moved_lan(subnet, first_three))
    assert len(found) == len(fragments), found  # the subnet only: its hosts fit it
    line, col = pos(broken, f'"{subnet}"')
    for fragment, d in zip(
        fragments, sorted(found, key=lambda d: "large" not in d.message), strict=True
    ):
        assert (d.code, d.path) == ("E202", "lan.subnet"), d
        assert fragment in d.message, d
        assert (d.location.line, d.location.col) == (line, col), d
        if "too large" in fragment:
            assert d.expected == "/16 or smaller, e.g. /24 (254 hosts)", d
        else:
            assert "a unicast range: RFC 1918" in d.expected and "100.64.0.0/10" in d.expected, d


@pytest.mark.parametrize(
    "subnet, first_three",
    [
        ("10.20.0.0/16", "10.20.0"),  # the largest a store LAN may be
        ("172.16.5.128/26", "172.16.5"),
        ("192.168.1.128/26", "192.168.1"),
        ("100.64.10.128/26", "100.64.10"),  # carrier-grade NAT space inside a store
        ("81.82.83.128/26", "81.82.83"),  # public space routed to the store
    ],
)
def test_usable_lans_stay_valid(tmp_path: Path, subnet: str, first_three: str) -> None:
    found, _ = gent_errors(tmp_path, *moved_lan(subnet, first_three))
    assert found == []


# --------------------------------------------------------------------- the WAN side

PUBLIC_IP = ('public_ip: "203.0.113.10"', "public_ip: {}")

# (public_ip, message fragment): each gets exactly one E205, saying what the address is
BAD_PUBLIC = [
    ('"0.0.0.0"', "0.0.0.0 is the unspecified address: no store can be reached there"),
    ('"255.255.255.255"', "255.255.255.255 is the broadcast address"),
    ('"127.0.0.1"', "127.0.0.1 is a loopback address (127.0.0.0/8)"),
    ('"224.0.0.1"', "224.0.0.1 is a multicast address (224.0.0.0/4)"),
    ('"169.254.1.1"', "169.254.1.1 is a link-local address (169.254.0.0/16)"),
    ('"240.0.0.1"', "240.0.0.1 is a reserved address (240.0.0.0/4)"),
    ('"0.1.2.3"', "0.1.2.3 is a 'this network' address (0.0.0.0/8)"),
    ('"10.1.1.1"', "10.1.1.1 is a private address, not a public one (is the edge behind NAT?)"),
    ('"100.64.1.1"', "100.64.1.1 is a carrier-grade NAT address (100.64.0.0/10)"),
    ('"198.51.100.129"', "198.51.100.129 is the LAN gateway"),
    ('"198.51.100.140"', "198.51.100.140 is inside the LAN 198.51.100.128/26"),
]


@pytest.mark.parametrize("value, fragment", BAD_PUBLIC, ids=[c[0] for c in BAD_PUBLIC])
def test_an_unusable_public_ip_gets_one_accurate_error(
    tmp_path: Path, value: str, fragment: str
) -> None:
    found, _ = gent_errors(tmp_path, (PUBLIC_IP[0], PUBLIC_IP[1].format(value)))
    assert len(found) == 1, found
    d = found[0]
    assert (d.code, d.path) == ("E205", "wan.public_ip"), d
    assert fragment in d.message, d
    if "private" not in fragment and "NAT" not in fragment:
        assert "behind NAT" not in d.message and "private" not in d.message, d
    assert "public IPv4 address" in d.expected, d


ADDRESS = ("  fqdn: gent-01.pos.example.com\n", "  address: {}\n  fqdn: gent-01.pos.example.com\n")

# (wan.address, message fragment, expected fragment)
BAD_ADDRESS = [
    ('"198.51.100.129"', "198.51.100.129 is the LAN gateway", "outside lan.subnet"),
    ('"198.51.100.200"', None, None),  # outside the /26: fine
    (
        '"198.51.100.170"',
        "198.51.100.170 is inside the LAN 198.51.100.128/26",
        "outside lan.subnet",
    ),
    ('"0.0.0.0"', "0.0.0.0 is the unspecified address: no interface can have it", "unicast"),
    ('"127.0.0.1"', "127.0.0.1 is a loopback address", "unicast"),
    ('"192.168.1.2"', None, None),  # the usual address behind an ISP router
]


@pytest.mark.parametrize("value, fragment, expected", BAD_ADDRESS, ids=[c[0] for c in BAD_ADDRESS])
def test_the_edges_wan_address_cannot_be_a_lan_or_special_address(
    tmp_path: Path, value: str, fragment: str | None, expected: str | None
) -> None:
    found, broken = gent_errors(tmp_path, (ADDRESS[0], ADDRESS[1].format(value)))
    if fragment is None:
        assert found == []
        return
    assert len(found) == 1, found
    d = found[0]
    assert (d.code, d.path) == ("E205", "wan.address"), d
    assert fragment in d.message and expected is not None and expected in d.expected, d
    assert d.location.line == pos(broken, value)[0], d


# ---------------------------------------------------------- what was expected, always

# (edit, path, message fragment, the expected it must give): messages that said none
SAID_NO_EXPECTED = [
    (
        ('gateway: "198.51.100.129"', 'gateway: "10.9.1.1"'),
        "lan.gateway",
        "10.9.1.1 is not a host address of 198.51.100.128/26",
        "an address from 198.51.100.129 to 198.51.100.190",
    ),
    (
        ('end: "198.51.100.180"', 'end: "198.51.100.145"'),
        "lan.dhcp_pool.end",
        "the pool ends (198.51.100.145) before it starts (198.51.100.150)",
        "an end at or after the start 198.51.100.150",
    ),
    (
        ('start: "198.51.100.150"', 'start: "198.51.100.129"'),
        "lan.dhcp_pool",
        "the pool contains the gateway 198.51.100.129",
        "a pool that leaves out 198.51.100.129",
    ),
    (
        ('end: "198.51.100.180"', 'end: "198.51.100.191"'),
        "lan.dhcp_pool.end",
        "198.51.100.191 is not a host address of 198.51.100.128/26",
        "an address from 198.51.100.129 to 198.51.100.190",
    ),
    (
        ('ip: "198.51.100.141"', 'ip: "198.51.100.129"'),
        "hosts[1].ip",
        "is the LAN gateway (the edge)",
        "an address of its own, not lan.gateway",
    ),
    (
        ('ip: "198.51.100.141"', 'ip: "198.51.100.140"'),
        "hosts[1].ip",
        "duplicate host ip",
        "an IP address no other host of this store has",  # not "a ip"
    ),
    (
        (
            "      - {name: api, port: 8443, tls: true}\n",
            "      - {name: api, port: 8443}\n      - {name: api, port: 8443}\n",
        ),
        "hosts[1].services[1].port",
        "duplicate port on this host (also services[0])",
        "a port (and protocol) no other service of this host has",
    ),
]


@pytest.mark.parametrize(
    "edit, path, fragment, expected", SAID_NO_EXPECTED, ids=[c[1] for c in SAID_NO_EXPECTED]
)
def test_a_check_says_what_was_expected(
    tmp_path: Path, edit: tuple[str, str], path: str, fragment: str, expected: str
) -> None:
    found, _ = gent_errors(tmp_path, edit)
    hits = [d for d in found if d.path == path and fragment in d.message]
    assert len(hits) == 1, found
    assert expected in hits[0].expected, hits[0]


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
    ]


def _expected_arg(call: ast.Call, position: int) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == "expected":
            return kw.value
    return call.args[position] if len(call.args) > position else None


def _says_nothing(arg: ast.expr | None) -> bool:
    return arg is None or (isinstance(arg, ast.Constant) and not str(arg.value).strip())


def test_every_spec_check_passes_what_was_expected() -> None:
    """Every Problem (the checks of one store, in generator/spec and the patterns) and
    every E-code Diagnostic the loader, the checks across stores and analyze make names
    what was expected: a new check without it fails here, not in an operator's terminal.
    Notes (severity info) say what was ignored and need none; lint findings carry their
    rule's advice and why."""
    missing = []
    problem_files = [*(ROOT / "generator").rglob("*.py")]
    for f in problem_files:
        tree = ast.parse(f.read_text())
        for call in _calls(tree, "Problem"):
            if _says_nothing(_expected_arg(call, 3)):
                missing.append(f"{f.relative_to(ROOT)}:{call.lineno}: Problem")
    diagnostic_files = [*(ROOT / "generator" / "spec").glob("*.py"), ROOT / "generator/analyze.py"]
    for f in diagnostic_files:
        tree = ast.parse(f.read_text())
        for call in _calls(tree, "Diagnostic"):
            severity = next((k.value for k in call.keywords if k.arg == "severity"), None)
            if isinstance(severity, ast.Constant) and severity.value == "info":
                continue
            code = call.args[1] if len(call.args) > 1 else None
            if not (isinstance(code, ast.Constant) and str(code.value).startswith("E")):
                continue  # a lint finding (PN rule id): its rule's advice and why
            if _says_nothing(_expected_arg(call, 5)):
                missing.append(f"{f.relative_to(ROOT)}:{call.lineno}: Diagnostic")
    assert not missing, "no expected: " + ", ".join(missing)
    assert len(problem_files) > 50 and len(diagnostic_files) > 5  # the scan saw the code


# ------------------------------------------------------------------------ sources


@pytest.mark.parametrize(
    ("source", "range_name"),
    [
        ("127.0.0.1", "loopback range 127.0.0.0/8"),
        ("224.0.0.1", "multicast range 224.0.0.0/4"),
        ("255.255.255.255", "reserved range 240.0.0.0/4"),
        ("0.0.0.0", "'this network' range 0.0.0.0/8"),
        ("127.0.0.0/8", "loopback range 127.0.0.0/8"),
    ],
)
def test_a_source_no_connection_comes_from_is_refused(
    tmp_path: Path, source: str, range_name: str
) -> None:
    """Found by fuzzing: management allow_from and partner sources of 127.0.0.1,
    224.0.0.1 or 255.255.255.255 validated and rendered a rule that admits no one. They
    are refused where written (fleet.yaml here), naming the range; a wider network that
    only overlaps one (0.0.0.0/0, linted as wide open) stays valid."""
    root, _ = make_fleet(
        tmp_path,
        "fleet.yaml",
        sub('allow_from: ["192.0.2.64/28"]', f'allow_from: ["192.0.2.64/28", "{source}"]'),
    )
    found = [d for d in errors(root) if d.location.file == str(root / "fleet.yaml")]
    assert len(found) == 1, found
    assert found[0].path == "defaults.edge.management.allow_from[1]", found[0]
    assert range_name in found[0].message and found[0].location.line == 16


def test_a_partner_source_in_a_special_range_is_refused_and_any_is_not(tmp_path: Path) -> None:
    bad, _ = make_fleet(
        tmp_path / "bad",
        "fleet.yaml",
        sub(
            '    sources: ["198.51.100.0/28"]\n  powerepos:',
            '    sources: ["224.0.0.5"]\n  powerepos:',
        ),
    )
    (d,) = [d for d in errors(bad) if d.location.file == str(bad / "fleet.yaml")]
    assert "multicast range 224.0.0.0/4" in d.message and d.location.line == 9
    anyone, _ = make_fleet(
        tmp_path / "any",
        "fleet.yaml",
        sub(
            '    sources: ["198.51.100.0/28"]\n  powerepos:',
            '    sources: ["0.0.0.0/0"]\n  powerepos:',
        ),
    )
    assert not [d for d in errors(anyone) if d.location.file == str(anyone / "fleet.yaml")]
