"""Cold loading in worker processes: parse and validate many site files at once.

Each store's file is parsed, merged and validated independently, so a fleet without a
warm cache is loaded by forked workers (they inherit the file bytes, groups and
catalog). A worker returns what the site cache keeps for a store (its model and own
layer pickled, facts, diagnostics, digest), so the main process decodes a model only
when it needs it and caches the record as it came. Results are in file order, and
load_fleet() reports them exactly as it reports sites loaded here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from generator.errors import Diagnostic, PosnetError
from generator.spec.cache import Finish
from generator.spec.load import LoadedSite, _Record, from_record, to_record
from generator.spec.locate import Layer
from generator.workers import SMALL, default_jobs, shared_map

Loaded = tuple[LoadedSite | None, list[Diagnostic]]
# a store's loaded site with its cache record, or the error that stopped its load
Outcome = tuple[Loaded, _Record] | PosnetError
_Shipped = tuple[_Record, None] | tuple[None, list[Diagnostic]]
_Job = tuple[
    Sequence[tuple[Path, bytes | None]], Callable[[Path, bytes | None], Loaded], Finish | None
]


def _load_range(job: _Job, start: int, stop: int) -> list[_Shipped]:
    inputs, load_one, finish = job
    out: list[_Shipped] = []
    for spath, raw in inputs[start:stop]:
        try:
            loaded, diags = load_one(spath, raw)
        except PosnetError as exc:
            out.append((None, exc.diagnostics))
            continue
        rec = to_record(raw or b"", loaded, diags, model=finish is None)
        if finish is not None and loaded is not None:
            finish(loaded, rec)
        out.append((rec, None))
    return out


def load_in_workers(
    inputs: Sequence[tuple[Path, bytes | None]],
    load_one: Callable[[Path, bytes | None], Loaded],
    groups: dict[str, Layer],
    fleet_layer: Layer | None,
    finish: Finish | None = None,
    jobs: int = 0,
) -> dict[str, Outcome]:
    """Site file (as displayed) -> its outcome; empty when too few to be worth workers
    (load_fleet then loads them itself). `finish` completes a record in the worker, which
    still holds the site's model (SiteCache.planner)."""
    if len(inputs) < SMALL or default_jobs(jobs) <= 1:
        return {}
    shipped: list[_Shipped] = shared_map(_load_range, (inputs, load_one, finish), len(inputs), jobs)
    out: dict[str, Outcome] = {}
    for (spath, _raw), (rec, diags) in zip(inputs, shipped, strict=True):
        display = str(spath)
        if rec is None:
            assert diags is not None
            out[display] = PosnetError(diags)
        else:
            out[display] = (from_record(rec, display, groups, fleet_layer), rec)
    return out
