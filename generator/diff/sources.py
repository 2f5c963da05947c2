"""The two sides of a diff: a fleet folder, or a fleet folder at a Git revision.

Speed comes from not loading what cannot differ. When fleet.yaml and the group files
are the same on both sides, a store's Plan can change only if its own file changed or
if it routes to a store that did (a central proxy renders the target's address and
port). So each side loads just those files (plus the route targets they need) in a
temporary fleet folder; every other store is counted as unchanged without parsing it.
A store that routes to another names it in its own file, so a text search for the
changed ids finds every such store; files with a backslash (a YAML escape could spell
an id differently) and a fleet or group file naming a changed id make the search
give up and load everything.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from contextlib import suppress
from pathlib import Path

from generator.errors import Diagnostic, Location, PosnetError
from generator.pipeline import paused_gc
from generator.pipeline import plans as make_plans
from generator.plan import Plan
from generator.spec.load import Fleet, ignored_name, load_fleet, not_utf8, utf8_name
from generator.yamlload import link_error, read_file

ROUTE_ROUNDS = 8  # targets of targets...: a longer chain loads the whole side


def _relevant(rel: str) -> bool:
    """The files load_fleet reads: fleet.yaml, groups/ and sites/ *.yaml|yml (not
    hidden or editor files, which it ignores)."""
    if rel == "fleet.yaml":
        return True
    folder, _, name = rel.partition("/")
    if not name or "/" in name or ignored_name(name):
        return False
    return folder in ("groups", "sites") and name.endswith((".yaml", ".yml"))


def _stem(rel: str) -> str:
    """sites/gent-01.yaml -> gent-01 (a store's id is its file name)."""
    return rel.rpartition("/")[2].rpartition(".")[0]


def _refusal(label: str, rel: str, link: bool) -> list[Diagnostic]:
    """What validate says of this file on that side, before reading anything: a link
    (E001, its target never read) or a store file named in bytes that are not UTF-8."""
    shown = f"{label}/{rel}"
    if link:
        return link_error(shown).diagnostics
    if not utf8_name(rel):
        if rel.startswith("sites/"):
            return [not_utf8(shown)]
        return [Diagnostic(Location(shown), "E003", "file name is not valid UTF-8")]
    return []


def refuse(sides: Iterable[FolderSide | GitSide]) -> None:
    """Stop the diff as validate would stop on either side: links and bad names."""
    found = [d for side in sides for d in side.problems()]
    if found:
        raise PosnetError(found)


def _error(where: str, message: str, expected: str = "") -> PosnetError:
    return PosnetError([Diagnostic(Location(where), "E003", message, expected=expected)])


class FolderSide:
    """A fleet folder on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)
        self._data: dict[str, bytes] | None = None
        self._problems: list[Diagnostic] = []

    def _files(self) -> dict[str, bytes]:
        if self._data is None:
            out: dict[str, bytes] = {}
            root = str(self.root)
            if os.path.lexists(os.path.join(root, "fleet.yaml")):
                found = [("fleet.yaml", os.path.islink(os.path.join(root, "fleet.yaml")))]
                for folder in ("groups", "sites"):
                    with suppress(OSError), os.scandir(os.path.join(root, folder)) as it:
                        # every entry: a folder, FIFO or device named like a store is
                        # refused by read_file as validate refuses it, never skipped
                        found += [(f"{folder}/{e.name}", e.is_symlink()) for e in it]
                for rel, link in sorted(found):  # problems in a stable order
                    if not _relevant(rel):
                        continue
                    problems = _refusal(self.label, rel, link)
                    if problems:
                        self._problems += problems
                        continue
                    # never through a link, nor blocking on a FIFO swapped in meanwhile
                    name = f"{self.label}/{rel}"
                    try:
                        out[rel] = read_file(self.root / rel, name, follow=False)
                    except PosnetError as exc:
                        self._problems += exc.diagnostics
            self._data = out
        return self._data

    def problems(self) -> list[Diagnostic]:
        self._files()
        return self._problems

    def listing(self) -> dict[str, str]:
        return {rel: hashlib.sha1(b).hexdigest() for rel, b in self._files().items()}  # noqa: S324

    def containing(self, words: Iterable[str]) -> set[str]:
        needles = [w.encode() for w in words] + [b"\\"]
        return {
            rel
            for rel, data in self._files().items()
            if rel.startswith("sites/") and any(n in data for n in needles)
        }

    def text(self, rel: str) -> bytes:
        return self._files().get(rel, b"")

    def export(self, rels: Iterable[str], dest: Path) -> None:
        for rel in rels:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(self._files()[rel])


class GitSide:
    """The fleet folder PREFIX of a Git repository at revision REV (read with git, the
    working tree is never touched)."""

    def __init__(self, repo: Path, rev: str, prefix: str) -> None:
        self.repo, self.rev, self.prefix = repo, rev, prefix.strip("/")
        self.label = rev
        self._listing: dict[str, str] | None = None
        self._problems: list[Diagnostic] = []
        if rev.startswith("-"):
            raise _error(rev, "a revision cannot start with '-'", "a commit, branch or tag")
        # Every later read uses this commit: a branch moving meanwhile changes nothing.
        found = self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", what="revision")
        self.commit = found.decode().strip()

    def _git(self, *args: str, what: str = "git") -> bytes:
        proc = subprocess.run(
            ["git", "-C", str(self.repo), *args], capture_output=True, check=False
        )
        if proc.returncode != 0:
            msg = proc.stderr.decode(errors="replace").strip().splitlines()
            detail = msg[-1] if msg else f"git exited with {proc.returncode}"
            if what == "revision":
                shallow = subprocess.run(
                    ["git", "-C", str(self.repo), "rev-parse", "--is-shallow-repository"],
                    capture_output=True, text=True, check=False,
                ).stdout.strip() == "true"  # fmt: skip
                hint = (
                    "; this clone is shallow (CI's default): fetch the history, e.g. "
                    "actions/checkout with fetch-depth: 0 or GIT_DEPTH: 0"
                    if shallow
                    else ""
                )
                raise _error(
                    self.rev, f"unknown revision '{self.rev}'{hint}", "a commit, branch or tag"
                )
            raise _error(self.rev, f"git {args[0]} failed: {detail}")
        return proc.stdout

    def _path(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def listing(self) -> dict[str, str]:
        if self._listing is None:
            spec = self.prefix or "."
            # -t: folders too, so that one named like a store file is seen, not skipped
            raw = self._git("ls-tree", "-r", "-t", "-z", "--full-tree", self.commit, "--", spec)
            out: dict[str, str] = {}
            cut = len(self.prefix) + 1 if self.prefix else 0
            for entry in raw.split(b"\0"):
                if not entry:
                    continue
                meta, _, path = entry.decode(errors="surrogateescape").partition("\t")
                mode, kind, sha = meta.split()
                rel = path[cut:]
                if not _relevant(rel):
                    continue
                if kind != "blob":  # a folder, or a submodule: validate reads no such file
                    what = "Is a directory" if kind == "tree" else "is a Git submodule"
                    shown = f"{self.label}/{rel}"
                    self._problems.append(
                        Diagnostic(
                            Location(shown),
                            "E001",
                            f"cannot read file: {what}",
                            expected="a YAML file",
                        )
                    )
                    continue
                problems = _refusal(self.label, rel, mode == "120000")
                if problems:
                    self._problems += problems
                else:
                    out[rel] = sha
            self._listing = out
        return self._listing

    def problems(self) -> list[Diagnostic]:
        self.listing()
        return self._problems

    def containing(self, words: Iterable[str]) -> set[str]:
        args = ["grep", "-l", "-z", "-F", "-I", "--no-color", "-e", "\\"]
        for w in sorted(set(words)):
            args += ["-e", w]
        spec = self._path("sites")
        proc = subprocess.run(
            ["git", "-C", str(self.repo), *args, self.commit, "--", spec],
            capture_output=True,
            check=False,
        )
        if proc.returncode not in (0, 1):  # 1: nothing found
            raise _error(self.rev, "git grep failed")
        cut = len(self.commit) + 1 + (len(self.prefix) + 1 if self.prefix else 0)
        found = (p.decode(errors="surrogateescape")[cut:] for p in proc.stdout.split(b"\0") if p)
        return {rel for rel in found if rel in self.listing()}

    def text(self, rel: str) -> bytes:
        if rel not in self.listing():
            return b""
        return self._git("cat-file", "blob", self.listing()[rel])

    def export(self, rels: Iterable[str], dest: Path) -> None:
        wanted = sorted(rels)
        if not wanted:
            return
        every = len(wanted) == len(self.listing())
        paths = [self._path("")] if every and self.prefix else ["."] if every else None
        paths = paths or [self._path(r) for r in wanted]
        data = self._git("archive", "--format=tar", self.commit, "--", *paths)
        cut = len(self.prefix) + 1 if self.prefix else 0
        keep = set(wanted)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                rel = member.name[cut:]
                if member.isfile() and rel in keep:
                    fh = tar.extractfile(member)
                    assert fh is not None
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    (dest / rel).write_bytes(fh.read())


Side = FolderSide | GitSide


def _load(side: Side, rels: set[str], tmp: Path, name: str) -> Fleet | None:
    """Load exactly `rels` of a side as a fleet (from a private temporary folder);
    None when that side has no fleet.yaml (the fleet does not exist there yet)."""
    folder = tmp / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    side.export(rels, folder)
    (folder / "sites").mkdir(exist_ok=True)
    if not (folder / "fleet.yaml").exists():
        if any(r.startswith("sites/") for r in rels):  # stores without their fleet
            raise PosnetError(
                [
                    Diagnostic(
                        Location(f"{side.label}/fleet.yaml"),
                        "E002",
                        "no fleet.yaml in this folder, but store files in sites/",
                        expected="fleet.yaml beside sites/ (validate refuses the same)",
                    )
                ]
            )
        return None
    with paused_gc():
        return load_fleet(folder, cached=False)


def _check(fleet: Fleet, side: Side, tmp: Path, name: str) -> None:
    """Refuse to diff a side that does not validate, naming its files as the user
    knows them (REV:path), not the temporary folder."""
    errors = [d for d in fleet.diagnostics if d.severity == "error"]
    if not errors:
        return
    prefix = str(tmp / name)
    shown = []
    for d in errors:
        file = d.location.file.replace(prefix, side.label, 1)
        loc = Location(file, d.location.line, d.location.col)
        shown.append(Diagnostic(loc, d.code, d.message, d.severity, d.path, d.expected, d.site))
    raise PosnetError(shown)


def _with_targets(side: Side, want: set[str]) -> set[str]:
    """`want` plus every store a wanted store may route to (any store id its file
    mentions), repeated for the targets' own routes."""
    listing = side.listing()
    stems = {_stem(r): r for r in listing if r.startswith("sites/")}
    todo = [r for r in want if r.startswith("sites/")]
    for _ in range(ROUTE_ROUNDS):
        found = set()
        for rel in todo:
            text = side.text(rel).decode(errors="replace")
            found |= {r for stem, r in stems.items() if stem in text}
        todo = sorted(found - want)
        want = want | found
        if not todo:
            return want
    return set(listing)


def _side_plans(side: Side, want: set[str], tmp: Path, name: str) -> Sequence[Plan]:
    if not any(r.startswith("sites/") for r in want):
        return []  # no store of this side can differ (or the side has none)
    want = _with_targets(side, want)
    if isinstance(side, FolderSide) and want == set(side.listing()):
        # The whole folder: load it in place, with the user's site cache.
        with paused_gc():
            fleet: Fleet | None = load_fleet(side.root, cached=True)
        tmp, name = side.root.parent, side.root.name  # diagnostics show the real paths
    else:
        fleet = _load(side, want, tmp, name)
    if fleet is None:
        return []
    _check(fleet, side, tmp, name)
    return make_plans(fleet) if fleet.sites else []


def load_pair(old: Side, new: Side) -> tuple[list[Plan], list[Plan], int]:
    """The Plans of the stores that may differ on each side, and how many stores were
    left out because nothing they depend on changed."""
    refuse((old, new))
    la, lb = old.listing(), new.listing()
    shared = {r for r in la.keys() | lb.keys() if not r.startswith("sites/")}
    sites = {r for r in la.keys() | lb.keys() if r.startswith("sites/")}
    changed = {r for r in sites if la.get(r) != lb.get(r)}
    ids = {_stem(r) for r in changed}
    full = any(la.get(r) != lb.get(r) for r in shared) or any(
        i.encode() in side.text(r) for side in (old, new) for r in shared for i in ids
    )
    if full:
        compare = sites
    elif ids:
        compare = changed | old.containing(ids) | new.containing(ids)
    else:
        compare = set()
    compare_ids = {_stem(r) for r in compare}
    with tempfile.TemporaryDirectory(prefix="posnet-diff-") as name:
        tmp = Path(name)
        pa = _side_plans(old, {r for r in compare | shared if r in la}, tmp, "a")
        pb = _side_plans(new, {r for r in compare | shared if r in lb}, tmp, "b")
    # Stores loaded only as route targets are the same file on both sides: not compared.
    pa = [p for p in pa if p.site_id in compare_ids]
    pb = [p for p in pb if p.site_id in compare_ids]
    every = {_stem(r) for r in sites}
    return pa, pb, len(every - compare_ids)
