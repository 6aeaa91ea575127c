"""Feast objects of the profile repository and helpers to open it from Python.

``features/repo/fraud_profiles.py`` (read by the stock ``feast`` CLI) and the SDK path
(:func:`apply_repo`) both take their objects from :func:`repo_objects`, so the two can never
define different views. Feast has no Redis key-prefix option: its keys are the serialised
entity key followed by the project name, so the project name is the namespace (tests use a
unique project; a deployment can also pick a Redis DB with ``db=N`` in the connection string).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import yaml

from features.profiles.errors import ProfileInputError
from features.profiles.layout import FeastLayout
from features.profiles.names import (
    CUSTOMER_ENTITY,
    CUSTOMER_JOIN_KEY,
    REPO_DIR,
    SOURCE_FILE,
    TERMINAL_ENTITY,
    TERMINAL_JOIN_KEY,
    TERMINAL_RISK_FEATURES,
    TERMINAL_RISK_TTL,
    TERMINAL_RISK_VIEW,
)
from features.profiles.reader import FeastRedisProfileReader, finalize_profiles
from features.profiles.source import CREATED_FIELD, TIMESTAMP_FIELD
from features.profiles.times import TimesLike, to_utc_us

"""The repository shipped with the code (``features/repo``)."""
REDIS_ENV = "FRAUD_FEAST_REDIS"
"""Environment variable substituted into ``feature_store.yaml``'s ``connection_string``."""


def repo_objects() -> list[Any]:
    """Entities, source and feature view of the profile repository."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32

    terminal = Entity(
        name=TERMINAL_ENTITY,
        join_keys=[TERMINAL_JOIN_KEY],
        value_type=ValueType.STRING,
        description="A payment terminal (point of sale or e-commerce merchant endpoint).",
    )
    customer = Entity(
        name=CUSTOMER_ENTITY,
        join_keys=[CUSTOMER_JOIN_KEY],
        value_type=ValueType.STRING,
        description="A customer holding one or more cards.",
    )
    source = FileSource(
        name="terminal_risk_source",
        path=f"data/{SOURCE_FILE}",
        timestamp_field=TIMESTAMP_FIELD,
        created_timestamp_column=CREATED_FIELD,
        description="features.profiles.source: one row per terminal per day + per label arrival",
    )
    view = FeatureView(
        name=TERMINAL_RISK_VIEW,
        entities=[terminal],
        ttl=TERMINAL_RISK_TTL,
        schema=[Field(name=name, dtype=Float32) for name in TERMINAL_RISK_FEATURES],
        source=source,
        online=True,
        description="Label-delayed terminal fraud risk (features.profiles.risk.terminal_risk).",
    )
    return [terminal, customer, source, view]


PLAIN_SCHEMES = ("redis", "rediss")
CLUSTER_SCHEMES = ("redis-cluster", "rediss-cluster")
"""``FRAUD_REDIS_URL`` schemes of a Redis Cluster (Feast's ``redis_type: redis_cluster``)."""


def feast_connection_string(redis_url: str, options: Mapping[str, object] | None = None) -> str:
    """Feast's ``host:port,db=N,password=...`` form of a ``redis://`` URL; ``options``
    (e.g. ``ssl_ca_certs``, ``ssl_certfile``: the TLS files of
    ``CommonSettings.redis_options``) are passed through as more ``key=value`` parts,
    which Feast hands to the Redis client as keyword arguments."""
    parsed = urlparse(redis_url)
    if parsed.scheme not in (*PLAIN_SCHEMES, *CLUSTER_SCHEMES) or not parsed.hostname:
        raise ProfileInputError(f"not a redis:// URL: {parsed.scheme}://{parsed.hostname}")
    parts = [f"{parsed.hostname}:{parsed.port or 6379}"]
    db = parsed.path.lstrip("/")
    if db:
        parts.append(f"db={int(db)}")
    if parsed.username and parsed.username != "default":
        parts.append(f"username={unquote(parsed.username)}")
    if parsed.password:
        parts.append(f"password={unquote(parsed.password)}")
    if parsed.scheme in ("rediss", "rediss-cluster"):
        parts.append("ssl=true")
    for key, value in (options or {}).items():
        if "," in str(value) or "=" in str(value):
            raise ProfileInputError(f"redis option {key} cannot hold ',' or '=' for Feast")
        parts.append(f"{key}={value}")
    return ",".join(parts)


def feast_redis_type(redis_url: str) -> str:
    """Feast's ``redis_type`` for a URL: ``redis_cluster`` for ``redis-cluster://``."""
    return "redis_cluster" if urlparse(redis_url).scheme in CLUSTER_SCHEMES else "redis"


def load_repo_config(
    repo_dir: Path = REPO_DIR,
    *,
    project: str | None = None,
    connection_string: str | None = None,
    key_ttl_seconds: int | None = None,
    redis_type: str | None = None,
) -> Any:
    """``feature_store.yaml`` of ``repo_dir`` (env vars expanded) with optional overrides."""
    from feast.repo_config import RepoConfig

    raw = yaml.safe_load(os.path.expandvars((repo_dir / "feature_store.yaml").read_text()))
    if project is not None:
        raw["project"] = project
    if redis_type is not None:
        raw["online_store"]["redis_type"] = redis_type
    if connection_string is not None:
        raw["online_store"]["connection_string"] = connection_string
    if key_ttl_seconds is not None:
        raw["online_store"]["key_ttl_seconds"] = key_ttl_seconds
    if "${" in str(raw["online_store"].get("connection_string", "")):
        raise ProfileInputError(f"set {REDIS_ENV} (Feast form host:port[,db=N,password=...])")
    config = RepoConfig(**raw)
    config.repo_path = repo_dir
    return config


def open_store(
    repo_dir: Path = REPO_DIR,
    *,
    project: str | None = None,
    connection_string: str | None = None,
    key_ttl_seconds: int | None = None,
    redis_type: str | None = None,
) -> Any:
    """A ``FeatureStore`` on ``repo_dir`` (overrides as in :func:`load_repo_config`)."""
    from feast import FeatureStore

    config = load_repo_config(
        repo_dir,
        project=project,
        connection_string=connection_string,
        key_ttl_seconds=key_ttl_seconds,
        redis_type=redis_type,
    )
    return FeatureStore(repo_path=str(repo_dir), config=config)


def apply_repo(store: Any) -> None:
    """``feast apply`` through the SDK: register the objects, create online infra."""
    store.apply(repo_objects())


def layout_for(store: Any) -> FeastLayout:
    return FeastLayout(
        project=store.config.project,
        entity_key_serialization_version=store.config.entity_key_serialization_version,
    )


def direct_reader(store: Any, redis_client: Any) -> FeastRedisProfileReader:
    """The direct reader of ``store``'s terminal_risk view (TTL taken from the registry)."""
    view = store.get_feature_view(TERMINAL_RISK_VIEW)
    return FeastRedisProfileReader(redis_client, layout_for(store), ttl=view.ttl)


def sdk_read_raw(store: Any, terminal_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Stored values (NaN = missing) and row seconds (-1 = none) via ``get_online_features``."""
    response = store.get_online_features(
        features=[f"{TERMINAL_RISK_VIEW}:{name}" for name in TERMINAL_RISK_FEATURES],
        entity_rows=[{TERMINAL_JOIN_KEY: t} for t in terminal_ids],
    ).to_dict(include_event_timestamps=True)
    values = np.array(
        [[np.nan if v is None else v for v in response[name]] for name in TERMINAL_RISK_FEATURES],
        dtype=np.float64,
    ).T.reshape(len(terminal_ids), len(TERMINAL_RISK_FEATURES))
    stamps = response[f"{TERMINAL_RISK_FEATURES[0]}__ts"]
    seconds = np.array(
        [
            -1 if (v is None or np.isnan(values[i]).all()) else _seconds(v)
            for i, v in enumerate(stamps)
        ],
        dtype=np.int64,
    )
    return values, seconds


def sdk_read_batch(
    store: Any, terminal_ids: Sequence[str], as_of: TimesLike, *, ttl: Any = None
) -> np.ndarray:
    """The served matrix computed from ``get_online_features`` (reference for parity)."""
    values, seconds = sdk_read_raw(store, terminal_ids)
    view_ttl = ttl if ttl is not None else store.get_feature_view(TERMINAL_RISK_VIEW).ttl
    return finalize_profiles(values, seconds, to_utc_us(as_of), view_ttl)


def _seconds(stamp: Any) -> int:
    if isinstance(stamp, int | float):
        return int(stamp)
    if hasattr(stamp, "timestamp"):
        return int(stamp.timestamp())
    return int(stamp.seconds)
