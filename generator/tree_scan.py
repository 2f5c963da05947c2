"""Opening the build tree and walking it, early: a light module (no models, no
templates), so a render's forked walk begins before it imports the loader.

At 10,000 stores the walk (78,000 files in 51,000 folders) is the longest single step
of a render that changes one store (`make bench` prints its time as a floor under the
one-store aim); it runs beside everything the render does before it needs the tree."""

from __future__ import annotations

import os
from pathlib import Path

from generator.tree_guard import MANIFEST, TreeScan, check_root, scan_stamped, scan_tree
from generator.workers import Forked, default_jobs


def open_tree(out: Path, create: bool = False) -> set[str]:
    """Refuse a tree that is not only folders and regular files (see tree_guard);
    return its files under sites/ and inventory/."""
    check_root(out, create)
    return scan_tree(out)


def open_stamped(out: Path, create: bool = False) -> TreeScan:
    """open_tree(), with the stamps of the files (tree_guard.scan_stamped)."""
    check_root(out, create)
    return scan_stamped(out)


EARLY_SCAN_BYTES = 128 * 1024  # a manifest this big: about 150 stores or more


def early_scan(out: Path, jobs: int = 0) -> Forked[TreeScan]:
    """open_stamped() of an existing big tree in a forked process, started before the
    fleet is validated: walking 51,000 folders and stamping 78,000 files then costs no
    wall time. The caller holds the tree lock (or, for `--check` of a read-only tree, no
    posnet run can write it), so the scan sees what a scan after validation would; a
    link or special file found is raised by result() exactly as open_tree() raises it."""
    try:
        big = os.lstat(out / MANIFEST).st_size >= EARLY_SCAN_BYTES
    except OSError:
        big = False
    return Forked(lambda: open_stamped(out), fork=big and default_jobs(jobs) > 1)
