"""After a type error, still check the parts of a store that did validate.

A store whose spec does not validate has no model, so its other problems (an address in
the DHCP pool, an unknown partner) would wait for the next run. Salvage cuts what failed
(the smallest list element holding the error, else the optional key) and validates
again, a few rounds at most. The checks then run on what is left, and only problems
that cannot depend on a cut part are kept: nothing under a cut element or beside a cut
key, no "unknown host" when a host was cut, no message naming a shifted list index.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from generator.spec.checks import Problem
from generator.spec.diagnose import data_path
from generator.spec.model import Site
from generator.yamlload import YamlPath

MAX_ROUNDS = 6
_CUT = object()  # a list element taken out (kept in place so indices stay original)
_INDEX = re.compile(r"\w\[\d+\]")


@dataclass(frozen=True)
class Salvaged:
    site: Site
    cuts: tuple[YamlPath, ...]  # in the store's own coordinates
    maps: dict[YamlPath, list[int]]  # compacted list (its path) -> original indices

    def original(self, path: YamlPath) -> YamlPath:
        """A path of the salvaged model as a path of the data the user wrote."""
        out: list[str | int] = []
        view: list[str | int] = []
        for part in path:
            if isinstance(part, int) and tuple(view) in self.maps:
                idx = self.maps[tuple(view)]
                out.append(idx[part] if 0 <= part < len(idx) else part)
            else:
                out.append(part)
            view.append(part)
        return tuple(out)

    def independent(self, problems: Iterable[Problem]) -> Iterator[Problem]:
        """The problems that hold whatever the cut parts said, in original coordinates."""
        shifted = any(isinstance(c[-1], int) for c in self.cuts)
        hosts_cut = any(c[:1] == ("hosts",) for c in self.cuts)
        scopes = {c if isinstance(c[-1], int) else c[:-1] for c in self.cuts}
        for prob in problems:
            path = self.original(prob.path)
            if _under_any(path, scopes):
                continue
            if prob.code == "E209" and hosts_cut:
                continue
            if shifted and _INDEX.search(prob.message):
                continue
            yield Problem(prob.code, path, prob.message, prob.expected, prob.at_key)


def _under_any(path: YamlPath, prefixes: set[YamlPath]) -> bool:
    """Whether a prefix of `path` (itself included) is in `prefixes`: one set lookup per
    level, so thousands of cuts in a hostile file cost no quadratic scan."""
    return any(path[:depth] in prefixes for depth in range(len(path) + 1))


def _compact(data: Any, at: YamlPath, maps: dict[YamlPath, list[int]]) -> Any:
    if isinstance(data, dict):
        return {k: _compact(v, (*at, k), maps) for k, v in data.items()}
    if isinstance(data, list):
        kept = [i for i, v in enumerate(data) if v is not _CUT]
        if len(kept) != len(data):
            maps[at] = kept
        return [_compact(data[i], (*at, n), maps) for n, i in enumerate(kept)]
    return data


def _view_to_original(path: YamlPath, maps: dict[YamlPath, list[int]]) -> YamlPath:
    return Salvaged(None, (), maps).original(path)  # type: ignore[arg-type]


def _cut(work: Any, path: YamlPath) -> YamlPath | None:
    """Cut the deepest list element on `path`, else the key itself; None: cannot."""
    ints = [k for k, part in enumerate(path) if isinstance(part, int)]
    target = path[: ints[-1] + 1] if ints else path
    if not target:
        return None
    parent = work
    for part in target[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return None
    last = target[-1]
    if isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        if parent[last] is _CUT:
            return None
        parent[last] = _CUT
        return target
    if isinstance(parent, dict) and last in parent:
        del parent[last]
        return target
    return None


def salvage(data: Any) -> Salvaged | None:
    """A Site validated from `data` with its failing parts cut, or None."""
    if not isinstance(data, dict):
        return None
    work = copy.deepcopy(data)
    cuts: list[YamlPath] = []
    cut_set: set[YamlPath] = set()
    for _ in range(MAX_ROUNDS):
        maps: dict[YamlPath, list[int]] = {}
        view = _compact(work, (), maps)
        try:
            return Salvaged(Site.model_validate(view), tuple(cuts), maps)
        except ValidationError as exc:
            errs = exc.errors(include_input=False, include_url=False)
        paths = set()
        for err in errs:
            path = _view_to_original(data_path(view, err["loc"]), maps)
            if err["type"] == "missing" or not path:
                path = path[:-1]
                if not path:
                    return None
            paths.add(path)
        # Deepest first, so cutting one path cannot move another.
        for path in sorted(paths, key=lambda p: (len(p), str(p)), reverse=True):
            if _under_any(path, cut_set):
                continue
            cut = _cut(work, path)
            if cut is None:
                return None
            cuts.append(cut)
            cut_set.add(cut)
    return None
