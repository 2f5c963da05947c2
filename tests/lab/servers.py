#!/usr/bin/env python3
"""Small helper processes that the lab runs inside its namespaces.

Standard library only, so it runs with any python3 on the machine and needs
nothing installed in the namespace it runs in. Two subcommands:

``http``
    A tiny HTTP or HTTPS server that answers every ``GET`` with 200 and a body
    naming the host (``pos1\\n``), so a probe knows *which* host answered, not
    only that something did. ``GET /client`` answers with the peer address the
    server saw, so a test can tell whether a NAT rewrote the source; ``GET /checkip``
    answers like a public check-ip service (``Current IP Address: 203.0.113.10``)
    with that same address, for DDNS clients behind NAT.

``relay``
    Copies stdin/stdout to a TCP connection. The lab's ssh_config uses it as a
    ``ProxyCommand`` run in the ``ctl`` namespace, so an ssh client started
    anywhere (even in the machine's root namespace, as testinfra does from the
    pytest process) opens its TCP connection from ``ctl`` and never from the
    root namespace, whose default route leads off the machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import socketserver
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    """Answers GET/HEAD with the host's name; logs one line per request."""

    server_version = "posnet-lab/1"
    sys_version = ""
    # A stalled client (or a TLS handshake that never finishes) must not pin a
    # thread forever.
    timeout = 10
    host_name = "lab"

    def _answer(self, with_body: bool) -> None:
        route = self.path.split("?", 1)[0]
        if route == "/client":
            text = f"{self.client_address[0]}\n"
        elif route == "/checkip":
            text = f"Current IP Address: {self.client_address[0]}\n"
        else:
            text = f"{self.host_name}\n"
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Lab-Host", self.host_name)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def log_message(self, format: str, *args: object) -> None:
        # address_string() is the bare IP in Python >= 3.11 (no reverse DNS).
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer without the reverse DNS lookup in server_bind.

    http.server calls socket.getfqdn() on the bound address; inside a lab
    namespace that lookup has no resolver to reach and stalls for seconds.
    """

    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        # Failed TLS handshakes from probes are expected; one line, no traceback.
        sys.stderr.write(f"{client_address}: {sys.exc_info()[1]!r}\n")


def serve_http(
    bind: str, port: int, name: str, cert: str | None = None, key: str | None = None
) -> None:
    """Serve until killed; HTTPS when a certificate and key are given."""
    handler = type("Handler", (_Handler,), {"host_name": name})
    server = _Server((bind, port), handler)
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        # Handshake in the request thread, not in accept(): one slow client
        # must not block the listening loop.
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    server.serve_forever()


def relay(host: str, port: int, timeout: float) -> None:
    """Copy stdin to a TCP connection and the connection to stdout."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(None)

    def pump_in() -> None:
        fd = sys.stdin.fileno()
        try:
            while data := os.read(fd, 65536):
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=pump_in, daemon=True).start()
    out = sys.stdout.fileno()
    while data := sock.recv(65536):
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="cmd", required=True)
    http = sub.add_parser("http", help="serve GET with a body naming this host")
    http.add_argument("--bind", default="0.0.0.0")
    http.add_argument("--port", type=int, required=True)
    http.add_argument("--name", required=True)
    http.add_argument("--cert")
    http.add_argument("--key")
    rel = sub.add_parser("relay", help="stdin/stdout <-> TCP (ssh ProxyCommand)")
    rel.add_argument("host")
    rel.add_argument("port", type=int)
    rel.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.cmd == "http":
        if bool(args.cert) != bool(args.key):
            parser.error("--cert and --key go together")
        serve_http(args.bind, args.port, args.name, args.cert, args.key)
    else:
        try:
            relay(args.host, args.port, args.timeout)
        except OSError as exc:
            sys.stderr.write(f"relay to {args.host}:{args.port}: {exc}\n")
            return 255
    return 0


if __name__ == "__main__":
    sys.exit(main())
