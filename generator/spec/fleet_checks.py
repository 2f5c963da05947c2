"""Checks across stores: unique public names and addresses, remote proxy routes that
resolve to a store and service of the fleet."""

from __future__ import annotations

from generator.errors import Diagnostic
from generator.spec.fleet import Fleet, LoadedSite
from generator.yamlload import YamlPath


def check_fleet(fleet: Fleet, failed: set[str]) -> list[Diagnostic]:
    """Across stores: unique public names and addresses, remote proxy routes resolve.

    A store whose remote routes do not resolve is dropped from fleet.sites (the resolver
    needs every route target); dropping one can break another's routes, so repeat.
    """
    out = _check_unique(fleet)
    while True:
        broken = _check_routes(fleet, failed)
        if not broken:
            return out
        out.extend(broken)
        bad = {d.site for d in broken}
        failed |= bad
        fleet.sites = [ls for ls in fleet.sites if ls.id not in bad]


_WHAT = {"fqdn": "an FQDN", "public_ip": "a public IP address"}


def _check_unique(fleet: Fleet) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen_fqdn: dict[str, str] = {}
    seen_ip: dict[str, str] = {}
    for ls in fleet.sites:
        facts = ls.facts
        # the first store to claim a value keeps it
        if facts.fqdn is not None:
            first = seen_fqdn.setdefault(facts.fqdn, facts.id)
            if first != facts.id:
                out.append(_used_by(ls, "fqdn", first))
        if facts.public_ip is not None:
            first = seen_ip.setdefault(facts.public_ip, facts.id)
            if first != facts.id:
                out.append(_used_by(ls, "public_ip", first))
    return out


def _used_by(ls: LoadedSite, key: str, other: str) -> Diagnostic:
    """wan.KEY of a store holds the value store OTHER claimed first."""
    loc, shown = ls.locate(("wan", key))
    return Diagnostic(
        loc,
        "E300",
        f"wan.{key} is also used by site '{other}'",
        path=shown,
        expected=f"{_WHAT[key]} no other store of the fleet uses",
        site=ls.id,
    )


def _check_routes(fleet: Fleet, failed: set[str]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    by_id = {ls.id: ls for ls in fleet.sites}
    for ls in fleet.sites:
        for i, j, target, service in ls.facts.routes:
            if service is None:
                continue
            path: YamlPath = ("integrations", i, "routes", j, "site")
            other = by_id.get(target)
            if other is None:
                loc, shown = ls.locate(path)
                if target in failed:
                    msg = f"site '{target}' has errors, so this route cannot be resolved"
                    want = f"site '{target}' without errors (see its own diagnostics)"
                else:
                    msg, want = (
                        f"site '{target}' is not in this fleet",
                        "the id of a store in sites/",
                    )
                out.append(Diagnostic(loc, "E300", msg, path=shown, expected=want, site=ls.id))
                continue
            if other.facts.fqdn is None and other.facts.public_ip is None:
                loc, shown = ls.locate(path)
                msg = f"site '{target}' has no public address (wan.fqdn or wan.public_ip)"
                want = f"wan.fqdn or wan.public_ip in site '{target}', or another store"
                out.append(Diagnostic(loc, "E300", msg, path=shown, expected=want, site=ls.id))
                continue
            host, _, svc = service.partition("/")
            if (host, svc) not in other.facts.services:
                loc, shown = ls.locate((*path[:-1], "site_service"))
                out.append(
                    Diagnostic(
                        loc,
                        "E300",
                        f"site '{target}' has no service {service}",
                        path=shown,
                        expected=f"a host/service of site '{target}'",
                        site=ls.id,
                    )
                )
            elif service in other.facts.udp:
                loc, shown = ls.locate((*path[:-1], "site_service"))
                out.append(
                    Diagnostic(
                        loc,
                        "E300",
                        f"service {service} of site '{target}' is udp, but the reverse proxy "
                        "connects to it over TCP",
                        path=shown,
                        expected=f"a tcp service of site '{target}'",
                        site=ls.id,
                    )
                )
    return out
