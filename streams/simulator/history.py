"""Simulated history on disk: hive-partitioned parquet + labels + manifest.

Layout written by :func:`write_history`::

    DIR/transactions/date=YYYY-MM-DD/part-0.parquet   exactly the Transaction columns
    DIR/labels.parquet                                transaction_id, event_time, is_fraud,
                                                      scenario, labelled_at
    DIR/manifest.json                                 seed, config, counts, fingerprint

Rows are sorted by (event_time, transaction_id). Writer options are pinned and no
timestamp goes into any file, so the same seed gives byte-identical files (for a given
pyarrow version: parquet's ``created_by`` names it).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from streams.simulator.config import SimulatorConfig
from streams.simulator.errors import HistoryExists, HistoryNotFound
from streams.simulator.simulator import Simulator
from streams.simulator.stats import FraudStats, check_bounds
from streams.simulator.tables import LABEL_SCHEMA, TRANSACTION_SCHEMA, TableBuilder

MANIFEST_FORMAT = "fraud-sim-history/1"
TRANSACTIONS_DIR = "transactions"
LABELS_FILE = "labels.parquet"
MANIFEST_FILE = "manifest.json"
DEFAULT_START = date(2026, 1, 1)
# Pinned so the bytes depend on the data only.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "write_page_index": False,
    "store_schema": True,
}
ROW_GROUP_SIZE = 1 << 20


def partition_path(day: date) -> str:
    return f"{TRANSACTIONS_DIR}/date={day.isoformat()}/part-0.parquet"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(files: dict[str, str]) -> str:
    """sha256 of the sorted ``relative path  file sha256`` lines."""
    text = "".join(f"{name}  {files[name]}\n" for name in sorted(files))
    return hashlib.sha256(text.encode()).hexdigest()


def simulate_history(
    config: SimulatorConfig, days: int, start: date = DEFAULT_START
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``days`` days from ``start`` in memory: (transactions, labels) DataFrames."""
    sim = Simulator(config)
    builder = TableBuilder(sim.world, config)
    tx_tables: list[pa.Table] = []
    label_tables: list[pa.Table] = []
    for batch in sim.days(0, days):
        tx_tables.append(builder.transactions(batch, start))
        label_tables.append(builder.labels(batch, start))
    transactions = pa.concat_tables(tx_tables) if tx_tables else TRANSACTION_SCHEMA.empty_table()
    labels = pa.concat_tables(label_tables) if label_tables else LABEL_SCHEMA.empty_table()
    return transactions.to_pandas(), labels.to_pandas()


def write_history(
    out: Path,
    config: SimulatorConfig,
    days: int,
    start: date = DEFAULT_START,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write ``days`` days of history under ``out`` one day at a time; return the manifest."""
    out = Path(out)
    existing = [out / TRANSACTIONS_DIR, out / LABELS_FILE, out / MANIFEST_FILE]
    if any(p.exists() for p in existing):
        if not overwrite:
            raise HistoryExists(out)
        shutil.rmtree(out / TRANSACTIONS_DIR, ignore_errors=True)
        for p in existing[1:]:
            p.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    sim = Simulator(config)
    builder = TableBuilder(sim.world, config)
    stats = FraudStats()
    files: dict[str, str] = {}
    with pq.ParquetWriter(out / LABELS_FILE, LABEL_SCHEMA, **PARQUET_OPTIONS) as labels:
        for batch in sim.days(0, days):
            name = partition_path(start + timedelta(days=batch.day))
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(
                builder.transactions(batch, start),
                out / name,
                row_group_size=ROW_GROUP_SIZE,
                **PARQUET_OPTIONS,
            )
            files[name] = _sha256(out / name)
            labels.write_table(builder.labels(batch, start), row_group_size=ROW_GROUP_SIZE)
            stats.add(batch.scenario)
    files[LABELS_FILE] = _sha256(out / LABELS_FILE)
    card_testing = any(config.card_testing_on(d) for d in range(days))
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "seed": config.seed,
        "start": start.isoformat(),
        "days": days,
        "config": config.as_dict(),
        "rows": {"transactions": stats.rows, "labels": stats.rows},
        "stats": stats.as_dict(),
        "bounds_violations": check_bounds(config, stats, card_testing=card_testing),
        "writer": {"pyarrow": pa.__version__, **PARQUET_OPTIONS},
        "files": dict(sorted(files.items())),
        "fingerprint": fingerprint(files),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = Path(path) / MANIFEST_FILE
    if not manifest_path.is_file():
        raise HistoryNotFound(Path(path), f"{MANIFEST_FILE} missing")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    if manifest.get("format") != MANIFEST_FORMAT:
        raise HistoryNotFound(Path(path), f"unknown format {manifest.get('format')!r}")
    return manifest


def verify_history(path: Path) -> list[str]:
    """Files whose sha256 differs from the manifest (or that are missing); empty if intact."""
    manifest = read_manifest(path)
    bad: list[str] = []
    for name, digest in manifest["files"].items():
        file = Path(path) / name
        if not file.is_file() or _sha256(file) != digest:
            bad.append(name)
    return bad


def read_history(
    path: Path, *, start: date | None = None, end: date | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transactions, labels) DataFrames of a written history, sorted by event time.

    ``start`` / ``end`` (inclusive) select event days; labels follow the same selection.
    ``event_time`` and ``labelled_at`` are ``datetime64[us, UTC]``.
    """
    path = Path(path)
    manifest = read_manifest(path)
    names = [n for n in manifest["files"] if n.startswith(f"{TRANSACTIONS_DIR}/")]
    wanted: list[str] = []
    for name in sorted(names):
        day = date.fromisoformat(name.split("date=", 1)[1].split("/", 1)[0])
        if (start is None or day >= start) and (end is None or day <= end):
            wanted.append(name)
    missing = [n for n in wanted if not (path / n).is_file()]
    if missing:
        raise HistoryNotFound(path, f"missing partitions {missing[:3]}")
    tables = [pq.read_table(path / n, schema=TRANSACTION_SCHEMA) for n in wanted]
    transactions = pa.concat_tables(tables) if tables else TRANSACTION_SCHEMA.empty_table()
    labels = pq.read_table(path / LABELS_FILE, schema=LABEL_SCHEMA)
    if start is not None or end is not None:
        keep = pc.is_in(labels["transaction_id"], value_set=transactions["transaction_id"])
        labels = labels.filter(keep)
    return transactions.to_pandas(), labels.to_pandas()
