"""Templates are compiled once per process (no file check or recompile per render), and
kept compiled in the user's cache folder for the next process, keyed by posnet's digest;
a damaged, foreign or unwritable cache never changes or fails a render."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache
import pytest

from generator import build, templating


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


# ----------------------------------------------------- compiled templates on disk

TEMPLATE = "nftables/nftables.nft.j2"
CONTEXT: dict[str, object] = {"site_id": "s", "sets": (), "chains": ()}


@pytest.fixture
def fresh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache folder of this test's own; environment() made anew before and after."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("POSNET_CACHE_DIR", str(folder))
    templating.environment.cache_clear()
    yield folder
    templating.environment.cache_clear()


def _compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    real = jinja2.Environment.compile

    def counting(self: jinja2.Environment, source: str, name: str | None = None, *a: Any) -> Any:
        made.append(str(name))
        return real(self, source, name, *a)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    return made


def _fresh_render() -> str:
    templating.environment.cache_clear()
    return templating.render(TEMPLATE, **CONTEXT)


def _compiled_files(folder: Path) -> list[Path]:
    return sorted((folder / "templates").rglob("*.bytecode"))


def test_a_new_process_loads_compiled_templates(
    fresh_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _compiles(monkeypatch)
    first = _fresh_render()
    assert made == [TEMPLATE]
    files = _compiled_files(fresh_env)
    assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600
    assert files[0].parent.name == build.generator_digest()[:32]
    assert _fresh_render() == first  # as a new process would: nothing compiled
    assert made == [TEMPLATE]


@pytest.mark.parametrize("damage", [b"", b"garbage", "truncate", "checksum"])
def test_a_damaged_compiled_template_is_compiled_again(
    fresh_env: Path, monkeypatch: pytest.MonkeyPatch, damage: bytes | str
) -> None:
    first = _fresh_render()
    (file,) = _compiled_files(fresh_env)
    raw = file.read_bytes()
    if damage == "truncate":
        file.write_bytes(raw[: len(raw) // 2])
    elif damage == "checksum":  # jinja2's magic header, then a pickle that is not one
        magic = len(jinja2.bccache.bc_magic)
        assert raw[:magic] == jinja2.bccache.bc_magic
        file.write_bytes(raw[:magic] + b"\x80\x05\xff" + raw[magic + 3 :])
    else:
        assert isinstance(damage, bytes)
        file.write_bytes(damage)
    made = _compiles(monkeypatch)
    assert _fresh_render() == first
    assert made == [TEMPLATE]


def test_other_posnet_versions_compiled_templates_go(
    fresh_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """jinja2 keys a compiled template by its name and source only, not by the
    environment's options: another posnet's must never be loaded, so its folder goes
    (a link there is removed, never followed)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    other = fresh_env / "templates" / ("0" * 32)
    other.mkdir(parents=True, mode=0o700)
    (other / "stale.bytecode").write_bytes(b"not for this posnet")
    (fresh_env / "templates" / ("1" * 32)).symlink_to(outside)
    _fresh_render()
    assert not other.exists() and (outside / "keep").exists()
    assert [f.parent.name for f in _compiled_files(fresh_env)] == [build.generator_digest()[:32]]


@pytest.mark.parametrize("setup", ["off", "group-writable", "a file"])
def test_no_compiled_templates_without_a_private_folder(
    fresh_env: Path, monkeypatch: pytest.MonkeyPatch, setup: str
) -> None:
    if setup == "off":
        monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    elif setup == "group-writable":
        (fresh_env / "templates").mkdir(parents=True)
        (fresh_env / "templates").chmod(0o770)
    else:
        fresh_env.mkdir()
        (fresh_env / "templates").write_text("not a folder")
    made = _compiles(monkeypatch)
    first = _fresh_render()
    assert templating.environment().bytecode_cache is None
    assert _fresh_render() == first and made == [TEMPLATE, TEMPLATE]
    assert not list(fresh_env.rglob("*.bytecode"))


def test_an_unwritable_folder_never_fails_a_render(
    fresh_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    assert _fresh_render().startswith("#")
    assert not _compiled_files(fresh_env)
