"""The README's architecture section names real files: every path it gives (in
backticks or in the layout tree) exists, so a move or a split cannot leave it stale."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Architecture")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def _exists(rel: str) -> bool:
    return any((base / rel).exists() for base in (ROOT, ROOT / "generator"))


def test_backticked_paths_exist() -> None:
    paths = [
        p
        for p in re.findall(r"`([^`\s]+)`", _section())
        if "<" not in p and re.fullmatch(r"[\w./-]+\.(py|yaml|md)|[\w./-]+/", p)
    ]
    assert len(paths) >= 10, paths
    missing = [p for p in paths if not _exists(p)]
    assert not missing, missing


def test_layout_tree_entries_exist() -> None:
    tree = re.search(r"```\n(generator/.*?)```", _section(), re.S)
    assert tree
    missing = []
    folder = ""
    for line in tree.group(1).splitlines():
        top = re.match(r"(\w[\w-]*/)\s", line)
        sub = re.match(r"  (\w[\w-]*/)\s", line)
        if top:
            missing += [] if (ROOT / top.group(1)).exists() else [top.group(1)]
            continue
        if sub:
            folder = "generator/" + sub.group(1)
        elif not re.match(r"\s{20}\S", line):
            folder = "generator/" if re.match(r"  \S", line) else folder
        head = re.split(r"\s{2,}|:", line.strip(), maxsplit=1)[0]
        for name in re.findall(r"([\w-]+\.py|[\w-]+/)", head):
            base = folder if re.match(r"\s{20}\S", line) else "generator/"
            if not (ROOT / base / name).exists():
                missing.append(base + name)
    assert not missing, missing
