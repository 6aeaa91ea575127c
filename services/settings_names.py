"""Every ``FRAUD_*`` environment variable the project reads, so a typo can be refused.

Each process builds only its own settings class, but one environment often serves them
all (a compose file, a shell): a variable meant for the scorer is not a typo in the API.
So the names a process accepts are the fields of *every* settings class
(:data:`SETTINGS_CLASSES`), kept in :data:`SETTINGS_FIELDS` because importing every class
would cost a scorer seconds and hundreds of MB (the retrainer's pulls in the ML stack), and
the variables read outside settings classes (:data:`OTHER_VARIABLES`).
``tests/unit/test_settings_names.py`` checks the list against the classes; regenerate it
with ``python -m services.settings_names``.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PREFIX = "FRAUD_"
NESTED = "__"

SETTINGS_CLASSES: dict[str, str] = {
    "common": "services.settings:CommonSettings",
    "scorer": "services.scorer.settings:ScorerSettings",
    "api": "services.api.settings:ApiSettings",
    "feedback": "services.feedback.settings:FeedbackSettings",
    "retrainer": "services.retrainer.settings:RetrainerSettings",
    "review": "services.review.settings:ReviewSettings",
    "simulator": "services.commands.simulate:SimulatorSettings",
    "erasure": "services.erasure.settings:ErasureSettings",
    "cases": "services.cases.settings:CaseIngestSettings",
    "case-store": "services.cases.settings:CaseStoreSettings",
}
"""Service name -> its settings class (``fraudctl config show --service NAME``)."""

OTHER_VARIABLES: dict[str, str] = {
    "FRAUD_TEST_KAFKA_BOOTSTRAP": "tests: the broker to use (else the tests start one)",
    "FRAUD_TEST_REDIS_URL": "tests: the Redis to use (else 127.0.0.1:6379 or one started)",
    "FRAUD_TEST_POSTGRES_URL": "tests: the PostgreSQL of the case store tests "
    "(else postgresql+psycopg://postgres@127.0.0.1:5432/test)",
    "FRAUD_TEST_SCREENSHOTS_DIR": "tests: where the console's browser test writes its "
    "screenshots (docs/img for the documentation)",
    "FRAUD_FUZZ_EXAMPLES": "tests: fuzzed payloads over every decoder (make fuzz sets more)",
    "FRAUD_FUZZ_REPORT": "tests: where the fuzz run writes its counts",
    "FRAUD_FAULTS_REPORT": "tests: where the fault suite writes its summary (make soak sets it)",
    "FRAUD_SCHEMA_EXAMPLES": "tests: schemathesis examples per API operation",
    "FRAUD_FEAST_REDIS": "the Redis connection string substituted into feature_store.yaml "
    "when the stock `feast` CLI reads features/repo",
    "FRAUD_LOADTEST_SHAPE": "fraudctl loadtest / Locust: --shape",
    "FRAUD_LOADTEST_USER_RATE": "Locust: --user-rate",
    "FRAUD_LOADTEST_DECISION_TIMEOUT_S": "Locust: --decision-timeout-s",
    "FRAUD_LOADTEST_WORLD": "Locust: --world",
    "FRAUD_LOADTEST_SEED": "Locust: --seed",
    "FRAUD_LOADTEST_API_KEY": "Locust / fraudctl loadtest --http: the API key (secret)",
    "FRAUD_LOADTEST_STEP_USERS": "Locust: --step-users",
    "FRAUD_LOADTEST_STEP_TIME_S": "Locust: --step-time-s",
    "FRAUD_LOADTEST_SPIKE_USERS": "Locust: --spike-users",
    "FRAUD_LOADTEST_SPIKE_AT_S": "Locust: --spike-at-s",
    "FRAUD_LOADTEST_SPIKE_TIME_S": "Locust: --spike-time-s",
    "FRAUD_SLA_P95_MS": "Locust: --sla-p95-ms",
    "FRAUD_SLA_P99_MS": "Locust: --sla-p99-ms",
    "FRAUD_SLA_MAX_FAIL_RATIO": "Locust: --sla-max-fail-ratio",
    "FRAUD_SLA_MIN_RPS": "Locust: --sla-min-rps",
    "FRAUD_SLA_REPORT": "Locust: --sla-report",
}
"""Variables read by tools and tests rather than by a settings class."""

# generated: python -m services.settings_names
SETTINGS_FIELDS: frozenset[str] = frozenset(
    {
        "allocator_mmap_threshold_kb",
        "allocator_trim_threshold_kb",
        "analyst",
        "api_keys_file",
        "audit_ack_timeout_s",
        "audit_delivery",
        "batch_max",
        "batch_within_s",
        "card_cache_size",
        "card_writes",
        "case_approval_amount",
        "case_batch_max",
        "case_history_per_card",
        "case_instance_id",
        "case_lease_s",
        "case_sla_s",
        "cases_db_url",
        "cases_enabled",
        "cases_group_id",
        "cases_metrics_port",
        "chargeback_group_id",
        "check_every_rows",
        "check_every_s",
        "console_login_s",
        "console_secret_file",
        "cooldown_s",
        "crash_after",
        "crash_at",
        "dedupe_ttl_s",
        "delivery_mode",
        "delivery_timeout_ms",
        "docs_public",
        "drift_alpha",
        "drift_correction",
        "drift_ignore",
        "drift_min_effect",
        "erasure_dir",
        "event_time_max_age_s",
        "event_time_max_skew_s",
        "feast_project",
        "feedback_app_id",
        "feedback_partitions",
        "feedback_store",
        "gate_ap_margin",
        "gate_min_frauds",
        "gate_min_labels",
        "gate_parity_tolerance",
        "gate_precision_tolerance",
        "gc_young_threshold",
        "group_id",
        "history_cards",
        "history_days",
        "history_dir",
        "history_lookback_s",
        "history_per_card",
        "host",
        "instance_id",
        "instance_index",
        "kafka_assignment_strategy",
        "kafka_bootstrap",
        "kafka_config",
        "kafka_sasl_mechanism",
        "kafka_sasl_password",
        "kafka_sasl_username",
        "kafka_security_protocol",
        "kafka_ssl_ca_file",
        "kafka_ssl_cert_file",
        "kafka_ssl_key_file",
        "kafka_ssl_key_password",
        "label_delay_days",
        "label_maturity_s",
        "label_wait_s",
        "max_backoff_s",
        "max_batch",
        "max_poll_interval_ms",
        "max_request_bytes",
        "max_unsettled_batches",
        "metrics_port",
        "metrics_public",
        "min_new_labels",
        "min_window_rows",
        "pause_after",
        "policy_refit",
        "policy_refit_days",
        "poll_timeout_ms",
        "port",
        "profile_cache_max_age_s",
        "profile_cache_size",
        "progress_log_s",
        "quality_min_frauds",
        "quality_min_labels",
        "quality_tolerance",
        "rate_limit_burst_s",
        "rate_limit_per_s",
        "recovery_tail",
        "redis_prefix",
        "redis_ssl_ca_file",
        "redis_ssl_cert_file",
        "redis_ssl_key_file",
        "redis_url",
        "reference_rows",
        "refit_declines_in_capacity",
        "registry_url",
        "reload_interval_s",
        "reload_on_events",
        "restart_replay",
        "review_cases_per_day",
        "review_group_id",
        "review_rate",
        "risk_updates",
        "s3_endpoint_url",
        "seed",
        "served_retention_s",
        "served_rows",
        "session_timeout_ms",
        "session_timeout_s",
        "simulator_client_id",
        "stack_wait_s",
        "stall_s",
        "state_dir",
        "stats_interval_ms",
        "test_days",
        "tick_s",
        "time_compression",
        "tls_cert_file",
        "tls_key_file",
        "topic_layout",
        "topic_prefix",
        "train_days",
        "training_dir",
        "training_timeout_s",
        "trigger_on_drift",
        "trigger_on_quality",
        "truth_ttl_s",
        "val_days",
        "window_rows",
    }
)
# end generated


def env_name(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


def known_names(extra_fields: Iterable[str] = ()) -> set[str]:
    """Every accepted variable name: all settings fields (plus ``extra_fields``, the
    fields of the class being built) and :data:`OTHER_VARIABLES`."""
    fields = SETTINGS_FIELDS.union(extra_fields)
    return {env_name(f) for f in fields} | set(OTHER_VARIABLES)


def unknown_variables(
    environ: Mapping[str, str], extra_fields: Iterable[str] = ()
) -> list[tuple[str, str | None]]:
    """``(name, closest known name or None)`` for every ``FRAUD_*`` variable no settings
    class, tool or test reads. ``FRAUD_<FIELD>__<KEY>`` sets one key of a mapping field."""
    known = known_names(extra_fields)
    upper = {name.upper(): name for name in known}
    out: list[tuple[str, str | None]] = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in known:
            continue
        head, nested, _ = name.partition(NESTED)
        if nested and head in known:
            continue
        close = difflib.get_close_matches(name.upper(), list(upper), n=1, cutoff=0.6)
        out.append((name, upper[close[0]] if close else None))
    return out


def settings_class(service: str) -> Any:
    """The settings class of ``service`` (imported on demand: some are heavy)."""
    try:
        module, _, name = SETTINGS_CLASSES[service].partition(":")
    except KeyError:
        known = ", ".join(SETTINGS_CLASSES)
        raise KeyError(f"unknown service {service!r}; one of {known}") from None
    return getattr(importlib.import_module(module), name)


def all_fields() -> set[str]:
    """The fields of every settings class, importing them all (tests and generation)."""
    fields: set[str] = set()
    for service in SETTINGS_CLASSES:
        fields |= set(settings_class(service).model_fields)
    return fields


def _render(fields: Iterable[str]) -> str:
    body = "".join(f'        "{f}",\n' for f in sorted(fields))
    return f"SETTINGS_FIELDS: frozenset[str] = frozenset(\n    {{\n{body}    }}\n)\n"


def regenerate(path: Path = Path(__file__)) -> bool:
    """Rewrite :data:`SETTINGS_FIELDS` in this file from the classes; True if it changed."""
    text = path.read_text()
    pattern = re.compile(r"(# generated: [^\n]*\n).*?(# end generated)", re.DOTALL)
    updated = pattern.sub(lambda m: m.group(1) + _render(all_fields()) + m.group(2), text)
    if updated != text:
        path.write_text(updated)
    return updated != text


if __name__ == "__main__":
    print("SETTINGS_FIELDS updated" if regenerate() else "SETTINGS_FIELDS up to date")
