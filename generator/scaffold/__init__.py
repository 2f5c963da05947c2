"""`posnet init`: a fleet repository that works as it is.

The skeleton (generator/scaffold/skeleton/) holds fleet/ (fleet.yaml, a group, one
example store), .gitignore, pre-commit hooks and CI for GitHub Actions and GitLab. The
build tree is the sibling build/: render refuses an output folder inside the fleet; `dot-` in a
file name stands for the leading dot (a real .gitignore in the package would apply to
posnet's own repository). `init` adds schema/ (what the modelines point at) and the
rendered build/, so validate, render --check and the hooks pass from the first commit.
"""

from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path

from generator.errors import Diagnostic, Location, PosnetError
from generator.outdir import OutDir

SKELETON = Path(__file__).with_name("skeleton")
PLACEHOLDER = "__FLEET__"
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")  # spec.types.Ident


def skeleton_files() -> dict[str, str]:
    """Relative path in the new repository -> template text."""
    out = {}
    for path in sorted(SKELETON.rglob("*")):
        if path.is_file():
            rel = path.relative_to(SKELETON).as_posix()
            rel = "/".join(
                p.replace("dot-", ".", 1) if p.startswith("dot-") else p for p in rel.split("/")
            )
            out[rel] = path.read_text()
    return out


def fleet_name(folder: Path) -> str:
    """A fleet name from the folder's name: lowercase, dashes, else `fleet`."""
    name = re.sub(r"[^a-z0-9_-]+", "-", folder.resolve().name.lower()).strip("-_")[:64]
    return name if NAME_RE.fullmatch(name) else "fleet"


def init_fleet(dest: Path, name: str) -> list[Path]:
    """Write the skeleton and schema/ into DEST (new or without any of those files),
    then render build/. Returns the files written, in order."""
    from generator.schemas import write_schema_files

    if not NAME_RE.fullmatch(name):
        raise PosnetError(
            [
                Diagnostic(
                    Location("--name"),
                    "E004",
                    "not a valid fleet name",
                    expected="lowercase letters, digits, '-' or '_' (at most 64)",
                )
            ]
        )
    files = skeleton_files()
    tops = {rel.split("/", 1)[0] for rel in files if not rel.startswith(".github/")}
    promised = sorted({*tops, ".github/workflows/posnet.yml", "schema", "build"})
    with OutDir(dest, "posnet init", "init a new or empty folder") as out:
        out.check("", "folder")
        for rel in [*files, "schema/x", "build/x"]:  # links on the way are refused first
            out.check(rel.rpartition("/")[0], "folder")
        found = {rel: out.stat(rel) for rel in promised}
        for rel, st in found.items():
            if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise out.refuse(rel, st, "file")  # a link or special file: never followed
        clash = [rel for rel, st in found.items() if st is not None]
        if clash:
            raise PosnetError([_exists(dest / rel) for rel in clash])
        written = []
        try:
            for rel, text in files.items():
                out.write(rel, text.replace(PLACEHOLDER, name), exclusive=True)
                written.append(dest / rel)
            written += write_schema_files(out, "schema/", exclusive=True)
            _render(dest)
        except BaseException:  # a full disk, Ctrl-C: leave DEST as it was, init again
            shutil.rmtree(dest / "build", ignore_errors=True)  # absent before (checked)
            out.undo()
            raise
    return written


def _exists(path: Path) -> Diagnostic:
    return Diagnostic(
        Location(str(path)),
        "E004",
        "already exists; posnet init never overwrites a file",
        expected="a new or empty folder",
    )


def _render(dest: Path) -> None:
    from generator import build
    from generator.analyze import analyze

    result = analyze(dest / "fleet")
    errors = [d for d in result.diagnostics if d.severity == "error"]
    if errors:  # the skeleton itself is tested to be valid: this is a bug
        raise PosnetError(errors)
    build.render_tree(dest / "build", result.fleet.name, result.plans, result.digests, jobs=1)
