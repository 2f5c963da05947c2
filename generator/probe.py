"""Network probes from wherever posnet runs: does each port answer as the policy says?

A TCP port is *open* (our SYN was answered and the connection made), *closed* (an RST:
"connection refused", so the packet got through the firewall to a host), *filtered* (no
answer at all: dropped) or *unreachable* (an ICMP error: rejected, or no route).
On a default-drop edge everything that is not an exposure for this vantage point must
be *filtered*, the management port included: a *closed* answer means a rule let the
packet in. A partner additionally expects every exposure open, with a TLS handshake
when the service speaks TLS and an HTTP answer when it is HTTP, and, in front of a
proxy that requires basic auth or a client certificate, a refusal of a request that
brings neither (a proxy whose auth was switched off answers it). A stranger expects
every exposure filtered too, but one without an allow-list open (anyone may connect).
Only TCP is probed: an open UDP port that does not answer looks exactly like a filtered
one, so a UDP exposure is reported as not probed (skipped), neither passed nor failed.
Only addresses named in the build tree are contacted.
"""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["partner", "stranger"]


@dataclass(frozen=True)
class ProbeResult:
    check: str
    target: str
    ok: bool
    detail: str
    skipped: bool = False  # not probed at all (UDP): counts as neither passed nor failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "target": self.target,
            "ok": self.ok,
            "skipped": self.skipped,
            "detail": self.detail,
        }


PortState = Literal["open", "closed", "filtered", "unreachable"]


def _connect(host: str, port: int, timeout: float) -> tuple[socket.socket | None, str]:
    try:
        return socket.create_connection((host, port), timeout=timeout), "connected"
    except TimeoutError:
        return None, "timed out"
    except OSError as exc:
        return None, exc.strerror or type(exc).__name__


def tcp_state(host: str, port: int, timeout: float) -> tuple[PortState, str]:
    """open / closed (RST) / filtered (no answer) / unreachable (ICMP error)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        return "filtered", f"no answer in {timeout:g} s"
    except ConnectionRefusedError:
        return "closed", "connection refused (RST): the packet reached a host"
    except OSError as exc:
        # EHOSTUNREACH / ENETUNREACH / EACCES: an ICMP error came back (a reject rule,
        # or no route), which is not the silence of a drop.
        return "unreachable", exc.strerror or errno.errorcode.get(exc.errno or 0, "error")
    sock.close()
    return "open", "connection accepted"


def _tls(
    sock: socket.socket, server_name: str | None, verify: bool, ca: str | None
) -> tuple[ssl.SSLSocket | None, str]:
    ctx = (
        ssl.create_default_context(cafile=ca) if verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    )
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        tls = ctx.wrap_socket(sock, server_hostname=server_name)
    except (ssl.SSLError, OSError) as exc:
        return None, f"TLS failed: {exc}"
    der = tls.getpeercert(binary_form=True)
    cipher = tls.cipher()
    detail = f"{tls.version()} {cipher[0] if cipher else ''}".strip()
    if der:
        detail += f", certificate {len(der)} bytes"
        cert = tls.getpeercert()
        if cert:
            subject = dict(x[0] for x in cert.get("subject", ()))  # type: ignore[misc]
            detail += f", CN={subject.get('commonName', '?')}, expires {cert.get('notAfter')}"
    return tls, detail


def _http(sock: socket.socket, host: str, path: str, timeout: float) -> tuple[int | None, str]:
    """The status of GET `path` (no credentials); None with why when there is none. A
    TLS alert instead of an answer (a client certificate required under TLS 1.3) reads
    "TLS alert: ..."."""
    sock.settimeout(timeout)
    req = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
        "User-Agent: posnet-probe\r\nConnection: close\r\n\r\n"
    )
    try:
        sock.sendall(req.encode())
        data = sock.recv(4096)
    except ssl.SSLError as exc:
        return None, f"TLS alert: {exc}"
    except OSError as exc:
        return None, f"no HTTP answer ({exc})"
    line = data.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    parts = line.split(" ")
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        return int(parts[1]), line
    return None, f"not HTTP: {line[:60]!r}"


def probe_exposure(
    exposure: dict[str, Any],
    role: Role,
    host_override: str | None = None,
    timeout: float = 3.0,
    verify_tls: bool = False,
    ca: str | None = None,
) -> list[ProbeResult]:
    host = host_override or str(exposure["public_host"])
    port = int(exposure["public_port"])
    target = f"{host}:{port}"
    name = str(exposure["id"])
    if exposure.get("protocol", "tcp") != "tcp":
        # A TCP probe of a UDP port says nothing, and a UDP one cannot tell an open port
        # whose service ignores the probe from a dropped one: say so, pass nothing.
        why = "only TCP is probed; test this UDP port with the partner's own client"
        return [ProbeResult(f"{name} udp not probed", f"{target}/udp", True, why, skipped=True)]
    if role == "stranger":
        state, why = tcp_state(host, port, timeout)
        # no allow-list, or one of every address: open to anyone (PN103)
        if exposure.get("open_to_anyone") or exposure.get("sources", ...) == []:
            return [ProbeResult(f"{name} open to anyone", target, state == "open", why)]
        return [ProbeResult(f"{name} filtered", target, state == "filtered", f"{state}: {why}")]
    # the name partners use (SNI, certificate, Host), also when probing another address
    server = str(exposure.get("server_name") or exposure["public_host"])
    sock, why = _connect(host, port, timeout)
    if sock is None:
        return [ProbeResult(f"{name} tcp", target, False, why)]
    results = [ProbeResult(f"{name} tcp", target, True, why)]
    auth = exposure.get("auth") if isinstance(exposure.get("auth"), dict) else None
    stream: socket.socket = sock
    try:
        if exposure.get("tls"):
            # The certificate is checked for that name (an IP is matched against IP
            # SANs, and sent as no SNI), which is what a partner's client does.
            tls, detail = _tls(sock, server, verify_tls, ca)
            results.append(ProbeResult(f"{name} tls", target, tls is not None, detail))
            if tls is None:
                return results
            stream = tls
        # A proxy that requires a client certificate answers nothing without one: its
        # refusal is the check (below).
        if exposure.get("http") and not (auth and auth["kind"] == "client_cert"):
            status, detail = _http(stream, server, str(exposure.get("path") or "/"), timeout)
            ok = status is not None and status < 500
            results.append(ProbeResult(f"{name} http", target, ok, detail))
    finally:
        stream.close()
    if auth is not None and results[-1].ok:
        where = (server, str(exposure.get("path") or "/"))
        results.append(
            _refused(name, host, port, str(auth["kind"]), where, timeout, verify_tls, ca)
        )
    return results


# Answers that refuse a request without a client certificate: nginx's 400 ("No required
# SSL certificate was sent") and 495/496, a 403 from an access rule.
_NO_CERT_REFUSALS = {400, 403, 495, 496}


def _refused(
    name: str,
    host: str,
    port: int,
    kind: str,
    where: tuple[str, str],
    timeout: float,
    verify_tls: bool,
    ca: str | None,
) -> ProbeResult:
    """A request to a route (`where`: server name, path) that brings no credentials
    must be refused: 401 for basic auth; for a client certificate, a failed handshake,
    a TLS alert or a refusal."""
    server, path = where
    check, target = f"{name} auth {kind}", f"{host}:{port}"
    sock, why = _connect(host, port, timeout)
    if sock is None:
        return ProbeResult(check, target, False, why)
    tls, detail = _tls(sock, server, verify_tls, ca)
    if tls is None:
        sock.close()
        refused = kind == "client_cert" and "TLS failed" in detail
        return ProbeResult(check, target, refused, f"https://{server}{path}: {detail}")
    try:
        status, line = _http(tls, server, path, timeout)
    finally:
        tls.close()
    shown = f"https://{server}{path} without credentials: {line}"
    if kind == "basic":
        ok = status == 401
    else:
        ok = status in _NO_CERT_REFUSALS or (status is None and line.startswith("TLS alert"))
    if not ok and status is not None:
        shown += f" ({kind} auth is not enforced)"
    return ProbeResult(check, target, ok, shown)


def probe_not_exposed(
    host: str, ports: list[tuple[int, str]], timeout: float, default_drop: bool = True
) -> list[ProbeResult]:
    """Ports that are no exposure for this vantage point: filtered on a default-drop edge
    (closed, i.e. an RST, fails there); elsewhere anything but open."""
    out = []
    for port, why_probed in ports:
        state, why = tcp_state(host, port, timeout)
        ok = state == "filtered" if default_drop else state != "open"
        want = "filtered" if default_drop else "not open"
        out.append(
            ProbeResult(
                f"port {port} {want} ({why_probed})", f"{host}:{port}", ok, f"{state}: {why}"
            )
        )
    return out
