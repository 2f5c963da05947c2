"""`posnet probe --as partner` proves that a proxy's auth is enforced, from outside.

An exposure in front of a proxy that requires basic auth or a client certificate gets
one more check: a request to a route without credentials must be refused. A proxy
whose auth was switched off (by hand, by a broken template) answers it, and the probe
fails although TCP, TLS and HTTP all answer. Servers here are Python TLS servers on
loopback that behave like an enforcing and a non-enforcing proxy; the lab runs the same
check against real nginx (tests/lab/test_e2e_proxy.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from generator.expectations import expectations
from generator.pipeline import load_plans
from generator.probe import probe_exposure
from tests.conftest import DEMO
from tests.tls_server import Answer, make_cert, serve_tls


def _status(code: int, reason: str) -> bytes:
    return f"HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\n\r\n".encode()


def basic_auth(request: bytes) -> bytes:
    """An enforcing proxy: 401 unless the request brings credentials."""
    if b"\r\nauthorization:" in request.lower():
        return _status(200, "OK")
    return _status(401, "Unauthorized")


def open_door(request: bytes) -> bytes:
    """A proxy whose auth was switched off: every route answers."""
    return _status(200, "OK")


def unrouted(request: bytes) -> bytes:
    """nginx's catch-all for `/`: 404 before any password is asked."""
    return _status(404, "Not Found")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Answer, bool], int]]:
    """Start a server answering with `answer`; True: it requires a client certificate."""
    gens: list[Iterator[tuple[int, Path]]] = []

    def start(answer: Answer, require_cert: bool = False) -> int:
        ca = make_cert(tmp_path, f"client-ca-{len(gens)}", "DNS:ca.example")[0]
        gen = serve_tls(tmp_path / str(len(gens)), answer, ca if require_cert else None)
        gens.append(gen)
        return next(gen)[0]

    yield start
    for gen in gens:
        for _ in gen:
            pass


def _exposure(port: int, kind: str, path: str = "/pos1/") -> dict[str, object]:
    return {
        "id": "deliverect-proxy",
        "public_host": "localhost",
        "public_port": port,
        "tls": True,
        "http": True,
        "server_name": "localhost",
        "path": path,
        "auth": {"kind": kind},
    }


def _verdicts(exposure: dict[str, object]) -> dict[str, tuple[bool, str]]:
    found = probe_exposure(exposure, "partner", "127.0.0.1", 3.0, False, None)
    return {r.check: (r.ok, r.detail) for r in found}


def test_a_proxy_that_asks_for_a_password_passes(serve: Callable[[Answer, bool], int]) -> None:
    found = _verdicts(_exposure(serve(basic_auth, False), "basic"))
    assert [ok for ok, _ in found.values()] == [True] * 4, found
    detail = found["deliverect-proxy auth basic"][1]
    assert "https://localhost/pos1/ without credentials: HTTP/1.1 401" in detail


def test_a_proxy_whose_basic_auth_was_switched_off_fails(
    serve: Callable[[Answer, bool], int],
) -> None:
    """TCP, TLS and HTTP answer as before: only the auth check can tell."""
    found = _verdicts(_exposure(serve(open_door, False), "basic"))
    assert found["deliverect-proxy http"][0]
    ok, detail = found["deliverect-proxy auth basic"]
    assert not ok and "HTTP/1.1 200" in detail and "basic auth is not enforced" in detail


def test_a_route_that_is_not_routed_proves_nothing(serve: Callable[[Answer, bool], int]) -> None:
    """A 404 is no refusal: the request was never asked for a password."""
    ok, detail = _verdicts(_exposure(serve(unrouted, False), "basic"))[
        "deliverect-proxy auth basic"
    ]
    assert not ok and "404" in detail


def test_a_proxy_that_requires_a_client_certificate_passes(
    serve: Callable[[Answer, bool], int],
) -> None:
    found = _verdicts(_exposure(serve(open_door, True), "client_cert", "/"))
    ok, detail = found["deliverect-proxy auth client_cert"]
    assert ok and ("TLS" in detail), found


def test_a_proxy_that_no_longer_requires_a_client_certificate_fails(
    serve: Callable[[Answer, bool], int],
) -> None:
    ok, detail = _verdicts(_exposure(serve(open_door, False), "client_cert", "/"))[
        "deliverect-proxy auth client_cert"
    ]
    assert not ok and "client_cert auth is not enforced" in detail


def test_nginx_style_refusal_without_a_certificate_passes(
    serve: Callable[[Answer, bool], int],
) -> None:
    """nginx completes the handshake and answers 400 "No required SSL certificate"."""

    def nginx(request: bytes) -> bytes:
        return _status(400, "Bad Request")

    ok, _ = _verdicts(_exposure(serve(nginx, False), "client_cert", "/"))[
        "deliverect-proxy auth client_cert"
    ]
    assert ok


def test_expectations_name_a_route_of_every_proxy_with_auth() -> None:
    """Every demo proxy with auth gets a check at one of its own routes and server
    names; proxies without auth and plain forwards get none."""
    _, plans = load_plans(DEMO)
    seen = set()
    for plan in plans:
        proxies = {p.id: p for p in plan.proxies}
        for e in expectations(plan)["exposures"]:
            proxy = proxies.get(e["id"])
            if proxy is None or proxy.auth == "none":
                assert e["auth"] is None, e
                continue
            auth = e["auth"]
            seen.add(auth["kind"])
            names = {r.value for r in proxy.routes if r.match == "host"} | set(proxy.server_names)
            assert e["server_name"] in names, (e, names)
            paths = {r.value for r in proxy.routes if r.match == "path"} | {"/"}
            assert e["path"] in paths, (e, paths)
    assert seen == {"basic", "client_cert"}


def test_a_route_whose_upstream_is_down_fails_the_http_check(
    serve: Callable[[Answer, bool], int],
) -> None:
    """The probe asks a proxy's route (not `/`, the catch-all's 404): behind a proxy
    without auth, a 502 from a stopped upstream fails."""
    port = serve(lambda _: _status(502, "Bad Gateway"), False)
    exposure = {**_exposure(port, "basic"), "auth": None, "path": "/pos1/"}
    found = _verdicts(exposure)
    ok, detail = found["deliverect-proxy http"]
    assert not ok and "502" in detail, found
