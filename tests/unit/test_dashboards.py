"""Grafana dashboard, its provisioning and the Prometheus alert rules, checked statically.

Neither Grafana nor Prometheus runs here, so: the dashboard is valid Grafana JSON (unique
panel ids, every query has an expression and the provisioned datasource uid), the
provisioning files point where docker-compose mounts things, the alert rules have the
shape Prometheus loads, and every ``fraud_*`` metric the dashboard and the alerts query is
one the code exports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy/grafana/dashboards"
PROVISIONING = ROOT / "deploy/grafana/provisioning"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
DATASOURCE_UID = "prometheus"
PANEL_TYPES = {"row", "timeseries", "stat", "state-timeline", "gauge", "table", "bargauge"}
METRIC = re.compile(r"\b(fraud_[a-z0-9_]+)")
DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
    "gauge": ("",),
}


def exported_metrics() -> set[str]:
    """Every series name the project's collectors can expose (labelled or not yet used)."""
    from services import gc_pauses as _gc  # noqa: F401  (registers them)
    from services import storage_metrics as _storage  # noqa: F401
    from services.api import audit as _api  # noqa: F401
    from services.api import metrics as _api_requests  # noqa: F401
    from services.cases.metrics import QueueCollector
    from services.feedback import metrics as _feedback  # noqa: F401
    from services.feedback.metrics import FeedbackCollector
    from services.retrainer import metrics as _retrainer  # noqa: F401
    from services.review import metrics as _review  # noqa: F401
    from services.scorer import metrics as _scorer  # noqa: F401

    names: set[str] = set()
    families = [
        *REGISTRY.collect(),
        *FeedbackCollector(None).collect(),
        *QueueCollector(QueueCollector.EXAMPLE).collect(),
    ]
    for family in families:
        if family.name.startswith("fraud_"):
            names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return names


def dashboards() -> list[tuple[Path, dict[str, Any]]]:
    paths = sorted(DASHBOARDS.glob("*.json"))
    assert paths, "no dashboard JSON in deploy/grafana/dashboards"
    return [(p, json.loads(p.read_text())) for p in paths]


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expr) of every panel target and every Prometheus annotation."""
    out = [
        (f"panel {p['title']!r}", t["expr"])
        for p in dashboard["panels"]
        for t in p.get("targets", [])
    ]
    out += [
        (f"annotation {a['name']!r}", a["expr"])
        for a in dashboard["annotations"]["list"]
        if "expr" in a
    ]
    return out


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]


def balanced(expr: str) -> bool:
    depth: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"[^"]*"', "", expr):
        if char in "([{":
            depth.append(char)
        elif char in pairs and (not depth or depth.pop() != pairs[char]):
            return False
    return not depth


def test_dashboard_is_valid_grafana_json() -> None:
    for path, dashboard in dashboards():
        assert {"uid", "title", "panels", "schemaVersion", "time", "annotations"} <= set(dashboard)
        assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"]), path
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids), path
        for panel in dashboard["panels"]:
            assert panel["type"] in PANEL_TYPES, panel["title"]
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
            targets = panel["targets"]
            assert targets, f"panel {panel['title']!r} has no query"
            assert len({t["refId"] for t in targets}) == len(targets)
            for target in targets:
                assert target["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
                assert target["expr"].strip() and balanced(target["expr"]), target["expr"]


def test_panels_do_not_overlap() -> None:
    for _, dashboard in dashboards():
        cells: dict[tuple[int, int], str] = {}
        for panel in dashboard["panels"]:
            g = panel["gridPos"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                    cells[(x, y)] = panel["title"]


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    exported = exported_metrics()
    for _, dashboard in dashboards():
        for where, expr in queries(dashboard):
            for name in METRIC.findall(expr):
                assert name in exported, f"{where} queries {name}, which no code exports"


def test_dashboard_shows_what_an_operator_watches() -> None:
    (_, dashboard), *_ = dashboards()
    used = {name for _, expr in queries(dashboard) for name in METRIC.findall(expr)}
    for needed in (
        "fraud_decisions_total",  # throughput and decision mix
        "fraud_e2e_latency_seconds_bucket",  # p50/p95/p99
        "fraud_stage_latency_seconds_bucket",  # per stage
        "fraud_review_cases_total",  # review queue
        "fraud_consumer_lag_records",
        "fraud_dead_letters_total",
        "fraud_model_info",  # model version over time
        "fraud_drift_feature_p_value",
        "fraud_retrainer_runs_total",  # retrain events
        "fraud_api_request_duration_seconds_bucket",  # API latency
        "fraud_labels_total",  # labels by source
        "fraud_feedback_stream_events_total",  # the feedback join
        "fraud_quality_ratio",  # model quality on labels
    ):
        assert needed in used, f"no panel queries {needed}"
    latency = next(p for p in dashboard["panels"] if "vs the 50 ms SLA" in p["title"])
    steps = latency["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 0.05]  # the SLA line at 50 ms
    assert latency["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] != "off"
    exprs = " ".join(t["expr"] for t in latency["targets"])
    assert all(f"histogram_quantile({q}," in exprs for q in ("0.5", "0.95", "0.99"))


def test_provisioning_points_where_compose_mounts() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    binds = [v for v in compose["volumes"] if v.startswith("./")]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in binds)
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./deploy/grafana/dashboards"] == "/var/lib/grafana/dashboards"

    (datasources,) = (PROVISIONING / "datasources").glob("*.yml")
    sources = yaml.safe_load(datasources.read_text())
    assert sources["apiVersion"] == 1
    (source,) = sources["datasources"]
    assert (source["type"], source["uid"]) == ("prometheus", DATASOURCE_UID)
    assert source["url"] == "http://prometheus:9090" and source["access"] == "proxy"

    (providers,) = (PROVISIONING / "dashboards").glob("*.yml")
    config = yaml.safe_load(providers.read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_alert_rules_have_the_shape_prometheus_loads() -> None:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    assert len({g["name"] for g in groups}) == len(groups)
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(set(names)) == len(names)
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
        assert isinstance(rule["expr"], str) and balanced(rule["expr"]), rule["alert"]
        assert "for" not in rule or DURATION.match(rule["for"]), rule["alert"]
        for window in re.findall(r"\[([^\]:]+)(?::[^\]]*)?\]", rule["expr"]):
            assert DURATION.match(window), f"{rule['alert']}: bad range [{window}]"
        assert rule["labels"]["severity"] in {"page", "warn"}
        assert rule["annotations"]["summary"].strip()


def test_alerts_cover_sla_lag_dlq_drift_and_scorer_down() -> None:
    rules = {r["alert"]: r["expr"] for r in alert_rules()}
    for kept in ("ScorerLatencySLABreach", "ScorerDown", "ConsumerLagGrowing", "DeadLetterSpike"):
        assert kept in rules  # the existing names stay: runbooks link to them
    assert "histogram_quantile(0.99" in rules["ScorerLatencySLABreach"]
    assert rules["ScorerLatencySLABreach"].endswith("> 0.05")  # the 50 ms p99 SLA
    assert "histogram_quantile(0.95" in rules["ScorerLatencyP95High"]
    assert "fraud_drift_detected" in rules["DataDriftDetected"]
    assert 'up{job="scorer"}' in rules["NoScorerRunning"]


def test_every_metric_the_alerts_query_is_exported() -> None:
    exported = exported_metrics()
    for rule in alert_rules():
        for name in METRIC.findall(rule["expr"]):
            assert name in exported, f"alert {rule['alert']} queries {name}, which no code exports"


def test_alerts_cover_the_retrainer_and_feedback_faults() -> None:
    """Each fault of the learning loop shows while it lasts: an outage of model.events, a
    failing check, a failing sink, a quarantined part, rows that could not be re-landed."""
    rules = {r["alert"]: r for r in alert_rules()}
    for name, metric in (
        ("ModelEventsNotAnnounced", "fraud_retrainer_outbox_oldest_seconds"),
        ("RetrainerChecksFailing", "fraud_retrainer_checks_total"),
        ("FeedbackSinkFailing", "fraud_feedback_sink_failing"),
        ("TrainingPartQuarantined", "fraud_training_parts_quarantined_total"),
        ("TrainingRowsMissing", "fraud_feedback_missing_rows"),
    ):
        assert metric in rules[name]["expr"], name
    assert rules["FeedbackSinkFailing"]["labels"]["severity"] == "page"
    assert 'up{job="feedback"}' in rules["FeedbackProcessorDown"]["expr"]
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"]
        for job in scrape["scrape_configs"]
        if "static_configs" in job
    }
    assert targets["feedback"] == ["feedback:9106"]


def test_every_alert_has_a_runbook_section() -> None:
    runbook = ROOT / "docs/operations/runbook.md"
    headings = set(re.findall(r"^## (\w+)$", runbook.read_text(), re.M))
    for rule in alert_rules():
        url = rule["annotations"].get("runbook_url", "")
        assert url == f"docs/operations/runbook.md#{rule['alert'].lower()}", rule["alert"]
        assert rule["alert"] in headings, f"no '## {rule['alert']}' in {runbook}"
    assert headings == {rule["alert"] for rule in alert_rules()}, "a runbook for no alert"


def test_dashboard_has_rows_for_api_latency_labels_and_quality() -> None:
    (_, dashboard), *_ = dashboards()
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert "REST API" in rows and "Labels and model quality" in rows
