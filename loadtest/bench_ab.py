"""Same-hour A/B of scorers from two or more source trees, alternating in one environment.

Hosts of one kind differ by up to 2x per transaction and a shared box's load moves by the
minute, so a change is judged against its base within one run, never across runs: one
broker, Redis, champion and world (:func:`loadtest.bench_setup.bench_environment`); each
step a fresh scorer process started in one tree's folder (its working directory comes
first on ``sys.path``, so that tree's code is what runs), on fresh topics; the order of
the trees flips every round. Only the pairs of one round compare. Two measures:

* ``paced`` - one mix at the paced rate, latency against the zero-work echo floor
  (measured once per round);
* ``backlog`` - CPU per transaction: the scorer probe decides a backlog of simulator
  transactions as fast as it can (each step its own, the next rows of the world).

A tree is a checkout of this project (``git worktree add /tmp/base <commit>``). It needs
its compiled C extensions: :func:`prepare_tree` copies this checkout's build of each when
the tree has the same sources, and refuses otherwise (build it in the tree first). An
older tree needs only the extensions whose sources it has.
"""

from __future__ import annotations

import filecmp
import math
import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import loadtest.bench_setup as bench_setup
from loadtest.bench_scorer import ScorerBenchConfig, _FreshSteps, backlog_phase
from loadtest.bench_setup import BenchError, CpuSampler, bench_environment, process_tree_cpu
from loadtest.mixes import Mix


@dataclass(frozen=True)
class Extension:
    """A C extension a scorer tree needs: its sources (the cffi build script, which holds
    the compiler flags, among them) and its build's file name."""

    sources: tuple[str, ...]
    built: str


EXTENSIONS = (
    Extension(
        ("features/card_kernel.c", "features/card_kernel.h", "features/card_kernel_build.py"),
        "features/_card_kernel*.so",
    ),
    Extension(
        ("streams/payload_guard.c", "streams/payload_guard.h", "streams/payload_guard_build.py"),
        "streams/_payload_guard*.so",
    ),
    Extension(
        ("models/tree_shap.c", "models/tree_shap.h", "models/tree_shap_build.py"),
        "models/_tree_shap*.so",
    ),
)
KEPT = (
    *("p50_ms", "p95_ms", "p99_ms", "max_ms", "missing", "flag_rate", "gc_pauses"),
    *("broker_cpu_pct", "service_cpu_pct"),
)
KEPT_BACKLOG = (
    *("decided", "complete", "tx_per_s", "cpu_us_per_tx", "stage_us_per_tx", "max_rss_mb"),
    *("broker_cpu_pct", "redis_cpu_us_per_tx", "load_average", "collector"),
)
Measure = Literal["paced", "backlog"]
METRIC: dict[Measure, str] = {"paced": "p99_ms", "backlog": "cpu_us_per_tx"}
"""What each measure compares between the trees."""


@dataclass(frozen=True)
class AbConfig:
    trees: dict[str, Path]
    mix: Mix = "normal"
    rounds: int = 3
    rate: float = 2_000.0
    duration_s: float = 30.0
    measure: Measure = "paced"
    backlog: int = 100_000
    """Transactions per backlog step (``measure="backlog"``)."""


def prepare_tree(tree: Path, home: Path = bench_setup.ROOT) -> Path:
    """``tree`` resolved, with its C extensions in place (each copied from ``home`` when
    its sources are identical); :class:`BenchError` when it is not a checkout or cannot
    run."""
    tree = tree.resolve()
    if not (tree / "services/scorer/service.py").is_file():
        raise BenchError(f"{tree} is not a checkout of this project")
    if tree == home.resolve():
        return tree
    for ext in EXTENSIONS:
        if (tree / ext.sources[0]).is_file() and not any(tree.glob(ext.built)):
            _copy_build(ext, tree, home)
    return tree


def _copy_build(ext: Extension, tree: Path, home: Path) -> None:
    same = all(
        (home / f).is_file() and filecmp.cmp(home / f, tree / f, shallow=False) for f in ext.sources
    )
    built = sorted(home.glob(ext.built))
    if not same or not built:
        raise BenchError(
            f"{tree} has no build of {ext.sources[0]} and its sources differ from this"
            f" checkout's (or this one has none): run `make setup` there (a venv of its own;"
            " the extensions are built in place)"
        )
    target = tree / Path(ext.built).parent / built[0].name
    shutil.copy2(built[0], target)


def order(names: Sequence[str], round_no: int) -> list[str]:
    """The trees' order in a round: as given, then reversed, alternately."""
    return list(names) if round_no % 2 == 0 else list(reversed(names))


def summarize(rows: Sequence[dict[str, Any]], metric: str = "p99_ms") -> dict[str, Any]:
    """Per tree: the median of ``metric`` over the rounds; per round: each tree's value over
    the first tree's (the base). Keys ``median_<metric>`` and ``<metric>_over_base_per_round``
    (``p99_over_base_per_round`` for the paced p99)."""
    ratio_key = "p99_over_base_per_round" if metric == "p99_ms" else f"{metric}_over_base_per_round"
    trees: list[str] = list(dict.fromkeys(str(r["tree"]) for r in rows))
    usable = [r for r in rows if _measured(r, metric)]
    values = {t: [r[metric] for r in usable if r["tree"] == t] for t in trees}
    by_round: dict[int, dict[str, float]] = {}
    for r in usable:
        by_round.setdefault(r["round"], {})[r["tree"]] = r[metric]
    if not trees:
        return {f"median_{metric}": {}, ratio_key: {}, "geometric_mean_over_base": {}}
    base = trees[0]
    exact = {
        n: {t: v / got[base] for t, v in got.items() if t != base}
        for n, got in sorted(by_round.items())
        if base in got
    }
    ratios = {n: {t: round(r, 3) for t, r in got.items()} for n, got in exact.items()}
    per_tree: dict[str, list[float]] = {}
    for got in exact.values():
        for t, ratio in got.items():
            per_tree.setdefault(t, []).append(ratio)
    return {
        f"median_{metric}": {t: statistics.median(v) for t, v in values.items() if v},
        ratio_key: ratios,
        # the rounds' ratios together: a step's place in its round weighs on it (a later
        # step meets more state), and the order flips each round, so over an even number
        # of rounds the place cancels out
        "geometric_mean_over_base": {
            t: round(statistics.geometric_mean(v), 3) for t, v in per_tree.items()
        },
    }


def _measured(row: dict[str, Any], metric: str) -> bool:
    """Whether a step measured ``metric``: a positive, finite value, and (a backlog step)
    every transaction of its backlog decided. A step that stopped early or decided nothing
    would otherwise enter the comparison with a meaningless (or infinite) value."""
    value = row.get(metric)
    if not isinstance(value, int | float) or not 0 < value < math.inf:
        return False
    return row.get("complete") is not False and row.get("decided") != 0


def run_ab(
    config: AbConfig, *, redis_url: str, state_dir: Path, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every round of the A/B; the rows and their summary."""
    trees = {name: prepare_tree(path) for name, path in config.trees.items()}
    bench = ScorerBenchConfig(
        backlog=100, naive=10, rest_rps=1.0, rest_duration_s=1.0, rate=config.rate,
        duration_s=config.duration_s, mixes=(config.mix,),
    )  # fmt: skip
    backlog = config.measure == "backlog"
    steps = config.rounds * len(trees)
    world_rows = max(20_000, config.backlog * steps + 10_000) if backlog else 20_000
    rows: list[dict[str, Any]] = []
    home = bench_setup.ROOT
    with bench_environment(
        redis_url=redis_url, state_dir=state_dir.resolve(), world_rows=world_rows, log=log
    ) as env:
        probes = {"broker": process_tree_cpu(env.broker_pid)} if env.broker_pid else {}
        sampler = CpuSampler(probes).start()
        echo = _FreshSteps(env, "echo", bench, sampler)
        scorer = _FreshSteps(env, "scorer", bench, sampler)
        try:
            for n in range(config.rounds):
                floor = {} if backlog else echo(config.rate, config.duration_s, config.mix)
                for name in order(list(trees), n):
                    bench_setup.ROOT = trees[name]
                    try:
                        if backlog:  # each step its own topics and group: offsets of an
                            # earlier step's group would point into a deleted topic
                            phase = f"backlog{n}-{list(trees).index(name)}"
                            step = backlog_phase(env, config.backlog, sampler, log, phase)
                        else:
                            step = scorer(config.rate, config.duration_s, config.mix)
                    finally:
                        bench_setup.ROOT = home
                    row = {"round": n, "tree": name, **step_fields(step, floor, backlog)}
                    rows.append(row)
                    log(row_line(row))
        finally:
            sampler.stop()
    metric = METRIC[config.measure]
    return {
        "benchmark": "ab",
        "measure": config.measure,
        "mix": config.mix if not backlog else "simulator backlog",
        "rate_tx_per_s": config.rate if not backlog else None,
        "duration_s": config.duration_s if not backlog else None,
        "backlog": config.backlog if backlog else None,
        "trees": {name: str(path) for name, path in trees.items()},
        "rows": rows,
        "summary": summarize(rows, metric),
    }


def step_fields(step: dict[str, Any], floor: dict[str, Any], backlog: bool) -> dict[str, Any]:
    """The fields of one step a row keeps."""
    if backlog:
        return {k: step.get(k) for k in KEPT_BACKLOG}
    return {
        "echo_p50_ms": floor.get("p50_ms"),
        "echo_p99_ms": floor.get("p99_ms"),
        **{k: step.get(k) for k in KEPT},
        "stage_p99_ms": step.get("stage_p99_ms", {}),
        "load_average": step.get("load_average"),
    }


def row_line(row: dict[str, Any]) -> str:
    load = row.get("load_average") or []
    if "cpu_us_per_tx" in row:
        return (
            f"  round {row['round']} {row['tree']:<12} {row.get('tx_per_s') or 0:,.0f} tx/s, "
            f"cpu {row.get('cpu_us_per_tx') or 0:.1f} us/tx, decided {row.get('decided')} "
            f"load {load[0] if load else '?'}"
        )
    full = (row.get("gc_pauses") or {}).get("gen2", {})
    return (
        f"  round {row['round']} {row['tree']:<12} p50/p95/p99 {row.get('p50_ms')}/"
        f"{row.get('p95_ms')}/{row.get('p99_ms')} ms (echo p99 {row.get('echo_p99_ms')}) "
        f"flagged {100 * (row.get('flag_rate') or 0):.1f} % full GC "
        f"{full.get('pauses', 0):.0f} load {load[0] if load else '?'}"
    )
