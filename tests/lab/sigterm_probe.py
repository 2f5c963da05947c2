"""Run only by test_lab_infra.test_sigterm_mid_test_removes_the_lab, in a pytest of its
own that it terminates (not a test_*.py file: a normal run never collects it)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from .netns import Lab


def test_lab_until_terminated(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(servers=False, sshd=True)
    Path(os.environ["POSNET_LAB_NAMES"]).write_text(" ".join(lab.ns.values()))
    time.sleep(120)
    raise AssertionError("not terminated")
