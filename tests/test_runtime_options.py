"""The options that choose which stores and components a run reaches (--limit, --tags,
--serial) are refused before anything runs when Ansible would widen or empty the run:
an empty pattern is no limit to Ansible (every store), an unknown tag runs no play (every
store locked and released, nothing changed), an option given twice kept only its last."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from generator import runtime
from generator.options import COMPONENTS
from tests.conftest import ROOT


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each command's body was called with (a call means the options passed)."""
    calls: list[dict[str, Any]] = []

    def record(**kw: Any) -> Any:
        def body(*args: Any, **kwargs: Any) -> None:
            calls.append({**kw, "args": args, "kwargs": kwargs})

        return body

    monkeypatch.setattr(runtime, "_apply", record(command="apply"))
    monkeypatch.setattr(runtime, "live_state", record(command="verify or drift"))
    return calls


def _run(command: click.Command, tree: Path, *args: str) -> Any:
    return CliRunner().invoke(command, [str(tree), *args])


REFUSED = [
    (["--limit", ""], "'' names no host"),
    (["--limit", "  "], "names no host"),
    (["--limit", ",:"], "names no host"),
    (["--limit", "site_a", "--limit", "site_b"], "given 2 times"),
]


@pytest.mark.parametrize(("args", "said"), REFUSED)
@pytest.mark.parametrize("command", [runtime.apply, runtime.verify, runtime.drift])
def test_an_empty_or_repeated_limit_is_refused_before_any_run(
    tmp_path: Path,
    started: list[dict[str, Any]],
    command: click.Command,
    args: list[str],
    said: str,
) -> None:
    result = _run(command, tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert said in result.output and "--limit" in result.output
    assert not started


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--tags", "firewal"], "'firewal' is not a component"),
        (["--tags", ""], "'' is not a component"),
        (["--tags", "firewall,,dhcp"], "'' is not a component"),
        (["--tags", "all"], "'all' is not a component"),
        (["--tags", "always"], "'always' is not a component"),
        (["--tags", "firewall", "--tags", "dhcp"], "given 2 times"),
        (["--serial", "0"], "'0' is not a batch size"),
        (["--serial", "-1"], "is not a batch size"),
        (["--serial", "0%"], "is not a batch size"),
        (["--serial", "101%"], "is not a batch size"),
        (["--serial", "ten"], "is not a batch size"),
        (["--serial", "1.5"], "is not a batch size"),
        (["--serial", ""], "is not a batch size"),
        (["--serial", "\u0663"], "is not a batch size"),  # an Arabic-Indic 3: isdigit()
        (["--serial", "1", "--serial", "5"], "given 2 times"),
    ],
)
def test_a_component_or_batch_size_ansible_would_not_take_is_refused(
    tmp_path: Path, started: list[dict[str, Any]], args: list[str], said: str
) -> None:
    result = _run(runtime.apply, tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert not started


def test_good_values_reach_the_run_as_given(tmp_path: Path, started: list[dict[str, Any]]) -> None:
    args = ["--limit", "site_gent_01:site_ghent_02", "--tags", "firewall, dhcp"]
    result = _run(runtime.apply, tmp_path, *args, "--serial", " 10% ")
    assert result.exit_code == 0, result.output
    ((call,),) = [started]
    _, _, limit, _, _, tags, serial, *_ = call["args"]
    assert (limit, tags, serial) == ("site_gent_01:site_ghent_02", "firewall,dhcp", "10%")
    started.clear()
    assert _run(runtime.apply, tmp_path, "--serial", "3").exit_code == 0
    assert started[0]["args"][6] == "3"


def test_the_components_are_the_tags_of_site_yml_plays() -> None:
    # --tags is checked against COMPONENTS: a play tagged with a new component (or a
    # renamed one) must be named there, or apply would refuse a tag that works.
    tags: set[str] = set()
    for book in (ROOT / "playbooks").glob("*.yml"):
        for play in yaml.safe_load(book.read_text()) or []:
            if isinstance(play, dict) and "hosts" in play:
                tags |= set(play.get("tags", []))
    assert tags - {"always"} == set(COMPONENTS)
