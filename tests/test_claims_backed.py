"""README promises that no other test would notice breaking (found by mutation testing).

Each test here builds the state a promise rules out and fails when the promise stops
holding: a site list merged into a default instead of replacing it, a loosened or
missing Content-Security-Policy or an inline script in the report, udp/67 opened on an
edge that serves no DHCP, and a wrong count in `posnet apply`'s summary line.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from generator.pipeline import load_plans
from generator.plan import Plan
from generator.report import write_report
from generator.runtime import _apply_summary
from generator.targets import dnsmasq, iptables, nftables
from generator.verify.state import parse_recap
from tests.conftest import DEMO


def nftables_fleet(name: str, partners: str = "") -> str:
    """fleet.yaml text for write_fleet: fleet `name`, whose stores default to an nftables
    edge managed from 192.0.2.64/28 on port 22 and ISP TestISP; `partners` holds the
    lines under `partners:`, indented as they stand in the result."""
    head = f"    fleet: {name}\n" + (f"    partners:\n{partners}" if partners else "")
    return head + (
        "    defaults:\n"
        '      edge: {kind: nftables, management: {allow_from: ["192.0.2.64/28"], port: 22}}\n'
        "      wan: {isp: TestISP}\n"
    )


def write_fleet(root: Path, fleet: str, groups: dict[str, str], sites: dict[str, str]) -> Path:
    """A fleet folder from YAML texts: fleet.yaml, groups/<name>.yaml, sites/<id>.yaml."""
    (root / "groups").mkdir(parents=True)
    (root / "sites").mkdir()
    (root / "fleet.yaml").write_text(textwrap.dedent(fleet))
    for name, text in groups.items():
        (root / "groups" / f"{name}.yaml").write_text(textwrap.dedent(text))
    for name, text in sites.items():
        (root / "sites" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return root


def plans_of(folder: Path) -> dict[str, Plan]:
    fleet, plans = load_plans(folder)
    assert fleet.ok, fleet.diagnostics
    return {p.site_id: p for p in plans}


def firewalls(plan: Plan) -> dict[str, str]:
    """The store's edge firewall in both formats, whatever its `edge.kind` says."""
    return {"nftables": nftables.render_nftables(plan), **iptables.render_rules(plan)}


FLEET = """\
    fleet: claims
    defaults:
      edge:
        kind: nftables
        management:
          allow_from: ["192.0.2.64/28"]
          port: 22
      lan:
        interface: br-lan
      wan:
        interface: wan0
    """

# --------------------------------------------------- 1. a site's list replaces a default's

GROUP_HOSTS = """\
    group: shop
    defaults:
      hosts:
        - name: grouppos
          role: pos
          ip: "198.51.100.20"
          mac: "52:54:00:00:09:20"
          services:
            - {name: api, port: 8443, tls: true}
    """

MERGE_SITE = """\
    id: s1
    name: Site One
    group: shop
    wan:
      isp: Proximus
      ip_mode: static
      public_ip: "203.0.113.10"
      fqdn: s1.pos.example.com
    edge:
      management:
        allow_from: ["203.0.113.96/28"]
    lan:
      subnet: "198.51.100.0/26"
      gateway: "198.51.100.1"
      dhcp_pool: {start: "198.51.100.40", end: "198.51.100.60"}
    hosts:
      - name: sitepos
        role: pos
        ip: "198.51.100.30"
        mac: "52:54:00:00:09:30"
        services:
          - {name: api, port: 8443, tls: true}
    integrations:
      - partner: deliverect
        pattern: direct
        service: sitepos/api
        public_port: 18443
        sources: ["198.51.100.0/28"]
    """


def test_site_lists_replace_fleet_and_group_lists(tmp_path: Path) -> None:
    """README "Merging": a list in a more specific file replaces the less specific one.

    The fleet default's `edge.management.allow_from` and the group default's `hosts:`
    both hold an entry the site does not; the site gives its own lists. If lists were
    concatenated, the fleet's management CIDR would be let in to ssh on the edge and
    the group's host would get a DHCP reservation (or the store would not load). The
    Plan, the firewall in both formats and the DHCP config hold only the site's entries.
    """
    folder = write_fleet(tmp_path, FLEET, {"shop": GROUP_HOSTS}, {"s1": MERGE_SITE})
    plan = plans_of(folder)["s1"]
    assert plan.management.allow_from == ("203.0.113.96/28",)
    assert [(h.name, h.ip) for h in plan.hosts] == [("sitepos", "198.51.100.30")]
    for name, text in firewalls(plan).items():
        assert "192.0.2.64" not in text, name  # the fleet default's management source
        assert "198.51.100.20" not in text, name  # the group default's host
    nft = nftables.render_nftables(plan)
    assert 'ip saddr 203.0.113.96/28 tcp dport 22 counter accept comment "management' in nft
    conf = dnsmasq.render(plan)["dhcp/dnsmasq.conf"]
    assert "52:54:00:00:09:30" in conf
    assert "52:54:00:00:09:20" not in conf and "198.51.100.20" not in conf


OPENPOS_EGRESS = """\
    partners:
      openpos:
        egress:
          - purpose: Open POS test backend
            domains: ["pos.example.com"]
            ports: [8443]
"""
FLEET_PARTNER_LIST = FLEET.replace("    defaults:\n", OPENPOS_EGRESS + "    defaults:\n")

OUTBOUND_SITE = """\
    id: s2
    name: Site Two
    wan:
      isp: Proximus
      ip_mode: static
      public_ip: "203.0.113.10"
      fqdn: s2.pos.example.com
    edge:
      egress: restricted
    lan:
      subnet: "198.51.100.0/26"
      gateway: "198.51.100.1"
      dhcp_pool: {start: "198.51.100.40", end: "198.51.100.60"}
    hosts:
      - name: tablet1
        role: kiosk
        os: other
        ip: "198.51.100.21"
    integrations:
      - partner: openpos
        pattern: outbound_only
        hosts: [tablet1]
    """


def test_fleet_partner_list_replaces_the_builtin_catalog_list(tmp_path: Path) -> None:
    """The same rule one level up: fleet.yaml's `partners.<id>` merges over the built-in
    catalog, and a list there (openpos's `egress` flows) replaces the built-in list.

    If lists were concatenated, the built-in flow (six domains, port 443) would still
    be let out of a store with `egress: restricted` beside the fleet's one flow. The
    Plan, the nftables set rule and dnsmasq's nftset line name only the fleet's flow.
    """
    folder = write_fleet(tmp_path, FLEET_PARTNER_LIST, {}, {"s2": OUTBOUND_SITE})
    plan = plans_of(folder)["s2"]
    assert [(f.purpose, f.domains, f.ports) for f in plan.egress] == [
        ("Open POS test backend", ("pos.example.com",), (8443,))
    ]
    nft = nftables.render_nftables(plan)
    egress = [line.strip() for line in nft.splitlines() if "@dns_" in line]
    assert len(egress) == 1 and "tcp dport 8443 counter accept" in egress[0], egress
    conf = dnsmasq.render(plan)["dhcp/dnsmasq.conf"]
    assert re.findall(r"^nftset=.*$", conf, re.M) == [
        "nftset=/pos.example.com/4#inet#posnet#dns_openpos_outbound"
    ]
    assert "firebaseio" not in nft + conf


# --------------------------------------------------- 2. the report's CSP, no inline script

EXPECTED_CSP = {
    "default-src": ["'none'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "base-uri": ["'none'"],
    "form-action": ["'none'"],
}


class PageScan(HTMLParser):
    """What a page holds that a CSP or an inline script is made of."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.csp: list[str] = []  # content of every CSP <meta>
        self.csp_before_script: bool | None = None  # was a CSP meta seen before 1st script
        self.scripts: list[str | None] = []  # src of every <script>
        self.inline: list[str] = []  # non-blank text inside a <script>
        self.handlers: list[str] = []  # on*= attributes and javascript: URLs
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v for k, v in attrs}
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp.append(a.get("content") or "")
        if tag == "script":
            if self.csp_before_script is None:
                self.csp_before_script = bool(self.csp)
            self.scripts.append(a.get("src"))
            self._in_script = True
        for k, v in a.items():
            if k.startswith("on"):
                self.handlers.append(f"<{tag} {k}=>")
            if k in ("href", "src", "action") and (v or "").strip().lower().startswith(
                "javascript:"
            ):
                self.handlers.append(f"<{tag} {k}={v}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def parse_csp(text: str) -> dict[str, list[str]]:
    """Directive -> sources; a repeated directive is an error (browsers ignore it)."""
    out: dict[str, list[str]] = {}
    for part in text.split(";"):
        words = part.split()
        if not words:
            continue
        name = words[0].lower()
        assert name not in out, f"directive {name} given twice in {text!r}"
        out[name] = words[1:]
    return out


@pytest.fixture(scope="module")
def report_pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every HTML page `posnet report` writes for the demo fleet (no build tree needed:
    every store is reported as not rendered)."""
    root = tmp_path_factory.mktemp("claims-report")
    fleet = root / "fleet"
    shutil.copytree(DEMO, fleet)
    (root / "build").mkdir()
    out = root / "report"
    written = write_report(root / "build", fleet, out)
    pages = {p.relative_to(out).as_posix(): p.read_text() for p in written if p.suffix == ".html"}
    assert (out / "report.js").is_file()
    assert "index.html" in pages and len(pages) == 1 + len(list((DEMO / "sites").glob("*.yaml")))
    return pages


def test_report_pages_have_a_strict_csp(report_pages: dict[str, str]) -> None:
    """README `posnet report`: "a strict Content-Security-Policy".

    Every page carries exactly one CSP <meta>, before any script (a meta CSP applies
    only to what follows it), with exactly the directives posnet sets: nothing loads by
    default, scripts/styles only from the report's own files, no 'unsafe-inline',
    'unsafe-eval', wildcard or remote origin. A loosened policy (`default-src *;
    script-src * 'unsafe-inline' 'unsafe-eval'`) or a dropped meta fails here.
    """
    for name, text in report_pages.items():
        scan = PageScan()
        scan.feed(text)
        scan.close()
        assert len(scan.csp) == 1, (name, scan.csp)
        assert scan.csp_before_script is not False, name
        policy = parse_csp(scan.csp[0])
        assert policy == EXPECTED_CSP, (name, policy)
        for directive, sources in policy.items():
            for src in sources:
                assert src.lower() not in ("'unsafe-inline'", "'unsafe-eval'", "*"), name
                assert "*" not in src and not re.match(r"^(https?:|//)", src), (directive, src)


def test_report_pages_have_no_inline_script(report_pages: dict[str, str]) -> None:
    """README `posnet report`: "no inline script", so the strict CSP costs nothing.

    Every <script> has a `src` relative to the report (no scheme, no host, no `//`) that
    names a file the report wrote, and no body; no element has an on*= handler or a
    `javascript:` URL. An added `<script>x</script>` (in the head or the body) fails.
    """
    assets = {"report.js"}
    for name, text in report_pages.items():
        scan = PageScan()
        scan.feed(text)
        scan.close()
        assert scan.scripts, f"{name}: the page's own script is gone"
        assert scan.inline == [], (name, scan.inline)
        assert scan.handlers == [], (name, scan.handlers)
        for src in scan.scripts:
            assert src, f"{name}: a <script> without src"
            url = urlsplit(src)
            assert not url.scheme and not url.netloc and not src.startswith("/"), (name, src)
            # Relative to the page's folder, it names the report's own script file.
            assert posixpath.normpath(posixpath.join(posixpath.dirname(name), url.path)) in (
                assets
            ), (name, src)


# --------------------------------------------------- 3. udp/67 only when DHCP is served


def store(site_id: str, last: int, lan_extra: str, mac: bool) -> str:
    """A valid store whose LAN is 198.51.100.0/26; DHCP comes from `lan_extra` (a pool)
    and `mac` (a reservation for the host)."""
    mac_line = '    mac: "52:54:00:00:07:30"\n' if mac else ""
    return (
        f"id: {site_id}\nname: {site_id}\n"
        "wan:\n  isp: Proximus\n  ip_mode: static\n"
        f'  public_ip: "203.0.113.{last}"\n  fqdn: {site_id}.pos.example.com\n'
        'lan:\n  subnet: "198.51.100.0/26"\n  gateway: "198.51.100.1"\n'
        f"{lan_extra}"
        'hosts:\n  - name: pos1\n    role: pos\n    ip: "198.51.100.30"\n'
        f"{mac_line}"
        "    services:\n      - {name: api, port: 8443, tls: true}\n"
        "integrations:\n  - partner: deliverect\n    pattern: direct\n"
        "    service: pos1/api\n    public_port: 18443\n"
        '    sources: ["198.51.100.0/28"]\n'
    )


POOL = '  dhcp_pool: {start: "198.51.100.40", end: "198.51.100.60"}\n'
NO_LAN_DNS = '  dns: {servers: ["192.0.2.53"]}\n'


@pytest.fixture(scope="module")
def dhcp_plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    sites = {
        "pool": store("pool", 11, POOL, mac=False),
        "reserved": store("reserved", 12, "", mac=True),
        "nodhcp": store("nodhcp", 13, "", mac=False),
        "nothing": store("nothing", 14, NO_LAN_DNS, mac=False),
    }
    root = tmp_path_factory.mktemp("claims-dhcp") / "fleet"
    return plans_of(write_fleet(root, FLEET, {}, sites))


DHCP_RULE = {
    "nftables": re.compile(r'iifname "br-lan" udp dport 67 counter accept'),
    iptables.PATH_V4: re.compile(r"^-A INPUT -i br-lan -p udp -m udp --dport 67 .*ACCEPT$", re.M),
}
ANY_67 = re.compile(r"dport 67\b")


@pytest.mark.parametrize(
    ("site", "dhcp"),
    [("pool", True), ("reserved", True), ("nodhcp", False), ("nothing", False)],
)
def test_udp_67_open_only_when_dnsmasq_serves_dhcp(
    dhcp_plans: dict[str, Plan], site: str, dhcp: bool
) -> None:
    """README "DNS for the LAN": the firewall opens udp/67 only when dnsmasq serves DHCP.

    A store with a pool, or with only a reservation (a host's `mac`), serves DHCP and
    gets exactly one udp/67 rule on the LAN side in nftables and iptables. A store with
    neither, whether the edge still serves the LAN's DNS or not, has no port 67 in any
    firewall file, and its dnsmasq config has no dhcp-range: an always-open udp/67 fails.
    """
    plan = dhcp_plans[site]
    files = firewalls(plan)
    conf = dnsmasq.render(plan).get("dhcp/dnsmasq.conf", "")
    assert ("dhcp-range=" in conf) == dhcp, conf
    for name, text in files.items():
        if name in DHCP_RULE:
            assert len(DHCP_RULE[name].findall(text)) == (1 if dhcp else 0), (name, text)
        if not dhcp:
            assert not ANY_67.search(text), (name, text)
    # The LAN's input rules are rendered at all: DNS to the edge follows lan.dns.
    dns = 'iifname "br-lan" udp dport 53 counter accept' in files["nftables"]
    assert dns == (site != "nothing")


# --------------------------------------------------- 4. posnet apply's summary line

APPLY_RECAP = """
PLAY RECAP *********************************************************************
a-edge                     : ok=9    changed=0    unreachable=0    failed=0    skipped=1
b-edge                     : ok=9    changed=3    unreachable=0    failed=0    skipped=0
c-edge                     : ok=4    changed=1    unreachable=0    failed=1    skipped=0
d-edge                     : ok=0    changed=0    unreachable=1    failed=0    skipped=0
e-edge                     : ok=0    changed=0    unreachable=2    failed=0    skipped=0
f-edge                     : ok=5    changed=2    unreachable=0    failed=0    skipped=0
g-edge                     : ok=2    changed=0    unreachable=0    failed=2    skipped=0
h-edge                     : ok=0    changed=0    unreachable=1    failed=0    skipped=0
"""


def test_apply_summary_counts_each_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    """README "Failure isolation": apply ends with `posnet apply: N hosts, C changed,
    F failed, U unreachable`, then each store that failed, and exits 1.

    Eight hosts read from a real-looking PLAY RECAP (3 changed, 2 failed, 3 unreachable,
    all different; some hosts with a count above 1, since the line counts stores, not
    tasks): swapping or miscounting any of N, C, F, U, summing task counts, or calling
    an unreachable store failed, changes the exact lines asserted here.
    """
    with pytest.raises(SystemExit) as exc:
        _apply_summary(4, parse_recap("\x1b[0;33m" + APPLY_RECAP))
    assert exc.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "posnet apply: 8 hosts, 3 changed, 2 failed, 3 unreachable",
        "posnet apply: c-edge: failed",
        "posnet apply: d-edge: unreachable",
        "posnet apply: e-edge: unreachable",
        "posnet apply: g-edge: failed",
        "posnet apply: h-edge: unreachable",
        "posnet: ansible-playbook failed (exit 4)",
    ]


def test_apply_summary_clean_run(capsys: pytest.CaptureFixture[str]) -> None:
    """A run where nothing failed prints only the counts and returns (exit 0)."""
    recap = {"a-edge": {"ok": 3, "changed": 1}, "b-edge": {"ok": 3, "changed": 0}}
    _apply_summary(0, recap)
    assert capsys.readouterr().err.splitlines() == [
        "posnet apply: 2 hosts, 1 changed, 0 failed, 0 unreachable"
    ]


def test_apply_summary_counts_a_store_once_and_trusts_the_recap(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two odd states the audit saw: a store that failed a task and then went
    unreachable was counted as failed AND unreachable (then listed once); a recap naming
    failures under exit 0 printed 'ansible-playbook failed (exit 0)'. Each store now
    counts once, as its line names it, and the exit-0 case says what failed."""
    recap = {"a-edge": {"failed": 1, "unreachable": 1}, "b-edge": {"ok": 3}}
    with pytest.raises(SystemExit) as exc:
        _apply_summary(0, recap)
    assert exc.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "posnet apply: 2 hosts, 0 changed, 0 failed, 1 unreachable",
        "posnet apply: a-edge: unreachable",
        "posnet: 1 store(s) did not apply",
    ]


# ------------------------------------ 5. rules.v6 says what it accepts, and nothing more

V6_STORE = """\
    id: v6
    name: V6
    wan: {ip_mode: static, public_ip: "203.0.113.10", isp: TestISP}
    lan: {subnet: "198.51.100.128/26", gateway: "198.51.100.129"}
    hosts:
      - {name: pos1, role: pos, ip: "198.51.100.140", services: [{name: api, port: 8443}]}
    integrations: [{partner: deliverect, pattern: direct, service: pos1/api, public_port: 18443,
                    sources: ["198.51.100.0/28"]}]
    """


def test_rules_v6_comment_lists_exactly_what_ipv6_gets(tmp_path: Path) -> None:
    """The header says: nothing forwarded; loopback, replies, ping, neighbour discovery;
    no management over IPv6 (the spec takes IPv4 management sources only)."""
    plan = plans_of(write_fleet(tmp_path, FLEET, {}, {"v6": V6_STORE}))["v6"]
    v6 = iptables.render_rules(plan)["firewall/rules.v6"]
    assert "No management over IPv6: management.allow_from is IPv4 only." in v6
    accepts = [ln for ln in v6.splitlines() if ln.startswith("-A") and ln.endswith("-j ACCEPT")]
    kinds = {re.search(r'--comment "([^"]+)"', ln)[1] for ln in accepts}  # type: ignore[index]
    assert kinds == {"loopback", "replies", "ping6, rate limited", "ipv6 neighbour discovery"}
    assert not [ln for ln in accepts if ln.startswith("-A FORWARD") and "replies" not in ln]
    assert "--dport 22" not in v6
    # and an IPv6 management source is refused by the spec, so none can be "listed"
    v6_mgmt = FLEET.replace('["192.0.2.64/28"]', '["192.0.2.64/28", "2001:db8::/48"]')
    fleet, _ = load_plans(write_fleet(tmp_path / "b", v6_mgmt, {}, {"v6": V6_STORE}))
    assert [d.path for d in fleet.diagnostics if d.severity == "error"] == [
        "defaults.edge.management.allow_from[1]"
    ]
