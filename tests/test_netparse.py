"""Addresses and networks are parsed once per process (generator/netparse.py)."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterator

import pytest

from generator import netparse
from generator.build import render_plan
from generator.plan import Plan
from generator.spec.types import _network

PARSERS = (
    netparse.ipv4_address,
    netparse.ipv4_network,
    netparse.ip_address,
    netparse.ip_address_or_none,
    netparse.ip_network,
    netparse._collapse,
)


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts every ipaddress object built from now on, caches emptied first."""
    for f in PARSERS:
        f.cache_clear()
    seen: Counter[str] = Counter()
    for cls in (ipaddress.IPv4Address, ipaddress.IPv4Network, ipaddress.IPv6Network):
        orig = cls.__init__

        def init(
            self: object, *a: object, _o: object = orig, _n: str = cls.__name__, **k: object
        ) -> None:
            seen[_n] += 1
            _o(self, *a, **k)  # type: ignore[operator]

        monkeypatch.setattr(cls, "__init__", init)
    yield seen


def test_same_text_same_object() -> None:
    assert netparse.ipv4_network("198.51.100.0/24") is netparse.ipv4_network("198.51.100.0/24")
    assert netparse.ip_address("2001:db8::1") is netparse.ip_address("2001:db8::1")
    assert netparse.collapse(["192.0.2.0/25", "192.0.2.128/25"], "ipv4") == ("192.0.2.0/24",)
    assert netparse.ip_address_or_none("pos.example.com") is None
    assert netparse.ip_address_or_none("192.0.2.1") == ipaddress.IPv4Address("192.0.2.1")


def test_a_bad_text_fails_every_time() -> None:
    """Errors are not cached away: the second call raises like the first."""
    for _ in range(2):
        with pytest.raises(ValueError, match="host bits set"):
            netparse.ipv4_network("198.51.100.1/24")
        with pytest.raises(ValueError):
            netparse.ip_address("pos.example.com")
        with pytest.raises(ValueError, match="not all ipv4"):
            netparse.collapse(["2001:db8::/32"], "ipv4")
    with pytest.raises(ValueError, match="host bits"):
        _network("198.51.100.1/24")  # the spec's message still sees ipaddress' reason


def test_rendering_again_parses_nothing(demo_plans: dict[str, Plan], created: Counter[str]) -> None:
    """Every address text is parsed the first time only: a second render of the same
    stores builds no ipaddress object at all."""
    for plan in demo_plans.values():
        render_plan(plan)
    first = sum(created.values())
    assert first > 0
    for plan in demo_plans.values():
        render_plan(plan)
    assert sum(created.values()) == first, created


def _edges() -> Iterator[ipaddress.IPv4Network]:
    """Networks of every size at and around each special range's first and last address."""
    for special, _ in netparse.NOT_UNICAST:
        for edge in (int(special.network_address), int(special.broadcast_address)):
            for addr in range(max(edge - 2, 0), min(edge + 3, 1 << 32)):
                for prefix in range(33):
                    yield ipaddress.IPv4Network((addr, prefix), strict=False)


def test_special_ranges_by_bounds_as_ipaddress_says() -> None:
    """not_unicast and its siblings compare integers: the same range, first hit first,
    as IPv4Network.overlaps and subnet_of give."""
    for net in _edges():
        overlaps = next(((n, name) for n, name in netparse.NOT_UNICAST if net.overlaps(n)), None)
        within = next(((n, name) for n, name in netparse.NOT_UNICAST if net.subnet_of(n)), None)
        assert netparse.not_unicast(net) == overlaps, net
        assert netparse.within_not_unicast(net) == within, net
        ip = net.network_address
        alone = ipaddress.IPv4Network(ip)
        assert netparse.address_not_unicast(ip) == netparse.not_unicast(alone), ip
