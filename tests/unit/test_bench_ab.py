"""The same-hour A/B harness: tree preparation, alternation and its summary."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadtest.bench_ab import (
    EXTENSIONS,
    METRIC,
    Extension,
    order,
    prepare_tree,
    row_line,
    step_fields,
    summarize,
)
from loadtest.bench_setup import ROOT, BenchError

pytestmark = pytest.mark.unit

CARD_KERNEL = EXTENSIONS[0]


def _checkout(
    at: Path, kernel: bytes | None = None, *, extensions: tuple[Extension, ...] = EXTENSIONS
) -> Path:
    for name in ("services/scorer/service.py", *(f for e in extensions for f in e.sources)):
        target = at / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    if kernel is not None:
        (at / CARD_KERNEL.sources[0]).write_bytes(kernel)
    return at


def _built(ext: Extension) -> Path:
    built = sorted(ROOT.glob(ext.built))
    assert built, f"make setup builds {ext.sources[0]}"
    return built[0]


def test_the_order_flips_every_round() -> None:
    assert [order(["base", "new"], n) for n in range(3)] == [
        ["base", "new"],
        ["new", "base"],
        ["base", "new"],
    ]


def test_a_tree_with_the_same_sources_gets_this_checkouts_builds(tmp_path: Path) -> None:
    tree = prepare_tree(_checkout(tmp_path / "base"))
    for ext in EXTENSIONS:
        built = _built(ext)
        copied = tree / Path(ext.built).parent / built.name
        assert copied.read_bytes() == built.read_bytes()


def test_a_tree_older_than_the_other_extensions_gets_the_card_kernel_only(
    tmp_path: Path,
) -> None:
    tree = prepare_tree(_checkout(tmp_path / "old", extensions=(CARD_KERNEL,)))
    assert (tree / "features" / _built(CARD_KERNEL).name).is_file()
    assert not list(tree.glob("streams/_payload_guard*"))
    assert not list(tree.glob("models/_tree_shap*"))


def test_a_tree_with_other_kernel_sources_is_refused_not_given_a_wrong_build(
    tmp_path: Path,
) -> None:
    tree = _checkout(tmp_path / "old", kernel=b"/* another kernel */\n")
    with pytest.raises(BenchError, match=r"card_kernel\.c .*make setup"):
        prepare_tree(tree)
    assert not list(tree.glob("features/_card_kernel*.so"))


def test_a_tree_built_with_other_compiler_flags_is_refused(tmp_path: Path) -> None:
    tree = _checkout(tmp_path / "old")
    script = tree / "models/tree_shap_build.py"
    script.write_text(script.read_text().replace('"-O2"', '"-O0"'))
    with pytest.raises(BenchError, match=r"tree_shap\.c"):
        prepare_tree(tree)
    assert not list(tree.glob("models/_tree_shap*.so"))


def test_a_folder_that_is_no_checkout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="not a checkout"):
        prepare_tree(tmp_path)


def test_the_summary_compares_within_each_round_against_the_first_tree() -> None:
    rows = [
        {"round": 0, "tree": "base", "p99_ms": 400.0},
        {"round": 0, "tree": "new", "p99_ms": 80.0},
        {"round": 1, "tree": "new", "p99_ms": 90.0},
        {"round": 1, "tree": "base", "p99_ms": 300.0},
        {"round": 2, "tree": "base", "p99_ms": None},  # a step that measured nothing
        {"round": 2, "tree": "new", "p99_ms": 70.0},
    ]
    summary = summarize(rows)
    assert summary["median_p99_ms"] == {"base": 350.0, "new": 80.0}
    assert summary["p99_over_base_per_round"] == {0: {"new": 0.2}, 1: {"new": 0.3}}


def test_the_command_wants_two_named_trees_and_one_mix(tmp_path: Path) -> None:
    from loadtest.cli_bench import app

    runner = CliRunner()
    one = runner.invoke(app, ["ab", "--tree", f"a={tmp_path}"])
    assert one.exit_code == 2 and "two trees" in one.output
    unnamed = runner.invoke(app, ["ab", "--tree", str(tmp_path), "--tree", f"b={tmp_path}"])
    assert unnamed.exit_code == 2 and "NAME=PATH" in unnamed.output
    mixes = runner.invoke(
        app, ["ab", "--tree", f"a={tmp_path}", "--tree", f"b={tmp_path}", "--mix", "cold,attack"]
    )
    assert mixes.exit_code == 2 and "one mix" in mixes.output


def test_a_backlog_ab_compares_cpu_per_transaction_within_each_round() -> None:
    rows = [
        {"round": 0, "tree": "base", "cpu_us_per_tx": 60.0},
        {"round": 0, "tree": "new", "cpu_us_per_tx": 54.0},
        {"round": 1, "tree": "new", "cpu_us_per_tx": 52.0},
        {"round": 1, "tree": "base", "cpu_us_per_tx": 65.0},
        {"round": 2, "tree": "new", "cpu_us_per_tx": 50.0},  # its base step measured nothing
    ]
    summary = summarize(rows, METRIC["backlog"])
    assert summary["median_cpu_us_per_tx"] == {"base": 62.5, "new": 52.0}
    assert summary["cpu_us_per_tx_over_base_per_round"] == {0: {"new": 0.9}, 1: {"new": 0.8}}
    assert summary["geometric_mean_over_base"] == {"new": round((0.9 * 0.8) ** 0.5, 3)}


def test_steps_that_decided_nothing_or_stopped_early_are_left_out_not_a_crash() -> None:
    rows = [
        {"round": 0, "tree": "base", "cpu_us_per_tx": 61.0, "decided": 900, "complete": True},
        {"round": 0, "tree": "new", "cpu_us_per_tx": 55.0, "decided": 900, "complete": True},
        # a base that decided nothing: its CPU per transaction is infinite, not a ratio of 0
        {"round": 1, "tree": "new", "cpu_us_per_tx": 50.0, "decided": 900, "complete": True},
        {"round": 1, "tree": "base", "cpu_us_per_tx": math.inf, "decided": 0, "complete": False},
        # a step that stopped early measured another workload
        {"round": 2, "tree": "base", "cpu_us_per_tx": 70.0, "decided": 900, "complete": True},
        {"round": 2, "tree": "new", "cpu_us_per_tx": 30.0, "decided": 400, "complete": False},
    ]
    summary = summarize(rows, METRIC["backlog"])
    assert summary["median_cpu_us_per_tx"] == {"base": 65.5, "new": 52.5}
    assert summary["cpu_us_per_tx_over_base_per_round"] == {0: {"new": 0.902}, 2: {}}
    assert summary["geometric_mean_over_base"] == {"new": 0.902}


def test_a_backlog_row_keeps_the_cpu_fields_and_says_so() -> None:
    step = {"decided": 1000, "tx_per_s": 15000.0, "cpu_us_per_tx": 55.4, "p99_ms": 9.0}
    row = {"round": 0, "tree": "new", **step_fields(step, {}, backlog=True)}
    assert row["cpu_us_per_tx"] == 55.4 and "p99_ms" not in row
    assert "cpu 55.4 us/tx" in row_line(row) and "15,000 tx/s" in row_line(row)
    paced = {"round": 0, "tree": "new", **step_fields(step, {"p99_ms": 4.0}, backlog=False)}
    assert paced["echo_p99_ms"] == 4.0 and "cpu_us_per_tx" not in paced
    assert "p50/p95/p99" in row_line(paced)


def test_the_command_knows_its_measures(tmp_path: Path) -> None:
    from loadtest.cli_bench import app

    result = CliRunner().invoke(
        app, ["ab", "--tree", f"a={tmp_path}", "--tree", f"b={tmp_path}", "--measure", "wall"]
    )
    assert result.exit_code == 2 and "paced, backlog" in result.output
