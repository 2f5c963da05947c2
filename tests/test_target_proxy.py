"""Reverse-proxy targets (nginx, Apache): rendered text, real parsers, real servers.

Every demo proxy is rendered for BOTH servers (render_proxy ignores `software`), then:
- content checks on the text (Mozilla policy, routes, log format, upstream TLS);
- `nginx -t` and `apache2 -t` in a fresh network namespace, plus a broken copy that
  must be rejected, plus the X25519MLKEM768 trap on this machine's OpenSSL;
- a live run: inside `unshare --net --mount --pid` (only lo; the pid namespace kills
  whatever is left when the driver exits) the proxy and tiny Python upstreams run on
  the demo's own addresses, and curl checks routing, auth, 404s, TLS versions,
  WebSocket upgrade and that a query-string token never reaches a log.

The in-namespace half is this same file run as a script (`inside SCENARIO.json`), so
the driver needs nothing but the standard library and the curl binary.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SECRET = "SECRET123"
SECRET_DOWN = "SECRET456"
SECRET_BAD = "SECRET789"
SECRETS = (SECRET, SECRET_DOWN, SECRET_BAD)
USER, PASSWORD = "partner", "pw-for-tests-only"


# ---------------------------------------------------------------------------
# In-namespace driver (standard library only; runs as `python THIS inside FILE`)
# ---------------------------------------------------------------------------


class _Upstream(BaseHTTPRequestHandler):
    """Answers with what it saw, so the test knows which upstream got which path and
    headers; answers a WebSocket upgrade with 101 and a greeting."""

    protocol_version = "HTTP/1.1"
    label = "upstream"
    timeout = 5

    def _reply(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            key = self.headers.get("Sec-WebSocket-Key", "")
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest())
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept.decode())
            self.end_headers()
            self.wfile.write(f"ws-hello {self.label} {self.path}".encode())
            self.wfile.flush()
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        seen = {
            "label": self.label,
            "path": self.path,
            "authorization": self.headers.get("Authorization"),
            "x_forwarded_proto": self.headers.get("X-Forwarded-Proto"),
            "x_forwarded_for": self.headers.get("X-Forwarded-For"),
        }
        body = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        # One request per connection, so "upstream down" is down for the proxy too.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    do_GET = _reply
    do_POST = _reply

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    """No reverse DNS in server_bind: it would stall for seconds in an empty netns."""

    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def _start_upstream(spec: dict[str, Any]) -> _Server:
    handler = type("H", (_Upstream,), {"label": spec["label"]})
    server = _Server((spec["bind"], spec["port"]), handler)
    if spec.get("cert"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(spec["cert"], spec["key"])
        server.socket = ctx.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def _wait_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.03)
    return False


def _ws_probe(step: dict[str, Any]) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=step["cafile"])
    if step.get("cert"):
        ctx.load_cert_chain(step["cert"], step["key"])
    request = (
        f"GET {step['path']} HTTP/1.1\r\nHost: {step['host']}:{step['port']}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        + "".join(h + "\r\n" for h in step.get("headers", []))
        + "\r\n"
    )
    data = b""
    try:
        with (
            socket.create_connection(("127.0.0.1", step["port"]), timeout=3) as raw,
            ctx.wrap_socket(raw, server_hostname=step["host"]) as tls,
        ):
            tls.sendall(request.encode())
            while b"ws-hello" not in data:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        return {"text": data.decode(errors="replace"), "error": repr(exc)}
    return {"text": data.decode(errors="replace"), "error": None}


def _raw_probe(step: dict[str, Any]) -> dict[str, Any]:
    """Sends `step["request"]` as is over TLS (malformed requests curl refuses to send)
    and returns what came back until the server closed or went quiet."""
    ctx = ssl.create_default_context(cafile=step["cafile"])
    if step.get("cert"):
        ctx.load_cert_chain(step["cert"], step["key"])
    data = b""
    try:
        with (
            socket.create_connection(("127.0.0.1", step["port"]), timeout=3) as raw,
            ctx.wrap_socket(raw, server_hostname=step["host"]) as tls,
        ):
            tls.sendall(step["request"].encode())
            while chunk := tls.recv(4096):
                data += chunk
    except OSError as exc:
        return {"text": data.decode(errors="replace"), "error": repr(exc)}
    return {"text": data.decode(errors="replace"), "error": None}


_DNS: list[subprocess.Popen[bytes]] = []  # the namespace's dnsmasq, if any


def _start_dns(dns: dict[str, Any]) -> None:
    """A real DNS server for the proxy's `resolver`: dnsmasq answering from a hosts file
    the test rewrites (then SIGHUP) to move or remove a store's name."""
    proc = subprocess.Popen(
        [
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", f"--addn-hosts={dns['hosts']}", f"--listen-address={dns['listen']}",
            "--bind-interfaces", "--user=root", "--pid-file=", "--local-ttl=0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _DNS.append(proc)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        probe = subprocess.run(["ss", "-lun"], capture_output=True, text=True)
        if f"{dns['listen']}:53 " in probe.stdout:
            return
        time.sleep(0.05)


def _dns_step(step: dict[str, Any]) -> dict[str, Any]:
    Path(step["path"]).write_text(step["content"])
    for proc in _DNS:
        proc.send_signal(1)  # SIGHUP: dnsmasq re-reads --addn-hosts files
    time.sleep(step["wait"])
    return {"kind": "dns"}


def _run_step(step: dict[str, Any]) -> dict[str, Any]:
    if step["kind"] == "dns":
        return _dns_step(step)
    if step["kind"] == "ws":
        return _ws_probe(step)
    if step["kind"] == "raw":
        return _raw_probe(step)
    out = subprocess.run(step["args"], capture_output=True, text=True, timeout=15)
    body, _, code = out.stdout.rpartition("\n")
    return {"rc": out.returncode, "code": code, "body": body, "stderr": out.stderr}


def inside(scenario_path: str) -> int:
    """Runs as PID 1 of a fresh pid+net+mount namespace; prints results as JSON."""
    sc = json.loads(Path(scenario_path).read_text())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for addr in sc["lo_addrs"] + sc.get("extra_addrs", []):
        subprocess.run(["ip", "addr", "add", f"{addr}/32", "dev", "lo"], check=True)
    if sc.get("hosts_file"):
        subprocess.run(["mount", "--bind", sc["hosts_file"], "/etc/hosts"], check=True)
    if sc.get("hosts_empty"):  # names come from DNS only
        Path(scenario_path).with_name("hosts.empty").write_text("127.0.0.1 localhost\n")
        empty = str(Path(scenario_path).with_name("hosts.empty"))
        subprocess.run(["mount", "--bind", empty, "/etc/hosts"], check=True)
    if sc.get("resolv_conf"):
        subprocess.run(["mount", "--bind", sc["resolv_conf"], "/etc/resolv.conf"], check=True)
    if sc.get("dns"):
        _start_dns(sc["dns"])
    upstreams = [_start_upstream(u) for u in sc["upstreams"]]
    result: dict[str, Any] = {"started": False, "phase1": [], "phase2": []}
    with open(sc["server_log"], "wb") as log:
        proc = subprocess.Popen(sc["server_cmd"], stdout=log, stderr=subprocess.STDOUT)
        try:
            result["started"] = _wait_port(sc["port"], proc)
            if result["started"]:
                result["phase1"] = [_run_step(s) for s in sc["phase1"]]
                for u in upstreams:
                    u.shutdown()
                    u.server_close()
                result["phase2"] = [_run_step(s) for s in sc["phase2"]]
            # A server expected to fail on its own gets time to do so (Apache opens its
            # listeners before the TLS set-up that fails, so the port answers briefly).
            try:
                result["self_exit"] = proc.wait(timeout=sc.get("wait_exit", 0))
            except subprocess.TimeoutExpired:
                result["self_exit"] = None
        finally:
            proc.terminate()
            try:
                result["exit"] = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                result["exit"] = proc.wait()
    print(json.dumps(result))
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["inside"]:
    sys.exit(inside(sys.argv[2]))


# ---------------------------------------------------------------------------
# pytest half
# ---------------------------------------------------------------------------

import pytest  # noqa: E402
from conftest import DEMO, IN_CI, require_tool  # noqa: E402

from generator.pipeline import load_plans  # noqa: E402
from generator.plan import Plan, ProxyPlan  # noqa: E402
from generator.targets import apache, nginx, tls_policy  # noqa: E402
from generator.targets.tls_policy import VirtualServer, layout  # noqa: E402
from tests.lab.tls_scan import scannable_certificate  # noqa: E402

RENDERERS = {"nginx": nginx.render_proxy, "apache": apache.render_proxy}
APACHE_MODULES = Path("/usr/lib/apache2/modules")


@dataclasses.dataclass(frozen=True)
class Case:
    plan: Plan
    proxy: ProxyPlan

    @property
    def id(self) -> str:
        return f"{self.plan.site_id}/{self.proxy.id}"

    def with_openssl(self, version: str) -> ProxyPlan:
        tls = dataclasses.replace(self.proxy.tls, openssl=version)
        return dataclasses.replace(self.proxy, tls=tls)


def _demo_cases() -> list[Case]:
    _, plans = load_plans(DEMO)
    return [Case(p, x) for p in plans for x in p.proxies]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        cases = _demo_cases()
        metafunc.parametrize("case", cases, ids=[c.id for c in cases])


def test_every_demo_proxy_is_covered(demo_plans: dict[str, Plan]) -> None:
    ids = {f"{p.site_id}/{x.id}" for p in demo_plans.values() for x in p.proxies}
    assert ids == {c.id for c in _demo_cases()}
    assert len(ids) >= 4
    softwares = {x.software for p in demo_plans.values() for x in p.proxies}
    assert softwares == {"nginx", "apache"}


# ----------------------------------------------------------------- content


def test_render_routes_by_software(demo_plans: dict[str, Plan]) -> None:
    for plan in demo_plans.values():
        ng, ap = nginx.render(plan), apache.render(plan)
        assert set(ng) == {
            f"proxy/{p.id}.nginx.conf" for p in plan.proxies if p.software == "nginx"
        }
        assert set(ap) == {
            f"proxy/{p.id}.apache.conf" for p in plan.proxies if p.software == "apache"
        }
    assert nginx.NAME == "nginx" and apache.NAME == "apache"
    assert nginx.SECRET_STYLE == apache.SECRET_STYLE == "raw"


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_header_determinism_and_no_secrets(case: Case, server: str) -> None:
    text = RENDERERS[server](case.plan, case.proxy)
    assert text == RENDERERS[server](case.plan, case.proxy)
    assert text.endswith("\n") and not text.endswith("\n\n")
    head = text.splitlines()[:2]
    assert "posnet" in head[0] and case.plan.site_id in head[0]
    assert "generated, do not edit" in head[1]
    assert "@@POSNET_SECRET" not in text
    assert str(ROOT) not in text and "/tmp/" not in text


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_mozilla_intermediate_and_pq_group_follows_openssl(case: Case, server: str) -> None:
    old = RENDERERS[server](case.plan, case.with_openssl("3.0"))
    new = RENDERERS[server](case.plan, case.with_openssl("3.5"))
    ciphers = ":".join(tls_policy.CIPHERS_TLS12)
    for text in (old, new):
        assert ciphers in text
        assert "DHE-RSA" not in text.replace("ECDHE-RSA", "")
        assert 'Strict-Transport-Security "max-age=63072000"' in text
    if server == "nginx":
        assert "ssl_protocols TLSv1.2 TLSv1.3;" in old
        assert "ssl_session_tickets off;" in old and "ssl_session_timeout 86400s;" in old
        assert "ssl_ecdh_curve X25519:prime256v1:secp384r1;" in old
        assert "ssl_ecdh_curve X25519MLKEM768:X25519:prime256v1:secp384r1;" in new
    else:
        assert "SSLProtocol -all +TLSv1.2 +TLSv1.3" in old
        assert "SSLSessionTickets off" in old and "SSLHonorCipherOrder off" in old
        assert "SSLOpenSSLConfCmd Curves X25519:prime256v1:secp384r1\n" in old
        assert "SSLOpenSSLConfCmd Curves X25519MLKEM768:X25519:prime256v1:secp384r1" in new
    # The directive (not the header comment) carries the group only for 3.5.
    directive = [ln for ln in old.splitlines() if not ln.lstrip().startswith("#")]
    assert not any("X25519MLKEM768" in ln for ln in directive)


def test_demo_openssl_35_keeps_the_pq_group(demo_plans: dict[str, Plan]) -> None:
    plan = demo_plans["leuven-04"]
    (proxy,) = plan.proxies
    assert proxy.tls.openssl == "3.5"
    text = apache.render(plan)["proxy/deliverect-proxy.apache.conf"]
    assert "SSLOpenSSLConfCmd Curves X25519MLKEM768:X25519:prime256v1:secp384r1" in text


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_logs_never_hold_query_strings(case: Case, server: str) -> None:
    text = RENDERERS[server](case.plan, case.proxy)
    config = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    failure_log = f"posnet-{case.proxy.id}.upstream-errors.log"
    if server == "nginx":
        assert not re.search(r"\$request\b(?!_)", config)
        assert "$args" not in text and "$http_referer" not in text and "$query" not in text
        # The logged path is the request URI cut at the "?", nothing else reads it.
        path = f"posnet_{case.proxy.id.replace('-', '_')}_path"
        cut = f'map $request_uri ${path} {{\n    "~^(?<{path}_p>[^?]*)" ${path}_p;\n}}'
        assert cut in config and config.count("$request_uri") == 1
        assert f'"$request_method ${path} $server_protocol"' in config
        assert len(re.findall(rf"\${path}\b", config)) == 2  # the map and the log format
        # Every message nginx writes while serving a request repeats the request line,
        # up to alert: only emerg is safe (the live test shows error leaks).
        levels = re.findall(r"^\s*error_log \S+ (\w+);$", config, flags=re.M)
        assert levels and set(levels) == {"emerg"}, levels
        var = f"$posnet_{case.proxy.id.replace('-', '_')}_upstream_failed"
        assert config.count(f"{failure_log} posnet_") == config.count("error_log ")
        assert config.count(f" if={var};") == config.count("error_log ")
        assert f'map $status {var} {{\n    "~^50[0234]$" 1;\n    default 0;' in config
    else:
        log_lines = [ln for ln in text.splitlines() if "CustomLog" in ln]
        assert log_lines and all("%U" in ln for ln in log_lines)
        assert not any(tok in ln for ln in log_lines for tok in ("%r", "%q", "Referer"))
        # Apache's default error-log format appends the Referer (a URL, query included).
        formats = re.findall(r"^\s*ErrorLogFormat (.+)$", config, flags=re.M)
        assert formats and set(formats) == {'"[%{u}t] [%-m:%l] [pid %P] [client %a] %M"'}
        assert "Referer" not in config
        levels = re.findall(r"^\s*LogLevel (.+)$", config, flags=re.M)
        assert levels and set(levels) == {"crit proxy:error proxy_http:error ssl:error"}
        assert config.count(f'{failure_log}" ') == config.count("ErrorLog ")
        assert '"expr=%{REQUEST_STATUS} =~ /^50[0234]$/"' in config
    # The header says what is logged where, naming each file.
    for name in ("access.log", "upstream-errors.log", "error.log"):
        assert (
            f"# - /var/log/{'nginx' if server == 'nginx' else 'apache2'}/posnet-"
            f"{case.proxy.id}.{name}:" in text
        )
    assert "# - Never logged: query strings" in text


def test_nginx_routes_strip_prefix_and_keep_exact_paths(demo_plans: dict[str, Plan]) -> None:
    brussels = nginx.render(demo_plans["brussels-03"])["proxy/deliverect-proxy.nginx.conf"]
    assert re.search(r"location /pos2/ \{\n\s+proxy_pass http://198\.51\.100\.141:8080/;", brussels)
    assert "location / {\n        return 404;" in brussels
    assert 'proxy_set_header Authorization "";' in brussels
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in brussels
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in brussels
    bruges = nginx.render(demo_plans["bruges-06"])["proxy/powerepos-ws.nginx.conf"]
    # Auth endpoint: exact match, no URI on proxy_pass, so the path reaches the upstream.
    assert re.search(
        r"location = /api/powerepos/v1/auth \{\n\s+proxy_pass http://198\.51\.100\.90:9001;",
        bruges,
    )
    assert "map $http_upgrade $posnet_powerepos_ws_connection {" in bruges
    assert "proxy_set_header Connection $posnet_powerepos_ws_connection;" in bruges
    assert "map $http_upgrade" in brussels  # its /pos2/ route carries websockets
    pos1 = brussels.split("location /pos1/ {")[1].split("\n    }")[0]
    assert "Upgrade" not in pos1  # a plain route is not upgraded
    assert "proxy_set_header Upgrade $http_upgrade;" in brussels.split("location /pos2/ {")[1]


def test_apache_routes(demo_plans: dict[str, Plan]) -> None:
    bruges = apache.render_proxy(demo_plans["bruges-06"], demo_plans["bruges-06"].proxies[0])
    assert 'ProxyPassMatch "^/api/powerepos/v1/auth$" "http://198.51.100.90:9001"' in bruges
    assert 'ProxyPass "/" "http://198.51.100.90:9000/" retry=0 upgrade=websocket' in bruges
    # The exact route must come before the catch-all ProxyPass: first match wins.
    assert bruges.index("ProxyPassMatch") < bruges.index('ProxyPass "/"')
    leuven = apache.render(demo_plans["leuven-04"])["proxy/deliverect-proxy.apache.conf"]
    assert "SSLVerifyClient require" in leuven
    assert leuven.count("<VirtualHost *:9443>") == 3  # catch-all + one per host route
    assert "Listen 9443 https" in leuven
    assert apache.path_regex("/a.b/c") == r"^/a\.b/c$"


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_upstream_tls_verification_policy(demo_plans: dict[str, Plan], server: str) -> None:
    render = RENDERERS[server]
    lan = render(demo_plans["brussels-03"], demo_plans["brussels-03"].proxies[0])
    remote = render(demo_plans["mechelen-hq"], demo_plans["mechelen-hq"].proxies[0])
    if server == "nginx":
        assert "proxy_ssl_verify off;" in lan and "proxy_ssl_verify on;" not in lan
        assert "# LAN upstream 198.51.100.140 (inside 198.51.100.128/26)" in lan
        for line in (
            "proxy_ssl_verify on;",
            "proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;",
            "proxy_ssl_server_name on;",
            "proxy_ssl_name gent-01.pos.example.com;",
            "# Remote upstream gent-01.pos.example.com: the certificate must chain",
        ):
            assert line in remote
        assert "proxy_ssl_verify off;" not in remote
    else:
        assert "SSLProxyVerify none" in lan and "SSLProxyVerify require" not in lan
        assert '<Proxy "https://198.51.100.140:8443/">' in lan
        assert "SSLProxyVerify require" in remote and "SSLProxyCheckPeerName on" in remote
        assert "# Remote upstream gent-01.pos.example.com: the certificate" in remote
        assert "SSLProxyVerify none" not in remote


def test_lan_classification() -> None:
    assert tls_policy.is_lan_upstream("198.51.100.140", "198.51.100.128/26")
    assert not tls_policy.is_lan_upstream("198.51.100.10", "198.51.100.128/26")
    assert not tls_policy.is_lan_upstream("gent-01.pos.example.com", "198.51.100.128/26")
    assert tls_policy.policy_for("3.5").groups[0] == "X25519MLKEM768"
    assert "X25519MLKEM768" not in tls_policy.policy_for("3.0").groups


@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize(
    "field,value",
    [
        ("server_names", ("evil.example.com;\n    include /etc/passwd",)),
        ("htpasswd_path", '/etc/x" ; return 200'),
        ("redact_query_params", ("token\nlog_format x",)),
    ],
)
def test_guards_refuse_injection(
    demo_plans: dict[str, Plan], server: str, field: str, value: object
) -> None:
    plan = demo_plans["brussels-03"]
    bad = dataclasses.replace(plan.proxies[0], **{field: value})
    with pytest.raises(ValueError, match="unsafe"):
        RENDERERS[server](plan, bad)


def test_guard_refuses_bad_route_path(demo_plans: dict[str, Plan]) -> None:
    plan = demo_plans["brussels-03"]
    proxy = plan.proxies[0]
    for change in ({"value": "/pos1/ { }\n"}, {"label": "pos1\n}"}):
        route = dataclasses.replace(proxy.routes[0], **change)
        bad = dataclasses.replace(proxy, routes=(route,))
        for render in RENDERERS.values():
            with pytest.raises(ValueError, match="unsafe"):
                render(plan, bad)


# ----------------------------------------------------------------- sandbox


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _machine_openssl() -> str:
    out = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout
    m = re.search(r"Library: OpenSSL (\d+)\.(\d+)", out) or re.search(r"OpenSSL (\d+)\.(\d+)", out)
    assert m, out
    return "3.5" if (int(m[1]), int(m[2])) >= (3, 5) else "3.0"


@dataclasses.dataclass(frozen=True)
class Sandbox:
    root: Path
    server_cert: Path  # self-signed, every demo server name
    server_key: Path
    ca_cert: Path  # signs upstream and client certificates; the "client CA"
    upstream_cert: Path
    upstream_key: Path
    client_cert: Path
    client_key: Path
    htpasswd: Path
    fqdns: dict[str, str]  # remote upstream name -> loopback address
    hosts_file: Path


EC_KEY = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"


def _self_signed(root: Path, name: str, subject: str, *extra: str) -> tuple[Path, Path]:
    crt, key = root / f"{name}.crt", root / f"{name}.key"
    args = f"req -x509 {EC_KEY} -keyout {key} -out {crt} -subj {subject} -days 2"
    _openssl(*args.split(), *extra)
    return crt, key


def _issue(root: Path, ca: str, name: str, subject: str, san: str) -> tuple[Path, Path]:
    """A leaf certificate signed by the sandbox CA (`ca` = its file stem)."""
    crt, key, csr, ext = (root / f"{name}.{x}" for x in ("crt", "key", "csr", "ext"))
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
    _openssl(*f"req -new {EC_KEY} -keyout {key} -out {csr} -subj {subject}".split())
    sign = f"x509 -req -in {csr} -CA {root}/{ca}.crt -CAkey {root}/{ca}.key -CAcreateserial"
    _openssl(*sign.split(), *f"-out {crt} -days 2 -extfile {ext}".split())
    return crt, key


def _htpasswd(root: Path) -> Path:
    tool = require_tool("htpasswd")
    line = subprocess.run(
        [tool, "-nbB", USER, PASSWORD], check=True, capture_output=True, text=True
    ).stdout
    path = root / "htpasswd"
    path.write_text(line.strip() + "\n")
    return path


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """Certificates, htpasswd and a hosts file under a /tmp dir readable by the proxies'
    unprivileged workers (Apache reads the htpasswd per request as `nobody`)."""
    require_tool("openssl")
    root = Path(tempfile.mkdtemp(prefix="posnet-proxy-", dir="/tmp"))
    root.chmod(0o755)
    try:
        cases = _demo_cases()
        names = sorted({n for c in cases for n in c.proxy.server_names} | {"nope.example.net"})
        hosts = {r.upstream_host for c in cases for r in c.proxy.routes}
        fqdns = sorted(h for h in hosts if not re.fullmatch(r"[\d.]+", h))
        ips = sorted(hosts - set(fqdns))
        san = ",".join(f"DNS:{n}" for n in names)
        server = _self_signed(
            root, "server", "/CN=posnet-test-proxy", "-addext", f"subjectAltName={san}"
        )
        ca_cert, _ = _self_signed(root, "ca", "/CN=posnet-test-ca")
        up_san = ",".join([f"DNS:{n}" for n in fqdns] + [f"IP:{i}" for i in ips])
        upstream = _issue(root, "ca", "upstream", "/CN=posnet-test-upstream", up_san)
        client = _issue(root, "ca", "client", "/CN=partner", "DNS:partner.example.net")
        htpasswd = _htpasswd(root)
        mapping = {n: f"127.0.1.{i + 1}" for i, n in enumerate(fqdns)}
        hosts_file = root / "hosts"
        hosts_file.write_text(
            "127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for n, a in mapping.items())
        )
        for p in root.iterdir():
            p.chmod(0o644)
        yield Sandbox(root, *server, ca_cert, *upstream, *client, htpasswd, mapping, hosts_file)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _case_dir(sb: Sandbox, name: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=name.replace("/", "_") + "-", dir=sb.root))
    d.chmod(0o755)
    for sub in ("logs", "run", "tmp", "etc"):
        (d / sub).mkdir(mode=0o755)
    return d


def _install(sb: Sandbox, d: Path, proxy: ProxyPlan) -> None:
    """Put the proxy's files where the rewritten config expects them (d/etc/...)."""
    files = {proxy.tls.cert_path: sb.server_cert, proxy.tls.key_path: sb.server_key}
    if proxy.htpasswd_path:
        files[proxy.htpasswd_path] = sb.htpasswd
    if proxy.client_ca_path:
        files[proxy.client_ca_path] = sb.ca_cert
    for target, source in files.items():
        dest = d / "etc" / target.removeprefix("/etc/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest)
        dest.chmod(0o644)


def _rewrite(text: str, d: Path, *, live: bool, sb: Sandbox | None = None) -> str:
    """Test-only: absolute target paths into the sandbox; for live runs, listen on
    127.0.0.1 (upstreams use the demo's addresses on the same port numbers) and trust
    the sandbox CA instead of the public bundle."""
    text = text.replace("/etc/posnet/", f"{d}/etc/posnet/")
    text = text.replace("/var/log/nginx/", f"{d}/logs/").replace("/var/log/apache2/", f"{d}/logs/")
    if live:
        text = re.sub(r"^(\s*listen) (\d+) ssl;", r"\1 127.0.0.1:\2 ssl;", text, flags=re.M)
        text = re.sub(r"^Listen (\d+) https$", r"Listen 127.0.0.1:\1 https", text, flags=re.M)
        if sb is not None:
            text = text.replace(tls_policy.SYSTEM_CA_BUNDLE, str(sb.ca_cert))
    return text


def _nginx_main(d: Path, site: Path) -> Path:
    """Workers run as root: inside `unshare -r` only uid 0 exists, and nginx chowns its
    temp dirs to the worker user even for -t."""
    temp = "\n".join(
        f"    {k}_temp_path {d}/tmp/{k};"
        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = d / "nginx.conf"
    main.write_text(
        f"user root root;\nworker_processes 1;\npid {d}/run/nginx.pid;\n"
        f"error_log {d}/logs/main.error.log;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    access_log {d}/logs/main.access.log;\n{temp}\n    include {site};\n}}\n"
    )
    return main


def _nginx_cmd(d: Path, main: Path, *extra: str) -> list[str]:
    return ["nginx", "-e", f"{d}/logs/startup.log", "-c", str(main), "-p", f"{d}/", *extra]


def _apache_main(d: Path, site: Path) -> Path:
    modules = ["mpm_event", "socache_shmcb", *apache.REQUIRED_MODULES]
    loads = "".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so\n" for m in modules)
    main = d / "apache2.conf"
    main.write_text(
        f'ServerRoot "{d}"\n{loads}'
        f'PidFile "{d}/run/apache2.pid"\nErrorLog "{d}/logs/main.error.log"\n'
        f'Mutex file:{d}/run default\nDefaultRuntimeDir "{d}/run"\n'
        "User nobody\nGroup nogroup\nServerName localhost\nServerTokens Prod\n"
        f'SSLSessionCache "shmcb:{d}/run/ssl_scache(512000)"\n'
        f'Include "{site}"\n'
    )
    return main


def _in_netns(sb: Sandbox, cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """A fresh user+net+mount namespace (root inside, only lo) with the sandbox hosts
    file, so upstream FQDNs resolve and nothing on the machine is touched."""
    script = f'mount --bind "{sb.hosts_file}" /etc/hosts && exec "$@"'
    return subprocess.run(
        ["unshare", "-rnm", "sh", "-c", script, "sh", *cmd],
        capture_output=True,
        text=True,
        timeout=30,
    )


# ----------------------------------------------------------------- -t checks


def _prepare(
    sb: Sandbox, case: Case, server: str, proxy: ProxyPlan, *, live: bool
) -> tuple[Path, Path]:
    d = _case_dir(sb, f"{server}-{case.id}")
    _install(sb, d, proxy)
    site = d / "site.conf"
    site.write_text(_rewrite(RENDERERS[server](case.plan, proxy), d, live=live, sb=sb))
    main = (_nginx_main if server == "nginx" else _apache_main)(d, site)
    return d, main


def _nginx_t(sb: Sandbox, d: Path, main: Path) -> subprocess.CompletedProcess[str]:
    return _in_netns(sb, _nginx_cmd(d, main, "-t", "-q"))


def _apache_t(sb: Sandbox, main: Path) -> subprocess.CompletedProcess[str]:
    return _in_netns(sb, ["apache2", "-t", "-f", str(main)])


@pytest.mark.realtool
def test_nginx_accepts_rendered_and_rejects_broken(sandbox: Sandbox, case: Case) -> None:
    require_tool("nginx")
    require_tool("unshare")
    proxy = case.with_openssl(_machine_openssl())
    d, main = _prepare(sandbox, case, "nginx", proxy, live=False)
    ok = _nginx_t(sandbox, d, main)
    assert ok.returncode == 0, ok.stderr
    site = d / "site.conf"
    site.write_text(site.read_text().replace("proxy_pass ", "proxy_pas ", 1))
    bad = _nginx_t(sandbox, d, main)
    assert bad.returncode != 0 and 'unknown directive "proxy_pas"' in bad.stderr


@pytest.mark.realtool
def test_nginx_rejects_pq_group_on_this_openssl(sandbox: Sandbox, case: Case) -> None:
    """The trap is real: the 3.5 rendering fails here, so choosing by TlsPlan.openssl
    is what keeps the 3.0 rendering (accepted above) deployable."""
    require_tool("nginx")
    if _machine_openssl() != "3.0":
        pytest.skip("this machine's OpenSSL knows X25519MLKEM768")
    d, main = _prepare(sandbox, case, "nginx", case.with_openssl("3.5"), live=False)
    out = _nginx_t(sandbox, d, main)
    assert out.returncode != 0
    assert "X25519MLKEM768" in out.stderr


@pytest.mark.realtool
def test_nginx_warns_stapling_ignored_for_a_certificate_without_ocsp_url(
    sandbox: Sandbox, case: Case
) -> None:
    """The header's claim: stapling on with the sandbox's certificate (no OCSP
    responder URL, issuer not in the chain file) passes nginx -t with the warning
    "ssl_stapling" ignored (the live tests below show it serving)."""
    require_tool("nginx")
    require_tool("unshare")
    proxy = case.with_openssl(_machine_openssl())
    if not proxy.tls.stapling:
        pytest.skip("stapling is off for this proxy")
    d, main = _prepare(sandbox, case, "nginx", proxy, live=False)
    out = _in_netns(sandbox, _nginx_cmd(d, main, "-t"))
    assert out.returncode == 0, out.stderr
    assert '[warn] "ssl_stapling" ignored, ' in out.stderr


@pytest.mark.realtool
def test_apache_accepts_rendered_and_rejects_broken(sandbox: Sandbox, case: Case) -> None:
    require_tool("apache2")
    require_tool("unshare")
    proxy = case.with_openssl(_machine_openssl())
    d, main = _prepare(sandbox, case, "apache", proxy, live=False)
    ok = _apache_t(sandbox, main)
    assert ok.returncode == 0, ok.stderr
    site = d / "site.conf"
    site.write_text(site.read_text().replace("</VirtualHost>", "", 1))
    bad = _apache_t(sandbox, main)
    assert bad.returncode != 0 and "VirtualHost" in bad.stderr
    # The main config loads only REQUIRED_MODULES (+ MPM, socache), so the pass above
    # shows the list is complete; dropping one must fail, or the check proves nothing.
    main.write_text(main.read_text().replace("LoadModule headers_module", "#", 1))
    site.write_text(_rewrite(RENDERERS["apache"](case.plan, proxy), d, live=False))
    missing = _apache_t(sandbox, main)
    assert missing.returncode != 0 and "Header" in missing.stderr


# ----------------------------------------------------------------- live


def _require_live() -> None:
    for tool in ("unshare", "curl", "ip", "mount"):
        require_tool(tool)
    if os.geteuid() != 0:
        msg = "live proxy tests need root (fresh netns + Apache dropping to nobody)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


# Only lo; a private mount table for the hosts file; the driver is PID 1, so every
# process it started dies with it, and --kill-child kills it if pytest gives up.
NAMESPACES = ("unshare", "--net", "--mount", "--pid", "--fork", "--kill-child")


def _run_inside(d: Path, scenario: dict[str, Any]) -> dict[str, Any]:
    path = d / "scenario.json"
    path.write_text(json.dumps(scenario))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [*NAMESPACES, sys.executable, __file__, "inside", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@dataclasses.dataclass(frozen=True)
class Probe:
    """One request and what must come back."""

    what: str
    name: str
    path: str
    status: str
    label: str | None = None  # upstream that must answer
    upstream_path: str | None = None
    extra: tuple[str, ...] = ()
    auth: bool = True
    client_cert: bool = True


def _probe_path(kind: str, path: str) -> tuple[str, str]:
    query = f"?token={SECRET}&x=1"
    if kind == "exact":
        return path + query, path + query
    return f"{path}probe/x{query}", f"/probe/x{query}"


def _probes(proxy: ProxyPlan, servers: tuple[VirtualServer, ...]) -> list[Probe]:
    probes: list[Probe] = []
    for s in servers:
        for r in s.routes:
            path, expect = _probe_path(r.kind, r.path)
            probes.append(Probe(f"route {r.label}", s.name, path, "200", r.label, expect))
        if not s.has_default:
            probes.append(Probe(f"unknown path on {s.name}", s.name, "/nope/", "404"))
    first = servers[0]
    path, _ = _probe_path(first.routes[0].kind, first.routes[0].path)
    probes.append(Probe("unknown host", "nope.example.net", path, "404"))
    probes.append(
        Probe("TLS 1.2", first.name, path, "200", extra=("--tlsv1.2", "--tls-max", "1.2"))
    )
    probes.append(Probe("TLS 1.3", first.name, path, "200", extra=("--tlsv1.3",)))
    old = ("--tlsv1.1", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0")
    probes.append(Probe("TLS 1.1", first.name, path, "000", extra=old))
    if proxy.auth == "basic":
        probes.append(Probe("no credentials", first.name, path, "401", auth=False))
        probes.append(Probe("wrong password", first.name, path, "401", extra=("-u", f"{USER}:x")))
    if proxy.auth == "client_cert":
        probes.append(Probe("no client cert", first.name, path, "not200", client_cert=False))
    if proxy.auth_path is not None:  # auth_websocket: the partner POSTs its credentials
        auth, upstream = _probe_path("exact", proxy.auth_path)
        (label,) = [r.label for r in proxy.routes if r.value == proxy.auth_path]
        extra = ("--data", f"secret={SECRET}")
        probes.append(Probe("auth POST", first.name, auth, "200", label, upstream, extra))
    return probes


def _curl(sb: Sandbox, proxy: ProxyPlan, p: Probe) -> dict[str, Any]:
    port = proxy.listen_port
    args = ["curl", "-sS", "--max-time", "5", "--cacert", str(sb.server_cert)]
    args += ["-w", "\n%{http_code}", "--resolve", f"{p.name}:{port}:127.0.0.1"]
    if p.auth and proxy.auth == "basic":
        args += ["-u", f"{USER}:{PASSWORD}"]
    if p.client_cert and proxy.auth == "client_cert":
        args += ["--cert", str(sb.client_cert), "--key", str(sb.client_key)]
    args += [*p.extra, f"https://{p.name}:{port}{p.path}"]
    return {"kind": "curl", "args": args}


def _upstreams(sb: Sandbox, proxy: ProxyPlan) -> tuple[list[dict[str, Any]], list[str]]:
    ups: list[dict[str, Any]] = []
    addrs: list[str] = []
    for r in proxy.routes:
        bind = sb.fqdns.get(r.upstream_host, r.upstream_host)
        if r.upstream_host not in sb.fqdns:
            addrs.append(bind)
        spec: dict[str, Any] = {"bind": bind, "port": r.upstream_port, "label": r.label}
        if r.upstream_scheme == "https":
            spec |= {"cert": str(sb.upstream_cert), "key": str(sb.upstream_key)}
        ups.append(spec)
    return ups, sorted(set(addrs))


def _dns(d: Path, proxy: ProxyPlan, names: dict[str, str]) -> dict[str, Any]:
    """Scenario keys for a proxy with a resolver: dnsmasq on the resolver's address
    answering `names` (name -> address), and a resolv.conf pointing at it (Apache
    resolves through the C library). Nothing for a proxy without named upstreams."""
    if not proxy.resolvers:
        return {}
    hosts, resolv = d / "dns.hosts", d / "resolv.conf"
    hosts.write_text("".join(f"{a} {n}\n" for n, a in sorted(names.items())))
    resolv.write_text(f"nameserver {proxy.resolvers[0]}\n")
    return {
        "dns": {"listen": proxy.resolvers[0], "hosts": str(hosts)},
        "resolv_conf": str(resolv),
        "extra_addrs": [proxy.resolvers[0]],
    }


def _standard_run(
    sb: Sandbox,
    d: Path,
    server: str,
    main: Path,
    proxy: ProxyPlan,
    phase1: list[dict[str, Any]],
    phase2: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The proxy with its upstreams on their demo addresses, the sandbox hosts file and
    (for named upstreams) the sandbox DNS server."""
    upstreams, addrs = _upstreams(sb, proxy)
    return _run_inside(
        d,
        {
            "lo_addrs": addrs,
            "hosts_file": str(sb.hosts_file),
            "upstreams": upstreams,
            "server_cmd": _server_cmd(server, d, main),
            "server_log": str(d / "logs" / "server.out"),
            "port": proxy.listen_port,
            "phase1": phase1,
            "phase2": phase2 or [],
        }
        | _dns(d, proxy, sb.fqdns),
    )


def _server_cmd(server: str, d: Path, main: Path) -> list[str]:
    if server == "nginx":
        return _nginx_cmd(d, main, "-g", "daemon off;")
    return ["apache2", "-f", str(main), "-DFOREGROUND"]


def _logs(d: Path) -> dict[str, str]:
    return {p.name: p.read_text(errors="replace") for p in (d / "logs").iterdir()}


@pytest.mark.realtool
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_live_proxy(sandbox: Sandbox, case: Case, server: str) -> None:
    _require_live()
    require_tool("nginx" if server == "nginx" else "apache2")
    proxy = case.with_openssl(_machine_openssl())
    d, main = _prepare(sandbox, case, server, proxy, live=True)
    servers = layout(proxy, case.plan.lan.subnet)
    probes = _probes(proxy, servers)
    ws_steps = _ws_steps(sandbox, proxy, servers)
    down = Probe(
        "upstream down",
        servers[0].name,
        _probe_path(servers[0].routes[0].kind, servers[0].routes[0].path)[0].replace(
            SECRET, SECRET_DOWN
        ),
        "50x",
    )
    bad_steps = _bad_requests(sandbox, proxy, servers[0].name)
    result = _standard_run(
        sandbox,
        d,
        server,
        main,
        proxy,
        [_curl(sandbox, proxy, p) for p in probes] + ws_steps + bad_steps,
        [_curl(sandbox, proxy, down)],
    )
    logs = _logs(d)
    assert result["started"], logs
    for probe, got in zip(probes, result["phase1"], strict=False):
        context = f"{probe.what}: {got}"
        if probe.status == "not200":
            assert got["code"] != "200", context
        else:
            assert got["code"] == probe.status, context
        if probe.status == "000" and "TLS 1.1" in probe.what:
            assert "alert protocol version" in got["stderr"], context
        if probe.label is not None:
            seen = json.loads(got["body"])
            assert seen["label"] == probe.label, context
            if probe.upstream_path is not None:
                assert seen["path"] == probe.upstream_path, context  # prefix stripped
                assert seen["x_forwarded_proto"] == "https", context
                assert "127.0.0.1" in (seen["x_forwarded_for"] or ""), context
                assert seen["authorization"] is None, context  # proxy creds stay there
    ws_got = result["phase1"][len(probes) : len(probes) + len(ws_steps)]
    for step, got in zip(ws_steps, ws_got, strict=True):
        if step["expect"] is None:  # a route without `websocket` is not upgraded
            assert got["text"].startswith("HTTP/1.1 200"), (step, got)
            continue
        assert got["text"].startswith("HTTP/1.1 101"), (step, got)
        assert step["expect"] in got["text"], (step, got)  # right upstream, prefix stripped
    for got in result["phase1"][len(probes) + len(ws_steps) :]:
        assert got["text"].startswith("HTTP/1.1 400"), got  # the bad requests were bad
    (gone,) = result["phase2"]
    assert gone["code"] in ("502", "503"), gone
    _assert_logs_keep_their_promise(server, proxy, logs)


def _ws_steps(
    sb: Sandbox, proxy: ProxyPlan, servers: tuple[VirtualServer, ...]
) -> list[dict[str, Any]]:
    """One WebSocket upgrade per websocket route, with the proxy's credentials, and one
    to the first plain route, which must NOT be upgraded (expect None)."""
    steps: list[dict[str, Any]] = []
    plain = next((r for s in servers for r in s.routes if not r.websocket), None)
    for s in servers:
        for r in s.routes:
            if not r.websocket and r is not plain:
                continue
            path, upstream_path = _probe_path(r.kind, r.path)
            step: dict[str, Any] = {
                "kind": "ws",
                "host": s.name,
                "port": proxy.listen_port,
                "path": path,
                "expect": f"ws-hello {r.label} {upstream_path}" if r.websocket else None,
                "cafile": str(sb.server_cert),
                "headers": [],
            }
            if proxy.auth == "basic":
                token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                step["headers"].append(f"Authorization: Basic {token}")
            if proxy.auth == "client_cert":
                step |= {"cert": str(sb.client_cert), "key": str(sb.client_key)}
            steps.append(step)
    return steps


def _bad_requests(sb: Sandbox, proxy: ProxyPlan, name: str) -> list[dict[str, Any]]:
    """Malformed requests carrying a token: a URI that is not a path (Apache's core
    logs the raw request line for it at level error) and a broken header line."""
    host = f"Host: {name}:{proxy.listen_port}\r\n"
    requests = (
        f"GET probe?token={SECRET_BAD} HTTP/1.1\r\n{host}Connection: close\r\n\r\n",
        f"GET /x?token={SECRET_BAD} HTTP/1.1\r\n{host}Bad Header\r\nConnection: close\r\n\r\n",
    )
    base = {"kind": "raw", "host": name, "port": proxy.listen_port, "cafile": str(sb.server_cert)}
    if proxy.auth == "client_cert":
        base |= {"cert": str(sb.client_cert), "key": str(sb.client_key)}
    return [base | {"request": r} for r in requests]


def _assert_logs_keep_their_promise(server: str, proxy: ProxyPlan, logs: dict[str, str]) -> None:
    """After good requests, a wrong password, bad requests and an upstream that went
    down: no token in any file the server wrote (posnet's logs, the host's main logs,
    the server's stdout), while the failure is visible in the upstream-failure log."""
    leaks = [
        f"{name}: {line}"
        for name, text in logs.items()
        for line in text.splitlines()
        if any(secret in line for secret in SECRETS)
    ]
    assert not leaks, "\n".join(leaks)
    access = logs[f"posnet-{proxy.id}.access.log"]
    assert "/probe/x" in access or "/api/" in access, access  # positive control
    failures = logs[f"posnet-{proxy.id}.upstream-errors.log"]
    lines = failures.strip().splitlines()
    assert len(lines) == 1, failures  # only the request that met the dead upstream
    assert re.search(r"\" 50[023] ", lines[0]) and ("/probe/x" in lines[0] or "/api/" in lines[0])
    if server == "apache":
        # Apache also says why, without the URL (mod_proxy at level error).
        assert "attempt to connect to" in logs[f"posnet-{proxy.id}.error.log"], logs


@pytest.mark.realtool
@pytest.mark.parametrize("weakened", [False, True], ids=["rendered", "weak-cipher-added"])
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_live_tls_scan_against_mozilla_intermediate(
    sandbox: Sandbox, demo_plans: dict[str, Plan], server: str, weakened: bool
) -> None:
    """An independent check of the TLS set-up: sslyze scans the running server (SNI set
    to its name) and checks it against Mozilla's intermediate profile as sslyze ships
    it; only a scan CA is added to its trust (tests/lab/tls_scan.py)."""
    _require_live()
    require_tool("nginx" if server == "nginx" else "apache2")
    pytest.importorskip("sslyze")
    plan = demo_plans["brussels-03"]
    proxy = Case(plan, plan.proxies[0]).with_openssl(_machine_openssl())
    case = Case(plan, proxy)
    d, main = _prepare(sandbox, case, server, proxy, live=True)
    name = proxy.server_names[0]
    # The shared sandbox certificates lack the extensions a strict path validation
    # wants (sslyze rightly refuses them): a CA and leaf made for the scan.
    folder = d / "scan"
    folder.mkdir()
    ca, crt, key = scannable_certificate(folder, name)
    for source, target in ((crt, proxy.tls.cert_path), (key, proxy.tls.key_path)):
        shutil.copy(source, d / "etc" / target.removeprefix("/etc/"))
    if weakened:  # the scan must see a CBC suite outside the profile
        site = d / "site.conf"
        pattern = r"^(\s*(?:ssl_ciphers|SSLCipherSuite) [^;\n]+)"
        text, n = re.subn(pattern, r"\1:ECDHE-ECDSA-AES128-SHA", site.read_text(), flags=re.M)
        assert n > 0
        site.write_text(text)
    scan = [sys.executable, "-m", "tests.lab.tls_scan", name, str(proxy.listen_port)]
    step = {"kind": "scan", "args": [*scan, "127.0.0.1", str(ca)]}
    result = _standard_run(sandbox, d, server, main, proxy, [step])
    assert result["started"], _logs(d)
    (got,) = result["phase1"]
    assert got["rc"] == 0, got
    report = json.loads(got["body"])
    assert report["completed"], report
    assert report["accepted"] == ["TLSv1.2", "TLSv1.3"], report
    if weakened:
        assert "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA" in report["issues"]["ciphers"], report
    else:
        assert report["issues"] == {}, report


@pytest.mark.realtool
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_live_remote_upstream_is_verified(
    sandbox: Sandbox, demo_plans: dict[str, Plan], server: str
) -> None:
    """With the public CA bundle (not the sandbox CA) the remote https upstream must fail
    while the plain-http one still answers: verification is really on."""
    _require_live()
    require_tool("nginx" if server == "nginx" else "apache2")
    plan = demo_plans["mechelen-hq"]
    case = Case(plan, plan.proxies[0])
    proxy = case.with_openssl(_machine_openssl())
    d = _case_dir(sandbox, f"{server}-verify")
    _install(sandbox, d, proxy)
    site = d / "site.conf"
    site.write_text(_rewrite(RENDERERS[server](plan, proxy), d, live=True, sb=None))
    main = (_nginx_main if server == "nginx" else _apache_main)(d, site)
    upstreams, addrs = _upstreams(sandbox, proxy)
    name = proxy.server_names[0]
    probes = [
        Probe("remote https", name, "/gent-01/x", "50x"),
        Probe("remote http", name, "/antwerp-02/x", "200"),
    ]
    result = _run_inside(
        d,
        {
            "lo_addrs": addrs,
            "hosts_file": str(sandbox.hosts_file),
            "upstreams": upstreams,
            "server_cmd": _server_cmd(server, d, main),
            "server_log": str(d / "logs" / "server.out"),
            "port": proxy.listen_port,
            "phase1": [_curl(sandbox, proxy, p) for p in probes],
            "phase2": [],
        }
        | _dns(d, proxy, sandbox.fqdns),
    )
    assert result["started"], _logs(d)
    https, http = result["phase1"]
    assert https["code"] in ("500", "502", "503"), https  # Apache: 500 on handshake
    assert http["code"] == "200", http
    logs = _logs(d)
    failures = logs[f"posnet-{proxy.id}.upstream-errors.log"]
    assert "/gent-01/x" in failures and "/antwerp-02/" not in failures, failures
    if server == "apache":
        # mod_ssl keeps level error: the reason is in the error log, without the URL.
        assert "AH02039: Certificate Verification: Error" in logs[f"posnet-{proxy.id}.error.log"]


@pytest.mark.realtool
def test_live_apache_pq_group_passes_t_but_does_not_start(
    sandbox: Sandbox, demo_plans: dict[str, Plan]
) -> None:
    """Why the renderer must know the OpenSSL: `apache2 -t` accepts X25519MLKEM768 on
    OpenSSL 3.0, and only starting Apache shows the failure."""
    _require_live()
    require_tool("apache2")
    if _machine_openssl() != "3.0":
        pytest.skip("this machine's OpenSSL knows X25519MLKEM768")
    plan = demo_plans["leuven-04"]
    case = Case(plan, plan.proxies[0])
    assert case.proxy.tls.openssl == "3.5"
    d, main = _prepare(sandbox, case, "apache", case.proxy, live=True)
    assert _apache_t(sandbox, main).returncode == 0
    result = _run_inside(
        d,
        {
            "lo_addrs": [],
            "hosts_file": None,
            "upstreams": [],
            "server_cmd": _server_cmd("apache", d, main),
            "server_log": str(d / "logs" / "server.out"),
            "port": case.proxy.listen_port,
            "phase1": [],
            "phase2": [],
            "wait_exit": 10,
        },
    )
    assert result["self_exit"] not in (None, 0), _logs(d)
    text = "".join(_logs(d).values())
    assert "Curves" in text or "X25519MLKEM768" in text, text


@pytest.mark.realtool
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_live_central_proxy_follows_dns(
    sandbox: Sandbox, demo_plans: dict[str, Plan], server: str
) -> None:
    """The central proxy (mechelen-hq) starts while one store's name does not resolve,
    answers 502 for that route only, and after a DNS change (no reload, same process)
    reaches the store that appeared and the store that moved to a new address."""
    _require_live()
    require_tool("dnsmasq")
    require_tool("nginx" if server == "nginx" else "apache2")
    plan = demo_plans["mechelen-hq"]
    case = Case(plan, plan.proxies[0])
    proxy = dataclasses.replace(case.with_openssl(_machine_openssl()), resolver_valid=1)
    assert proxy.resolvers == (plan.lan.gateway,)  # default: the store's LAN gateway
    d, main = _prepare(sandbox, Case(plan, proxy), server, proxy, live=True)
    gent, antwerp = "gent-01.pos.example.com", "antwerp-02.pos.example.com"
    assert {gent, antwerp} <= set(sandbox.fqdns)
    moved = "127.0.2.2"
    upstreams, addrs = _upstreams(sandbox, proxy)
    antwerp_port = next(r.upstream_port for r in proxy.routes if r.upstream_host == antwerp)
    upstreams.append({"bind": moved, "port": antwerp_port, "label": "antwerp-02 moved"})
    dns = _dns(d, proxy, {antwerp: sandbox.fqdns[antwerp]})  # gent-01 unknown at start
    name = proxy.server_names[0]
    probes = [
        Probe("gent-01 unresolvable", name, "/gent-01/x", "50x"),
        Probe("antwerp-02", name, "/antwerp-02/x", "200"),
    ]
    change = {
        "kind": "dns",
        "path": dns["dns"]["hosts"],
        "content": f"{sandbox.fqdns[gent]} {gent}\n{moved} {antwerp}\n",
        "wait": 2.5,  # > resolver_valid
    }
    result = _run_inside(
        d,
        {
            "lo_addrs": [*addrs, moved],
            "hosts_file": None,
            "upstreams": upstreams,
            "server_cmd": _server_cmd(server, d, main),
            "server_log": str(d / "logs" / "server.out"),
            "port": proxy.listen_port,
            "phase1": [_curl(sandbox, proxy, p) for p in probes]
            + [change]
            + [_curl(sandbox, proxy, p) for p in probes],
            "phase2": [],
            "hosts_empty": True,
        }
        | dns,
    )
    logs = _logs(d)
    assert result["started"], logs
    gone, before, _, gent_after, antwerp_after = result["phase1"]
    assert gone["code"] in ("500", "502", "503"), gone
    assert json.loads(before["body"])["label"] == "antwerp-02/till1/api", before
    assert gent_after["code"] == "200", (gent_after, logs)
    assert json.loads(gent_after["body"])["label"] == "gent-01/pos1/api"
    assert json.loads(antwerp_after["body"])["label"] == "antwerp-02 moved", antwerp_after
    assert result["self_exit"] is None  # the same server process throughout


# ----------------------------------------------------------------- upstream trust


# A legal FQDN longer than what a server_names_hash bucket holds at nginx's default.
LONG_NAME = "store-01.eindhoven-centrum-shopping-mall.pos.retailgroup-example.com"


def _long_named(plan: Plan, proxy: ProxyPlan, name: str, **changes: Any) -> ProxyPlan:
    """`proxy` answering for `name` (its routes are by path on the first name)."""
    assert all(r.match != "host" for r in proxy.routes)
    return dataclasses.replace(proxy, server_names=(name,), **changes)


@pytest.mark.realtool
def test_nginx_long_server_names_need_no_bucket_size(sandbox: Sandbox) -> None:
    """A server name over 46 characters used to fail nginx -t ("could not build
    server_names_hash, you should increase server_names_hash_bucket_size: 64"), which
    posnet cannot set: the directive may appear once per nginx, and several posnet files
    (or the host's nginx.conf) share one. Two such files on one port pass together, and
    a live request for the long name reaches its route while other names get 404."""
    require_tool("nginx")
    case = Case(*_brussels())
    other = LONG_NAME.replace("store-01", "store-02")
    a = _long_named(case.plan, case.with_openssl(_machine_openssl()), LONG_NAME)
    b = dataclasses.replace(_long_named(case.plan, a, other), id="deliverect-proxy-b")
    assert len(LONG_NAME) > 46  # 8 + align(len + 2, 8) + 8 bytes > a 64-byte bucket
    d = _case_dir(sandbox, "nginx-long-names")
    _install(sandbox, d, a)
    includes = ""
    for proxy in (a, b):
        text = nginx.render_proxy(case.plan, proxy)
        f = d / f"{proxy.id}.conf"
        f.write_text(_rewrite(text, d, live=False))
        includes += f"include {f};\n"
    site = d / "site.conf"
    site.write_text(includes)
    out = _nginx_t(sandbox, d, _nginx_main(d, site))
    assert out.returncode == 0, out.stderr
    assert "conflicting server name" not in out.stderr
    if os.geteuid() != 0:
        return  # the live half needs root (see _require_live)
    _require_live()
    d, main = _prepare(sandbox, Case(case.plan, a), "nginx", a, live=True)
    route = layout(a, case.plan.lan.subnet)[0].routes[0]
    path, upstream_path = _probe_path(route.kind, route.path)
    probes = [  # -k: the sandbox certificate does not name the long hosts
        Probe("long name", LONG_NAME, path, "200", route.label, upstream_path, ("-k",)),
        Probe("long name, other case", LONG_NAME.upper(), path, "200", route.label,
              upstream_path, ("-k",)),
        Probe("the other file's name", other, path, "404", extra=("-k",)),
        Probe("a longer name", "x" + LONG_NAME, path, "404", extra=("-k",)),
    ]  # fmt: skip
    result = _standard_run(sandbox, d, "nginx", main, a, [_curl(sandbox, a, p) for p in probes])
    assert result["started"], _logs(d)
    for probe, got in zip(probes, result["phase1"], strict=True):
        assert got["code"] == probe.status, f"{probe.what}: {got}"
        if probe.label is not None:
            assert json.loads(got["body"])["label"] == probe.label, got


@pytest.mark.realtool
@pytest.mark.parametrize("partner", ["my-kiosk-vendor", "p" * 63])
def test_nginx_long_partner_ids_keep_the_path_capture_legal(sandbox: Sandbox, partner: str) -> None:
    """The log's path capture is a PCRE2 named group, at most 32 code units: a proxy
    id of 19+ characters (partner ids of 13+) failed nginx -t with "subpattern name is
    too long". Any legal partner id now loads, and (live) the access log still shows
    the path without its query."""
    require_tool("nginx")
    plan, demo = _brussels()
    case = Case(plan, dataclasses.replace(demo, id=f"{partner}-proxy", partner=partner))
    proxy = case.with_openssl(_machine_openssl())
    d, main = _prepare(sandbox, case, "nginx", proxy, live=False)
    out = _nginx_t(sandbox, d, main)
    assert out.returncode == 0, out.stderr
    if os.geteuid() != 0:
        return  # the live half needs root (see _require_live)
    _require_live()
    d, main = _prepare(sandbox, case, "nginx", proxy, live=True)
    route = layout(proxy, plan.lan.subnet)[0].routes[0]
    path, _ = _probe_path(route.kind, route.path)
    name = proxy.server_names[0]
    result = _standard_run(
        sandbox, d, "nginx", main, proxy, [_curl(sandbox, proxy, Probe("r", name, path, "200"))]
    )
    assert result["started"], _logs(d)
    assert result["phase1"][0]["code"] == "200", result
    access = _logs(d)[f"posnet-{proxy.id}.access.log"]
    assert f"GET {path.split('?')[0]} HTTP" in access, access
    assert SECRET not in access


def _brussels() -> tuple[Plan, ProxyPlan]:
    """brussels-03's nginx proxy: path routes, basic auth."""
    (case,) = [c for c in _demo_cases() if c.id == "brussels-03/deliverect-proxy"]
    return case.plan, case.proxy


def _fleet_with(tmp_path: Path, site: str, old: str, new: str) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)
    path = root / "sites" / f"{site}.yaml"
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    return root


GENT_ROUTE = "{site: gent-01, site_service: pos1/api, path: /gent-01/}"


@pytest.mark.parametrize(
    "trust,kind",
    [
        ("upstream_ca: file:certs/gent-ca.pem", "ca"),
        ("upstream_certificate: vault:gent_pos", "pinned"),
    ],
)
def test_route_trust_reaches_configs_and_inventory(tmp_path: Path, trust: str, kind: str) -> None:
    from generator.inventory import _proxy_secret_files

    route = GENT_ROUTE.replace("}", f", {trust}}}")
    _, plans = load_plans(_fleet_with(tmp_path, "mechelen-hq", GENT_ROUTE, route))
    (plan,) = [p for p in plans if p.site_id == "mechelen-hq"]
    proxy = plan.proxies[0]
    (r,) = [r for r in proxy.routes if r.label == "gent-01/pos1/api"]
    ref = trust.split(": ")[1]
    path = "/etc/posnet/tls/deliverect-proxy-gent-01-pos1-api-upstream.pem"
    assert (r.trust, r.trust_ref, r.trust_path) == (kind, ref, path)
    assert any(s.ref == ref and s.kind == "upstream-ca" for s in plan.secrets)
    files = {f["dest"]: f for f in _proxy_secret_files(proxy)}
    assert files[path]["ref"] == ref and files[path]["mode"] == "0644"
    ng, ap = nginx.render_proxy(plan, proxy), apache.render_proxy(plan, proxy)
    gent = ng.split("location /gent-01/ {")[1].split("\n    }")[0]
    assert f"proxy_ssl_trusted_certificate {path};" in gent and "proxy_ssl_verify on;" in gent
    assert "proxy_ssl_name gent-01.pos.example.com;" in gent
    block = ap.split('<Proxy "https://gent-01.pos.example.com:18443/">')[1].split("</Proxy>")[0]
    assert f'SSLProxyCACertificateFile "{path}"' in block and "SSLProxyCheckPeerName on" in block
    # The other route keeps the public CAs.
    # (The public CAs that appear are the OCSP staple's trust, one per server block.)
    assert ng.count(f"proxy_ssl_trusted_certificate {tls_policy.SYSTEM_CA_BUNDLE}") == 0
    assert ("pinned self-signed" in gent) == (kind == "pinned")
    # The handover says what certificate that store's POS must present.
    from generator.targets.handover import partner_sections

    lines = [x for s in partner_sections(plan) for x in s.extra]
    need = {"ca": "chains to the CA in", "pinned": "is exactly the pinned certificate in"}[kind]
    assert (
        "Upstream `gent-01/pos1/api` (gent-01.pos.example.com:18443) must present a certificate"
        f" for `gent-01.pos.example.com` that {need} `{ref}`."
    ) in lines, lines


@pytest.mark.parametrize(
    "site,old,new,message",
    [
        (
            "mechelen-hq",
            GENT_ROUTE,
            GENT_ROUTE.replace("}", ", upstream_ca: file:a.pem, upstream_certificate: file:b.pem}"),
            "give upstream_ca or upstream_certificate, not both",
        ),
        (
            "brussels-03",
            "{service: pos2/api, path: /pos2/, websocket: true}",
            "{service: pos2/api, path: /pos2/, websocket: true, upstream_ca: file:a.pem}",
            "pos2/api is plain http: there is no certificate to check",
        ),
    ],
)
def test_route_trust_bad_input_is_located(
    tmp_path: Path, site: str, old: str, new: str, message: str
) -> None:
    from generator.analyze import analyze
    from generator.errors import PosnetError

    root = _fleet_with(tmp_path, site, old, new)
    try:
        diags = analyze(root).diagnostics
    except PosnetError as exc:
        diags = exc.diagnostics
    errors = [d for d in diags if d.severity == "error"]
    assert any(message in d.message for d in errors), [d.message for d in errors]
    (d,) = [d for d in errors if message in d.message]
    assert d.location.file.endswith(f"sites/{site}.yaml") and d.location.line > 1


@pytest.mark.realtool
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_live_route_trusts_its_ca_reference(sandbox: Sandbox, tmp_path: Path, server: str) -> None:
    """A route with upstream_ca reaches a store whose certificate chains to that CA only
    (the public bundle stays in place and would refuse it); with another CA in the file
    the same route fails, so the reference really is what is trusted."""
    _require_live()
    require_tool("dnsmasq")
    require_tool("nginx" if server == "nginx" else "apache2")
    route = GENT_ROUTE.replace("}", ", upstream_ca: file:certs/gent-ca.pem}")
    _, plans = load_plans(_fleet_with(tmp_path, "mechelen-hq", GENT_ROUTE, route))
    (plan,) = [p for p in plans if p.site_id == "mechelen-hq"]
    proxy = dataclasses.replace(plan.proxies[0], tls=dataclasses.replace(
        plan.proxies[0].tls, openssl=_machine_openssl()))  # fmt: skip
    (r,) = [r for r in proxy.routes if r.trust == "ca"]
    assert r.trust_path is not None
    other_ca, _ = _self_signed(sandbox.root, f"other-ca-{server}", "/CN=other-ca")
    codes = []
    for ca in (sandbox.ca_cert, other_ca):
        d = _case_dir(sandbox, f"{server}-trust")
        _install(sandbox, d, proxy)
        dest = d / "etc" / r.trust_path.removeprefix("/etc/")
        shutil.copy(ca, dest)
        dest.chmod(0o644)
        site = d / "site.conf"
        site.write_text(_rewrite(RENDERERS[server](plan, proxy), d, live=True, sb=None))
        main = (_nginx_main if server == "nginx" else _apache_main)(d, site)
        upstreams, addrs = _upstreams(sandbox, proxy)
        result = _run_inside(
            d,
            {
                "lo_addrs": addrs,
                "hosts_file": str(sandbox.hosts_file),
                "upstreams": upstreams,
                "server_cmd": _server_cmd(server, d, main),
                "server_log": str(d / "logs" / "server.out"),
                "port": proxy.listen_port,
                "phase1": [
                    _curl(sandbox, proxy, Probe("gent", proxy.server_names[0], "/gent-01/x", "200"))
                ],
                "phase2": [],
            }
            | _dns(d, proxy, sandbox.fqdns),
        )
        assert result["started"], _logs(d)
        codes.append(result["phase1"][0]["code"])
    assert codes[0] == "200", codes
    assert codes[1] in ("500", "502", "503"), codes


# ----------------------------------------------------------------- handover checks


def _handover_checks(plan: Plan, proxy: ProxyPlan) -> list[str]:
    from generator.targets.handover import partner_sections

    lines = [x for s in partner_sections(plan) for x in s.extra if x.startswith("Check `")]
    return [re.search(r": `(curl [^`]+)`", x)[1] for x in lines]  # type: ignore[index]


def _local(sb: Sandbox, plan: Plan, proxy: ProxyPlan, cmd: str) -> list[str]:
    """The handover's command pointed at the sandboxed proxy: public address and port
    become 127.0.0.1 and the listen port, placeholders become the test credentials."""
    port = next(
        e.public_port
        for e in plan.exposures
        if (e.target_ip, e.target_port) == (proxy.host_ip, proxy.listen_port)
    )
    args = cmd.replace("'%{http_code}\\n'", "%{http_code}").split()
    out = ["curl", "--max-time", "5", "--cacert", str(sb.server_cert)]
    for a in args[1:]:
        a = a.replace(f":{port}", f":{proxy.listen_port}")
        for addr in (plan.wan.public_ip, plan.wan.fqdn):
            if addr:
                a = re.sub(rf":{re.escape(addr)}(:|$)", r":127.0.0.1\1", a)
        a = a.replace("USER:PASSWORD", f"{USER}:{PASSWORD}")
        a = a.replace("CLIENT.crt", str(sb.client_cert)).replace("CLIENT.key", str(sb.client_key))
        out.append(a)
    return out


@pytest.mark.realtool
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_live_handover_checks_exercise_routing_and_auth(
    sandbox: Sandbox, case: Case, server: str
) -> None:
    """The handover's per-route commands, run as written (address and port mapped to the
    sandbox), reach the right upstream through SNI and Host; without -u they get 401."""
    _require_live()
    require_tool("nginx" if server == "nginx" else "apache2")
    commands = _handover_checks(case.plan, case.proxy)
    if not commands:
        pytest.skip("proxy without a public port: no partner-facing checks")
    assert len(commands) == len(case.proxy.routes)
    proxy = case.with_openssl(_machine_openssl())
    d, main = _prepare(sandbox, case, server, proxy, live=True)
    steps = [{"kind": "curl", "args": _local(sandbox, case.plan, proxy, c)} for c in commands]
    if proxy.auth == "basic":
        bare = [a for a in steps[0]["args"] if a not in ("-u", f"{USER}:{PASSWORD}")]
        steps.append({"kind": "curl", "args": bare})
    result = _standard_run(sandbox, d, server, main, proxy, steps)
    assert result["started"], _logs(d)
    got = [r["code"] or r["body"] for r in result["phase1"]]
    for step, r in zip(steps[: len(commands)], result["phase1"], strict=False):
        assert r["code"] == "200", (step["args"], r)
    if proxy.auth == "basic":
        assert got[-1] == "401", got
