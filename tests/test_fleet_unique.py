"""Public names and addresses used twice across stores (fleet_checks._check_unique)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from generator.errors import Location
from generator.spec.fleet_checks import _check_unique


def _store(sid: str, fqdn: str | None, ip: str | None) -> Any:
    facts = SimpleNamespace(id=sid, fqdn=fqdn, public_ip=ip)
    where = {
        ("wan", "fqdn"): (Location(f"{sid}.yaml", 3, 9), "wan.fqdn"),
        ("wan", "public_ip"): (Location(f"{sid}.yaml", 4, 14), "wan.public_ip"),
    }
    return SimpleNamespace(id=sid, facts=facts, locate=where.__getitem__)


def test_the_first_store_keeps_a_value_and_each_later_one_is_told() -> None:
    sites = [
        _store("a", "a.example", "192.0.2.1"),
        _store("b", "a.example", None),
        _store("c", None, "192.0.2.1"),
        _store("d", "a.example", "192.0.2.1"),
        _store("a", "a.example", "192.0.2.1"),  # the same store again: not a clash
        _store("e", "e.example", "192.0.2.5"),
    ]
    found = _check_unique(SimpleNamespace(sites=sites))  # type: ignore[arg-type]
    got = [(d.site, str(d.location), d.path, d.message, d.expected) for d in found]
    assert got == [
        (
            "b",
            "b.yaml:3:9",
            "wan.fqdn",
            "wan.fqdn is also used by site 'a'",
            "an FQDN no other store of the fleet uses",
        ),
        (
            "c",
            "c.yaml:4:14",
            "wan.public_ip",
            "wan.public_ip is also used by site 'a'",
            "a public IP address no other store of the fleet uses",
        ),
        (
            "d",
            "d.yaml:3:9",
            "wan.fqdn",
            "wan.fqdn is also used by site 'a'",
            "an FQDN no other store of the fleet uses",
        ),
        (
            "d",
            "d.yaml:4:14",
            "wan.public_ip",
            "wan.public_ip is also used by site 'a'",
            "a public IP address no other store of the fleet uses",
        ),
    ]
    assert all(d.code == "E300" and d.severity == "error" for d in found)
