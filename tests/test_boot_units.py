"""The systemd unit the DHCP play installs is one systemd accepts (systemd-analyze
verify, offline): a unit systemd ignores would leave the store without DHCP after a
reboot while apply reports success."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from generator.targets.dnsmasq import DAEMON

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"


def _dnsmasq_unit() -> str:
    play = yaml.safe_load((PLAYBOOKS / "dhcp.yml").read_text())[0]
    block = next(t for t in play["tasks"] if t["name"].startswith("Run dnsmasq under systemd"))
    copy: dict[str, Any] = block["block"][0]["ansible.builtin.copy"]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    # The play reads dnsmasq's pid file and command from the target's declaration.
    assert "'daemons'" in play["vars"]["posnet_dnsmasq"]
    variables = {"posnet_dnsmasq_pid": DAEMON.pidfile, "posnet_dnsmasq_cmd": DAEMON.command()}
    return env.from_string(copy["content"]).render(variables)


def _verify(unit: Path) -> str:
    res = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return res.stdout + res.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_dnsmasq_unit_is_valid_and_catches_a_broken_one(tmp_path: Path) -> None:
    unit = tmp_path / "posnet-dnsmasq.service"
    text = _dnsmasq_unit()
    assert "--pid-file=/run/posnet-dnsmasq.pid" in text and "WantedBy=multi-user.target" in text
    unit.write_text(text)
    assert _verify(unit) == ""
    unit.write_text(text.replace("Type=forking", "Type=forkin"))
    assert "Failed to parse service type" in _verify(unit)
