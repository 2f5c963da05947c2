"""The ``lab`` fixture: one namespace lab per test session.

Session-scoped so lab tests share one network (up ~0.25 s, down ~0.06 s, with
sshd and five servers); tests that change the edge and need a pristine one
use ``lab_factory`` (or build their own :class:`~.netns.Lab`).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import pytest

from .netns import Lab, cleanup_stale, missing_capabilities

#: Fixtures that make a test a lab test (it gets ``pytest.mark.lab``).
LAB_FIXTURES = frozenset({"lab", "lab_factory"})


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (a CI timeout, `timeout`, `kill`) becomes KeyboardInterrupt, so pytest
    unwinds and every lab fixture's teardown runs, module-scoped ones included: atexit
    does not run on SIGTERM, and the namespaces would stay until the next run."""
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses ``lab`` with ``pytest.mark.lab``.

    tryfirst: the mark must be there before ``-m lab`` / ``-m 'not lab'``
    deselects, so a lab test can never slip into the quick unit run.
    """
    for item in items:
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)


def require_lab() -> None:
    """Skip (developer machine) or fail (CI) when the lab cannot run here.

    Under CI a skip would turn "the end-to-end tests never ran" into a green
    build, so there a missing capability is a failure.
    """
    missing = missing_capabilities()
    if missing:
        msg = "network-namespace lab unavailable: " + "; ".join(missing)
        if _in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """A running lab (namespaces, edge sshd, servers), torn down after the session."""
    require_lab()
    # Leftovers of a crashed run (never a lab whose owner is still alive).
    cleanup_stale()
    the_lab = Lab()
    try:
        the_lab.up()
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture
def lab_factory() -> Iterator[Callable[..., Lab]]:
    """Build private labs for one test (``lab_factory(servers=False)``).

    For tests that change the edge (load a firewall, write /etc) and must not
    leave that state in the shared session lab. A lab comes up in well under
    a second, so a fresh one per test that needs it is affordable.
    """
    require_lab()
    labs: list[Lab] = []

    def make(**kwargs: bool) -> Lab:
        new = Lab(**kwargs)
        labs.append(new)
        return new.up()

    try:
        yield make
    finally:
        for made in labs:
            made.down()
