"""Outbound patterns proven with real traffic (issue 9): a LAN host that got its address
by DHCP resolves through the edge, reaches its partner's names on 443 and nothing else;
a host outside the flow reaches nothing. The edge runs the rendered firewall and
dnsmasq; the cloud namespace answers DNS for the partner names (tests/lab/cloud_support.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .cloud_support import (
    BELOW_DEVICES,
    CLOUD_ADDRS,
    DEVICES,
    FIREBASE,
    FIREBASE_APEX,
    POS1_MAC,
    RAW_IP,
    UNLISTED,
    dhcp_lease,
    https,
    lookup,
    outbound_plan,
    start_cloud,
    start_edge,
)
from .netns import CLOUD_IP, EDGE_LAN_IP, Lab


@pytest.mark.parametrize("kind", ["nftables", "iptables"])
def test_restricted_store_reaches_only_its_domains(
    lab_factory: Callable[..., Lab], tmp_path: Path, kind: str
) -> None:
    lab = lab_factory(servers=False, sshd=False)
    plan, site_dir = outbound_plan(tmp_path, kind)
    start_cloud(lab)
    start_edge(lab, site_dir, plan)

    # Before any lookup the flow's set is empty: even its own partner is refused.
    assert https(lab, "pos1", DEVICES, CLOUD_ADDRS[DEVICES]) == 0

    lease = dhcp_lease(lab, "pos1", POS1_MAC)
    assert lease == {"ip": "198.51.100.140", "router": EDGE_LAN_IP, "dns": EDGE_LAN_IP}

    for name in (DEVICES, FIREBASE):
        assert lookup(lab, "pos1", name, EDGE_LAN_IP) == [CLOUD_ADDRS[name]]
        assert https(lab, "pos1", name, CLOUD_ADDRS[name]) == 200, name

    # An exact name admits the names below it too (dnsmasq's nftset/ipset match a
    # domain and its subdomains), and `*.x` admits x itself: the handover says both.
    for name in (BELOW_DEVICES, FIREBASE_APEX):
        assert https(lab, "pos1", name, CLOUD_ADDRS[name]) == 0, name
        assert lookup(lab, "pos1", name, EDGE_LAN_IP) == [CLOUD_ADDRS[name]]
        assert https(lab, "pos1", name, CLOUD_ADDRS[name]) == 200, name

    # The edge resolves a name on no list, but its address is not let out.
    assert lookup(lab, "pos1", UNLISTED, EDGE_LAN_IP) == [CLOUD_ADDRS[UNLISTED]]
    assert https(lab, "pos1", UNLISTED, CLOUD_ADDRS[UNLISTED]) == 0
    assert https(lab, "pos1", "raw", RAW_IP) == 0, "a hard-coded IP must be refused"
    # DNS past the edge (straight to the cloud resolver) is dropped.
    assert lookup(lab, "pos1", DEVICES, CLOUD_IP) == []

    # A host outside the flow resolves through the edge but reaches nothing.
    assert lookup(lab, "pos2", DEVICES, EDGE_LAN_IP) == [CLOUD_ADDRS[DEVICES]]
    for name, ip in ((DEVICES, CLOUD_ADDRS[DEVICES]), (UNLISTED, CLOUD_ADDRS[UNLISTED])):
        assert https(lab, "pos2", name, ip) == 0, name
