"""Store paths stay strings on the per-store path of a load (generator.spec.load): each
must be exactly what pathlib would give."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.spec.load import _site_files, _stem, _suffix

NAMES = [
    "x.yaml",
    "x.yml",
    "x.dup",
    ".dup",
    "a.dup",
    "...dup",
    "a.",
    "a..dup",
    ".x.yaml",
    "noext",
    "a.b.yaml",
    "d/e.f/g",
    "d/e.f/g.yaml",
    "/abs/x.yaml",
    "x",
]


@pytest.mark.parametrize("name", NAMES)
def test_stem_and_suffix_are_pathlibs(name: str) -> None:
    display = str(Path(name))
    assert _suffix(display) == Path(name).suffix
    assert _stem(display) == Path(name).stem


@pytest.mark.parametrize("spelling", ["{t}/sites", "{t}/./sites/", "{t}//sites", "rel"])
def test_site_files_are_str_of_folder_slash_name(
    tmp_path: Path, spelling: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = Path(spelling.format(t=tmp_path))
    folder.mkdir(exist_ok=True)
    for name in ["b.yml", "a.yaml", "a.yml", "c.yaml", "c.txt", ".hidden.yaml"]:
        (folder / name).write_text("id: x\n")
    files, notes = _site_files(folder)
    assert files == [str(folder / "c.yaml"), str(folder / "a.dup"), str(folder / "b.yml")]
    shown = [n.location.file for n in notes]
    assert shown == [str(folder / ".hidden.yaml"), str(folder / "c.txt"), str(folder / "a.yaml")]
    assert str(folder / "a.yaml") in notes[2].message and str(folder / "a.yml") in notes[2].message
