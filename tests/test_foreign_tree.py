"""A folder posnet did not render is never pruned as if it had.

A render removes what its manifest does not name under sites/ and inventory/ (strays of
an interrupted or foreign render). Without a manifest, that pruned the files of any
folder given as -o: an Ansible repository's inventory/group_vars, a project's sites/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.build import GITIGNORE, MANIFEST
from tests.treeutil import copy_demo, posnet


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        ("inventory/group_vars/all.yml", "ansible_user: root\n"),
        ("sites/myproject/data.txt", "x\n"),
        (".gitignore", "*.retry\n"),
    ],
)
def test_files_where_posnet_writes_and_no_manifest_stop_the_render(
    tmp_path: Path, rel: str, text: str
) -> None:
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "out"
    (out / rel).parent.mkdir(parents=True)
    (out / rel).write_text(text)
    res = posnet("render", fleet, "-o", out)
    assert res.returncode == 1, res.stderr
    assert f"holds files posnet did not write ({rel}) and no {MANIFEST}" in res.stderr
    assert "--force" in res.stderr
    assert (out / rel).read_text() == text
    assert not (out / MANIFEST).exists()
    # --force is the user's word: the folder becomes a build tree
    assert posnet("render", fleet, "-o", out, "--force").returncode == 0
    assert posnet("render", fleet, "-o", out, "--check").returncode == 0


def test_many_such_files_are_named_three_and_counted(tmp_path: Path) -> None:
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "out"
    (out / "inventory").mkdir(parents=True)
    for n in range(5):
        (out / "inventory" / f"f{n}.yml").write_text("x\n")
    res = posnet("render", fleet, "-o", out)
    assert res.returncode == 1
    names = "inventory/f0.yml, inventory/f1.yml, inventory/f2.yml and 2 more"
    assert f"holds files posnet did not write ({names}) and no {MANIFEST}" in res.stderr


def test_a_tree_whose_manifest_was_removed_is_refused_then_forced(tmp_path: Path) -> None:
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "out"
    assert posnet("render", fleet, "-o", out).returncode == 0
    (out / MANIFEST).unlink()
    res = posnet("render", fleet, "-o", out)
    assert res.returncode == 1 and "and no manifest.json" in res.stderr, res.stderr
    assert posnet("render", fleet, "-o", out, "--force").returncode == 0
    assert posnet("render", fleet, "-o", out, "--check").returncode == 0


def test_an_empty_folder_or_other_top_level_files_render(tmp_path: Path) -> None:
    """Only sites/, inventory/ and posnet's own top-level files are posnet's: a README
    beside them stays, and posnet's own .gitignore is no obstacle."""
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_text("ours\n")
    (out / ".gitignore").write_text(GITIGNORE)
    assert posnet("render", fleet, "-o", out).returncode == 0
    assert (out / "README.md").read_text() == "ours\n"
    assert posnet("render", fleet, "-o", out, "--check").returncode == 0
