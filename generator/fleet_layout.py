"""Where a store's file sits in its fleet: a light module, so a command can find the
fleet (and take its build tree's lock, and start walking that tree) before it imports
the models and the loader."""

from __future__ import annotations

from pathlib import Path


def enclosing_fleet(path: Path) -> Path | None:
    """A site file inside <fleet>/sites/ is validated with its fleet's defaults."""
    if path.is_file() and path.parent.name == "sites":
        root = path.parent.parent
        if (root / "fleet.yaml").is_file():
            return root
    return None
