"""Writing below an output folder the user named, never through a link.

`render` guards its build tree (tree_guard); `report`, `schema --write` and `init` write
plain files into a folder that may hold anything: a symbolic link planted at
`index.html` or `stores/` would have them write outside the folder, a FIFO would hang
them. Here every folder below the one named is opened once without following a link
(O_NOFOLLOW|O_DIRECTORY) and every file is written through that descriptor: a link or
special file is refused, naming the path; one planted after the check is replaced (a
rename replaces a link, never its target), so no check-then-write race leaves the folder.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from generator.errors import UserError, safe_text
from generator.nofollow import NotRegular, read_regular

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class OutputError(UserError):
    """A path the command would write is a link, a special file or in the wrong place."""


class OutputOverlap(OutputError):
    """-o names a folder that overlaps one posnet reads or renders into: a usage error
    (exit 2), as `render -o` overlapping the fleet folder is."""

    exit_code = 2


def _lstat(name: str, dir_fd: int | None) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


class OutDir:
    """The output folder PATH of `command`; `fresh` says what to do instead (one clause).

    Use as a context manager: it holds one descriptor per folder it opened."""

    def __init__(self, path: Path, command: str, fresh: str) -> None:
        self.path = path
        self.command = command
        self.fresh = fresh
        self._fds: dict[str, int] = {}
        # what this run created, in order: (path, is a file) of folders and of files
        # written with `exclusive` (rewritten files are not undone: they were there)
        self._made: list[tuple[str, bool]] = []
        self._above: list[Path] = []  # folders made above PATH (missing parents), outermost first

    def __enter__(self) -> OutDir:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    # ------------------------------------------------------------------ refusals

    def refuse(self, rel: str, st: os.stat_result | None, want: str) -> OutputError:
        """The error for `rel` (found as `st`) where the command writes a `want`."""
        path = safe_text(str(self.path / rel if rel else self.path))
        if st is not None and stat.S_ISLNK(st.st_mode):
            what = (
                f"symbolic link where `{self.command}` would write; posnet writes through "
                "no link (it could point outside the folder)"
            )
        elif st is not None and stat.S_ISDIR(st.st_mode):
            what = f"a folder where `{self.command}` would write a file"
        elif st is not None and stat.S_ISREG(st.st_mode):
            what = f"a file where `{self.command}` would write a folder"
        else:
            what = f"not a {want} (a FIFO, socket or device) where `{self.command}` would write"
        return OutputError(f"{path}: {what}: remove it, or {self.fresh}")

    # ------------------------------------------------------------------ folders

    def folder(self, rel: str, create: bool = True) -> int | None:
        """The descriptor of folder `rel` ('' is the output folder), made if absent when
        `create`; None if absent and not `create`. Refuses a link or non-folder on the way."""
        if rel in self._fds:
            return self._fds[rel]
        if rel:
            parent_rel, _, name = rel.rpartition("/")
            parent = self.folder(parent_rel, create)
            if parent is None:
                return None
        else:
            parent, name = None, os.fspath(self.path)
            if create and _lstat(name, None) is None:
                missing = [p for p in self.path.parents if not os.path.lexists(p)]
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._above = sorted(missing, key=lambda p: len(p.parts))
        if create:
            with suppress(FileExistsError):
                os.mkdir(name, dir_fd=parent)
                self._made.append((rel, False))
        try:
            fd = os.open(name, _DIR, dir_fd=parent)
        except FileNotFoundError:
            if create:
                raise
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise self.refuse(rel, _lstat(name, parent), "folder") from None
            raise
        self._fds[rel] = fd
        return fd

    def _split(self, rel: str, create: bool) -> tuple[int | None, str]:
        parent_rel, _, name = rel.rpartition("/")
        return self.folder(parent_rel, create), name

    # ------------------------------------------------------------------ checks

    def stat(self, rel: str) -> os.stat_result | None:
        """What is at `rel` (not following a link), None if absent. Refuses a link or
        non-folder among the folders above it."""
        parent, name = self._split(rel, create=False)
        return None if parent is None else _lstat(name, parent)

    def check(self, rel: str, want: str = "file") -> None:
        """Refuse anything at `rel` but a regular file (`want` "file") or a real folder
        ("folder"); absent is fine. Creates nothing: run it on every path first, so a
        refusal comes before anything is written."""
        st = self.stat(rel) if rel else _lstat(os.fspath(self.path), None)
        if st is None:
            return
        ok = stat.S_ISREG(st.st_mode) if want == "file" else stat.S_ISDIR(st.st_mode)
        if not ok:
            raise self.refuse(rel, st, want)
        if want == "folder":
            self.folder(rel, create=False)  # opened without following: no link on the way

    # ------------------------------------------------------------------ writes

    def read(self, rel: str) -> bytes | None:
        """A regular file's bytes; None when absent. Refuses a link or special file."""
        parent, name = self._split(rel, create=False)
        if parent is None:
            return None
        try:
            return read_regular(name, dir_fd=parent)
        except NotRegular as exc:
            raise self.refuse(rel, exc.st or _lstat(name, parent), "file") from None

    def write(self, rel: str, text: str, exclusive: bool = False) -> bool:
        """Write `text` at `rel` (parent folders made); False if it already held it.

        Written to a new file in the same folder, then renamed over `rel`: a link planted
        there after the check is replaced, never followed. `exclusive`: `rel` must not
        exist (created with O_EXCL, so nothing is ever overwritten)."""
        data = text.encode()
        parent, name = self._split(rel, create=True)
        assert parent is not None
        st = _lstat(name, parent)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise self.refuse(rel, st, "file")
        if st is not None and exclusive:
            raise self._exists(rel)
        if st is not None and st.st_size == len(data) and self.read(rel) == data:
            return False
        if exclusive:
            try:
                fd = os.open(name, _NEW, 0o666, dir_fd=parent)
            except FileExistsError:
                raise self._exists(rel) from None
            self._made.append((rel, True))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return True
        tmp = f".{name}.{secrets.token_hex(4)}.posnet-tmp"
        fd = os.open(tmp, _NEW, 0o666, dir_fd=parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp, dir_fd=parent)
            raise
        return True

    def undo(self) -> None:
        """Remove what this run created (files written with `exclusive`, folders it
        made, also the missing parents of PATH), newest first, so a failed `init` leaves
        the disk as it found it and can simply be run again. A folder someone else
        filled meanwhile is left."""
        for rel, is_file in reversed(self._made):
            parent_rel, _, name = rel.rpartition("/")
            parent = self._fds.get(parent_rel) if rel else None
            if rel and parent is None:
                continue  # its parent was never opened: nothing of ours is in it
            fd = self._fds.pop(rel, None)
            if fd is not None:
                os.close(fd)
            with suppress(OSError):
                if is_file:
                    os.unlink(name, dir_fd=parent)
                else:
                    os.rmdir(name if rel else os.fspath(self.path), dir_fd=parent)
        self._made.clear()
        for folder in reversed(self._above):
            with suppress(OSError):  # not empty: someone else's now
                folder.rmdir()
        self._above.clear()

    def _exists(self, rel: str) -> OutputError:
        return OutputError(
            f"{safe_text(str(self.path / rel))}: already exists; `{self.command}` never "
            f"overwrites a file: remove it, or {self.fresh}"
        )

    def prune(self, rel: str, keep: set[str], suffix: str) -> None:
        """Remove the entries of folder `rel` ending in `suffix` not in `keep`: files and
        links (unlinking a link never touches its target); anything else is left."""
        fd = self.folder(rel, create=False)
        if fd is None:
            return
        with os.scandir(fd) as it:
            names = [
                e.name
                for e in it
                if e.name.endswith(suffix)
                and e.name not in keep
                and (e.is_symlink() or e.is_file(follow_symlinks=False))
            ]
        for name in sorted(names):
            with suppress(FileNotFoundError):
                os.unlink(name, dir_fd=fd)


def check_output_file(path: Path, option: str, *reads: Path) -> None:
    """A file option (`drift -o`, `verify --json/--junit`): refused inside a folder
    posnet reads (the build tree: its manifest overwritten made every check fail), or
    where a link or special file stands (it would be written through)."""
    try:
        target = path.resolve()
        inside = [r for r in reads if (real := r.resolve()) == target or real in target.parents]
    except (OSError, RuntimeError):
        inside = []
    if inside:
        raise OutputOverlap(
            f"{option} {safe_text(str(path))}: inside {safe_text(str(inside[0]))}, which "
            "posnet reads; write the report outside it"
        )
    st = _lstat(os.fspath(path), None)
    if st is not None and not stat.S_ISREG(st.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise OutputError(f"{safe_text(str(path))}: {what}; posnet never writes through one")
    if st is not None and st.st_nlink > 1:  # a hard link: the same file under another name
        raise OutputError(
            f"{safe_text(str(path))}: has {st.st_nlink - 1} other hard link(s); posnet writes "
            "only a file of its own"
        )


def write_output_file(path: Path, text: str, option: str, *reads: Path) -> None:
    """Write `text` to a file option's path, checked as `check_output_file` says; a link
    planted after the check is met by O_NOFOLLOW and refused, not followed."""
    check_output_file(path, option, *reads)
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
        )
    except OSError as exc:
        raise OutputError(f"{safe_text(str(path))}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
