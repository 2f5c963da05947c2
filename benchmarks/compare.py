"""The same stores' firewalls from Aerleon 1.18 and from Ansible's template module.

posnet's figure to beat is its whole cold render (every artifact of every store); the
others only produce firewall files, so each ratio is in their favour:

- Aerleon: one YAML policy per store, holding every filter rule of posnet's firewall
  model for that store (input and forward chains), rendered by `aclgen` for nftables,
  iptables and Windows Advanced Firewall. Aerleon has no NAT and its nftables
  generator no forward hook, so the DNAT/masquerade rules are left out and the forward
  terms go to its output hook (the same amount of rendering work). Its naming
  definitions (networks, services) are one folder for the whole sample, as a fleet
  repo would keep them.
- Ansible: one inventory host per store (connection local), one task: the template
  module renders posnet's own templates/nftables/nftables.nft.j2 from the same context
  posnet renders it from. The benchmark fails if any file differs from posnet's.

Aerleon is installed from PyPI into its own venv under a cache folder (never the
repository); nothing of it is imported into this process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path

from generator.plan import Plan
from generator.targets.firewall import Accept, Drop, Firewall, Rule, build
from generator.targets.nftables import render_firewall, template_context

ROOT = Path(__file__).resolve().parent.parent
AERLEON = "aerleon==1.18.0"
NFT_TEMPLATE = ROOT / "templates" / "nftables" / "nftables.nft.j2"
# posnet chain -> Aerleon targets (header options, see Aerleon's generator reference).
AERLEON_TARGETS = {
    "input": {"nftables": "mixed INPUT", "iptables": "INPUT DROP", "windows_advfirewall": "in"},
    "forward": {
        "nftables": "mixed OUTPUT",  # no forward hook in Aerleon's nftables generator
        "iptables": "FORWARD DROP",
        "windows_advfirewall": "out",
    },
}
# nft's ICMPv6 names -> Aerleon's policy names.
AERLEON_ICMPV6 = {
    "echo-request": "echo-request",
    "nd-router-solicit": "router-solicit",
    "nd-router-advert": "router-advertisement",
    "nd-neighbor-solicit": "neighbor-solicit",
    "nd-neighbor-advert": "neighbor-advertisement",
}


def tools_dir() -> Path:
    """Where third-party tools for the benchmark live: a cache, never the repository."""
    env = os.environ.get("POSNET_BENCH_TOOLS")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "posnet-bench"


def aerleon_aclgen(tools: Path) -> Path:
    """`aclgen` of Aerleon 1.18 in its own venv, installed with pip on first use."""
    home = tools / AERLEON.replace("==", "-")
    aclgen, stamp = home / "bin" / "aclgen", home / ".installed"
    if stamp.exists() and aclgen.exists():
        return aclgen
    shutil.rmtree(home, ignore_errors=True)
    print(f"# installing {AERLEON} into {home}", file=sys.stderr)
    venv.create(home, with_pip=True)
    pip = [str(home / "bin" / "python"), "-m", "pip", "install", "-q", AERLEON]
    subprocess.run(pip, check=True, stdout=subprocess.DEVNULL)
    stamp.write_text(AERLEON + "\n")
    return aclgen


# ------------------------------------------------------------------------ Aerleon


def _token(site_id: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", site_id.upper())


@dataclass
class AerleonSample:
    """Policies (one per store) and the shared definitions, as YAML-ready data."""

    policies: dict[str, dict[str, object]]
    networks: dict[str, dict[str, object]]
    services: dict[str, list[dict[str, object]]]


def aerleon_sample(plans: Sequence[Plan]) -> AerleonSample:
    sample = AerleonSample({}, {}, {})
    for plan in plans:
        sample.policies[plan.site_id] = aerleon_policy(build(plan), sample)
    return sample


def aerleon_policy(fw: Firewall, sample: AerleonSample) -> dict[str, object]:
    """Every filter rule of the input and forward chains as one Aerleon term."""
    filters = []
    for chain, targets in AERLEON_TARGETS.items():
        terms = [
            t
            for i, rule in enumerate(fw.chain(chain).rules)  # type: ignore[arg-type]
            for t in _terms(fw.site_id, f"{chain[:2]}{i}", rule, sample)
        ]
        filters.append(
            {"header": {"targets": targets, "comment": f"{fw.site_id} {chain}"}, "terms": terms}
        )
    return {"filters": filters}


def _terms(site: str, name: str, rule: Rule, sample: AerleonSample) -> list[dict[str, object]]:
    """Nothing for what Aerleon adds itself (conntrack replies, the log before the drop).

    A term with a single ICMP type crashes Aerleon 1.18's nftables generator (it adds a
    list to a string), so such a term matches its protocol only.
    """
    m = rule.match
    if m.ct_state or not isinstance(rule.action, Accept | Drop):
        return []
    # iptables caps a term name at 24 characters; the prefix keeps them unique.
    term: dict[str, object] = {"name": f"{name}-{_slug(rule.comment)}"[:24].rstrip("-")}
    if rule.comment:
        term["comment"] = rule.comment
    if m.saddr is not None:
        term["source-address"] = _network(sample, site, name + "s", m.saddr.elements)
    if m.daddr is not None:
        term["destination-address"] = _network(sample, site, name + "d", (m.daddr,))
    if m.proto is not None:
        term["protocol"] = {"icmpv6": "icmpv6"}.get(m.proto, m.proto)
    if m.dports:
        assert m.proto in ("tcp", "udp")
        term["destination-port"] = " ".join(_service(sample, m.proto, p) for p in m.dports)
    if len(m.icmp_types) > 1:
        names = AERLEON_ICMPV6 if m.proto == "icmpv6" else {"echo-request": "echo-request"}
        term["icmp-type"] = " ".join(names[t] for t in m.icmp_types)
    term["action"] = "accept" if isinstance(rule.action, Accept) else "deny"
    return [term]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "rule"


def _network(sample: AerleonSample, site: str, name: str, addrs: Sequence[str]) -> str:
    token = f"{_token(site)}_{name.upper()}"
    sample.networks[token] = {"values": [{"address": a} for a in addrs]}
    return token


def _service(sample: AerleonSample, proto: str, port: int) -> str:
    token = f"{proto.upper()}_{port}"
    sample.services[token] = [{"port": port, "protocol": proto}]
    return token


def write_aerleon(sample: AerleonSample, base: Path) -> tuple[Path, Path]:
    """policies/pol/<store>.yaml (aclgen reads `pol` folders only) and def/posnet.yaml
    (JSON is YAML; Aerleon reads it as such). Returns the base and definitions folders."""
    pol, defs = base / "policies", base / "def"
    (pol / "pol").mkdir(parents=True)
    defs.mkdir()
    for site_id, policy in sample.policies.items():
        (pol / "pol" / f"{site_id}.yaml").write_text(json.dumps(policy, indent=1) + "\n")
    naming = {"networks": sample.networks, "services": sample.services}
    (defs / "posnet.yaml").write_text(json.dumps(naming, indent=1) + "\n")
    return pol, defs


def aclgen_command(aclgen: Path, pol: Path, defs: Path, out: Path, jobs: int) -> list[str]:
    return [
        str(aclgen),
        f"--base_directory={pol}",
        f"--definitions_directory={defs}",
        f"--output_directory={out}",
        f"--max_renderers={jobs}",
    ]


def check_aerleon_output(out: Path, sample: AerleonSample) -> int:
    """Every policy produced its three files; returns the number of files."""
    made = {p.name for p in out.iterdir()}
    for site_id in sample.policies:
        for ext in ("", ".nft", ".bat"):  # iptables, nftables, Windows
            if site_id + ext not in made:
                raise SystemExit(f"aclgen wrote no {site_id}{ext}: {sorted(made)[:6]}")
    return len(made)


# ------------------------------------------------------------------------ Ansible


def _plain(value: object) -> object:
    """Dataclass views -> dicts and lists (host vars are JSON)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def write_ansible(plans: Sequence[Plan], base: Path) -> tuple[Path, dict[str, str]]:
    """Inventory (one local host per store), the playbook, and posnet's nft per store."""
    base.mkdir(parents=True)
    hosts: dict[str, object] = {}
    expected: dict[str, str] = {}
    for plan in plans:
        fw = build(plan)
        hosts[plan.site_id] = _plain(template_context(fw))
        expected[plan.site_id] = render_firewall(fw)
    inventory = {"all": {"hosts": hosts}}
    (base / "inventory.yml").write_text(json.dumps(inventory) + "\n")
    play = [
        {
            "name": "posnet's nftables template through Ansible's template module",
            "hosts": "all",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [
                {
                    "name": "Render nftables.nft",
                    "ansible.builtin.template": {
                        "src": str(NFT_TEMPLATE),
                        "dest": "{{ bench_out }}/{{ inventory_hostname }}.nft",
                        "trim_blocks": True,
                        "lstrip_blocks": True,
                        "mode": "0644",
                    },
                }
            ],
        }
    ]
    (base / "play.yml").write_text(json.dumps(play, indent=1) + "\n")
    return base, expected


def ansible_command(base: Path, out: Path, jobs: int) -> tuple[list[str], dict[str, str]]:
    playbook = Path(sys.executable).parent / "ansible-playbook"
    cmd = [
        str(playbook),
        "-i",
        str(base / "inventory.yml"),
        "-f",
        str(jobs),
        "-e",
        f"bench_out={out}",
        str(base / "play.yml"),
    ]
    env = dict(
        os.environ,
        ANSIBLE_HOME=str(base / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(base / "ansible-tmp"),
        ANSIBLE_REMOTE_TEMP=str(base / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    return cmd, env


def check_ansible_output(out: Path, expected: dict[str, str]) -> None:
    """The template module wrote exactly posnet's file for every store."""
    for site_id, text in expected.items():
        got = (out / f"{site_id}.nft").read_text()
        if got.rstrip("\n") != text.rstrip("\n"):
            raise SystemExit(f"Ansible's {site_id}.nft differs from posnet's")
