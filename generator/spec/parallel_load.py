"""Cold loading in worker processes: parse and validate many site files at once.

Each store's file is parsed, merged and validated independently, so a fleet without a
warm cache is loaded by forked workers (they inherit the file bytes, groups and
catalog). A worker returns what the site cache keeps for a store (its model and own
layer pickled, facts, diagnostics, digest), so the main process decodes a model only
when it needs it and caches the record as it came. Results are in file order, and
load_fleet() reports them exactly as it reports sites loaded here.

A store that routes to other stores needs their facts for its Plan, known only once
every store is loaded: its worker keeps the model and, in a second step, resolves it
with the facts the main process sends (`Loading.resolve_routers`, Planner.resolve).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from generator.errors import Diagnostic, PosnetError
from generator.spec.cache import Planner, PlanRecord
from generator.spec.fleet import SiteFacts
from generator.spec.load import LoadedSite, _Record, from_record, to_record
from generator.spec.locate import Layer
from generator.workers import SMALL, TwoStep, default_jobs

Loaded = tuple[LoadedSite | None, list[Diagnostic]]
# a store's loaded site with its cache record, or the error that stopped its load
Outcome = tuple[Loaded, _Record] | PosnetError
_Shipped = tuple[_Record, None] | tuple[None, list[Diagnostic]]
_Job = tuple[
    Sequence[tuple[Path, bytes | None]], Callable[[Path, bytes | None], Loaded], Planner | None
]

# In a loading worker: the stores that route to others, by site file, kept for the
# second step (a worker is a fork; this stays empty in the main process).
_ROUTERS: dict[str, LoadedSite] = {}


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
            if loaded.facts.routes:
                _ROUTERS[str(spath)] = loaded
        out.append((rec, None))
    return out


def _resolve_routers(job: _Job, targets: Mapping[str, SiteFacts]) -> list[tuple[str, PlanRecord]]:
    """The second step, in a worker: each kept store whose route targets all loaded."""
    planner = job[2]
    assert planner is not None  # stores are kept only with one
    return [
        (display, planner.resolve(ls, targets))
        for display, ls in _ROUTERS.items()
        if all(target in targets for _, _, target, _ in ls.facts.routes)
    ]


class Loading:
    """The workers of one cold load, alive until load_fleet() has every store's facts
    (or closes them): a context manager, like the TwoStep it wraps."""

    def __init__(self, pool: TwoStep | None = None) -> None:
        self.pool = pool

    def resolve_routers(self, targets: Mapping[str, SiteFacts]) -> list[tuple[str, PlanRecord]]:
        """Plans of the stores that route to others, by site file, resolved where they
        were loaded, for those whose targets are all in `targets` (none without workers
        or without a Planner)."""
        return [] if self.pool is None else self.pool.second(targets)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def __enter__(self) -> Loading:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_in_workers(
    inputs: Sequence[tuple[Path, bytes | None]],
    load_one: Callable[[Path, bytes | None], Loaded],
    groups: dict[str, Layer],
    fleet_layer: Layer | None,
    finish: Planner | None = None,
    jobs: int = 0,
) -> tuple[dict[str, Outcome], Loading]:
    """Site file (as displayed) -> its outcome (empty when too few to be worth workers:
    load_fleet then loads them itself), and the workers, kept for resolve_routers().
    `finish` completes a record in the worker, which still holds the site's model, and
    resolves the routing stores it kept in the second step."""
    if len(inputs) < SMALL or default_jobs(jobs) <= 1:
        return {}, Loading()
    job: _Job = (inputs, load_one, finish)
    pool = TwoStep(_load_range, _resolve_routers, job, len(inputs), default_jobs(jobs))
    loading = Loading(pool)
    try:
        shipped: list[_Shipped] = pool.first()
    except BaseException:
        loading.close()
        raise
    out: dict[str, Outcome] = {}
    for (spath, _raw), (rec, diags) in zip(inputs, shipped, strict=True):
        display = str(spath)
        if rec is None:
            assert diags is not None
            out[display] = PosnetError(diags)
        else:
            out[display] = (from_record(rec, display, groups, fleet_layer), rec)
    return out, loading
