"""What work over the whole fleet reads of one store's Plan: the fleet lint rules and
the inventory's hosts.yml.

The site cache keeps each store's view decoded beside its pickled Plan, so a warm
validate and a render that changes one store never decode 10,000 Plans: decoding them
was most of reading the cache, and hosts.yml needed them all (benchmarks/README.md).
A consumer can read only what is here; mypy keeps that honest.
"""

from __future__ import annotations

import io
import pickle
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from generator.plan import EgressFlow, Exposure, Plan, ProxyPlan, WanPlan


@dataclass(frozen=True)
class FleetView:
    site_id: str
    lint_disable: tuple[str, ...]
    wan: WanPlan
    lan_subnet: str
    egress_policy: str
    exposures: tuple[Exposure, ...]
    proxies: tuple[ProxyPlan, ...]
    egress: tuple[EgressFlow, ...]  # a proxy's way out; empty without proxies
    uses_tunnel: bool
    auth_secrets: tuple[str, ...]  # references of its AuthSecrets
    # hosts.yml: the edge's groups, the store's proxy hosts with their variables
    group: str | None
    firewall: str
    ddns: bool
    proxy_hosts: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, plan: Plan) -> FleetView:
        from generator.inventory import proxy_hosts

        return cls(
            site_id=plan.site_id,
            lint_disable=plan.lint_disable,
            wan=plan.wan,
            lan_subnet=plan.lan.subnet,
            egress_policy=plan.egress_policy,
            exposures=plan.exposures,
            proxies=plan.proxies,
            egress=plan.egress if plan.proxies else (),
            uses_tunnel=bool(plan.tunnels),
            auth_secrets=tuple(s.ref for s in plan.secrets if s.kind == "auth-secret"),
            group=plan.group,
            firewall=plan.firewall,
            ddns=plan.ddns is not None,
            proxy_hosts=proxy_hosts(plan) if plan.proxies else {},
        )


def packed(view: FleetView) -> bytes:
    """The view pickled without pickle's memo: equal views give equal bytes however
    their objects happen to be shared (a loading worker's pickle and a later run's
    differed for 172 of 300 stores), so a digest of the bytes can key what follows
    from the views (plan_list.Plans.views_key). Should a Python drop the memo switch,
    the bytes are pickle's usual ones: then an unchanged view may cost a recomputation,
    never a wrong result."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    with suppress(AttributeError):
        pickler.fast = True  # views hold no cycle, the one thing the memo is needed for
    pickler.dump(view)
    return buf.getvalue()
