"""DHCP for the store LAN with dnsmasq: fixed addresses for POS hosts (seed 000).

The seed forwards ports to a fixed internal IP, so a POS host must keep its address;
a DHCP reservation per MAC keeps it without touching the host. dnsmasq runs DHCP only
(`port=0`): the store's DNS stays where it is, and a second resolver on the edge would
be one more thing to break. Side effect of `port=0`: dnsmasq no longer announces itself
as DNS server (option 6), so clients keep whatever DNS the Plan does not describe yet.
"""

from __future__ import annotations

from generator import netparse
from generator.plan import LanPlan, Plan
from generator.targets.base import Artifact, Declared
from generator.templating import render as render_template

NAME = "dnsmasq"
# No secret reaches this file; "raw" is the strictest style should one ever be added.
SECRET_STYLE = "raw"  # noqa: S105 - a style name, not a password

PATH = "dhcp/dnsmasq.conf"
LEASE_TIME = "12h"
LEASE_FILE = "/var/lib/misc/dnsmasq.leases"


def dhcp_range(lan: LanPlan) -> str:
    """The pool when there is one; otherwise a `static` range so reservations still work.

    The netmask is always given: a reservation outside the pool (the usual case for a
    fixed POS address) is only served when dnsmasq knows the whole subnet.
    """
    if lan.pool_start and lan.pool_end:
        return f"{lan.pool_start},{lan.pool_end},{lan.netmask},{LEASE_TIME}"
    network = netparse.ipv4_network(lan.subnet).network_address
    return f"{network},static,{lan.netmask},{LEASE_TIME}"


def needed(plan: Plan) -> bool:
    return bool(plan.lan.pool_start or plan.dhcp)


def render(plan: Plan) -> dict[str, str]:
    if not needed(plan):
        return {}
    text = render_template(
        "dnsmasq/dnsmasq.conf.j2",
        site_id=plan.site_id,
        lan=plan.lan,
        dhcp_range=dhcp_range(plan.lan),
        lease_file=LEASE_FILE,
        reservations=plan.dhcp,
    )
    return {PATH: text}


def _artifacts(plan: Plan) -> tuple[Artifact, ...]:
    return (Artifact(PATH, "/etc/posnet/dnsmasq.conf", "dhcp", validate="dnsmasq --test -C %s"),)


TARGET = Declared(NAME, "edge", needed, render, _artifacts, SECRET_STYLE)
