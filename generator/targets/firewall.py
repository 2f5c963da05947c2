"""A format-neutral model of the store edge firewall, built from the Plan.

The nftables and iptables targets both render this one model, so the two formats
cannot drift apart: a rule exists in both or in neither. The model only holds what
both formats can express; each renderer must consume every field (an unknown field
or action is an error, never silently dropped, unlike Aerleon's platform keywords).

Semantics (see the target modules for the syntax):
- input and forward drop by default; output accepts.
- management is the first input rule, so nothing later can cut the MSP off.
- every exposure is a DNAT on the WAN plus a forward accept limited to the
  partner's sources and to connections that were actually DNATed.
- egress "open" lets the LAN out; "restricted" lets out only the partner egress
  flows: each flow's hosts, on its ports, to the addresses the edge's resolver
  (dnsmasq) answered for the flow's domains. Those addresses land in one DNS set per
  flow (`DnsSet`); LAN clients must use the edge's DNS, which the firewall leaves
  open to the LAN and nothing else (no DNS to the internet). A store that sends its
  clients to other DNS servers (`lan.dns.servers`) cannot be enforced by domain:
  its flows are limited by source and port, DNS only to those servers (lint PN113).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from generator import netparse
from generator.plan import EgressFlow, Exposure, Plan
from generator.targets.names import bounded

Family = Literal["any", "ipv4", "ipv6"]
AddrFamily = Literal["ipv4", "ipv6"]
L4 = Literal["tcp", "udp", "icmp", "icmpv6"]
CtState = Literal["established", "related", "invalid"]
ChainName = Literal["input", "forward", "output", "prerouting", "postrouting"]

# Neutral ICMP type names (nft spells them this way; iptables maps them).
ICMP_TYPES = frozenset({"echo-request"})
ICMPV6_TYPES = frozenset(
    {
        "echo-request",
        "nd-router-solicit",
        "nd-router-advert",
        "nd-neighbor-solicit",
        "nd-neighbor-advert",
    }
)
_ICMP_OF = {"icmp": ICMP_TYPES, "icmpv6": ICMPV6_TYPES}  # the types each protocol takes
# Neighbour discovery must pass or IPv6 on the edge breaks (RFC 4890 "must not drop").
ESSENTIAL_ICMPV6 = (
    "nd-router-solicit",
    "nd-router-advert",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
)

LOG_PREFIX = "posnet-drop"
# Both nft and iptables cap a comment (nft: 128 bytes, iptables: 256); stay below both.
COMMENT_MAX = 120
_COMMENT_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:()/@+-]")
# iptables' LOG target caps the prefix at 29 characters.
_LOG_PREFIX_OK = re.compile(r"^[A-Za-z0-9 _.:-]{1,29}$")
# nft takes set names of up to 255 bytes (nft 1.0.6 and kernels since 4.14 refuse a
# longer one); posnet keeps its own names to 128 characters, shortening a longer one
# with a digest (targets.names.bounded), so `src_<exposure id>` fits whatever the ids.
# Chain and table names are fixed words (input, forward, ..., posnet).
NFT_NAME_MAX = 128
_SET_NAME = re.compile(rf"^[A-Za-z_][A-Za-z0-9_-]{{0,{NFT_NAME_MAX - 1}}}$")


@dataclass(frozen=True)
class Limit:
    """A token-bucket rate limit (nft `limit rate`, iptables `-m limit`)."""

    rate: int
    per: Literal["second", "minute"]
    burst: int


# Enough for a reviewer's ping and a log line per drop burst; never a flood.
PING_LIMIT = Limit(5, "second", 10)
LOG_LIMIT = Limit(5, "minute", 10)


@dataclass(frozen=True)
class AddrSet:
    """Source addresses; `name` makes it a named set in nftables (one per exposure).

    Elements are collapsed and sorted, so overlapping partner ranges never make an
    nft interval set fail and every render is stable.
    """

    family: AddrFamily
    elements: tuple[str, ...]
    name: str | None = None
    comment: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "comment", comment(self.comment))
        if self.name is not None and not _SET_NAME.match(self.name):
            raise ValueError(f"set name {self.name!r} is not an nft identifier")
        if not self.elements:
            raise ValueError("an address set needs at least one element")
        for e in self.elements:
            if _family_of(e) != self.family:
                raise ValueError(f"{e} is not {self.family}")


# ipset caps a set name at 31 characters; the nft set uses the same name.
_DNS_SET_MAX = 31


def dns_set_name(flow_id: str) -> str:
    """The set of one egress flow, shared by the firewall and the resolver's config.

    Stable and short enough for ipset; a long id keeps a prefix plus a digest.
    """
    # The digest is of the id itself: "a.b" and "a_b" spell the same name.
    return bounded("dns_" + re.sub(r"[^A-Za-z0-9_]", "_", flow_id), _DNS_SET_MAX, key=flow_id)


@dataclass(frozen=True)
class DnsSet:
    """Destination addresses the edge's resolver adds at run time (no elements here).

    dnsmasq adds every address it answers for the flow's domains; posnet renders the
    set empty, so a reload of the firewall empties it until the next lookup.
    """

    name: str
    family: AddrFamily
    domains: tuple[str, ...]
    comment: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "comment", comment(self.comment))
        if not _SET_NAME.match(self.name) or len(self.name) > _DNS_SET_MAX:
            raise ValueError(f"set name {self.name!r} is not an nft/ipset identifier")
        if not self.domains:
            raise ValueError("a DNS set needs at least one domain")


@dataclass(frozen=True)
class Match:
    """Conditions of a rule; all must hold. Empty fields match anything."""

    family: Family = "any"
    iif: str | None = None
    oif: str | None = None
    saddr: AddrSet | None = None
    daddr: str | None = None
    daddr_set: DnsSet | None = None
    daddr_any: tuple[str, ...] = ()  # a short list of destination hosts (DNS servers)
    proto: L4 | None = None
    dports: tuple[int, ...] = ()
    icmp_types: tuple[str, ...] = ()
    ct_state: tuple[CtState, ...] = ()
    ct_dnat: bool = False
    limit: Limit | None = None

    def __post_init__(self) -> None:
        # Checked for every rule of every store (20 a store): counted and compared
        # without building a tuple, a dict or a set on the way.
        self._check_family()
        kinds = (self.daddr is not None) + (self.daddr_set is not None) + bool(self.daddr_any)
        if kinds > 1:
            raise ValueError("a rule matches one kind of destination")
        if self.dports and self.proto not in ("tcp", "udp"):
            raise ValueError("ports need tcp or udp")
        if self.icmp_types:
            allowed = _ICMP_OF.get(self.proto or "", frozenset())
            if not allowed.issuperset(self.icmp_types):
                raise ValueError(f"icmp types {self.icmp_types} do not fit proto {self.proto}")

    def _check_family(self) -> None:
        if (
            self.saddr is None
            and self.daddr is None
            and not self.daddr_any
            and self.daddr_set is None
            and self.proto not in ("icmp", "icmpv6")
        ):
            return  # no address or ICMP implies a family: any family fits
        implied: set[str] = set()
        if self.saddr is not None:
            implied.add(self.saddr.family)
        if self.daddr is not None:
            implied.add(_family_of(self.daddr))
        implied.update(_family_of(d) for d in self.daddr_any)
        if self.daddr_set is not None:
            implied.add(self.daddr_set.family)
        if self.proto == "icmp":
            implied.add("ipv4")
        if self.proto == "icmpv6":
            implied.add("ipv6")
        if implied - {self.family} and self.family != "any":
            raise ValueError(f"rule family {self.family} conflicts with {sorted(implied)}")
        if self.family == "any" and implied:
            raise ValueError("a rule with addresses or ICMP must name its family")


@dataclass(frozen=True)
class Accept:
    pass


@dataclass(frozen=True)
class Drop:
    pass


@dataclass(frozen=True)
class Log:
    """Log and continue (the following rule drops)."""

    prefix: str


@dataclass(frozen=True)
class Dnat:
    ip: str
    port: int


@dataclass(frozen=True)
class Masquerade:
    pass


Action = Accept | Drop | Log | Dnat | Masquerade


@dataclass(frozen=True)
class Rule:
    match: Match
    action: Action
    comment: str = ""
    counter: bool = True  # nft needs `counter`; iptables always counts

    def __post_init__(self) -> None:
        # Ids are already safe; this keeps any future free text out of the syntax.
        object.__setattr__(self, "comment", comment(self.comment))
        if isinstance(self.action, Log) and not _LOG_PREFIX_OK.match(self.action.prefix):
            raise ValueError(f"log prefix {self.action.prefix!r} is unsafe or too long")
        if isinstance(self.action, Dnat | Masquerade) and self.match.family != "ipv4":
            raise ValueError("posnet NATs IPv4 only")


@dataclass(frozen=True)
class Chain:
    name: ChainName
    kind: Literal["filter", "nat"]
    policy: Literal["accept", "drop"]
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Firewall:
    site_id: str
    sets: tuple[AddrSet, ...]
    chains: tuple[Chain, ...]
    dns_sets: tuple[DnsSet, ...] = ()

    def chain(self, name: ChainName) -> Chain:
        for c in self.chains:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass
class _Builder:
    """Collects named sets so that each exposure's sources are declared once."""

    plan: Plan
    log_drops: bool
    sets: list[AddrSet] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)
    suffix: dict[str, int] = field(default_factory=dict)  # per base: the last n tried

    def named_set(self, base: str, family: AddrFamily, cidrs: Iterable[str], note: str) -> AddrSet:
        """A set named `base` (bounded to NFT_NAME_MAX), `base_2`... when taken (a store
        with a thousand exposures of one name tries each suffix once, not n times)."""
        n = self.suffix.get(base, 1)
        while (name := bounded(base if n == 1 else f"{base}_{n}", NFT_NAME_MAX)) in self.taken:
            n += 1
        self.suffix[base] = n
        self.taken.add(name)
        s = AddrSet(family, collapse(cidrs, family), name, note)
        self.sets.append(s)
        return s


def build(plan: Plan, *, log_drops: bool = True) -> Firewall:
    """The whole ruleset of one store edge; `log_drops` adds a rate-limited log."""
    b = _Builder(plan, log_drops)
    # One set per exposure, in Plan order (a list, so a repeated id cannot merge two).
    exposure_sets = [_exposure_set(b, e) for e in plan.exposures]
    dns_sets = dns_sets_of(plan)
    chains = (
        Chain("input", "filter", "drop", _input(b)),
        Chain("forward", "filter", "drop", _forward(b, exposure_sets, dns_sets)),
        Chain("output", "filter", "accept", ()),
        Chain("prerouting", "nat", "accept", _prerouting(plan, exposure_sets)),
        Chain("postrouting", "nat", "accept", _postrouting(plan)),
    )
    return Firewall(plan.site_id, tuple(b.sets), chains, tuple(dns_sets.values()))


def enforces_domains(plan: Plan) -> bool:
    """Restricted egress is enforced by domain when LAN clients use the edge's DNS."""
    return plan.egress_policy == "restricted" and plan.lan.edge_dns


def dns_sets_of(plan: Plan) -> dict[str, DnsSet]:
    """One DNS set per egress flow with domains, keyed by flow id (Plan order)."""
    if not enforces_domains(plan):
        return {}
    return {
        f.id: DnsSet(
            dns_set_name(f.id),
            "ipv4",
            f.domains,
            f"answers for {f.id} ({f.partner}), filled by the edge DNS",
        )
        for f in plan.egress
        if f.domains
    }


def resolver_domain(domain: str) -> str:
    """The name dnsmasq matches: `*.example.com` and `example.com` both become
    `example.com`, which dnsmasq matches with every name below it."""
    return domain.removeprefix("*.")


def _exposure_set(b: _Builder, e: Exposure) -> AddrSet | None:
    if not e.sources:
        return None  # anyone may connect (lint warns); no saddr match at all
    v4 = [s for s in e.sources if _family_of(s) == "ipv4"]
    if len(v4) != len(e.sources):
        raise ValueError(f"exposure {e.id}: IPv6 sources cannot reach an IPv4 DNAT")
    return b.named_set(f"src_{e.id}", "ipv4", v4, f"sources of {e.id} ({e.partner})")


def _input(b: _Builder) -> tuple[Rule, ...]:
    p = b.plan
    lan = p.lan.interface
    rules = [*_management(p), *_input_common()]
    # Open only what the edge's dnsmasq serves (targets/dnsmasq.py decides both).
    from generator.targets.dnsmasq import serves_dhcp, serves_dns

    if serves_dhcp(p):
        m = Match("ipv4", iif=lan, proto="udp", dports=(67,))
        rules.append(Rule(m, Accept(), "lan: dhcp to the edge"))
    if serves_dns(p):
        for proto in ("udp", "tcp"):
            m = Match("ipv4", iif=lan, proto=proto, dports=(53,))
            rules.append(Rule(m, Accept(), "lan: dns to the edge"))
    return (*rules, *_final_drop(b, "input"))


def _management(p: Plan) -> list[Rule]:
    """First rules of input: accepted on any interface, before any drop."""
    rules = []
    for fam in ("ipv4", "ipv6"):
        cidrs = [c for c in p.management.allow_from if _family_of(c) == fam]
        if cidrs:
            src = AddrSet(fam, collapse(cidrs, fam))
            m = Match(fam, saddr=src, proto="tcp", dports=(p.management.port,))
            rules.append(Rule(m, Accept(), "management (msp)"))
    return rules


def _stateful() -> list[Rule]:
    return list(_stateful_rules())


@cache
def _stateful_rules() -> tuple[Rule, ...]:
    """Rules every store's chains hold alike, built (and checked) once per process
    rather than per store: rules are frozen, so sharing them is safe."""
    return (
        Rule(Match(ct_state=("established", "related")), Accept(), "replies", counter=False),
        Rule(Match(ct_state=("invalid",)), Drop(), "invalid state"),
    )


@cache
def _input_common() -> tuple[Rule, ...]:
    """The input rules every store has after its management rules (see _stateful_rules)."""
    return (
        Rule(Match(iif="lo"), Accept(), "loopback", counter=False),
        *_stateful_rules(),
        Rule(
            Match("ipv4", proto="icmp", icmp_types=("echo-request",), limit=PING_LIMIT),
            Accept(),
            "ping, rate limited",
        ),
        Rule(
            Match("ipv6", proto="icmpv6", icmp_types=("echo-request",), limit=PING_LIMIT),
            Accept(),
            "ping6, rate limited",
        ),
        Rule(
            Match("ipv6", proto="icmpv6", icmp_types=ESSENTIAL_ICMPV6),
            Accept(),
            "ipv6 neighbour discovery",
        ),
    )


def _final_drop(b: _Builder, chain: str) -> list[Rule]:
    return list(_closing(chain, b.log_drops))


@cache
def _closing(chain: str, log_drops: bool) -> tuple[Rule, ...]:
    """A chain's last rules, the same for every store (see _stateful_rules)."""
    rules = []
    if log_drops:
        prefix = f"{LOG_PREFIX} {chain}: "
        rules.append(Rule(Match(limit=LOG_LIMIT), Log(prefix), counter=False))
    rules.append(Rule(Match(), Drop(), "default drop"))
    return tuple(rules)


def _forward(
    b: _Builder, sets: list[AddrSet | None], dns_sets: dict[str, DnsSet]
) -> tuple[Rule, ...]:
    p = b.plan
    wan, lan, subnet = p.wan.interface, p.lan.interface, p.lan.subnet
    rules = _stateful()
    for e, src in zip(p.exposures, sets, strict=True):
        m = Match(
            "ipv4",
            iif=wan,
            saddr=src,
            daddr=e.target_ip,
            proto=e.protocol,
            dports=(e.target_port,),
            ct_dnat=True,
        )
        rules.append(Rule(m, Accept(), f"exposure {e.id} partner {e.partner}"))
    lan_net = AddrSet("ipv4", (subnet,))
    # A bridged LAN only crosses forward when br_netfilter is on; never break it then.
    rules.append(Rule(Match("ipv4", iif=lan, oif=lan), Accept(), "lan to lan"))
    if p.egress_policy == "open":
        m = Match("ipv4", iif=lan, oif=wan, saddr=lan_net)
        rules.append(Rule(m, Accept(), "egress open: lan to internet"))
    else:
        rules += [_egress_rule(b, f, dns_sets.get(f.id)) for f in p.egress]
        # DNS leaves the store only towards the servers the store named; with the
        # edge as resolver, clients need (and get) no DNS to the internet at all.
        servers = tuple(sorted(set(p.lan.dns_servers), key=netparse.ipv4_address))
        for proto in ("udp", "tcp") if servers else ():
            m = Match(
                "ipv4",
                iif=lan,
                oif=wan,
                saddr=lan_net,
                daddr_any=servers,
                proto=proto,
                dports=(53,),
            )
            rules.append(Rule(m, Accept(), "egress restricted: dns to the store's servers"))
    return (*rules, *_final_drop(b, "forward"))


def _egress_rule(b: _Builder, f: EgressFlow, dns_set: DnsSet | None) -> Rule:
    p = b.plan
    # No listed source means the whole LAN, still limited to the flow's ports.
    cidrs = f.sources or (p.lan.subnet,)
    src = AddrSet("ipv4", collapse(cidrs, "ipv4"))
    m = Match(
        "ipv4",
        iif=p.lan.interface,
        oif=p.wan.interface,
        saddr=src,
        daddr_set=dns_set,
        proto=f.protocol,
        dports=tuple(sorted(set(f.ports))),
    )
    return Rule(m, Accept(), f"egress {f.id} partner {f.partner}")


def _prerouting(plan: Plan, sets: list[AddrSet | None]) -> tuple[Rule, ...]:
    rules = []
    for e, src in zip(plan.exposures, sets, strict=True):
        m = Match(
            "ipv4",
            iif=plan.wan.interface,
            saddr=src,
            daddr=plan.wan.public_ip,  # None on a dynamic WAN: any address on the WAN
            proto=e.protocol,
            dports=(e.public_port,),
        )
        rules.append(Rule(m, Dnat(e.target_ip, e.target_port), f"dnat {e.id} partner {e.partner}"))
    return tuple(rules)


def _postrouting(plan: Plan) -> tuple[Rule, ...]:
    lan_net = AddrSet("ipv4", (plan.lan.subnet,))
    m = Match("ipv4", oif=plan.wan.interface, saddr=lan_net)
    return (Rule(m, Masquerade(), "lan to internet"),)


def collapse(cidrs: Iterable[str], family: AddrFamily) -> tuple[str, ...]:
    """Merge overlapping networks of one family; sorted, host bits cleared."""
    return netparse.collapse(cidrs, family)


def comment(text: str) -> str:
    """A comment both formats accept inside double quotes: safe characters, short."""
    return _COMMENT_UNSAFE.sub("_", text)[:COMMENT_MAX]


def _family_of(addr: str) -> AddrFamily:
    return netparse.family(addr)


def rule_count(fw: Firewall) -> int:
    """Rules as nftables loads them (one model rule = one nft rule)."""
    return sum(len(c.rules) for c in fw.chains)


# ------------------------------------------------------------------ back-end support


class UnsupportedFeature(ValueError):
    """A rule needs a part of the model that the chosen back-end cannot express."""


def features_of(rule: Rule) -> frozenset[str]:
    """The parts of the neutral model one rule uses (see targets.base.Feature)."""
    m, used = rule.match, set()
    if m.family == "ipv6" or m.proto == "icmpv6":
        used.add("ipv6")
    if m.saddr is not None and m.saddr.name is not None:
        used.add("named-sets")
    if m.ct_state:
        used.add("conntrack")
    if m.ct_dnat:
        used.add("ct-dnat")
    if m.limit is not None:
        used.add("rate-limit")
    if m.daddr_set is not None:
        used.add("dns-sets")
    if m.proto in ("icmp", "icmpv6"):
        used.add("icmp")
    if m.iif is not None or m.oif is not None:
        used.add("interfaces")
    if isinstance(rule.action, Log):
        used.add("log")
    if isinstance(rule.action, Dnat):
        used.add("dnat")
    if isinstance(rule.action, Masquerade):
        used.add("masquerade")
    return frozenset(used)


def check_supported(fw: Firewall, backend: str, supports: frozenset[str]) -> None:
    """Raise, naming the rule and the back-end, when a rule uses an unsupported part."""
    from generator.targets.base import ALL_FEATURES

    if supports >= ALL_FEATURES:
        return  # nothing to look for (both built-in back-ends)
    for chain in fw.chains:
        for n, rule in enumerate(chain.rules, 1):
            missing = sorted(features_of(rule) - supports)
            if missing:
                what = rule.comment or f"rule {n}"
                raise UnsupportedFeature(
                    f"{fw.site_id}: firewall back-end {backend} cannot express "
                    f"{', '.join(missing)} (chain {chain.name}, rule {what!r})"
                )
