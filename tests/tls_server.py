"""A TLS server on 127.0.0.1 for probe tests: answers each request with a function of
its bytes, optionally requiring a client certificate."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.conftest import require_tool

Answer = Callable[[bytes], bytes]


def make_cert(tmp: Path, name: str, san: str) -> tuple[Path, Path]:
    key, cert = tmp / f"{name}.key", tmp / f"{name}.pem"
    subprocess.run(
        [require_tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}", "-addext",
         f"subjectAltName={san}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def serve_tls(
    tmp: Path,
    answer: Answer,
    client_ca: Path | None = None,
    cert_and_key: tuple[Path, Path] | None = None,
) -> Iterator[tuple[int, Path]]:
    """Serve until the generator is closed; yields the port and the server's certificate
    (by default one that names localhost and 127.0.0.1)."""
    tmp.mkdir(parents=True, exist_ok=True)
    cert, key = cert_and_key or make_cert(tmp, "localhost", "DNS:localhost,IP:127.0.0.1")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(2)
                    request = tls.recv(4096)
                    tls.sendall(answer(request))
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], cert
    finally:
        stop.set()
        thread.join(5)
        listener.close()
