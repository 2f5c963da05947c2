"""Templates are compiled once per process: no file check or recompile per render."""

from __future__ import annotations

import os

import pytest

from generator import templating


def test_a_template_is_not_rechecked_on_every_render(monkeypatch: pytest.MonkeyPatch) -> None:
    env = templating.environment()
    first = env.get_template("nftables/nftables.nft.j2")
    checked: list[str] = []
    real = os.path.getmtime

    def counting(path: str) -> float:
        checked.append(path)
        return real(path)

    # jinja2's loader asks the file's mtime whenever it may reload a template.
    monkeypatch.setattr(os.path, "getmtime", counting)
    for _ in range(3):
        assert env.get_template("nftables/nftables.nft.j2") is first
    templating.render("nftables/nftables.nft.j2", site_id="s", sets=(), chains=())
    assert checked == []
