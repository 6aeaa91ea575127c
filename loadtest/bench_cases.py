"""The review console's load check: analysts working one case store through the REST API.

``cases`` open cases (kept topped up as analysts resolve them), ``analysts`` threads, each
with a key of its own, for ``duration_s``: each reads the queue page (``GET /v1/cases``,
timed), claims a case from it (a refusal is a 409: another analyst was faster) and gives
a verdict. Afterwards the store is checked: no case resolved twice (exactly one label
row and one verdict audit row per resolved case), none lost (every ingested case is
resolved or still in the queue). The routes are the API's own (``case_router``) served
by uvicorn in this process; the label relay is off (the broker is not what is measured).
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from services.api.app import _BODY, _one_body_schema, _read_body
from services.api.auth import ApiKeys
from services.api.cases import case_router
from services.api.keys import KeyFile, KeyRing
from services.api.ratelimit import RateLimiter
from services.cases.desk import CaseDesk
from services.cases.models import AuditEntry, Case, LabelOutbox
from services.cases.store import CaseStore
from services.cases.workflow import Workflow
from services.stack.process import free_port
from streams.events import Reason, ReviewCase, Transaction


def _case(n: int, rng: random.Random) -> ReviewCase:
    from datetime import UTC, datetime

    amount = round(rng.uniform(5.0, 900.0), 2)
    tx = Transaction(
        transaction_id=f"bench-tx-{n:06d}",
        event_time=datetime.now(UTC),
        card_id=f"card-{rng.randrange(2000):05d}",
        customer_id=f"cust-{n:06d}",
        terminal_id=f"term-{rng.randrange(500):04d}",
        amount=amount,
    )
    return ReviewCase(
        case_id=f"bench-case-{n:06d}",
        transaction=tx,
        score=round(rng.uniform(0.3, 0.99), 3),
        decision="review",
        model_version="bench",
        reasons=[Reason(feature="tx_amount", value=amount, contribution=1.0, text="amount")],
        created_at=tx.event_time,
    )


def run_case_bench(
    work_dir: Path,
    *,
    cases: int = 200,
    analysts: int = 5,
    duration_s: float = 60.0,
    db_url: str | None = None,
    seed: int = 7,
) -> dict[str, Any]:
    work_dir.mkdir(parents=True, exist_ok=True)
    store = CaseStore.open(db_url or f"sqlite:///{work_dir / 'cases.db'}")
    store.migrate()
    key_file = KeyFile(work_dir / "keys.json")
    secrets = [key_file.create(f"analyst-{i}", "review")[0] for i in range(analysts)]
    keys = ApiKeys(KeyRing(key_file), RateLimiter(0.0, 1.0))
    desk = CaseDesk(store, Workflow(store), relay=None)
    app = FastAPI()
    app.include_router(
        case_router(
            lambda: desk, keys.require, lambda r: _read_body(r, 65536), _BODY, _one_body_schema
        )
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"

    rng = random.Random(seed)
    ingested = 0
    lock = threading.Lock()

    def top_up() -> None:
        nonlocal ingested
        with lock:
            depth = store.stats()["depth"]
            open_now = sum(n for state, n in depth.items() if state != "resolved")
            fresh = [_case(ingested + i, rng) for i in range(max(0, cases - open_now))]
            ingested += len(fresh)
        if fresh:
            store.ingest(fresh)

    top_up()
    stop = threading.Event()
    page_ms: list[list[float]] = [[] for _ in range(analysts)]
    counts = [{"claimed": 0, "refused": 0, "verdicts": 0, "errors": 0} for _ in range(analysts)]

    def analyst(i: int) -> None:
        mine = random.Random(seed + i)
        with httpx.Client(base_url=base, headers={"X-API-Key": secrets[i]}, timeout=30) as http:
            while not stop.is_set():
                started = time.perf_counter()
                response = http.get("/v1/cases", params={"limit": 20})
                page_ms[i].append((time.perf_counter() - started) * 1000)
                queue = [c for c in response.json()["cases"] if c["state"] == "open"]
                if not queue:
                    continue
                case_id = mine.choice(queue[:10])["case_id"]
                claim = http.post(f"/v1/cases/{case_id}/claim")
                if claim.status_code == 409:
                    counts[i]["refused"] += 1
                    continue
                if claim.status_code != 200:
                    counts[i]["errors"] += 1
                    continue
                counts[i]["claimed"] += 1
                verdict = http.post(
                    f"/v1/cases/{case_id}/verdict",
                    json={"verdict": mine.choice(["fraud", "legit"])},
                )
                if verdict.status_code == 200:
                    counts[i]["verdicts"] += 1
                else:
                    counts[i]["errors"] += 1

    def feeder() -> None:
        while not stop.wait(1.0):
            top_up()

    workers = [threading.Thread(target=analyst, args=(i,)) for i in range(analysts)]
    workers.append(threading.Thread(target=feeder))
    started = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(duration_s)
    stop.set()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    server.should_exit = True
    thread.join(timeout=10)

    with store.sessions() as session:
        total = session.scalar(select(func.count()).select_from(Case)) or 0
        resolved = (
            session.scalar(select(func.count()).select_from(Case).where(Case.state == "resolved"))
            or 0
        )
        labels = session.scalar(select(func.count()).select_from(LabelOutbox)) or 0
        verdict_rows = session.execute(
            select(AuditEntry.case_id, func.count())
            .where(AuditEntry.action == "verdict")
            .group_by(AuditEntry.case_id)
        ).all()
    store.close()
    twice = sum(1 for _, n in verdict_rows if n > 1)
    pages = np.array([ms for per in page_ms for ms in per])
    verdicts = sum(c["verdicts"] for c in counts)
    return {
        "analysts": analysts,
        "open_cases_target": cases,
        "duration_s": round(elapsed, 1),
        "backend": store.dialect,
        "cases_ingested": ingested,
        "cases_in_store": int(total),
        "resolved": int(resolved),
        "labels": int(labels),
        "resolved_twice": twice,
        "lost": int(ingested - total),
        "verdicts_answered": verdicts,
        "claims_refused": sum(c["refused"] for c in counts),
        "errors": sum(c["errors"] for c in counts),
        "verdicts_per_s": round(verdicts / elapsed, 1),
        "queue_page_requests": int(pages.size),
        "queue_page_p50_ms": round(float(np.percentile(pages, 50)), 2) if pages.size else None,
        "queue_page_p99_ms": round(float(np.percentile(pages, 99)), 2) if pages.size else None,
        "ok": bool(twice == 0 and ingested == total and labels == resolved == verdicts),
    }
