"""`posnet probe --verify-tls [--ca FILE]` against a real TLS server on loopback.

An audit found that probing by address (`--host 127.0.0.1`, or a store whose public
host is an IP) with --verify-tls crashed (exit 3, "check_hostname requires
server_hostname") and that no test ever passed --verify-tls or --ca. The promise in
`probe --help`: the certificate must be trusted by --ca or the system, for the name
partners use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.probe import probe_exposure
from tests.tls_server import make_cert, serve_tls


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS server on 127.0.0.1 whose certificate names localhost and 127.0.0.1,
    answering each connection with an HTTP 200."""
    yield from serve_tls(tmp_path, lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def _exposure(public_host: str, port: int) -> dict[str, object]:
    return {"id": "x-api", "public_host": public_host, "public_port": port, "tls": True,
            "http": True, "path": "/"}  # fmt: skip


def _verdicts(public_host: str, port: int, ca: Path | None, host: str | None = None) -> list[str]:
    res = probe_exposure(
        _exposure(public_host, port), "partner", host, 3.0, True, str(ca) if ca else None
    )
    return [f"{r.check}={'ok' if r.ok else 'FAIL'}: {r.detail}" for r in res]


def test_a_trusted_certificate_for_the_partners_name_passes(server: tuple[int, Path]) -> None:
    port, ca = server
    for public, host in (("localhost", "127.0.0.1"), ("127.0.0.1", None), ("localhost", None)):
        found = _verdicts(public, port, ca, host)
        assert [v.split(":")[0] for v in found] == [
            "x-api tcp=ok",
            "x-api tls=ok",
            "x-api http=ok",
        ], found


def test_an_untrusted_or_wrong_name_certificate_fails_without_crashing(
    server: tuple[int, Path], tmp_path: Path
) -> None:
    port, ca = server
    other, _ = make_cert(tmp_path, "other", "DNS:other.example")
    untrusted = _verdicts("localhost", port, other)  # a CA that did not sign it
    assert "x-api tls=FAIL" in untrusted[1] and "certificate verify failed" in untrusted[1]
    wrong = _verdicts("pos.example.com", port, ca, "127.0.0.1")  # not the cert's name
    assert "x-api tls=FAIL" in wrong[1] and "mismatch" in wrong[1].lower(), wrong
    wrong_ip = _verdicts("127.0.0.2", port, ca, "127.0.0.1")
    assert "x-api tls=FAIL" in wrong_ip[1], wrong_ip
